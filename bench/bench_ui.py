"""Server-side time of a re-decision on the what-if page after one widget
change, measured inside the page (ui/app.py times its own script run, from the
first line to the last element, and the solve alone) and driven by
Streamlit's AppTest, which runs the script as the server would.

    python bench/bench_ui.py [--changes 200]
    python bench/bench_ui.py --browser [--changes 40]

--browser runs the page as it is served (`pa-solver ui` on a free port) and
clicks CD22 yes / no in Debian's chromium (Playwright).  It reports what a
reviewer waits for, click to visible: from the click (the `click` event in the
page) to the first DOM state in which the OHSU decision line shows the new
badge and is rendered (a MutationObserver; "+ next frame" adds the following
animation frame), and, as before, the page's own caption (server time).
BENCH_RAW=1 prints every figure in click order; --viewport WxH sets the window.
The browser shares the machine's cores with the server.
"""

from __future__ import annotations

import argparse
import os
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


def report(name: str, xs: list[float]) -> None:
    xs = sorted(xs)
    print(f"{name:<36} p50 {statistics.median(xs):6.1f} ms  p95 {xs[int(len(xs) * 0.95)]:6.1f} ms  "
          f"max {xs[-1]:6.1f} ms  over {len(xs)} one-widget changes")


# Installed in the page before each click: the time from the click (the
# `click` event, captured on the document) to the first DOM state in which the
# OHSU decision shows the expected badge text and is rendered (has a box), as
# seen by a MutationObserver; `paint` adds the next animation frame.
ARM = """(expected) => {
  const find = () => document.querySelector('.st-key-decision-ohsu')
      || [...document.querySelectorAll('h4')].find(h => h.textContent.includes('OHSU Health Services'));
  const shown = () => { const el = find();
      return !!el && el.textContent.includes(expected) && el.getClientRects().length > 0; };
  window.__clickToVisible = new Promise(resolve => {
    let t0 = null;
    const obs = new MutationObserver(() => {
      if (t0 === null || !shown()) return;
      const dom = performance.now() - t0;
      obs.disconnect();
      requestAnimationFrame(() => resolve({dom, paint: performance.now() - t0}));
    });
    document.addEventListener('click', () => {
      t0 = performance.now();
      obs.observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
    }, {capture: true, once: true});
  });
}"""


def browser(changes: int, width: int = 1600, height: int = 1400) -> int:
    import re
    import socket
    import subprocess
    import time
    import urllib.request

    from playwright.sync_api import expect, sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "solver.cli", "ui", "--server.headless", "true",
                             "--server.port", str(port), "--server.address", "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.3)
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"])
            page = b.new_page(viewport={"width": width, "height": height})
            page.goto(f"http://127.0.0.1:{port}")
            ohsu = page.locator(".st-key-decision-ohsu, h4:has-text('OHSU Health Services')").first
            expect(ohsu).to_contain_text("APPROVED", timeout=60000)
            page_ms, solve_ms, visible_ms, paint_ms = [], [], [], []
            for i in range(changes + 4):                  # the first 4 warm up
                value, decision = ("no", "DENIED") if i % 2 == 0 else ("yes", "APPROVED")
                page.evaluate(ARM, decision)
                page.locator(".st-key-fact-cd22_positive").get_by_text(value, exact=True).click()
                t = page.evaluate("window.__clickToVisible")
                expect(ohsu).to_contain_text(decision, timeout=30000)
                # The page's caption is written last: wait until the script run has finished.
                page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
                                       " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText"
                                       ".includes('Running')", timeout=30000)
                caption = " ".join(page.get_by_text(re.compile("Decided in")).first.inner_text().split())
                m = re.search(r"Decided in ([\d.]+) ms.*computed in ([\d.]+) ms", caption)
                if i >= 4:
                    visible_ms.append(t["dom"])
                    paint_ms.append(t["paint"])
                    if m:
                        solve_ms.append(float(m.group(1)))
                        page_ms.append(float(m.group(2)))
            b.close()
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"chromium {width}x{height}, CD22 no / yes clicked {changes} times")
    if os.environ.get("BENCH_RAW"):
        print("click to visible, in click order:", " ".join(f"{x:.0f}" for x in visible_ms))
        print("page script run, in click order: ", " ".join(f"{x:.0f}" for x in page_ms))
    report("click to visible (in chromium)", visible_ms)
    report("click to visible + next frame", paint_ms)
    if page_ms:
        report("page script run (streamlit run)", page_ms)
        report("solve (decide + missing + changes)", solve_ms)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--changes", type=int, default=None, help="one-widget changes (default 200; --browser 40)")
    ap.add_argument("--browser", action="store_true", help="time the served page in chromium, not under AppTest")
    ap.add_argument("--viewport", default="1600x1400", help="with --browser: the window, WIDTHxHEIGHT")
    args = ap.parse_args(argv)
    if args.browser:
        width, height = map(int, args.viewport.split("x"))
        return browser(args.changes or 40, width, height)
    args.changes = args.changes or 200
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
    report("page script run (AppTest)", page)
    report("solve (decide + missing + changes)", solve)
    return 0


if __name__ == "__main__":
    sys.exit(main())
