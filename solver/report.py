"""Batch reports: which criteria hold requests back, and which facts flip them.

`pa-solver report CASES.jsonl` reads cases (explained here, with the changes
of at most `max_changes` facts, 1 by default) or results as printed by
`pa-solver batch` (full or `--lean`) / `pa-solver explain --json` (a line with
`results`), in any mix, and counts per plan:

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

import functools
import gc
import io
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator, Optional

import orjson

from .batch import chunked, map_chunks, worker_solver
from .models import PLANS, CaseError, parse_case
from .text import condition

SEGMENT = 4 << 20            # bytes of a regular file per task
LINES = 256                  # lines per task from a stream
SECTIONS = ("decision", "criterion_not_met", "criterion_unknown", "flip", "smallest_missing_set", "error")


@dataclass
class Tally:
    """Counts over results, per plan; `merge` adds another tally.

    decisions[plan][decision], not_met[plan][criterion], unknown[plan][criterion],
    flips[plan][(fact, decision, "values" | "range", *values or (low, high))],
    missing[plan][(pathway, facts)]: numbers of cases."""

    cases: int = 0
    explained: int = 0                                    # results that carried `changes`
    errors: Counter = field(default_factory=Counter)      # message kind (the field) -> cases
    decisions: dict = field(default_factory=dict)
    not_met: dict = field(default_factory=dict)
    unknown: dict = field(default_factory=dict)
    flips: dict = field(default_factory=dict)
    missing: dict = field(default_factory=dict)

    KINDS: ClassVar[tuple] = ("decisions", "not_met", "unknown", "flips", "missing")

    def add_many(self, results: Iterable[dict]) -> None:
        """Count results.  The hot loop of a report: keys gathered in plain
        lists per plan and kind, one Counter update per list at the end."""
        lists: dict = {}
        cases = explained = 0
        for result in results:
            cases += 1
            was_explained = False
            for r in result["results"]:
                plan = r["plan"]
                mine = lists.get(plan)
                if mine is None:
                    mine = lists[plan] = ([], [], [], [], [])
                decisions, not_met, unknown, flips, missing = mine
                decisions.append(r["decision"])
                if "not_met" in r:                       # a lean line: criteria already by status
                    not_met.extend(r["not_met"])
                    unknown.extend(r["unknown"])
                else:
                    nm, un = set(), set()
                    for pw in r["pathways"]:
                        for c in pw["criteria"]:
                            status = c["status"]
                            if status == "not_met":
                                nm.add(c["id"])
                            elif status == "unknown":
                                un.add(c["id"])
                    not_met.extend(nm)
                    unknown.extend(un)
                ms = r["missing"]
                if ms:
                    smallest = min([len(m["facts"]) for m in ms])
                    missing.extend({(m["pathway"], tuple([f["fact"] for f in m["facts"]])) for m in ms
                                    if len(m["facts"]) == smallest})
                changes = r.get("changes")
                if changes is not None:
                    was_explained = True
                    # one (fact, decision, values/range) per single-fact entry: distinct within a result
                    for c in changes:
                        fs = c["facts"]
                        if len(fs) == 1:
                            f = fs[0]
                            v = f.get("values")
                            if v is not None:
                                flips.append((f["fact"], c["decision"], "values", *v))
                            else:
                                flips.append((f["fact"], c["decision"], "range", *f["range"]))
            explained += was_explained
        self.cases += cases
        self.explained += explained
        for plan, mine in lists.items():
            for kind, keys in zip(self.KINDS, mine):
                if not keys:
                    continue
                counter = getattr(self, kind).get(plan)
                if counter is None:
                    counter = getattr(self, kind)[plan] = Counter()
                counter.update(keys)

    def error(self, message: str) -> None:
        self.cases += 1
        self.errors[message.split(":", 1)[0] or "(case)"] += 1

    def merge(self, other: "Tally") -> "Tally":
        self.cases += other.cases
        self.explained += other.explained
        self.errors.update(other.errors)
        for kind in self.KINDS:
            mine = getattr(self, kind)
            for plan, counter in getattr(other, kind).items():
                mine.setdefault(plan, Counter()).update(counter)
        return self


def _detail_json(kind: str, values: tuple) -> str:
    return json.dumps({kind: list(values)}, separators=(",", ":"))


# ------------------------------------------------------------------ counting

def _count_line(tally: Tally, line: bytes, max_changes: int, results: list) -> None:
    """Count one input line: a result is queued on `results` (counted in bulk),
    a case is explained here, an error line or a bad line counted as an error."""
    if not line.strip():
        return
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as err:
        tally.error(f"(line): not valid JSON: {err}")
        return
    if isinstance(obj, dict) and "results" in obj:
        results.append(obj)
    elif isinstance(obj, dict) and "error" in obj and set(obj) <= {"case_id", "error"}:
        tally.error(str(obj["error"]))          # a line `pa-solver batch` could not decide
    else:
        try:
            case = parse_case(obj)
        except CaseError as err:
            tally.error(str(err))
            return
        results.append(worker_solver().solve(case, max_changes, lean=True))


def _no_gc(fn):
    """Run without the cyclic garbage collector: parsed results hold no cycles,
    and collections triggered by their many small containers cost more than
    the parsing itself (measured: 15 -> 58 us per lean line)."""
    @functools.wraps(fn)
    def wrapper(*args, **kw):
        enabled = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kw)
        finally:
            if enabled:
                gc.enable()
    return wrapper


BULK = 16                    # results parsed, then counted together (more: slower, cache-wise)


def _count(lines: Iterable[bytes], max_changes: int) -> Tally:
    tally = Tally()
    results: list = []
    for line in lines:
        _count_line(tally, line, max_changes, results)
        if len(results) >= BULK:
            tally.add_many(results)
            results.clear()
    tally.add_many(results)
    return tally


@_no_gc
def count_lines(lines: list, max_changes: int = 1) -> Tally:
    return _count((line if isinstance(line, bytes) else line.encode() for line in lines), max_changes)


@_no_gc
def count_segment(segment: tuple, max_changes: int = 1) -> Tally:
    """Count the lines that start inside [start, end) of a file."""
    return _count(_segment_lines(*segment), max_changes)


def _segment_lines(path: str, start: int, end: int) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        if start:
            fh.seek(start - 1)
            if fh.read(1) != b"\n":
                fh.readline()                    # the line that began before `start` is the previous segment's
        while fh.tell() < end:
            line = fh.readline()
            if not line:
                return
            yield line


def _segments(path: str, size: int) -> Iterator[tuple]:
    total = os.path.getsize(path)
    for start in range(0, total, size):
        yield (path, start, min(total, start + size))


def tally(source: Any, max_changes: int = 1, workers: Optional[int] = None, engine: str = "local",
          scheduler: Any = None, progress=None) -> Tally:
    """Count a report over a path (a regular file is split by bytes) or an
    iterable of lines (split by lines), on the engine."""
    if isinstance(source, (str, os.PathLike)) and Path(source).is_file():
        path = str(source)
        workers = workers or os.cpu_count() or 1
        # small files: pieces small enough that every worker gets some
        size = max(64 << 10, min(SEGMENT, os.path.getsize(path) // (workers * 4) + 1))
        fn, pieces = count_segment, _segments(path, size)
    else:
        lines = source if not isinstance(source, io.TextIOBase) else (line.encode() for line in source)
        fn, pieces = count_lines, chunked(lines, LINES)
    out = Tally()
    for part in map_chunks(fn, pieces, max_changes, workers=workers, engine=engine, scheduler=scheduler,
                           ordered=False):
        out.merge(part)
        if progress is not None:
            progress(part.cases)
    return out


# ------------------------------------------------------------------ presenting

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
    return condition(f["fact"], f.get("values"), f.get("range"))


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
