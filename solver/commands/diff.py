"""`pa-solver diff`: where two plans part ways, or what another version of a plan changes (--against)."""

from __future__ import annotations


from solver.commands.io import Out, color, error
from solver.commands.options import DRUG_CHOICES, PLAN_CHOICES, REQUEST_CHOICES


def cmd_diff(args) -> int:
    """Where two plans part ways, or two versions of one plan (solver/analysis/diff.py)."""
    from solver.analysis.diff import Against, diff
    from solver.rules.loading import RuleBaseError
    from solver.engine.solver import Solver
    from solver.text.jsontext import dump_text

    if (args.plan_b is None) == (args.against is None):
        error("diff needs two different plans, or one plan and --against DIR")
        return 2
    if args.plan_a == args.plan_b:
        error("diff needs two different plans")
        return 2
    solver = Solver()
    declared = solver.rules.declared
    drug, request = args.drug or declared.default_drug, args.request or declared.default_request
    against = None
    if args.against is not None:
        try:
            against = Against(solver, args.plan_a, args.against)
        except RuleBaseError as err:
            error(f"--against {args.against}: {err}")
            return 2
        got = against.diff(solver, drug, request)
    else:
        got = diff(solver, args.plan_a, args.plan_b, drug=drug, request=request)
    out = Out()
    if args.json:
        out.line(dump_text(got))
    else:
        from solver.render.table import render_diff

        out.line(render_diff(got, solver, color=color(), against=against))
    out.flush()
    return 0


def add(sub) -> None:
    plans = PLAN_CHOICES
    f = sub.add_parser("diff", help="where two plans part ways: every minimal profile of facts under which "
                                     "they decide differently")
    f.add_argument("plan_a", choices=plans, metavar="PLAN_A", help="a plan: %(choices)s")
    f.add_argument("plan_b", choices=plans, nargs="?", default=None, metavar="PLAN_B",
                   help="the plan to compare it with (or --against DIR)")
    f.add_argument("--against", metavar="DIR", default=None,
                   help="compare PLAN_A with the same plan in another rule-base folder (e.g. an older "
                        "checkout's logic/); today's vocabulary judges both")
    f.add_argument("--drug", choices=DRUG_CHOICES, default=None, metavar="DRUG",
                   help="the drug whose criteria are compared: %(choices)s (default: the rule base's first)")
    f.add_argument("--request", choices=REQUEST_CHOICES, default=None, metavar="REQUEST",
                   help="%(choices)s (default initial)")
    f.add_argument("--json", action="store_true", help="{plans, drug, request, rules_version, differences}")
    f.set_defaults(func=cmd_diff)
