"""Batch reports: which criteria hold requests back, and which facts flip them.

`pa-solver report CASES.jsonl` reads cases (explained here, with the changes
of at most `max_changes` facts, 1 by default) or results as printed by
`pa-solver batch` / `pa-solver explain --json` (a line with `results`), in any
mix, and counts per plan:

- decisions;
- each criterion, as not met and as unknown (once per case);
- single-fact changes that flip the decision: (fact, new decision, values or
  range) by the number of cases they flip;
- the smallest missing sets of `needs_info` results: (pathway, facts).

Counting needs no order, so the input is cut into pieces that workers count
on their own (a regular file by byte ranges each worker reads itself, so no
line crosses a process boundary; standard input by chunks of lines), and the
parent adds the counters up.  Results are parsed with orjson.
"""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

import orjson

from .batch import map_chunks, worker_solver
from .models import PLANS, CaseError, parse_case

SEGMENT = 4 << 20            # bytes of a regular file per task
LINES = 256                  # lines per task from a stream
SECTIONS = ("decision", "criterion_not_met", "criterion_unknown", "flip", "smallest_missing_set", "error")


@dataclass
class Tally:
    """Counts over results; `merge` adds another tally."""

    cases: int = 0
    errors: Counter = field(default_factory=Counter)      # message kind -> cases
    decisions: Counter = field(default_factory=Counter)   # (plan, decision)
    not_met: Counter = field(default_factory=Counter)     # (plan, criterion)
    unknown: Counter = field(default_factory=Counter)     # (plan, criterion)
    flips: Counter = field(default_factory=Counter)       # (plan, fact, decision, detail)
    missing: Counter = field(default_factory=Counter)     # (plan, pathway, facts)
    explained: int = 0                                    # results that carried `changes`

    def add(self, result: dict) -> None:
        self.cases += 1
        explained = False
        for r in result["results"]:
            plan = r["plan"]
            self.decisions[(plan, r["decision"])] += 1
            seen_nm, seen_un = set(), set()
            for pw in r["pathways"]:
                for c in pw["criteria"]:
                    if c["status"] == "not_met":
                        seen_nm.add(c["id"])
                    elif c["status"] == "unknown":
                        seen_un.add(c["id"])
            for cid in seen_nm:
                self.not_met[(plan, cid)] += 1
            for cid in seen_un:
                self.unknown[(plan, cid)] += 1
            missing = r.get("missing") or []
            if missing:
                smallest = min(len(m["facts"]) for m in missing)
                for key in {(m["pathway"], tuple(f["fact"] for f in m["facts"])) for m in missing
                            if len(m["facts"]) == smallest}:
                    self.missing[(plan, *key)] += 1
            changes = r.get("changes")
            if changes is not None:
                explained = True
                for key in {(c["facts"][0]["fact"], c["decision"], _detail(c["facts"][0])) for c in changes
                            if len(c["facts"]) == 1}:
                    self.flips[(plan, *key)] += 1
        self.explained += explained

    def error(self, message: str) -> None:
        self.cases += 1
        self.errors[message.split(":", 1)[0] or "(case)"] += 1

    def merge(self, other: "Tally") -> "Tally":
        self.cases += other.cases
        self.explained += other.explained
        for name in ("errors", "decisions", "not_met", "unknown", "flips", "missing"):
            getattr(self, name).update(getattr(other, name))
        return self


def _detail(f: dict) -> str:
    """A changed fact's values or range, as compact JSON ("values": [...] / "range": [...])."""
    if f.get("values") is not None:
        return json.dumps({"values": f["values"]}, separators=(",", ":"))
    return json.dumps({"range": f["range"]}, separators=(",", ":"))


# ------------------------------------------------------------------ counting

def _count_line(tally: Tally, line: bytes, max_changes: int) -> None:
    if not line.strip():
        return
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as err:
        tally.error(f"(line): not valid JSON: {err}")
        return
    if isinstance(obj, dict) and "results" in obj:
        tally.add(obj)
    elif isinstance(obj, dict) and "error" in obj and set(obj) <= {"case_id", "error"}:
        tally.error(str(obj["error"]))          # a line `pa-solver batch` could not decide
    else:
        try:
            case = parse_case(obj)
        except CaseError as err:
            tally.error(str(err))
            return
        tally.add(worker_solver().solve(case, max_changes))


def count_lines(lines: list, max_changes: int = 1) -> Tally:
    tally = Tally()
    for line in lines:
        _count_line(tally, line if isinstance(line, bytes) else line.encode(), max_changes)
    return tally


