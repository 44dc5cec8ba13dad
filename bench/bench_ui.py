"""Server-side time of a re-decision on the what-if page after one widget
change, measured inside the page (ui/app.py times its own script run, from the
first line to the last element, and the solve alone) and driven by
Streamlit's AppTest, which runs the script as the server would.

    python bench/bench_ui.py [--changes 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "ui" / "app.py")

# One widget change per run, cycling through facts of each kind.
STEPS = [("radio", "fact:cd22_positive", "no"), ("radio", "fact:cd22_positive", "yes"),
         ("number_input", "fact:age_years", 70.0), ("number_input", "fact:age_years", 52.0),
         ("selectbox", "fact:ph_status", "positive"), ("selectbox", "fact:ph_status", "negative"),
         ("radio", "fact:with_rituximab", "yes"), ("radio", "fact:with_rituximab", "unknown"),
         ("number_input", "fact:planned_cycles", 8), ("number_input", "fact:planned_cycles", 4)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--changes", type=int, default=200)
    args = ap.parse_args(argv)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    for _ in range(10):                                  # warm: both groundings built, caches filled
        at.radio(key="fact:cd22_positive").set_value("no").run()
        at.radio(key="fact:cd22_positive").set_value("yes").run()
    page, solve = [], []
    for i in range(args.changes):
        kind, key, value = STEPS[i % len(STEPS)]
        getattr(at, kind)(key=key).set_value(value).run()
        assert not at.exception, at.exception
        t = at.session_state["last_timing"]
        page.append(t["page_ms"])
        solve.append(t["decide_ms"])
    for name, xs in (("page script run", page), ("solve (decide + missing + changes)", solve)):
        xs = sorted(xs)
        print(f"{name:<36} p50 {statistics.median(xs):6.1f} ms  p95 {xs[int(len(xs) * 0.95)]:6.1f} ms  "
              f"max {xs[-1]:6.1f} ms  over {len(xs)} one-widget changes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
