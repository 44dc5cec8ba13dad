"""Presenting a report's tally: one tidy table (`rows`, `frame`), one JSON
object per plan (`as_json`), the readable text (`render`), and a file in a
format (`write`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from solver.analysis.report_shape import known_plans
from solver.analysis.report_tally import Tally
from solver.case.blocking import RULE
from solver.text.words import OUT_ERRORS, condition

SECTIONS = ("decision", "criterion_not_met", "criterion_unknown", "flip", "smallest_missing_set", "error")
BLOCKING_RULE = RULE


def _detail_json(kind: str, values: tuple) -> str:
    return json.dumps({kind: list(values)}, separators=(",", ":"))


def rows(t: Tally) -> list[dict]:
    """One tidy table: section, plan, item, decision, detail, count (sorted:
    section, plan, count descending, item, decision, detail)."""
    out = []
    for plan, counter in t.decisions.items():
        out.extend(("decision", plan, dec, dec, "", n) for dec, n in counter.items())
    for plan, counter in t.not_met.items():
        out.extend(("criterion_not_met", plan, cid, "", "", n) for cid, n in counter.items())
    for plan, counter in t.unknown.items():
        out.extend(("criterion_unknown", plan, cid, "", "", n) for cid, n in counter.items())
    for plan, counter in t.flips.items():
        out.extend(("flip", plan, key[0], key[1], _detail_json(key[2], key[3:]), n) for key, n in counter.items())
    for plan, counter in t.missing.items():
        out.extend(("smallest_missing_set", plan, pathway, "", ",".join(facts), n)
                   for (pathway, facts), n in counter.items())
    for kind, n in t.errors.items():
        out.append(("error", "", kind, "", "", n))
    order = {s: i for i, s in enumerate(SECTIONS)}
    out.sort(key=lambda r: (order[r[0]], r[1], -r[5], r[2], r[3], r[4]))
    return [dict(zip(("section", "plan", "item", "decision", "detail", "count"), r)) for r in out]


def as_json(t: Tally, top: Optional[int] = None) -> dict:
    """The report as one JSON object, per plan."""
    plans: dict[str, dict] = {}

    def plan(p):
        return plans.setdefault(p, {"decisions": {}, "criteria": {}, "flips": [], "smallest_missing_sets": []})

    for r in rows(t):
        if r["section"] == "decision":
            plan(r["plan"])["decisions"][r["item"]] = r["count"]
        elif r["section"] in ("criterion_not_met", "criterion_unknown"):
            key = "not_met" if r["section"] == "criterion_not_met" else "unknown"
            plan(r["plan"])["criteria"].setdefault(r["item"], {"not_met": 0, "unknown": 0})[key] = r["count"]
        elif r["section"] == "flip":
            plan(r["plan"])["flips"].append({"fact": r["item"], "decision": r["decision"],
                                             **json.loads(r["detail"]), "cases": r["count"]})
        elif r["section"] == "smallest_missing_set":
            plan(r["plan"])["smallest_missing_sets"].append(
                {"pathway": r["item"], "facts": r["detail"].split(","), "cases": r["count"]})
    for p in plans.values():
        p["criteria"] = [{"id": cid, **v} for cid, v in
                         sorted(p["criteria"].items(), key=lambda kv: (-kv[1]["not_met"], -kv[1]["unknown"], kv[0]))]
        if top:
            for k in ("criteria", "flips", "smallest_missing_sets"):
                p[k] = p[k][:top]
    return {"cases": t.cases, "explained": t.explained, "errors": dict(sorted(t.errors.items())),
            "blocking_rule": BLOCKING_RULE, "plans": {p: plans[p] for p in sorted(plans)}}


def frame(t: Tally):
    """The tidy table as a pandas DataFrame (for CSV, Parquet and charts)."""
    import pandas as pd

    return pd.DataFrame(rows(t), columns=["section", "plan", "item", "decision", "detail", "count"])


def render(t: Tally, top: int = 8) -> str:
    """The readable report."""
    data = as_json(t)
    lines = [f"{t.cases} cases ({t.explained} with changes searched), {sum(t.errors.values())} could not be read"]
    for kind, n in sorted(t.errors.items()):
        lines.append(f"  error {kind}: {n}")
    order = list(known_plans())
    for plan_id in sorted(data["plans"], key=lambda p: (order.index(p) if p in order else len(order), p)):
        p = data["plans"][plan_id]
        total = sum(p["decisions"].values())
        lines.append("")
        lines.append(f"{plan_id}: " + ", ".join(f"{d} {n} ({100 * n / total:.0f}%)" for d, n in
                                                  sorted(p["decisions"].items(), key=lambda kv: -kv[1])))
        if p["criteria"]:
            lines.append(f"  criteria that block most ({BLOCKING_RULE}):")
            for c in p["criteria"][:top]:
                lines.append(f"    {c['id']:<22} {c['not_met']:>8} {c['unknown']:>8}")
        if p["flips"]:
            lines.append("  single facts that would change the most decisions:")
            for f in p["flips"][:top]:
                lines.append(f"    {f['cases']:>8}  {_fmt(f)} -> {f['decision']}")
        if p["smallest_missing_sets"]:
            lines.append("  most common smallest missing sets:")
            for m in p["smallest_missing_sets"][:top]:
                lines.append(f"    {m['cases']:>8}  {', '.join(m['facts'])} -> {m['pathway']}")
    return "\n".join(lines)


def _fmt(f: dict) -> str:
    return condition(f["fact"], f.get("values"), f.get("range"))


def write(t: Tally, fmt: str, output: Optional[str]) -> str:
    """Write the report in a file format; returns what was written where."""
    if fmt == "json":
        text = json.dumps(as_json(t), indent=2, sort_keys=False, ensure_ascii=False) + "\n"
        if output:
            Path(output).write_text(text, encoding="utf-8", errors=OUT_ERRORS)
        return text
    df = frame(t)
    if fmt == "csv":
        text = df.to_csv(index=False, lineterminator="\n")
        if output:
            Path(output).write_text(text, encoding="utf-8", errors=OUT_ERRORS)
        return text
    if fmt == "parquet":
        if not output:
            raise ValueError("--format parquet needs --output PATH")
        df.to_parquet(output, index=False)
        return ""
    raise ValueError(f"unknown format {fmt!r}")
