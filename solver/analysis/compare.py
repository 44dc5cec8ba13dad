"""The impact of a policy change on real requests: two result files of the
same cases (`pa-solver batch` with the old and the new rule base, e.g.
`--rules OLD/logic`) compared plan by plan.

    pa-solver report --compare OLD.jsonl NEW.jsonl [--format json]

Cases are matched by `case_id` where every line of both files has a distinct
one, else by line order.  Per plan: how many decisions moved (old -> new) and
which cases moved; lines that are not results (errors, unreadable) are
counted, never compared.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from solver.text.jsontext import NotJSON, loads


def _read(path: str) -> tuple[list, Counter, set]:
    """(results in order, counts of lines that are not results, rules versions)."""
    out, skipped, versions = [], Counter(), set()
    with open(path, "rb") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                obj = loads(line)
            except NotJSON:
                skipped["not JSON"] += 1
                out.append(None)
                continue
            if not isinstance(obj, dict) or not isinstance(obj.get("results"), list):
                kind = ("error lines" if isinstance(obj, dict) and "error" in obj
                        else "cases or bundles, not results" if isinstance(obj, dict) and _is_input(obj)
                        else "not a result")
                skipped[kind] += 1
                out.append(None)
                continue
            versions.add(str(obj.get("rules_version")))
            out.append(obj)
    return out, skipped, versions


def _is_input(obj: dict) -> bool:
    """A line that is a case or a FHIR resource: something to decide, not a decision."""
    return "resourceType" in obj or ("results" not in obj and bool({"facts", "drug", "request", "plans"} & set(obj)))


class NothingToCompare(ValueError):
    """A file of --compare that holds no result line (a file of cases, say)."""


def _decisions(obj: Any) -> dict:
    return {r["plan"]: r["decision"] for r in obj["results"]
            if isinstance(r, dict) and isinstance(r.get("plan"), str) and isinstance(r.get("decision"), str)}


def compare(old_path: str, new_path: str, list_cases: int = 50) -> dict:
    old, old_skipped, old_versions = _read(old_path)
    new, new_skipped, new_versions = _read(new_path)
    for path, lines, skipped in ((old_path, old, old_skipped), (new_path, new, new_skipped)):
        if not any(lines):
            what = ", ".join(f"{n} {kind}" for kind, n in sorted(skipped.items())) or "no lines"
            hint = (": decide them first (pa-solver batch FILE > RESULTS.jsonl) and compare the results"
                    if skipped.get("cases or bundles, not results") else "")
            raise NothingToCompare(f"{path} holds no results to compare ({what}){hint}")
    ids_old = [o.get("case_id") if o else None for o in old]
    ids_new = [n.get("case_id") if n else None for n in new]
    by_id = (all(isinstance(i, str) for i in ids_old + ids_new) and len(set(ids_old)) == len(ids_old)
             and len(set(ids_new)) == len(ids_new))
    if by_id:
        index = {i: n for i, n in zip(ids_new, new)}
        pairs = [(i, o, index.get(i)) for i, o in zip(ids_old, old)]
        unmatched = sum(1 for _, _, n in pairs if n is None) + len(set(ids_new) - set(ids_old))
        match = "case_id"
    else:
        pairs = [(o.get("case_id") if o else None, o, n) for o, n in zip(old, new)]
        unmatched = abs(len(old) - len(new))
        match = "line order"
    plans: dict[str, dict] = {}
    compared = 0
    for k, (cid, o, n) in enumerate(pairs, 1):
        if o is None or n is None:
            continue
        compared += 1
        do, dn = _decisions(o), _decisions(n)
        for plan in sorted(set(do) | set(dn)):
            p = plans.setdefault(plan, {"same": 0, "moved": Counter(), "cases": []})
            a, b = do.get(plan, "(absent)"), dn.get(plan, "(absent)")
            if a == b:
                p["same"] += 1
                continue
            p["moved"][f"{a} -> {b}"] += 1
            if len(p["cases"]) < list_cases:
                p["cases"].append({"case": cid if cid is not None else f"line {k}", "from": a, "to": b})
    return {
        "old": old_path, "new": new_path, "matched_by": match, "compared": compared, "unmatched": unmatched,
        "not_compared": {"old": dict(old_skipped), "new": dict(new_skipped)},
        "rules_versions": {"old": sorted(old_versions), "new": sorted(new_versions)},
        "plans": {plan: {"same": p["same"], "moved": dict(sorted(p["moved"].items())), "cases": p["cases"]}
                  for plan, p in sorted(plans.items())},
    }


def render(c: dict) -> str:
    lines = [f"{c['compared']} cases compared (matched by {c['matched_by']}; {c['unmatched']} unmatched); "
             f"rules {', '.join(c['rules_versions']['old'])} -> {', '.join(c['rules_versions']['new'])}"]
    for side in ("old", "new"):
        for kind, n in c["not_compared"][side].items():
            lines.append(f"  {side}: {n} {kind} not compared")
    for plan, p in c["plans"].items():
        moved = sum(p["moved"].values())
        lines.append("")
        lines.append(f"{plan}: {moved} moved, {p['same']} unchanged")
        for move, n in p["moved"].items():
            lines.append(f"  {n:>6}  {move}")
        for case in p["cases"][:10]:
            lines.append(f"          {case['case']}: {case['from']} -> {case['to']}")
    return "\n".join(lines)
