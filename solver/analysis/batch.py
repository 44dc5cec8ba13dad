"""Batch decisions: each input (a JSONL line, a case, a FHIR Bundle) decided
on a worker's solver, exactly one result or error line per input, in input
order, on an engine of solver/analysis/engines.py (every local core, or a
Dask cluster)."""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterable, Iterator, Optional, Union

from solver.analysis.engines import chunked, map_chunks
from solver.text.jsontext import NotJSON, loads
from solver.base.contract import CaseError
from solver.fhir.inputs import case_from, result_for
from solver.text.jsontext import dump_text

CHUNK = 64


def _decode(item) -> Union[dict, CaseError]:
    """A JSONL line (str/bytes) or an already decoded object, as a dict; a line
    that cannot be read becomes the error that says why."""
    if isinstance(item, (str, bytes, bytearray, memoryview)):
        try:
            return loads(item)
        except NotJSON as err:
            return CaseError(f"(line): {err}", err.case_id)
    if hasattr(item, "model_dump"):
        return item.model_dump()
    return item


def decide_one(item, solver, max_changes: int = 0, lean: bool = False, fhir_options: tuple = (None, None),
               why: bool = False) -> tuple:
    """("ok", canonical JSON) or ("error", case_id, message) for one input;
    with max_changes the result carries `changes` (explain); `lean`: see
    Solver.solve; `why`: the why line instead (Solver.why).  Never raises: an input this code cannot handle is an error
    line too (named as an internal error), so one case never loses the others."""
    data = _decode(item)
    if isinstance(data, CaseError):
        return _encode(data)
    try:
        case, fhir = case_from(data, *fhir_options, declared=solver)     # a case, or a FHIR Bundle
        if why:                                     # the why line (Solver.why)
            line = solver.why(case)
            if fhir is not None:                    # where each fact came from, as decide --why gives it
                line["fhir"] = fhir.to_json()
            return ("ok", dump_text(line))
        return ("ok", dump_text(result_for(solver, case, fhir, max_changes, lean)))
    except CaseError as err:
        return _encode(err)
    except Exception as err:                         # a bug: reported on its line, the batch goes on
        return ("error", _case_id(data), f"(internal): {type(err).__name__}: {err}")


def _case_id(data) -> Optional[str]:
    """The case id of a decoded input, where it has one."""
    return data.get("case_id") if isinstance(data, dict) and isinstance(data.get("case_id"), str) else None


# One Solver per worker process and thread (clingo Controls are not thread-safe).
_local = threading.local()


def worker_solver(rules: Optional[str] = None):
    """This process's (and thread's) solver for a rule-base folder (None: logic/)."""
    solvers = getattr(_local, "solvers", None)
    if solvers is None:
        solvers = _local.solvers = {}
    solver = solvers.get(rules)
    if solver is None:
        from solver.engine.solver import Solver

        solver = solvers[rules] = Solver(rules)
    return solver


def _run_chunk(chunk: list, max_changes: int = 0, lean: bool = False, fhir_options: tuple = (None, None),
               rules: Optional[str] = None, why: bool = False) -> list:
    solver = worker_solver(rules)
    return [decide_one(item, solver, max_changes, lean, fhir_options, why) for item in chunk]


def _encode(err: CaseError) -> tuple:
    # Results cross the process boundary as JSON text: cheaper to pickle than models.
    return ("error", err.case_id, str(err))


def _decode_out(item) -> Union[CaseResult, CaseError]:
    if item[0] == "error":
        return CaseError(item[2], item[1])
    from solver.case.results import CaseResult

    return CaseResult.model_validate_json(item[1])


def lost_cases(chunk: list, run_alone: Callable, warn) -> list:
    """A chunk of cases on which a worker died twice: each case alone, so
    only a case that kills its worker itself becomes an error line."""
    out = []
    for item in chunk:
        got = run_alone([item])
        if got is None:
            case_id = _case_id(_decode(item))
            got = [("error", case_id, "(worker): the worker process died deciding this case")]
            if warn is not None:
                warn(f"a worker process died deciding case {case_id or '(no id)'}: written as an error line")
        out.extend(got)
    return out


def stream_encoded(items: Iterable, workers: Optional[int] = None, chunk: int = CHUNK, max_changes: int = 0,
                   engine: str = "local", scheduler: Any = None, lean: bool = False,
                   warn: Optional[Callable[[str], None]] = None,
                   fhir_options: tuple = (None, None), rules: Optional[str] = None,
                   why: bool = False) -> Iterator[tuple]:
    """Yield ("ok", json) or ("error", case_id, message) per input, in order:
    exactly one per input, whatever the input holds."""
    for part in map_chunks(_run_chunk, chunked(items, chunk), max_changes, lean, fhir_options, rules, why,
                           workers=workers,
                           engine=engine, scheduler=scheduler, on_lost=lost_cases, warn=warn):
        yield from part


def stream(items: Iterable, workers: Optional[int] = None, max_changes: int = 0, engine: str = "local",
           scheduler: Any = None, warn: Optional[Callable[[str], None]] = None
           ) -> Iterator[Union[CaseResult, CaseError]]:
    for item in stream_encoded(items, workers=workers, max_changes=max_changes, engine=engine,
                               scheduler=scheduler, warn=warn):
        yield _decode_out(item)
