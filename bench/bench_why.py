"""Benchmark of `rests_on` (issue 18): what each decision rests on.

    python bench/bench_why.py                    # default sizes
    python bench/bench_why.py --cases 2000 --batch 5000

Measures, warm, on the seeded case mix of bench/bench.py:
  - rests_on for all five plans of a case (the two solves and the checks), p50 / p90 / p99;
  - decide with and without --why (the whole result), p50;
  - how often the exact check had to free a fact the bounds kept (check rounds per case);
  - batch --why and batch --lean --why throughput over every core (stream_encoded, as the CLI).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import cases  # noqa: E402

from solver.analysis.batch import stream_encoded  # noqa: E402
from solver.engine.rests_on import Bounded
from solver.engine.solver import Solver
from solver.engine.result import derive_diagnosis  # noqa: E402
from solver.case.models import parse_case  # noqa: E402


def pct(ts: list[float], q: float) -> float:
    ts = sorted(ts)
    return ts[min(len(ts) - 1, int(len(ts) * q))] * 1e3


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=2000, help="cases for the latency figures")
    ap.add_argument("--batch", type=int, default=5000, help="cases for the throughput figures")
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args(argv)

    parsed = [parse_case(c) for c in cases(args.cases)]
    solver = Solver()
    rounds = [0]
    needed = solver.needed

    def counting(*a, **k):
        rounds[0] += 1
        return needed(*a, **k)

    solver.needed = counting
    prepared = []
    for c in parsed:
        derived = {}
        dx = derive_diagnosis(c, solver.rules.icd10)
        if dx is not None:
            derived["diagnosis"] = dx
        prepared.append((c, derived, sorted(c.plans or solver.rules.plans)))
    for c, d, pls in prepared[:100]:                      # warm up
        solver.rests_on(c, d, pls)
    for cached in (False, True):
        size = 20000 if cached else 0
        solver.rests_cache, solver.needed_cache = Bounded(size), Bounded(size)
        rounds[0] = 0
        ts, sizes = [], []
        for c, d, pls in prepared:
            t = time.perf_counter()
            out = solver.rests_on(c, d, pls)
            ts.append(time.perf_counter() - t)
            sizes.extend(len(v) for v in out.values())
        kept = len(solver.rests_cache.data)
        print(f"rests_on, all five plans, {len(ts)} cases, {'answers kept' if cached else 'nothing kept'}: "
              f"p50 {pct(ts, .5):.2f} ms  p90 {pct(ts, .9):.2f} ms  p99 {pct(ts, .99):.2f} ms  "
              f"(exact checks per case {rounds[0] / len(ts):.2f}, mean set {sum(sizes) / len(sizes):.1f} facts"
              + (f", {kept} distinct keys)" if cached else ")"))

    solver.rests_cache, solver.needed_cache = Bounded(0), Bounded(0)     # decide --why with nothing kept
    for why in (False, True):
        ts = []
        for c in parsed[:1000]:
            t = time.perf_counter()
            solver.decide_json(c) if not why else json.dumps(solver.solve(c, why=True))
            ts.append(time.perf_counter() - t)
        print(f"decide{' --why (nothing kept)' if why else ''}: p50 {pct(ts, .5):.2f} ms  "
              f"p99 {pct(ts, .99):.2f} ms")

    t = time.perf_counter()
    for c in parsed[:1000]:
        json.dumps(solver.why(c))
    dt = time.perf_counter() - t
    print(f"why lines, one process, nothing kept: {1000 / dt:.0f} cases/s")
    lines = [json.dumps(c) for c in cases(args.batch, seed=args.batch)]
    for why in (False, True):
        t = time.perf_counter()
        count = sum(1 for _ in stream_encoded(iter(lines), workers=args.workers, why=why))
        dt = time.perf_counter() - t
        print(f"batch{' --why' if why else ''}, {count} cases: {count / dt:.0f} cases/s ({dt:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
