"""Batch reports: which criteria hold requests back, and which facts flip them.

`pa-solver report CASES.jsonl` reads cases (explained here, with the changes
of at most `max_changes` facts, 1 by default) or results as printed by
`pa-solver batch` (full or `--lean`) / `pa-solver explain --json` (a line with
`results`), in any mix, and counts per plan:

- decisions;
- the criteria that block approval, as not met and as unknown (once per
  case), by the rule `BLOCKING_RULE`: only where the plan did not approve the
  case, and only on the plan's pathways closest to approval.  "Closest": the
  pathways of outcome `approved` (the plan's `case_review` pathways when it
  has none in the result), then those with the fewest criteria not met, then
  the fewest unknown; ties all count (a criterion once).  A criterion that
  only fails on pathways farther from approval, or in a case the plan
  approved, blocks nothing and is not counted;
- single-fact changes that flip the decision: (fact, new decision, values or
  range) by the number of cases they flip;
- the smallest missing sets of `needs_info` results: (pathway, facts).

Counting needs no order, so the input is cut into pieces that workers count
on their own (a regular file by byte ranges each worker reads itself, so no
line crosses a process boundary; standard input by chunks of lines), and the
parent adds the counters up.

Reading.  Every line is read with `solver.jsontext` semantics for failures,
and no line raises: a line that cannot be read is counted as an error by
kind, like a case that does not validate.  A UTF-8 byte-order mark at the
start of a line is dropped (the first line of a file saved by some editors).
Result lines take a fast path: orjson, then a check that no object names a
key twice (orjson keeps the last one silently): a line that is orjson's own
re-encoding of what it read (as `batch` writes them) has none; otherwise the
colons of the line and of the re-encoding are compared, and a line that may
hide a duplicate is read again by `jsontext.loads`, which refuses it.  A
result line orjson refuses (bytes that are not UTF-8, a lone surrogate,
nesting past orjson's 1,024 levels, a number past a double, NaN) is an error
`(line)`; results this project writes never hold these.  Cases and error
lines (`{"case_id", "error", "line"}`) are read by `jsontext.loads` itself, as
`pa-solver batch` reads them (nesting past 64, over-long integers, duplicate
keys are errors `(line)`).  The one difference: in a result line, nesting
between 65 and 1,024 levels is not looked for where the report reads nothing
(checking it costs as much as parsing); where it reads, a value nested in
place of an id or a decision is an error by field.

Then a result line is counted only if every field the report reads has its
shape: `results`; per result `plan`, `decision`, `pathways` (a list; where
the plan did not approve, each one's `outcome` and either `not_met`/`unknown`
id lists or `criteria` with `status` and `id`, the ids of the closest
pathways strings), `missing` (each set's `facts` a non-empty list; the
smallest sets' `pathway` and fact names strings), `changes` (absent, null or
a list; each one's `facts` a non-empty list; a single fact's `fact`, `values`
of scalars or `range` [low, high], and the change's `decision`).  Otherwise
the line is one error named by the field at fault, e.g.
`results[0].decision` (`fault` names it; a line counts exactly when `fault`
finds nothing).  The hot loop does not check field by field: it counts a bulk
of lines and, when a line of the bulk breaks it, counts that bulk again line
by line, so a bad line never loses the others.
"""

from __future__ import annotations

import errno
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

from solver.analysis.batch import worker_solver
from solver.analysis.engines import chunked, map_chunks
from solver.case.blocking import RULE, blocking, closest_key
from solver.fhir.inputs import case_from
from solver.text.jsontext import BOM, NotJSON
from solver.text.jsontext import loads as read_json
from solver.text.jsontext import same_members
from solver.base.contract import CaseError
from solver.text.words import OUT_ERRORS, condition

SEGMENT = 4 << 20            # bytes of a regular file per task
LINES = 256                  # lines per task from a stream
SECTIONS = ("decision", "criterion_not_met", "criterion_unknown", "flip", "smallest_missing_set", "error")
DECISIONS = ("approved", "case_review", "needs_info", "denied", "no_policy")
OUTCOMES = ("approved", "case_review")        # pathway outcomes, closest to approval first
STATUSES = ("met", "not_met", "unknown")
BLOCKING_RULE = RULE
KIND_LIMIT = 120             # characters of an error kind (the field at fault)

