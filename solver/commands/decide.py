"""`pa-solver decide`: one case or FHIR bundle, decided for every plan (a table, --json, --format pas)."""

from __future__ import annotations


from solver.commands.io import Out, color, error, load_case, render_table
from solver.commands.options import answer_options, format_ok


def answer(loaded, args, max_changes: int = 0, solver=None) -> int:
    """Decide (and explain) one loaded case (None: it could not be read,
    already said); print its JSON, its PAS response or its table."""
    from solver.engine.solver import Solver
    from solver.text.jsontext import dump_text
    from solver.fhir.inputs import result_for

    if loaded is None:
        return 2
    if args.format == "pas" and loaded[1] is None and args.as_of is None:
        error("--format pas: a plain case has no request date; give it with --as-of YYYY-MM-DD")
        return 2
    solver = solver or Solver()
    result = result_for(solver, *loaded, max_changes, why=getattr(args, "why", False))
    out = Out()
    if getattr(args, "format", None) == "pas":
        out.line(dump_text(pas(result, loaded[1], args, solver)))
    elif args.json or getattr(args, "format", None) == "json":
        out.line(dump_text(result))
    else:
        out.line(render_table(result, verbose=args.verbose, color=color()))
    out.flush()
    return 0


def pas(result: dict, fhir, args, solver) -> dict:
    """The PAS response bundle (solver/fhir/pas.py)."""
    from solver.fhir.pas import pas_bundle

    created = fhir.request_date if fhir is not None else args.as_of
    patient = {"reference": fhir.patient} if fhir is not None and fhir.patient else None
    return pas_bundle(result, solver.rules.plans, created, fhir.claim if fhir is not None else None, patient)


def cmd_decide(args) -> int:
    if not format_ok(args):
        return 2
    from solver.engine.solver import Solver

    solver = Solver()
    return answer(load_case(args.case, args=args, solver=solver), args, solver=solver)


def add(sub) -> None:
    d = sub.add_parser("decide", help="decide one case (JSON file, or - for stdin)")
    answer_options(d, "print the CASE.md JSON shape (sorted, byte-stable)")
    d.set_defaults(func=cmd_decide)
