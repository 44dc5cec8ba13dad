"""pa-solver diff over every pair of plans: seconds per pair.

    python bench/bench_diff.py

All 10 plan pairs for both requests of Besponsa (20 diffs) on one solver;
prints each pair's time and number of differences, and the total (target:
all 20 in under 60 s on 2 cores).  Then each plan against an unchanged copy
of logic/ (diff --against: renaming, grounding both versions, the solve).
"""

from __future__ import annotations

import itertools
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from solver.rules.declared import of as _declared  # noqa: E402
from solver.analysis.diff import Against, diff, diff_base  # noqa: E402
from solver.engine.solver import Solver  # noqa: E402

PLANS = tuple(_declared().plans)


def main() -> None:
    solver = Solver()
    t = time.perf_counter()
    diff_base(solver)
    print(f"grounding the diff part: {time.perf_counter() - t:.2f} s")
    total = time.perf_counter()
    for request in ("initial", "continuation"):
        for a, b in itertools.combinations(PLANS, 2):
            t = time.perf_counter()
            got = diff(solver, a, b, request=request)
            print(f"{request:<12} {a:>12} vs {b:<12} {time.perf_counter() - t:7.3f} s  "
                  f"{len(got['differences']):5d} differences")
    print(f"all 20: {time.perf_counter() - total:.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "logic"
        shutil.copytree(Path(solver.logic_dir), copy)
        for plan in PLANS:
            t = time.perf_counter()
            got = Against(solver, plan, copy).diff(solver)
            print(f"--against {plan:<12} {time.perf_counter() - t:7.3f} s  {len(got['differences']):5d} differences")


if __name__ == "__main__":
    main()
