"""Where the rule base, the pages, the bundled examples and the policy
documents are.

In an installed wheel they sit inside the package (`solver/logic`,
`solver/ui`, `solver/examples`, `solver/policies`: pyproject.toml maps the
repository's top-level folders there); in a source checkout or an editable
install they are the repository's top-level `logic/`, `ui/`, `examples/` and
`policies/` (copies of ../shared/policies, the documents the plan files
encode: `pa-solver coverage` reads them).
`PA_SOLVER_LOGIC` names another rule-base folder.

`LOGIC`, `UI`, `EXAMPLES` and `POLICIES` are `pathlib.Path`s; `POLICIES_DIR`
is the documents' folder as a string; `logic_dir()` is the rule-base
folder as a string, for the decide path, which does not import pathlib (it
costs a one-shot command about 10 ms).
"""

from __future__ import annotations

import functools
import os

PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))     # solver/, this file is solver/base/paths.py


@functools.lru_cache(maxsize=None)
def data_dir(name: str) -> str:
    """solver/<name> when installed, else <repository>/<name> (looked up once: the layout of an
    installation does not change while it runs)."""
    for base in (PACKAGE, os.path.dirname(PACKAGE)):
        if os.path.isdir(os.path.join(base, name)):
            return os.path.join(base, name)
    return os.path.join(PACKAGE, name)


def logic_dir() -> str:
    return os.environ.get("PA_SOLVER_LOGIC") or data_dir("logic")


def in_use(folder=None) -> str:
    """`folder` as a string, or when None the rule-base folder in use now (`--rules DIR` sets
    PA_SOLVER_LOGIC for the whole command, its worker processes and pages included)."""
    return os.fspath(folder) if folder is not None else logic_dir()


POLICIES_DIR = data_dir("policies")


def find_document(name: str, folder=None) -> str:
    """Where a plan's document (policy_document/5's file) is for the rules in `folder`
    (shared/spec/RULES.md): DIR/policies/<file>, then DIR/<file>, then among the installed
    documents; the installed place when it is nowhere (opening it then says so)."""
    folder = in_use(folder)
    for place in (os.path.join(folder, "policies", name), os.path.join(folder, name),
                  os.path.join(POLICIES_DIR, name)):
        if os.path.isfile(place):
            return place
    return os.path.join(POLICIES_DIR, name)


def __getattr__(name: str):
    if name in ("LOGIC", "UI", "EXAMPLES", "POLICIES"):
        from pathlib import Path

        return Path(logic_dir() if name == "LOGIC" else data_dir(name.lower()))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
