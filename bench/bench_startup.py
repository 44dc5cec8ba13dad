"""One-shot wall time: `pa-solver decide CASE --json` as a new process, the
way a script or another program calls it once per case.

    python bench/bench_startup.py [--runs 21] [CASE.json]

Prints the median and the 10th/90th percentile of the whole command's wall
time, and the same for the parts it is made of, each in a new interpreter
(python alone, + clingo, + msgspec and the engine, + the grounded rule base;
and, for comparison, what importing pydantic's case models would add), so the
figure can be traced to where it goes.  Run it on a quiet machine: a loaded
one moves every figure by tens of milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

STEPS = [
    ("python -c pass", [PY, "-c", "pass"]),
    ("+ import clingo", [PY, "-c", "import clingo"]),
    ("+ msgspec, the engine, the fast case reader", [PY, "-c", "import clingo, solver.engine.solver, solver.case.fastcase"]),
    ("+ Solver() (load, ground, static data)", [PY, "-c", "import solver.case.fastcase, solver.engine.solver as e; e.Solver()"]),
    ("(for comparison: clingo + pydantic's models)", [PY, "-c", "import clingo, solver.case.models"]),
]


def wall(cmd: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, check=True)
        out.append(time.perf_counter() - t)
    return out


def show(name: str, times: list[float]) -> None:
    q = statistics.quantiles(times, n=10)
    print(f"{name:<44} median {1e3 * statistics.median(times):6.1f} ms   p10 {1e3 * q[0]:6.1f}   p90 {1e3 * q[-1]:6.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", nargs="?", default=str(ROOT / "examples" / "ohsu_adult_rr.json"))
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--exe", action="append", default=[], metavar="PA_SOLVER",
                    help="also time this installed pa-solver (e.g. a wheel or pipx install); repeatable")
    args = ap.parse_args()
    wall([PY, "-m", "solver.cli", "decide", args.case, "--json"], 3)          # warm the file cache
    for name, cmd in STEPS:
        show(name, wall(cmd, args.runs))
    show("pa-solver decide CASE --json (python -m)", wall([PY, "-m", "solver.cli", "decide", args.case, "--json"],
                                                          args.runs))
    exe = Path(PY).parent / "pa-solver"
    if exe.exists():
        show("pa-solver decide CASE --json (the command)", wall([str(exe), "decide", args.case, "--json"], args.runs))
    for other in args.exe:
        show(f"{other} decide CASE --json"[-44:], wall([other, "decide", args.case, "--json"], args.runs))


if __name__ == "__main__":
    main()
