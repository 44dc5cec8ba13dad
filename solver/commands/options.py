"""The options commands share and the checks run before any work: the parser (a bad option is one line
and exit 2), the case, --json, --format, FHIR's --as-of and --drug, --rules, --workers, --engine,
--max-changes; the plan, drug and request choices are read from the rule base in use."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional

from solver.rules.declared import Choices
from solver.rules.loading import RuleBaseError
from solver.commands.io import error, stderr


class Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line on stderr and exit 2."""

    def error(self, message: str):
        error(f"{self.prog}: {message} (see {self.prog} --help)")
        raise SystemExit(2)

    def _get_formatter(self):
        # The width given, so that argparse does not import shutil (and with it
        # bz2 and lzma: 2 ms of a one-shot command) only to ask the terminal.
        try:
            width = os.get_terminal_size(sys.stderr.fileno()).columns - 2
        except (OSError, ValueError, AttributeError):
            columns = os.environ.get("COLUMNS", "")
            width = int(columns) - 2 if columns.isdigit() else 78
        return self.formatter_class(prog=self.prog, width=max(40, width))


# Read from the rule base in use only when a value is checked or --help is shown: every option that
# takes them has a metavar, since argparse would otherwise list the choices as it builds the parser.
PLAN_CHOICES, DRUG_CHOICES, REQUEST_CHOICES = Choices("plans"), Choices("drugs"), Choices("requests")


def date(text: str):
    import datetime as dt

    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, not {text!r}") from None


def positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n


def answer_options(parser, json_help: str, case_help: str = "a case or FHIR bundle (JSON file, or - for stdin)") -> None:
    """What decide and explain share: the case, --json, --verbose, --format, FHIR's options."""
    parser.add_argument("case", help=case_help)
    parser.add_argument("--json", action="store_true", help=json_help)
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="the table shows every pathway and criterion with its citation and policy sentence")
    parser.add_argument("--why", action="store_true",
                        help="per plan, rests_on: the smallest set of the case's facts (subset-minimal) that fixes "
                             "its decision whatever the other facts are")
    fhir_options(parser)
    format_option(parser)


def format_option(parser) -> None:
    parser.add_argument("--format", choices=("table", "json", "pas"), default=None,
                        help="table (default), json (as --json), or pas: a Da Vinci PAS response bundle, one "
                             "ClaimResponse per plan (a plain case needs --as-of for its date)")


def fhir_options(parser) -> None:
    parser.add_argument("--as-of", type=date, default=None, metavar="YYYY-MM-DD",
                        help="FHIR input: the request date (default: Claim.created, else the latest "
                             "QuestionnaireResponse.authored, else Bundle.timestamp; never the clock)")
    parser.add_argument("--drug", choices=DRUG_CHOICES, default=None, metavar="DRUG",
                        help="FHIR input: the drug, where a bundle requests several (%(choices)s)")


def rules_option(parser) -> None:
    parser.add_argument("--rules", default=None, metavar="DIR",
                        help="use the rule base in DIR (a copy of logic/ with other plans, an older checkout's "
                             "logic/) instead of the installed one; its plans' documents are found in "
                             "DIR/policies/, DIR/, then among the installed ones")


def rules_in(argv: list[str]) -> Optional[str]:
    """The value of `--rules DIR` (or `--rules=DIR`) in a command line, before it is parsed: the rule
    base is chosen before anything reads it (the parser's own choices included)."""
    for i, a in enumerate(argv):
        if a == "--":
            break
        if a == "--rules" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--rules="):
            return a.split("=", 1)[1]
    return None


def format_ok(args) -> bool:
    """--json and --format agree (--format pas's request date is checked once
    the input is read: a bundle has one, a plain case needs --as-of)."""
    if args.json and args.format not in (None, "json"):
        error(f"--json and --format {args.format}: choose one")
        return False
    return True


def bad_max_changes(n: int, low: int) -> bool:
    """Say so (and return True) when --max-changes is outside low..MAX_CHANGES."""
    from solver.engine.rulebase import MAX_CHANGES

    if low <= n <= MAX_CHANGES:
        return False
    error(f"--max-changes must be between {low} and {MAX_CHANGES}, not {n}")
    return True


def workers(text: str) -> int:
    """--workers: a whole number from 1 to MAX_WORKERS (more is refused, not lowered: a
    number that large is a mistake, not a wish)."""
    from solver.analysis.workers import MAX_WORKERS

    n = positive(text)
    if n > MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_WORKERS}, not {n} (a number below that is "
                                         f"lowered to what this machine runs at once)")
    return n


def planned_workers(workers: Optional[int], engine: str) -> int:
    """The worker processes to start on this machine for --workers (solver/analysis/workers.py's
    worker_plan); a number asked for and lowered is said in one line on stderr."""
    from solver.analysis.workers import worker_plan

    n, note = worker_plan(workers, engine)
    if note is not None:
        stderr("note", note)
    return n


def check_engine(args) -> bool:
    """Options of the engine checked before any work; False after saying why."""
    from solver.analysis.cluster import check_scheduler
    from solver.analysis.workers import EngineError

    if args.scheduler is not None and args.engine != "dask":
        error("--scheduler needs --engine dask")
        return False
    if args.engine == "dask" and args.scheduler is not None:
        try:
            check_scheduler(args.scheduler)
        except EngineError as err:
            error(str(err))
            return False
    else:                           # processes on this machine: as many as it runs at once
        args.workers = planned_workers(args.workers, args.engine)
    return True


def engine_options(parser) -> None:
    parser.add_argument("--workers", type=workers, default=None, metavar="N",
                        help="worker processes, 1-256 (default: every usable core).  Never more than this machine "
                             "runs at once -- one per usable core, and as many as 3/4 of the available memory "
                             "holds at about 64 MiB each (128 MiB with --engine dask), a lower number said on "
                             "stderr -- nor than there is work for; with --scheduler the cluster's own workers "
                             "do the work")
    parser.add_argument("--engine", choices=("local", "dask"), default="local",
                        help="local: a process pool on this machine (default); dask: a Dask cluster")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="with --engine dask: the scheduler of an existing cluster (default: a local cluster)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def check_rules(args) -> bool:
    """--rules DIR: a folder whose rule base loads within the limits and passes its own checks,
    checked before any work (its declarations are read once and kept for the command)."""
    rules = getattr(args, "rules", None)
    if rules is None:
        return True
    from solver.rules import declared

    if not os.path.isdir(rules):
        error(f"--rules {rules}: not a folder")
        return False
    try:
        declared.of(rules)
    except (RuleBaseError, RuntimeError, KeyError, ValueError) as err:
        error(f"--rules {rules}: {err}")
        return False
    args.rules = os.path.abspath(rules)
    return True


def check_work_rules(args) -> bool:
    """The rule base a batch will use (--rules DIR, else PA_SOLVER_LOGIC or logic/) loads within
    the limits and passes its own checks, checked here before any work: the worker processes
    load it again, with no watch on their time (solver/rules/loading.py).  The groundings the work
    needs are built: the changes' (--max-changes), the why lines' (--why)."""
    from solver.engine.solver import Solver

    rules = getattr(args, "rules", None)
    if rules is not None and not check_rules(args):
        return False
    try:
        solver = Solver(args.rules)
        if getattr(args, "max_changes", 0):
            solver.explainer
        if getattr(args, "why", False):
            solver.rester, solver.rests_checker
    except (RuleBaseError, RuntimeError, KeyError, ValueError) as err:
        error(f"--rules {rules}: {err}" if rules is not None else str(err))
        return False
    return True
