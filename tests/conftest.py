"""What the test files share: where the repository is, and pa-solver run as a user runs it.

tests/ mirrors the rooms of solver/ (docs/architecture.md): tests/engine/, tests/fhir/, tests/service/,
... hold the tests of that room, tests/ui/ the pages'.  Beside this file: strategies.py (hypothesis
strategies built from the rule base's declarations), fhir_build.py (FHIR resources for tests),
served.py (a served app: `pa-solver serve` on a free port); the data the tests read sits in folders
of its own (plan_cases/, rules_acme/, rules_cascade/, rules_v1/, crd/, fhir/examples/).

The folders the tests import from (tests/ for strategies.py and fhir_build.py, ui/ for the pages'
modules, bench/ for its case generator) are on the path by pytest's `pythonpath` option in
pyproject.toml, so no test file edits sys.path. A test file takes these with
`from conftest import ROOT, run_cli`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

# The plans CASE.md describes. A test about their decisions (the bundled examples, whose facts are
# theirs) names them; a plan added as a file is decided beside them and changes none of these tests.
CASE_MD_PLANS = ("bcbs_fep", "bcbsnc", "cvs_caremark", "masshealth", "ohsu")


def run_cli(*args: str, stdin: str | bytes | None = None, env: dict | None = None, cwd: Path | str = ROOT,
            timeout: float = 300, text: bool = True, **kw) -> subprocess.CompletedProcess:
    """`pa-solver *args` in a fresh interpreter (`python -m solver.cli`), output captured.

    `text`: str in and out (the default) or bytes (for tests of the exact bytes written); `env`: the
    whole environment, as subprocess takes it (None: this one's); `timeout` is generous, a deadline
    for a hung run, not a measure of speed. Other keywords (check=..., input= as stdin) go to subprocess.run."""
    kw.setdefault("input", stdin)
    return subprocess.run([sys.executable, "-m", "solver.cli", *args], capture_output=True, text=text, cwd=cwd,
                          env=env, timeout=timeout, **kw)
