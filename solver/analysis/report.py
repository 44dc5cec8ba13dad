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

This module reads the input and counts it on the engines
(solver/analysis/engines.py); a `Tally` and the counting of result lines are
solver/analysis/report_tally.py, the fields a line must hold
solver/analysis/report_shape.py (`fault`), and the tables, JSON and text of
a report solver/analysis/report_out.py (`BLOCKING_RULE`).
"""

from __future__ import annotations

import errno
import functools
import gc
import io
import os
from typing import Any, Iterable, Iterator, Optional

import orjson

from solver.analysis.batch import worker_solver
from solver.analysis.engines import chunked, map_chunks
from solver.analysis.report_tally import Tally
from solver.fhir.inputs import case_from
from solver.text.jsontext import BOM, NotJSON
from solver.text.jsontext import loads as read_json
from solver.text.jsontext import same_members
from solver.base.contract import CaseError

SEGMENT = 4 << 20            # bytes of a regular file per task
LINES = 256                  # lines per task from a stream
_ERROR_LINE = frozenset(("case_id", "error", "line"))   # what batch writes for a line it could not decide


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


def segments(path: str, size: int) -> Iterator[tuple]:
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
            return _run(count_segment, segments(path, size), max_changes, workers, engine, scheduler, progress)
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

