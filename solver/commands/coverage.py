"""`pa-solver coverage`: every sentence of a plan's document, encoded or set aside."""

from __future__ import annotations


from solver.text.words import safe_block
from solver.commands.io import Out, color, error


def cmd_coverage(args) -> int:
    """Every sentence of the plans' documents accounted for (solver/analysis/coverage.py).
    Exit 0 when every unit is encoded or set aside, 1 when some are not, 2 for
    an unknown plan or a document that cannot be read."""
    from solver.analysis.coverage import UnknownPlan, coverage, render
    from solver.text.jsontext import dump_text

    try:
        got = coverage(None if args.plan is None else [args.plan])
    except UnknownPlan as err:
        error(str(err))
        return 2
    except OSError as err:
        error(f"cannot read a policy document: {err.strerror or err} ({getattr(err, 'filename', '')})")
        return 2
    out = Out()
    out.line(dump_text(got) if args.json else safe_block(render(got, color=color())))
    out.flush()
    return 1 if any(p["counts"]["unaccounted"] for p in got["plans"]) else 0


def add(sub) -> None:
    c = sub.add_parser("coverage", help="every sentence of a plan's document with the criteria that encode it "
                                        "or the reason it is set aside (exit 1 if any is unaccounted)")
    c.add_argument("plan", nargs="?", default=None, help="one plan id (default: every plan)")
    c.add_argument("--json", action="store_true",
                   help='{"plans": [{"plan", "document", "title", "counts", "sentences": [{"text", "kind", '
                        '"criteria", "set_aside"}]}]}')
    c.set_defaults(func=cmd_coverage)
