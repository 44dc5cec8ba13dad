"""`pa-solver` and `python -m solver.cli`: the command line (solver/commands/, one module per
command; solver/commands/main.py holds the registry)."""

import sys

from solver.commands.main import main

if __name__ == "__main__":
    sys.exit(main())
