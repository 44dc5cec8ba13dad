"""`pa-solver why`: per plan, what its decision rests on, in at most 15 lines.

    decision  <- pathway  <- criterion (citation)  <- fact = value (the test)

read from a result made with `why=True` (each criterion's `because`, each plan's
`rests_on`); the facts the case gives that did not matter are named on one line.
"""

from __future__ import annotations

from solver.case.outcome import sentence
from solver.text.words import safe

MAX_LINES = 15
LABEL = {"approved": "APPROVED", "case_review": "CASE REVIEW", "needs_info": "NEEDS INFO", "denied": "DENIED",
         "no_policy": "NO POLICY"}


def plan_lines(r: dict, given: list[str] | None = None) -> list[str]:
    """At most MAX_LINES lines for one plan's result (made with why=True); `given`: the facts
    the case gives (known), to name those that did not matter."""
    dec = r["decision"]
    rests = {f["fact"] for f in r.get("rests_on", [])}
    head = f"{r['plan']}: {LABEL[dec]}"
    if r.get("pathway"):
        head += f" via {r['pathway']}"
    if "rests_on" in r:
        head += f" \u2014 rests on {r['rests_on_count']} of {r['facts_count']} facts"
    lines = [head]
    if dec == "no_policy":
        lines.append("  \u2190 the document has no criteria for this drug")
        return lines
    pathways = r["pathways"]
    if dec in ("approved", "case_review"):
        pathways = [p for p in pathways if p["id"] == r.get("pathway")]
    body: list[str] = []
    if dec == "denied":
        body = _denial_lines(pathways, rests)
    else:
        seen: set = set()
        for pw in pathways:
            crit = []
            for c in pw["criteria"]:
                facts = [b for b in c.get("because", []) if b["fact"] in rests]
                if not facts or c["id"] in seen:
                    continue
                seen.add(c["id"])
                crit.append((c, facts))
            if not crit:
                continue
            body.append(f"  \u2190 {pw['id']}: {safe(pw['title'])}")
            for c, facts in crit:
                for b in facts:
                    body.append(f"      \u2190 {c['id']}: {safe(sentence(b, c['source']))}")
    room = MAX_LINES - len(lines) - 1
    if len(body) > room:
        body = body[:room - 1] + [f"  \u2026 and {len(body) - room + 1} more (pa-solver decide --verbose)"]
    lines += body
    if given is not None:
        other = sorted(set(given) - rests)
        lines.append(f"  did not matter: {', '.join(other) if other else 'none'}")
    return lines[:MAX_LINES]


def _denial_lines(pathways: list[dict], rests: set) -> list[str]:
    """A denial: each broken criterion the decision rests on, under the pathways it breaks
    ("every pathway (9)" when it breaks them all), each criterion once."""
    breaks: dict[str, list[str]] = {}
    crit: dict[str, tuple] = {}
    for pw in pathways:
        for c in pw["criteria"]:
            facts = [b for b in c.get("because", []) if b["fact"] in rests]
            if facts and c["status"] == "not_met":
                breaks.setdefault(c["id"], []).append(pw["id"])
                crit[c["id"]] = (c, facts)
    by_pathways: dict[tuple, list[str]] = {}
    for cid, pws in breaks.items():
        by_pathways.setdefault(tuple(pws), []).append(cid)
    lines = []
    titles = {pw["id"]: pw["title"] for pw in pathways}
    for pws, cids in sorted(by_pathways.items(), key=lambda kv: (-len(kv[0]), kv[0])):
        if len(pws) == len(pathways) and len(pws) > 1:
            lines.append(f"  \u2190 every pathway ({len(pws)})")
        else:
            lines.extend(f"  \u2190 {p}: {safe(titles[p])}" for p in pws)
        for cid in sorted(cids):
            c, facts = crit[cid]
            lines.extend(f"      \u2190 {cid}: {safe(sentence(b, c['source']))}" for b in facts)
    return lines


def render(result: dict, given: list[str] | None = None, plan: str | None = None) -> str:
    blocks = []
    for r in result["results"]:
        if plan is None or r["plan"] == plan:
            blocks.append("\n".join(plan_lines(r, given)))
    return f"case {safe(result.get('case_id') or '(no id)')}\n\n" + "\n\n".join(blocks)
