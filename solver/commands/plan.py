"""`pa-solver plan new` and `pa-solver plan check`: for whoever writes a plan (docs/adding-a-plan.md)."""

from __future__ import annotations


from solver.text.words import safe
from solver.commands.io import Out, error
from solver.commands.options import Parser, rules_option


def cmd_plan(args) -> int:
    """`plan new` writes a plan's file from its document; `plan check` says what is not yet right
    (solver/analysis/planfile.py).  Exit 0 when nothing is, 1 with one line per problem, 2 for bad input."""
    from solver.rules.loading import RuleBaseError
    from solver.analysis.planfile import PlanError, check, new_plan

    try:
        if args.plan_command == "new":
            path, copied = new_plan(args.id, args.document, args.rules, drug=args.drug, name=args.name,
                                    force=args.force)
            out = Out()
            out.line(f"wrote {path}" + (f"; the document is now {copied}" if copied else ""))
            out.line(f"next: turn its not_a_criterion lines into criteria (docs/adding-a-plan.md), then "
                     f"pa-solver plan check {args.id}" + (f" --rules {args.rules}" if args.rules else ""))
            out.flush()
            return 0
        rep = check([args.id] if args.id else None, args.rules)
    except (PlanError, RuleBaseError) as err:
        error(str(err))
        return 2
    out = Out()
    for line in rep.summary:
        out.line(line)
    for line in rep.problems:
        out.line(f"problem: {safe(line)}")
    out.line(f"{len(rep.problems)} problem{'' if len(rep.problems) == 1 else 's'}")
    out.flush()
    return 1 if rep.problems else 0


def add(sub) -> None:
    pl = sub.add_parser("plan", help="for whoever writes a plan: `plan new` starts its .lp file from its "
                                     "document, `plan check` says what is not yet right (docs/adding-a-plan.md)")
    psub = pl.add_subparsers(dest="plan_command", required=True, parser_class=Parser)
    pn = psub.add_parser("new", help="write ID.lp: the plan's declarations and every sentence of the "
                                     "document as a not_a_criterion still to do")
    pn.add_argument("id", help="the plan id: lower-case letters, digits and _")
    pn.add_argument("--document", required=True, metavar="FILE",
                    help="the policy document, as text; copied beside the rules unless it is there")
    pn.add_argument("--drug", default=None, help="the drug it covers (default: the rule base's default drug)")
    pn.add_argument("--name", default=None, help="the plan's name (default: the document's first heading)")
    pn.add_argument("--force", action="store_true", help="write over an existing ID.lp")
    rules_option(pn)
    pn.set_defaults(func=cmd_plan)
    pc = psub.add_parser("check", help="every criterion quoted from the document, able to be met, broken "
                                       "and unknown; every pathway able to decide; every fact used; every "
                                       "sentence accounted for (exit 1: one line per problem)")
    pc.add_argument("id", nargs="?", default=None, help="one plan (default: every plan, and the facts)")
    rules_option(pc)
    pc.set_defaults(func=cmd_plan)
