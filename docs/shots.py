"""Retake the README's screenshot, docs/whatif.png: the What-if page on the
bundled adult relapsed case with CD22 set to negative (BCBS FEP, CVS
Caremark and OHSU deny; Blue Cross NC and MassHealth approve).

    python docs/shots.py            # writes docs/whatif.png
    python docs/shots.py OUT_DIR    # writes OUT_DIR/whatif.png

Serves the pages with `pa-solver ui` on a free local port (as
tests/test_browser.py does) and drives Debian's chromium (/usr/bin/chromium;
`apt-get install chromium`) with the playwright package (in the test extra).
It never downloads a browser: no `playwright install`. The other screenshots
in docs/ come from `PA_SCREENSHOTS=docs pytest tests/test_browser.py`.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
VIEWPORT = {"width": 1600, "height": 1400}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve() -> tuple[subprocess.Popen, str]:
    """`pa-solver ui` on a free port of 127.0.0.1; returns the process and its URL once it answers."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "solver.cli", "ui", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                return proc, url
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                stop(proc)
                out = proc.stdout.read().decode(errors="replace")
                sys.exit(f"shots.py: the pages did not start on {url}:\n{out[-2000:]}")
            time.sleep(0.3)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def whatif(browser, expect, url: str, out: Path) -> None:
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(url)
    decision = lambda plan: page.locator(f".st-key-decision-{plan}")          # noqa: E731
    expect(decision("ohsu")).to_contain_text("APPROVED", timeout=60000)      # the bundled example, decided
    page.locator(".st-key-fact-cd22_positive").get_by_text("no", exact=True).click()
    expect(decision("ohsu")).to_contain_text("DENIED", timeout=30000)
    expect(decision("bcbs_fep")).to_contain_text("DENIED")
    expect(decision("masshealth")).to_contain_text("APPROVED")
    expect(decision("cvs_caremark")).to_contain_text("DENIED")
    page.wait_for_timeout(500)                                              # let the last fragment settle
    page.screenshot(path=str(out), full_page=False)
    page.close()


def main(argv: list[str]) -> int:
    if not Path(CHROMIUM).exists():
        sys.exit(f"shots.py: {CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        sys.exit("shots.py: the playwright package is not installed (pip install -e '.[test]')")
    out_dir = Path(argv[0]) if argv else ROOT / "docs"
    out_dir.mkdir(parents=True, exist_ok=True)
    proc, url = serve()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            try:
                whatif(browser, expect, url, out_dir / "whatif.png")
            finally:
                browser.close()
    finally:
        stop(proc)
    print(out_dir / "whatif.png")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
