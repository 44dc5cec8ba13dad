"""The README is a front door that works: it opens with the two commands, it
stays short, every line of its cheat-sheet runs as written from the
repository's root (with this interpreter's bin folder first on PATH, as an
activated environment has it), every relative link in it and in docs/ leads
to a file, and no page speaks of the project's history ("this stop")."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
TEXT = README.read_text(encoding="utf-8")
DOCS = sorted((ROOT / "docs").glob("*.md"))

TWO_COMMANDS = [
    "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/pa-solver decide examples/ohsu_adult_rr.json",
    ".venv/bin/python -m pytest",
]
MAX_LINES = 220


def cheat_sheet() -> list[str]:
    """The lines of the ```bash block right after `<!-- cheat-sheet -->`, comments and blanks left out."""
    m = re.search(r"<!-- cheat-sheet -->\s*\n```bash\n(.*?)\n```", TEXT, re.S)
    assert m, "README.md has no ```bash block right after <!-- cheat-sheet -->"
    lines = []
    for line in m.group(1).splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            lines.append(line)
    return lines


def test_it_opens_with_the_two_commands():
    body = TEXT.split("\n", 1)[1].lstrip("\n")          # after the title
    m = re.match(r"```bash\n(.*?)\n```", body, re.S)
    assert m, "the first thing after the title is a ```bash block"
    assert m.group(1).splitlines() == TWO_COMMANDS


def test_it_is_short():
    n = len(TEXT.splitlines())
    assert n <= MAX_LINES, f"README.md has {n} lines; the rest belongs in docs/"


def test_the_cheat_sheet_runs_as_written(tmp_path):
    lines = cheat_sheet()
    assert len(lines) >= 10
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.pop("PA_SOLVER_LOGIC", None)                    # the repository's own rule base, as a fresh clone has it
    env.pop("NO_COLOR", None)
    for line in lines:
        p = subprocess.run(["bash", "-c", line], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=120, stdin=subprocess.DEVNULL)
        assert "Traceback" not in p.stderr, f"{line}\n{p.stderr[-2000:]}"
        assert p.returncode == 0, f"{line}\nexit {p.returncode}\n{p.stderr[-2000:]}"


def test_the_cheat_sheet_writes_nothing_into_the_repository():
    for line in cheat_sheet():
        for target in re.findall(r"(?:^|\s)(?:>|-o|--output)\s+(\S+)", line.split(" #", 1)[0]):
            assert target.startswith("/tmp/"), f"{line}: writes {target} (outputs go under /tmp)"


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def relative_links(path: Path):
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # links are in prose, not in code blocks
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue                                    # https:, mailto:, a heading on the same page
        yield target.split("#", 1)[0]


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file(page):
    missing = []
    for target in relative_links(page):
        resolved = (page.parent / target).resolve()
        if not resolved.exists():
            missing.append(target)
    assert not missing, f"{page.relative_to(ROOT)} links to files that do not exist: {missing}"


def test_the_readme_links_every_docs_page():
    linked = {(ROOT / t).resolve() for t in relative_links(README)}
    for page in DOCS:
        assert page.resolve() in linked, f"README.md does not link {page.relative_to(ROOT)}"


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_no_history_words(page):
    text = page.read_text(encoding="utf-8").lower()
    for words in ("this stop", "last stop", "stops ago", "previous stop", "latest stop"):
        assert words not in text, f"{page.relative_to(ROOT)} says {words!r}: say what the software does, dated"


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_source_file_named_exists(page):
    """A path like `solver/engine/solver.py` or `ui/whatif.py` in the text names a file that is there."""
    named = set(re.findall(r"\b((?:solver|ui|tests|bench)/[\w/]+\.py)\b", page.read_text()))
    assert sorted(p for p in named if not (ROOT / p).exists()) == []
