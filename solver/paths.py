"""Where the rule base, the pages and the bundled examples are.

In an installed wheel they sit inside the package (`solver/logic`,
`solver/ui`, `solver/examples`: pyproject.toml maps the repository's
top-level folders there); in a source checkout or an editable install they
are the repository's top-level `logic/`, `ui/` and `examples/`.
`PA_SOLVER_LOGIC` names another rule-base folder.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """solver/<name> when installed, else <repository>/<name>."""
    for base in (PACKAGE, PACKAGE.parent):
        if (base / name).is_dir():
            return base / name
    return PACKAGE / name


LOGIC = Path(os.environ["PA_SOLVER_LOGIC"]) if os.environ.get("PA_SOLVER_LOGIC") else data_dir("logic")
UI = data_dir("ui")
EXAMPLES = data_dir("examples")
