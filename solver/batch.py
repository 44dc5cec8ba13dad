"""Streaming batch decisions over every local core.

Cases are read lazily and sent to worker processes in chunks; at most a fixed
number of chunks is in flight, so memory stays flat however long the input.
Results come back in input order.  Each worker grounds the rule base once
(a clingo Control cannot be shared between processes) and reuses it.
"""

from __future__ import annotations

import json
import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from itertools import islice
from typing import Iterable, Iterator, Optional, Union

from .models import CaseError, CaseResult, parse_case

CHUNK = 64


def _decode(item) -> Union[dict, CaseError]:
    """A JSONL line (str/bytes) or an already decoded object, as a dict."""
    if isinstance(item, (str, bytes)):
        try:
            return json.loads(item)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            return CaseError(f"(line): not valid JSON: {err}")
    if hasattr(item, "model_dump"):
        return item.model_dump()
    return item


def decide_one(item, solver) -> tuple:
    """("ok", canonical JSON) or ("error", case_id, message) for one input."""
    data = _decode(item)
    if isinstance(data, CaseError):
        return _encode(data)
    try:
        return ("ok", solver.decide_json(parse_case(data)))
    except CaseError as err:
        return _encode(err)


_worker_solver = None


def _init_worker() -> None:
    global _worker_solver
    from .engine import Solver

    _worker_solver = Solver()


def _run_chunk(chunk: list) -> list:
    return [decide_one(item, _worker_solver) for item in chunk]


def _encode(err: CaseError) -> tuple:
    # Results cross the process boundary as JSON text: cheaper to pickle than models.
    return ("error", err.case_id, str(err))


def _decode_out(item) -> Union[CaseResult, CaseError]:
    if item[0] == "error":
        return CaseError(item[2], item[1])
    return CaseResult.model_validate_json(item[1])


def stream_encoded(items: Iterable, workers: Optional[int] = None, chunk: int = CHUNK) -> Iterator[tuple]:
    """Yield ("ok", json) or ("error", case_id, message) per input, in order."""
    workers = workers or os.cpu_count() or 1
    it = iter(items)
    if workers == 1:
        from .engine import Solver

        solver = Solver()
        for item in it:
            yield decide_one(item, solver)
        return
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker) as pool:
        pending: deque = deque()
        window = workers * 4
        while True:
            while len(pending) < window:
                part = list(islice(it, chunk))
                if not part:
                    break
                pending.append(pool.submit(_run_chunk, part))
            if not pending:
                return
            yield from pending.popleft().result()


def stream(items: Iterable, workers: Optional[int] = None) -> Iterator[Union[CaseResult, CaseError]]:
    for item in stream_encoded(items, workers=workers):
        yield _decode_out(item)
