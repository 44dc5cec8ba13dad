"""A decoded input (a CASE.md case or a FHIR Bundle) as the case to decide.

    case, fhir = case_from(obj, as_of=None, drug=None)
    case, fhir = case_from(obj, declared=solver)        # read against that solver's rule base

A case is read by the fast path when it is plainly valid, else by pydantic
(solver/case/fastcase.py); a FHIR resource (an object with `resourceType`) by
solver/fhir, which gives the derived case and where each value came from
(`fhir`, a FhirCase; None for a plain case).  FHIR's libraries are imported
only when a FHIR input arrives.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional


def case_from(obj: Any, as_of: Optional[dt.date] = None, drug: Optional[str] = None, declared=None):
    """`declared`: the rule base's declarations the case is read against (a `Declared`, or a
    Solver or RuleBase that has them); default, the rule base in use."""
    from solver.case import fastcase

    if declared is not None and not hasattr(declared, "facts"):
        declared = getattr(declared, "rules", declared).declared
    fhir = None
    if isinstance(obj, dict) and "resourceType" in obj:
        from solver.fhir.reader import read_bundle

        fhir = read_bundle(obj, as_of=as_of, drug=drug, declared=declared)
        obj = fhir.case
    case = fastcase.parse(obj, fastcase.types(declared))
    if case is None:
        from solver.case.models import parse_case, types

        case = parse_case(obj, types(declared))
    return case, fhir


def result_for(solver, case, fhir, max_changes: int = 0, lean: bool = False, why: bool = False) -> dict:
    """The JSON-ready result; a FHIR input's carries `fhir` (FHIR.md, "What comes back")."""
    out = solver.solve(case, max_changes, lean, why)
    if fhir is not None:
        out["fhir"] = fhir.to_json()
    return out
