"""Benchmark of `explain` (decide + the changes that would change each plan's
decision) on the real rule base: warm latency in one process, then streamed
throughput over every core and peak memory.

    python bench/bench_explain.py                         # 10,000 cases, N = 2
    python bench/bench_explain.py --sizes 1000 10000 --max-changes 1

Cases are bench.py's seeded realistic mix (every plan's pathways, facts dropped
and changed).  Peak RSS is the parent's and the largest worker's
(getrusage; workers of a pool run are the process's children).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import cases, peak_rss_mb, percentiles  # noqa: E402

from solver.analysis.batch import stream_encoded  # noqa: E402
from solver.engine.solver import Solver  # noqa: E402
from solver.case.models import parse_case  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="*", default=[10000])
    ap.add_argument("--latency-cases", type=int, default=2000)
    ap.add_argument("--max-changes", type=int, default=2)
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args(argv)

    parsed = [parse_case(c) for c in cases(args.latency_cases)]
    solver = Solver()
    for c in parsed[:200]:                       # warm up both groundings
        solver.decide_json(c, args.max_changes)
    for n_changes in sorted({0, 1, args.max_changes}):
        ts, sizes = [], Counter()
        for c in parsed:
            t = time.perf_counter()
            out = solver.decide_json(c, n_changes)
            ts.append(time.perf_counter() - t)
            if n_changes:
                for r in json.loads(out)["results"]:
                    sizes.update(len(e["facts"]) for e in r["changes"])
        p50, p99 = percentiles(ts)
        what = "decide only" if not n_changes else f"explain, at most {n_changes} changes"
        extra = f"  change entries by size {dict(sorted(sizes.items()))}" if n_changes else ""
        print(f"{what:<28} one process: p50 {p50:.2f} ms  p99 {p99:.2f} ms  mean {sum(ts) / len(ts) * 1e3:.2f} ms "
              f"({len(ts) / sum(ts):.0f} cases/s){extra}")

    for n in args.sizes:
        lines = (json.dumps(c) for c in cases(n, seed=n))
        t = time.perf_counter()
        count = sum(1 for _ in stream_encoded(lines, workers=args.workers, max_changes=args.max_changes))
        dt = time.perf_counter() - t
        me, kids = peak_rss_mb()
        print(f"explain {n:>7} cases, every core: {count / dt:7.0f} cases/s  ({dt:.1f} s)  "
              f"peak RSS parent {me:.0f} MB, largest worker {kids:.0f} MB")


if __name__ == "__main__":
    sys.exit(main())