def count_segment(segment: tuple, max_changes: int = 1) -> Tally:
    """Count the lines that start inside [start, end) of a file."""
    path, start, end = segment
    tally = Tally()
    with open(path, "rb") as fh:
        if start:
            fh.seek(start - 1)
            if fh.read(1) != b"\n":
                fh.readline()                    # the line that began before `start` is the previous segment's
        while fh.tell() < end:
            line = fh.readline()
            if not line:
                break
            _count_line(tally, line, max_changes)
    return tally


def _segments(path: str, size: int) -> Iterator[tuple]:
    total = os.path.getsize(path)
    for start in range(0, total, size):
        yield (path, start, min(total, start + size))


def tally(source: Any, max_changes: int = 1, workers: Optional[int] = None, engine: str = "local",
          scheduler: Any = None, progress=None) -> Tally:
    """Count a report over a path (a regular file is split by bytes) or an
    iterable of lines (split by lines), on the engine."""
    out = Tally()
    if isinstance(source, (str, os.PathLike)) and Path(source).is_file():
        path = str(source)
        total = os.path.getsize(path)
        workers = workers or os.cpu_count() or 1
        # small files: pieces small enough that every worker gets some
        size = max(64 << 10, min(SEGMENT, total // (workers * 4) + 1))
        for part in map_chunks(count_segment, _segments(path, size), max_changes, workers=workers, engine=engine,
                               scheduler=scheduler, ordered=False):
            out.merge(part)
            if progress is not None:
                progress(part.cases)
        return out
    lines = source if not isinstance(source, io.TextIOBase) else (line.encode() for line in source)
    chunks = _chunks(lines, LINES)
    for part in map_chunks(count_lines, chunks, max_changes, workers=workers, engine=engine, scheduler=scheduler,
                           ordered=False):
        out.merge(part)
        if progress is not None:
            progress(part.cases)
    return out


def _chunks(lines: Iterable, size: int) -> Iterator[list]:
    part = []
    for line in lines:
        part.append(line)
        if len(part) == size:
            yield part
            part = []
    if part:
        yield part


# ------------------------------------------------------------------ presenting

def rows(t: Tally) -> list[dict]:
    """One tidy table: section, plan, item, decision, detail, count (sorted:
    section, plan, count descending, item, decision, detail)."""
    out = []
    for (plan, dec), n in t.decisions.items():
        out.append(("decision", plan, dec, dec, "", n))
    for (plan, cid), n in t.not_met.items():
        out.append(("criterion_not_met", plan, cid, "", "", n))
    for (plan, cid), n in t.unknown.items():
        out.append(("criterion_unknown", plan, cid, "", "", n))
    for (plan, fact, dec, detail), n in t.flips.items():
        out.append(("flip", plan, fact, dec, detail, n))
    for (plan, pathway, facts), n in t.missing.items():
        out.append(("smallest_missing_set", plan, pathway, "", ",".join(facts), n))
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
            "plans": {p: plans[p] for p in sorted(plans)}}


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
    for plan_id in sorted(data["plans"], key=lambda p: PLANS.index(p) if p in PLANS else 99):
        p = data["plans"][plan_id]
        total = sum(p["decisions"].values())
        lines.append("")
        lines.append(f"{plan_id}: " + ", ".join(f"{d} {n} ({100 * n / total:.0f}%)" for d, n in
                                                  sorted(p["decisions"].items(), key=lambda kv: -kv[1])))
        if p["criteria"]:
            lines.append("  criteria holding cases back (not met / unknown):")
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
    """fact = a or b / fact >= lo / fact < hi / lo <= fact < hi."""
    if "values" in f:
        return f"{f['fact']} = " + " or ".join(json.dumps(v) for v in f["values"])
    lo, hi = f["range"]
    if lo is None and hi is None:
        return f"{f['fact']} documented"
    if hi is None:
        return f"{f['fact']} >= {lo}"
    if lo is None:
        return f"{f['fact']} < {hi}"
    return f"{lo} <= {f['fact']} < {hi}"


def write(t: Tally, fmt: str, output: Optional[str]) -> str:
    """Write the report in a file format; returns what was written where."""
    if fmt == "json":
        text = json.dumps(as_json(t), indent=2, sort_keys=False, ensure_ascii=False) + "\n"
        if output:
            Path(output).write_text(text, encoding="utf-8")
        return text
    df = frame(t)
    if fmt == "csv":
        text = df.to_csv(index=False, lineterminator="\n")
        if output:
            Path(output).write_text(text, encoding="utf-8")
        return text
    if fmt == "parquet":
        if not output:
            raise ValueError("--format parquet needs --output PATH")
        df.to_parquet(output, index=False)
        return ""
    raise ValueError(f"unknown format {fmt!r}")
