"""Benchmark of `pa-solver report` on decided cases: cases/s and peak memory.

    python bench/bench_report.py                      # 100,000 results, lean and full lines
    python bench/bench_report.py --cases 100000 --distinct 2000 --max-changes 1 --formats lean

bench.py's seeded case mix is explained once (`--distinct` cases, with the
single-fact changes, as `pa-solver batch --max-changes 1 [--lean]` writes
them: `full` lines carry every citation and policy sentence, `lean` lines
criteria ids by status), and
those result lines are written round-robin until the file holds `--cases`
lines; then the report is timed end to end on that file, as the command line
runs it (every core, byte ranges, counters added up).  Peak RSS is the
parent's and the largest worker's (getrusage).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import cases  # noqa: E402

from solver.analysis import report  # noqa: E402
from solver.analysis.batch import stream_encoded  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--distinct", type=int, default=2000)
    ap.add_argument("--max-changes", type=int, default=1)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--formats", nargs="+", choices=("lean", "full"), default=["lean", "full"])
    ap.add_argument("--keep", default=None, help="write the results file here and keep it")
    args = ap.parse_args(argv)
    for fmt in args.formats:
        run(args, fmt)
    return 0


def run(args, fmt: str) -> None:

    lines = [item[1] for item in stream_encoded((json.dumps(c) for c in cases(args.distinct, seed=11)),
                                                 max_changes=args.max_changes, lean=fmt == "lean")
             if item[0] == "ok"]
    path = Path(args.keep) if args.keep else Path(tempfile.mkdtemp()) / "results.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(args.cases):
            fh.write(lines[i % len(lines)])
            fh.write("\n")
    size = path.stat().st_size
    print(f"{fmt}: {args.cases} result lines ({len(lines)} distinct, changes of at most {args.max_changes} fact), "
          f"{size / 2**20:.0f} MiB")

    t = time.perf_counter()
    tally = report.tally(str(path), workers=args.workers)
    dt = time.perf_counter() - t
    assert tally.cases == args.cases, tally.cases
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"{fmt}: report at {args.cases / dt:,.0f} cases/s ({dt:.2f} s, {size / 2**20 / dt:.0f} MiB/s) on "
          f"{args.workers or os.cpu_count()} workers; peak RSS parent {me:.0f} MB, largest worker {kids:.0f} MB")
    if not args.keep:
        path.unlink()


if __name__ == "__main__":
    sys.exit(main())
