"""`pa-solver questionnaire`: a DTR Questionnaire built from the rule base."""

from __future__ import annotations


from solver.commands.io import Out, load_case
from solver.commands.options import PLAN_CHOICES, REQUEST_CHOICES, fhir_options


def cmd_questionnaire(args) -> int:
    """A DTR Questionnaire from the rule base; adaptive for a case or bundle."""
    from solver.engine.solver import Solver
    from solver.text.jsontext import dump_text
    from solver.fhir.dtr import questionnaire
    from solver.fhir.inputs import result_for

    solver = Solver()
    result = None
    drug, request, plans = args.drug, args.request, args.plans
    if args.case is not None:
        loaded = load_case(args.case, args=args, solver=solver)
        if loaded is None:
            return 2
        case = loaded[0]
        result = result_for(solver, *loaded)
        drug, request = drug or case.drug, request or case.request
        plans = plans or (list(case.plans) if case.plans else None)
    out = Out()
    declared = solver.rules.declared
    out.line(dump_text(questionnaire(solver, drug or declared.default_drug, request or declared.default_request,
                                     plans, result)))
    out.flush()
    return 0


def add(sub) -> None:
    q = sub.add_parser("questionnaire", help="a DTR Questionnaire built from the rule base: every fact the "
                                              "plans' criteria test, or, for a case or bundle, only the "
                                              "unknown facts the plans still need (most-needed first)")
    q.add_argument("case", nargs="?", default=None, help="a case or FHIR bundle (JSON file, or - for stdin)")
    q.add_argument("--request", choices=REQUEST_CHOICES, default=None, metavar="REQUEST",
                   help="the questions for this request: %(choices)s (default: the case's request, else initial)")
    q.add_argument("--plans", nargs="+", choices=PLAN_CHOICES, default=None, metavar="PLAN",
                   help="only these plans' questions: %(choices)s (default: the case's plans, else every plan)")
    fhir_options(q)
    q.set_defaults(func=cmd_questionnaire)
