"""Every option and argument of every command says what it is in `--help` (issue 26): an option
listed bare (`--kind {submit,crd}` and nothing) leaves the reader to guess."""

from __future__ import annotations

import argparse

from solver.commands.main import build_parser


def unexplained(parser: argparse.ArgumentParser, path: tuple = ()) -> list[str]:
    """`command option` for each argument of `parser` and its subcommands without help (-h aside)."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helped = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                if not (helped.get(name) or "").strip():
                    out.append(" ".join(path + (name,)) + " (the command)")
                out += unexplained(sub, path + (name,))
        elif not isinstance(action, argparse._HelpAction) and not (action.help or "").strip():
            out.append(" ".join(path + ("/".join(action.option_strings) or action.dest,)))
    return out


def test_every_option_of_every_command_has_help():
    parser = build_parser()
    commands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)][0].choices
    assert {"decide", "explain", "batch", "report", "diff", "questionnaire", "coverage", "ui", "why", "serve",
            "audit"} <= set(commands)                                      # the whole parser was walked
    assert unexplained(parser) == []


def test_audit_store_says_what_it_reads():
    (audit,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    store = [a for a in audit.choices["audit"]._actions if "--store" in a.option_strings][0]
    assert "serve --store" in store.help and "SQLite" in store.help
