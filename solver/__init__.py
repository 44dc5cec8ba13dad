"""pa-solver: prior-authorization eligibility decided by ASP rules (clingo).

    from solver import decide, decide_many
    result = decide({"drug": "inotuzumab_ozogamicin", "facts": {"age_years": 34}})
    result.results[0].decision

`decide` takes a `Case`, a dict or a JSON text and returns a `CaseResult`;
an invalid case raises `CaseError` naming the field.  `decide_many` streams an
iterable of cases over every local core and yields, in input order, a
`CaseResult` or a `CaseError` per case.  `explain` adds, per plan, the
minimal sets of fact changes that would give another decision.
"""

from __future__ import annotations

import threading
from typing import Iterable, Iterator, Optional, Union

from solver.base.contract import CaseError
from solver.rules.loading import RuleBaseError
from solver.engine.solver import Solver
from solver.rules.files import rules_version

__all__ = ["decide", "explain", "decide_many", "Case", "CaseError", "CaseResult", "Solver", "RuleBaseError", "rules_version"]

_local = threading.local()


def default_solver() -> Solver:
    """One grounded solver per thread (a clingo Control is not thread-safe)."""
    solver = getattr(_local, "solver", None)
    if solver is None:
        solver = _local.solver = Solver()
    return solver


def decide(case: Union[Case, dict, str, bytes], solver: Optional[Solver] = None) -> CaseResult:
    """Decide a case: a `Case`, a dict, JSON text or bytes, or a FHIR R4 Bundle
    (then the result carries `fhir`: the derived case and its sources)."""
    return explain(case, 0, solver)


def explain(case: Union[Case, dict, str, bytes], max_changes: int = 2,
            solver: Optional[Solver] = None) -> CaseResult:
    """`decide`, and per plan the minimal sets of at most `max_changes` fact
    changes that would give another decision (`PlanResult.changes`)."""
    from solver.fhir.inputs import case_from, result_for
    from solver.case.models import Case
    from solver.case.results import CaseResult

    if isinstance(case, Case):
        case, fhir = case, None
    else:
        if isinstance(case, (str, bytes, bytearray, memoryview)):
            from solver.text.jsontext import loads

            case = loads(case)
        solver = solver or default_solver()
        case, fhir = case_from(case, declared=solver)          # read against that solver's rule base
    return CaseResult.model_validate(result_for(solver or default_solver(), case, fhir, max_changes))


def decide_many(cases: Iterable, workers: Optional[int] = None) -> Iterator[Union[CaseResult, CaseError]]:
    from solver.analysis.batch import stream

    yield from stream(cases, workers=workers)


def __getattr__(name: str):
    # pydantic's models are imported on first use: a one-shot `pa-solver
    # decide` of a valid case never needs them (solver/case/fastcase.py).
    if name == "CaseResult":
        from solver.case.results import CaseResult

        return CaseResult
    if name in ("Case", "parse_case"):
        from solver.case import models

        return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
