"""Two checkouts side by side: one-shot and warm decide, in alternating runs.

    python bench/bench_ab.py OLD_CHECKOUT NEW_CHECKOUT [--rounds 5] [--runs 7] [--warm 500]

Each round runs, for OLD then NEW (then NEW then OLD, and so on), the one-shot
command `python -m solver.cli decide examples/ohsu_adult_rr.json --json` in a new
process `--runs` times (its best), and in one new process per checkout the warm
decide of the same case `--warm` times through the public path a server takes
(`case_from` then `Solver.solve`), its median.  Alternating keeps a machine's
drift out of the comparison; the figures still move with the machine's load,
which is printed.  The same interpreter runs both (this one): each checkout's
`solver` is imported from its own folder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

WARM = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
try:                                            # the layout by concern
    from solver.engine.solver import Solver
    from solver.fhir.inputs import case_from
except ImportError:                             # a checkout from before it
    from solver.engine import Solver
    from solver.inputs import case_from
case = json.load(open(sys.argv[1] + "/examples/ohsu_adult_rr.json"))
s = Solver()
times = []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    c, _ = case_from(case)
    s.solve(c)
    times.append(time.perf_counter() - t)
times.sort()
print(json.dumps({"p50": times[len(times) // 2], "p95": times[int(len(times) * 0.95)]}))
"""


def one_shot(tree: str, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "solver.cli", "decide", "examples/ohsu_adult_rr.json", "--json"],
                       cwd=tree, capture_output=True, check=True, env={**os.environ, "PA_SOLVER_LOGIC": ""})
        best = min(best, time.perf_counter() - t)
    return best


def warm(tree: str, n: int) -> dict:
    out = subprocess.run([sys.executable, "-c", WARM, tree, str(n)], cwd=tree, capture_output=True, check=True,
                         text=True, env={**os.environ, "PA_SOLVER_LOGIC": ""})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--warm", type=int, default=500)
    args = ap.parse_args()
    trees = {"old": os.path.abspath(args.old), "new": os.path.abspath(args.new)}
    got: dict = {k: {"one_shot": [], "warm_p50": []} for k in trees}
    for r in range(args.rounds):
        order = ("old", "new") if r % 2 == 0 else ("new", "old")
        for k in order:
            got[k]["one_shot"].append(one_shot(trees[k], args.runs))
            got[k]["warm_p50"].append(warm(trees[k], args.warm)["p50"])
    print(f"load average {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} cores; {args.rounds} rounds")
    for k in trees:
        o, w = got[k]["one_shot"], got[k]["warm_p50"]
        print(f"{k}: one-shot best-of-{args.runs} median {statistics.median(o) * 1000:.0f} ms "
              f"(rounds {', '.join(f'{x * 1000:.0f}' for x in o)}); warm decide p50 median "
              f"{statistics.median(w) * 1000:.2f} ms (rounds {', '.join(f'{x * 1000:.2f}' for x in w)})")


if __name__ == "__main__":
    main()
