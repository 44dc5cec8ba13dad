"""`pa-solver why`: per plan, what its decision rests on, in at most 15 lines."""

from __future__ import annotations


from solver.text.words import columns, safe_block, wrap_block
from solver.commands.io import Out, load_case
from solver.commands.options import PLAN_CHOICES, fhir_options


def cmd_why(args) -> int:
    """What each plan's decision rests on (solver/render/why.py)."""
    from solver.engine.solver import Solver
    from solver.fhir.inputs import result_for
    from solver.render.why import render

    solver = Solver()
    loaded = load_case(args.case, args=args, solver=solver)
    if loaded is None:
        return 2
    result = result_for(solver, *loaded, why=True)
    case = loaded[0]
    given = [n for n in solver.rules.case_facts if solver.value(case, result["derived_facts"], n) is not None]
    out = Out()
    out.line(wrap_block(safe_block(render(result, given, args.plan)), columns()))
    out.flush()
    return 0


def add(sub) -> None:
    w = sub.add_parser("why", help="per plan, what its decision rests on: decision <- pathway <- criterion <- "
                                   "fact = value, in at most 15 lines, and the facts that did not matter")
    w.add_argument("case", help="a case or FHIR bundle (JSON file, or - for stdin)")
    w.add_argument("--plan", choices=PLAN_CHOICES, default=None, metavar="PLAN",
                   help="only this plan: %(choices)s (default: every plan the case is decided for)")
    fhir_options(w)
    w.set_defaults(func=cmd_why)
