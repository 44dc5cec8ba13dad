"""pa-solver command line: decide one case, or a batch of cases.

The registry of commands (`COMMANDS`: each command's module adds its parser and runs it), and `main`:
--rules DIR chosen before anything reads the rule base, one line and an exit code for every failure
(2 bad input or rule base, 70 a bug, 130 Ctrl-C), never a traceback."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional

from solver.rules.loading import RuleBaseError
from solver.text.words import OUT_ERRORS
from solver.commands.io import OutputError, error
from solver.commands.options import check_rules, rules_in


# Each command: the module (solver/commands/<module>.py) whose add(sub) adds its parser, in the order
# --help lists them.  A one-shot command imports and builds only its own.
COMMANDS = {"decide": "decide", "explain": "explain", "batch": "batch", "report": "report", "diff": "diff",
            "questionnaire": "questionnaire", "coverage": "coverage", "ui": "ui", "why": "why", "plan": "plan",
            "serve": "serve", "audit": "audit"}
OWN_RULES = ("serve", "audit", "plan")      # serve, plan's commands have their own --rules; audit reads a record
NO_RULE_BASE = ("ui", "audit")              # the commands that load no rule base here


def build_parser(command: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser; with `command`, only that command's (argparse takes milliseconds per parser)."""
    import importlib

    from solver.commands.options import Parser, rules_option

    p = Parser(prog="pa-solver", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name, module in COMMANDS.items():
        if command in (None, name):
            importlib.import_module(f"solver.commands.{module}").add(sub)
    for name, sp in sub.choices.items():
        if name not in OWN_RULES:
            rules_option(sp)
    from solver.rules.loading import HELP

    p.epilog = HELP
    for name, command_parser in sub.choices.items():
        if name not in NO_RULE_BASE:
            command_parser.epilog = HELP
    return p


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    rules = rules_in(argv)
    if rules is None:
        return run(argv)
    # the rule base in use, for this command, its worker processes and its pages; as it was after
    # (a caller of main() in its own process keeps its own)
    before = os.environ.get("PA_SOLVER_LOGIC")
    os.environ["PA_SOLVER_LOGIC"] = os.path.abspath(rules)
    try:
        return run(argv, rules)
    finally:
        if before is None:
            os.environ.pop("PA_SOLVER_LOGIC", None)
        else:
            os.environ["PA_SOLVER_LOGIC"] = before


def run(argv: list[str], rules: Optional[str] = None) -> int:
    exit_on_term()
    if rules is not None:
        # --rules DIR is checked before the parser reads its choices (plan ids, drugs) from it
        if not guard_loads() or not check_rules(argparse.Namespace(rules=rules)):
            return 2
    try:
        args, extra = build_parser(argv[0] if argv and argv[0] in COMMANDS else None).parse_known_args(argv)
    except KeyboardInterrupt:                   # Ctrl-C while the options are read: no traceback
        return 130
    except RuleBaseError as err:               # the rule base in use, read for a choice (a plan id, a drug)
        error(str(err))
        return 2
    if args.command == "ui":
        args.streamlit_args = extra
    elif extra:
        build_parser(args.command).error(f"unrecognized arguments: {' '.join(extra)}")
    for stream in (sys.stdout, sys.stderr):     # any print: a lone surrogate as its escape, never a traceback
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors=OUT_ERRORS)
    if not guard_loads():
        return 2
    try:
        return args.func(args)
    except RuleBaseError as err:                # a rule base refused: its own line names the file and the problem
        error(str(err))
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        silence_stdout()
        return 0
    except OutputError as err:
        error(f"cannot write the output: {err}")
        silence_stdout()
        return 2
    except Exception as err:                    # a bug: one line saying so, not a traceback
        if os.environ.get("PA_SOLVER_DEBUG"):
            raise
        error(f"internal error, a bug in pa-solver (please report it; PA_SOLVER_DEBUG=1 shows where): "
               f"{type(err).__name__}: {err}")
        return 70


def guard_loads() -> bool:
    """Every load of a rule base in this process under the limits the environment sets
    (solver/rules/loading.py: past one, a line and exit 2; SIGTERM or Ctrl-C during one, a clean end).
    False after saying which setting is wrong."""
    from solver.rules import loading

    try:
        limits = loading.Limits.from_env()
    except ValueError as err:
        error(str(err))
        return False
    loading.guard(limits, error)
    return True


def exit_on_term() -> None:
    """SIGTERM ends the work as Ctrl-C does: the pool is shut down and the
    workers (who die with their parent in any case) are not left behind."""
    import signal

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    try:
        signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):          # not the main thread
        pass


def silence_stdout() -> None:
    """After a failed write, send what is still buffered to /dev/null, so the
    interpreter's last flush does not fail again with a traceback."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