_DECISION = frozenset(DECISIONS)


def _plans() -> dict:
    """The plans of the rule base in use (`--rules`): a result line naming another is refused."""
    from solver.rules.declared import of

    return of().plans
_BOUND = (int, float, type(None))              # a range's ends (bool is not one)
_ERROR_LINE = frozenset(("case_id", "error", "line"))   # what batch writes for a line it could not decide
_BAD = (KeyError, TypeError, ValueError, AttributeError, IndexError)   # a line of the wrong shape


@dataclass
class Tally:
    """Counts over results, per plan; `merge` adds another tally.

    decisions[plan][decision], not_met[plan][criterion], unknown[plan][criterion]
    (blocking criteria, see `BLOCKING_RULE`),
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
        """Count result lines (parsed, each a dict with `results`).  The hot
        loop of a report counts them together; if one has the wrong shape,
        they are counted again one by one and that one is an error named by
        its field, so a bad line never loses the others."""
        if not isinstance(results, (list, tuple)):
            results = list(results)
        lists: dict = {}
        try:
            cases, explained = _gather(results, lists)
        except _BAD:
            for result in results:
                one: dict = {}
                try:
                    cases, explained = _gather((result,), one)
                except _BAD:
                    self.error(fault(result) or "results: not a result line the report can read")
                    continue
                self._add(one, cases, explained)
            return
        self._add(lists, cases, explained)

    def _add(self, lists: dict, cases: int, explained: int) -> None:
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
        """Count a case that could not be read, by the kind of its message
        (the text before the first colon: the field at fault)."""
        self.cases += 1
        self.errors[_kind(message)] += 1

    def merge(self, other: "Tally") -> "Tally":
        self.cases += other.cases
        self.explained += other.explained
        self.errors.update(other.errors)
        for kind in self.KINDS:
            mine = getattr(self, kind)
            for plan, counter in getattr(other, kind).items():
                mine.setdefault(plan, Counter()).update(counter)
        return self


def _kind(message: Any) -> str:
    kind = str(message).split(":", 1)[0].strip() or "(case)"
    if len(kind) > KIND_LIMIT:
        kind = kind[:KIND_LIMIT - 1] + "…"
    try:
        kind.encode("utf-8")
    except UnicodeEncodeError:                  # a lone surrogate: shown escaped, never written raw
        kind = kind.encode("utf-8", "backslashreplace").decode("utf-8")
    return kind


# ------------------------------------------------------------------ result lines

def _by_status(pws: list) -> Iterator[tuple]:
    """(outcome, not met ids, unknown ids) per pathway of a full result line."""
    for pw in pws:
        crits = pw["criteria"]
        if type(crits) is not list:
            raise TypeError("criteria")
        nm, un = [], []
        for c in crits:
            status = c["status"]
            if status == "not_met":
                nm.append(c["id"])
            elif status == "unknown":
                un.append(c["id"])
            elif status != "met":
                raise ValueError("status")
        yield pw["outcome"], nm, un


def _gather(results: Iterable[dict], lists: dict) -> tuple[int, int]:
    """Append the keys of `results` to lists[plan] = (decisions, not met,
    unknown, flips, missing sets); (cases, explained).  Raises one of `_BAD`
    on a line of the wrong shape, with part of it appended: the caller drops
    `lists`.  Only what is counted is read, and checked: `_check` checks the
    same fields (a line is counted if and only if `fault` finds nothing)."""
    cases = explained = 0
    for result in results:
        rs = result["results"]
        if type(rs) is not list:
            raise TypeError("results")
        cases += 1
        was_explained = False
        for r in rs:
            plan = r["plan"]
            mine = lists.get(plan)
            if mine is None:
                if plan not in _plans():
                    raise ValueError("plan")
                mine = lists[plan] = ([], [], [], [], [])
            dec = r["decision"]
            if dec not in _DECISION:
                raise ValueError("decision")
            mine[0].append(dec)
            pws = r["pathways"]
            if type(pws) is not list:
                raise TypeError("pathways")
            if dec != "approved":
                b = r.get("blocking")
                if b is not None:                    # a lean line: the blocking criteria, found by batch
                    bnm, bun = b["not_met"], b["unknown"]
                    if type(bnm) is not list or type(bun) is not list:
                        raise TypeError("blocking")
                elif pws:                            # a full line: criteria with their status
                    bnm, bun = blocking(_by_status(pws))
                else:
                    bnm = bun = ()
                if bnm:
                    "".join(bnm)                     # every id a string, or TypeError
                    mine[1].extend(set(bnm))
                if bun:
                    "".join(bun)
                    mine[2].extend(set(bun))
            ms = r["missing"]
            if type(ms) is not list:
                raise TypeError("missing")
            if len(ms) == 1:
                m = ms[0]
                fs, pathway = m["facts"], m["pathway"]
                if type(fs) is not list or not fs or type(pathway) is not str:
                    raise TypeError("missing")
                names = tuple([f["fact"] for f in fs])
                "".join(names)
                mine[4].append((pathway, names))
            elif ms:
                smallest = None
                for m in ms:
                    fs = m["facts"]
                    if type(fs) is not list or not fs:
                        raise TypeError("facts")
                    if smallest is None or len(fs) < smallest:
                        smallest = len(fs)
                keys = {(m["pathway"], tuple([f["fact"] for f in m["facts"]])) for m in ms
                        if len(m["facts"]) == smallest}
                for pathway, names in keys:
                    if type(pathway) is not str:
                        raise TypeError("pathway")
                    "".join(names)
                mine[4].extend(keys)
            changes = r.get("changes")
            if changes is not None:
                if type(changes) is not list:
                    raise TypeError("changes")
                was_explained = True
                flips = mine[3]
                # one (fact, decision, values/range) per single-fact entry: distinct within a result.
                # Read without checks; the distinct keys of the bulk are checked below (`_flip_ok`).
                for c in changes:
                    fs = c["facts"]
                    if len(fs) == 1:
                        f = fs[0]
                        v = f.get("values")
                        if v is not None:
                            if type(v) is not list:
                                raise TypeError("values")
                            flips.append((f["fact"], c["decision"], "values", *v))
                        else:
                            rg = f["range"]          # bounds checked here: a set would take true for 1
                            if type(rg) is not list or len(rg) != 2 or type(rg[0]) not in _BOUND \
                                    or type(rg[1]) not in _BOUND:
                                raise TypeError("range")
                            flips.append((f["fact"], c["decision"], "range", *rg))
                    elif type(fs) is not list or not fs:
                        raise TypeError("facts")
        explained += was_explained
    for mine in lists.values():
        if mine[3]:
            for key in set(mine[3]):                 # values that are lists or objects: TypeError
                if not _flip_ok(key):
                    raise ValueError("flip")
    return cases, explained


def _flip_ok(key: tuple) -> bool:
    """A flip key (fact, decision, "values", *values) or (fact, decision,
    "range", low, high) as a result line must give it."""
    if type(key[0]) is not str or key[1] not in _DECISION:
        return False
    return len(key) > 3 if key[2] == "values" else len(key) == 5


_TYPES = {dict: "an object", list: "a list", str: "a string", bool: "true or false", int: "a number",
          float: "a number", type(None): "null"}


def _what(v: Any) -> str:
    return _TYPES.get(type(v), type(v).__name__)


class _Fault(Exception):
    pass


def _field(d: dict, key: str, path: str, kind: Optional[type] = None, allow_none: bool = False) -> Any:
    if key not in d:
        raise _Fault(f"{path}.{key}: missing")
    v = d[key]
    if kind is not None and type(v) is not kind and not (allow_none and v is None):
        raise _Fault(f"{path}.{key}: must be {_TYPES[kind]}, not {_what(v)}")
    return v


def _one_of(v: Any, allowed: tuple, where: str) -> None:
    if type(v) is not str or v not in allowed:
        shown = json.dumps(v)[:40] if isinstance(v, (str, int, float, bool, type(None))) else _what(v)
        raise _Fault(f"{where}: must be one of {', '.join(allowed)}, not {shown}")


def fault(result: Any) -> Optional[str]:
    """The first field of a result line the report cannot count, as
    "path: what is wrong" (e.g. "results[0].decision: must be one of ..."),
    or None when the line can be counted."""
    try:
        _check(result)
    except _Fault as err:
        return str(err)
    return None


def _check(result: Any) -> None:
    if type(result) is not dict:
        raise _Fault(f"(line): must be an object, not {_what(result)}")
    rs = result.get("results")
    if type(rs) is not list:
        raise _Fault(f"results: must be a list, not {_what(rs)}")
    for i, r in enumerate(rs):
        p = f"results[{i}]"
        if type(r) is not dict:
            raise _Fault(f"{p}: must be an object, not {_what(r)}")
        _one_of(_field(r, "plan", p), tuple(_plans()), f"{p}.plan")
        dec = _field(r, "decision", p)
        _one_of(dec, DECISIONS, f"{p}.decision")
        pws = _field(r, "pathways", p, list)
        if dec != "approved":
            if "blocking" in r:
                b = _field(r, "blocking", p, dict)
                for key in ("not_met", "unknown"):
                    for k, cid in enumerate(_field(b, key, f"{p}.blocking", list)):
                        if type(cid) is not str:
                            raise _Fault(f"{p}.blocking.{key}[{k}]: must be a string, not {_what(cid)}")
            else:
                _check_pathways(pws, p)
        ms = _field(r, "missing", p, list)
        for j, m in enumerate(ms):
            q = f"{p}.missing[{j}]"
            if type(m) is not dict:
                raise _Fault(f"{q}: must be an object, not {_what(m)}")
            if not _field(m, "facts", q, list):
                raise _Fault(f"{q}.facts: must not be empty")
        smallest = min((len(m["facts"]) for m in ms), default=0)
        for j, m in enumerate(ms):
            if len(m["facts"]) == smallest:          # the sets counted: their names are read
                q = f"{p}.missing[{j}]"
                _field(m, "pathway", q, str)
                for k, f in enumerate(m["facts"]):
                    if type(f) is not dict:
                        raise _Fault(f"{q}.facts[{k}]: must be an object, not {_what(f)}")
                    _field(f, "fact", f"{q}.facts[{k}]", str)
        changes = _field(r, "changes", p, list, allow_none=True) if "changes" in r else None
        for j, c in enumerate(changes or ()):
            q = f"{p}.changes[{j}]"
            if type(c) is not dict:
                raise _Fault(f"{q}: must be an object, not {_what(c)}")
            fs = _field(c, "facts", q, list)
            if not fs:
                raise _Fault(f"{q}.facts: must not be empty")
            if len(fs) != 1:
                continue                              # changes of several facts are not counted
            qf = f"{q}.facts[0]"
            f = fs[0]
            if type(f) is not dict:
                raise _Fault(f"{qf}: must be an object, not {_what(f)}")
            if f.get("values") is not None:
                vs = _field(f, "values", qf, list)
                for k, v in enumerate(vs):
                    if isinstance(v, (dict, list)):
                        raise _Fault(f"{qf}.values[{k}]: must be a string, number, true, false or null, "
                                     f"not {_what(v)}")
            else:
                rg = _field(f, "range", qf, list)
                if len(rg) != 2 or any(type(b) not in _BOUND for b in rg):
                    raise _Fault(f"{qf}.range: must be [low, high], each a number or null")
            _field(f, "fact", qf, str)
            _one_of(_field(c, "decision", q), DECISIONS, f"{q}.decision")
            if f.get("values") is not None and not f["values"]:
                raise _Fault(f"{qf}.values: must not be empty")


def _check_pathways(pws: list, p: str) -> None:
    """The pathways of a full result that did not approve: each one's outcome
    and criteria by status; the ids of the closest (those counted)."""
    best, ids = None, []
    for j, pw in enumerate(pws):
        q = f"{p}.pathways[{j}]"
        if type(pw) is not dict:
            raise _Fault(f"{q}: must be an object, not {_what(pw)}")
        _one_of(_field(pw, "outcome", q), OUTCOMES, f"{q}.outcome")
        nm, un = [], []
        for k, c in enumerate(_field(pw, "criteria", q, list)):
            qc = f"{q}.criteria[{k}]"
            if type(c) is not dict:
                raise _Fault(f"{qc}: must be an object, not {_what(c)}")
            status = _field(c, "status", qc)
            _one_of(status, STATUSES, f"{qc}.status")
            if status != "met":
                (nm if status == "not_met" else un).append((f"{qc}.id", _field(c, "id", qc)))
        key = closest_key(pw["outcome"], len(nm), len(un))
        if best is None or key < best:
            best, ids = key, nm + un
        elif key == best:
            ids += nm + un
    for where, cid in ids:
        if type(cid) is not str:
            raise _Fault(f"{where}: must be a string, not {_what(cid)}")



def _detail_json(kind: str, values: tuple) -> str:
    return json.dumps({kind: list(values)}, separators=(",", ":"))


# ------------------------------------------------------------------ counting

def _count_line(tally: Tally, line: bytes, max_changes: int, results: list) -> None:
    """Count one input line: a result is queued on `results` (counted in bulk),
    a case is explained here, an error line or a bad line counted as an error."""
    if line.startswith(BOM):
        line = line[len(BOM):]
    if not line or line.isspace():
        return
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as err:
        obj, refused = None, err
    else:
        if type(obj) is dict and "results" in obj and same_members(line, obj):
            results.append(obj)                  # the hot path: a result line as batch writes them
            return
        refused = None
    # Cases, error lines, result lines that may name a key twice or that orjson
    # refused: read as every input of the project is read.
    try:
        obj = read_json(line)
    except NotJSON as err:
        tally.error(f"(line): {err}")
        return
    if isinstance(obj, dict) and "results" in obj:
        if refused is not None:                  # NaN, 1e400, a number past a double: no result of ours
            tally.error(f"(line): not valid JSON: {refused}")
        else:
            results.append(obj)
    elif isinstance(obj, dict) and "error" in obj and set(obj) <= _ERROR_LINE:
        tally.error(str(obj["error"]))          # a line `pa-solver batch` could not decide
    else:
        try:
            case, _ = case_from(obj, declared=worker_solver())   # a case, or a FHIR Bundle (its derived case)
        except CaseError as err:
            tally.error(str(err))
            return
        except Exception as err:                 # a bug: counted on its line, the report goes on
            tally.error(f"(internal): {type(err).__name__}: {err}")
            return
        try:
            results.append(worker_solver().solve(case, max_changes, lean=True))
        except Exception as err:                 # a bug: counted on its line, the report goes on
            tally.error(f"(internal): {type(err).__name__}: {err}")


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


def _as_bytes(line: Any) -> Any:
    if isinstance(line, bytes):
        return line
    if isinstance(line, str):
        return line.encode("utf-8", "surrogatepass")     # lone surrogates: bytes that are not UTF-8, an error
    if isinstance(line, (bytearray, memoryview)):
        return bytes(line)
    return b'{"error":"(line): not a line of text"}'     # counted as an error, never raised


@_no_gc
def count_lines(lines: list, max_changes: int = 1) -> Tally:
    return _count((_as_bytes(line) for line in lines), max_changes)


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
    """Count a report over a path (a str or os.PathLike: a regular file is
    split by bytes, a pipe or device read as a stream; a path that does not
    exist raises FileNotFoundError, a directory IsADirectoryError) or an
    iterable of lines (bytes or str, split by lines), on the engine."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        raise TypeError("report.tally takes a path or an iterable of lines, not bytes "
                        "(pass data.splitlines() for the lines of a text in memory)")
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if os.path.isdir(path):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        if os.path.isfile(path):
            with open(path, "rb"):               # unreadable (permissions): raised here, not in a worker
                pass
            workers = workers or os.cpu_count() or 1
            # small files: pieces small enough that every worker gets some
            size = max(64 << 10, min(SEGMENT, os.path.getsize(path) // (workers * 4) + 1))
            return _run(count_segment, _segments(path, size), max_changes, workers, engine, scheduler, progress)
        with open(path, "rb") as fh:             # a named pipe, /dev/stdin: a stream of lines
            return _run(count_lines, chunked(fh, LINES), max_changes, workers, engine, scheduler, progress)
    lines = source if not isinstance(source, io.TextIOBase) else (line.encode("utf-8", "surrogatepass")
                                                                   for line in source)
    return _run(count_lines, chunked(lines, LINES), max_changes, workers, engine, scheduler, progress)


def _run(fn, pieces, max_changes, workers, engine, scheduler, progress) -> Tally:
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
    order = list(_plans())
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
