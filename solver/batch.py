"""Streaming batch work over every local core, or over a Dask cluster.

Cases are read lazily and sent to workers in chunks; at most a fixed number
of chunks is in flight, so memory stays flat however long the input, and
results come back in input order.  Each worker grounds the rule base once (a
clingo Control can be shared neither between processes nor between threads)
and reuses it.

Engines (`engine=`):

- ``local`` (default): a process pool on this machine, one worker per core.
- ``dask``: the same chunks as Dask futures, on the cluster at `scheduler`
  (an address such as ``tcp://host:8786`` or a ``distributed.Client``), or on
  a ``LocalCluster`` started here when no scheduler is given.  Nothing else
  changes: same chunks, same window, same order, same bytes.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from itertools import islice
from typing import Any, Callable, Iterable, Iterator, Optional, Union

from .models import CaseError, CaseResult, parse_case

CHUNK = 64
ENGINES = ("local", "dask")


class EngineError(RuntimeError):
    """An engine that cannot run here (not installed, scheduler unreachable)."""


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


def decide_one(item, solver, max_changes: int = 0, lean: bool = False) -> tuple:
    """("ok", canonical JSON) or ("error", case_id, message) for one input;
    with max_changes the result carries `changes` (explain); `lean`: see
    Solver.solve."""
    data = _decode(item)
    if isinstance(data, CaseError):
        return _encode(data)
    try:
        return ("ok", solver.decide_json(parse_case(data), max_changes, lean))
    except CaseError as err:
        return _encode(err)


# One Solver per worker process and thread (clingo Controls are not thread-safe).
_local = threading.local()


def worker_solver():
    solver = getattr(_local, "solver", None)
    if solver is None:
        from .engine import Solver

        solver = _local.solver = Solver()
    return solver


def _run_chunk(chunk: list, max_changes: int = 0, lean: bool = False) -> list:
    solver = worker_solver()
    return [decide_one(item, solver, max_changes, lean) for item in chunk]


def _encode(err: CaseError) -> tuple:
    # Results cross the process boundary as JSON text: cheaper to pickle than models.
    return ("error", err.case_id, str(err))


def _decode_out(item) -> Union[CaseResult, CaseError]:
    if item[0] == "error":
        return CaseError(item[2], item[1])
    return CaseResult.model_validate_json(item[1])


def map_chunks(fn: Callable, chunks: Iterable, *args, workers: Optional[int] = None, engine: str = "local",
               scheduler: Any = None, ordered: bool = True) -> Iterator:
    """fn(chunk, *args) for each chunk, on the engine, with a bounded window of
    chunks in flight; results in input order (or as they finish)."""
    if engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")
    workers = workers or os.cpu_count() or 1
    it = iter(chunks)
    if engine == "local" and workers == 1:
        for chunk in it:
            yield fn(chunk, *args)
        return
    if engine == "local":
        with ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context()) as pool:
            yield from _windowed(lambda c: pool.submit(fn, c, *args), it, workers * 4, ordered,
                                 lambda f: f.result())
        return
    with _dask_client(scheduler, workers) as client:
        slots = max(1, sum(client.nthreads().values()))
        yield from _windowed(lambda c: client.submit(fn, c, *args, pure=False), it, slots * 4, ordered,
                             lambda f: f.result())


def _mp_context():
    """fork where this process has one thread (cheap, and workers stay our
    children, so getrusage sees them); forkserver where other threads run (a
    Streamlit server, a progress-bar monitor): forking a threaded process can
    copy a lock some other thread holds."""
    if threading.active_count() > 1 and "forkserver" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("forkserver")
    return None


def _windowed(submit, chunks, window: int, ordered: bool, result) -> Iterator:
    pending: deque = deque()
    while True:
        while len(pending) < window:
            chunk = next(chunks, None)
            if chunk is None:
                break
            pending.append(submit(chunk))
        if not pending:
            return
        if ordered:
            yield result(pending.popleft())
        else:
            done = next((f for f in pending if f.done()), pending[0])
            pending.remove(done)
            yield result(done)


class _dask_client:
    """A Dask client: on `scheduler` (address or Client, left running), or on
    a LocalCluster of `workers` single-threaded processes started and closed here."""

    def __init__(self, scheduler, workers: int):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise EngineError("the dask engine needs Dask: pip install 'pa-solver[dask]'") from None
        self._own = []
        if scheduler is None:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            self.client = Client(cluster)
            self._own = [self.client, cluster]
        elif isinstance(scheduler, str):
            try:
                self.client = Client(scheduler, timeout="5s")
            except OSError as err:
                raise EngineError(f"cannot reach the Dask scheduler at {scheduler}: {err}") from None
            self._own = [self.client]
        else:
            self.client = scheduler

    def __enter__(self):
        return self.client

    def __exit__(self, *exc):
        for obj in self._own:
            obj.close()


def chunked(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while True:
        part = list(islice(it, size))
        if not part:
            return
        yield part


def stream_encoded(items: Iterable, workers: Optional[int] = None, chunk: int = CHUNK, max_changes: int = 0,
                   engine: str = "local", scheduler: Any = None, lean: bool = False) -> Iterator[tuple]:
    """Yield ("ok", json) or ("error", case_id, message) per input, in order."""
    for part in map_chunks(_run_chunk, chunked(items, chunk), max_changes, lean, workers=workers, engine=engine,
                           scheduler=scheduler):
        yield from part


def stream(items: Iterable, workers: Optional[int] = None, max_changes: int = 0, engine: str = "local",
           scheduler: Any = None) -> Iterator[Union[CaseResult, CaseError]]:
    for item in stream_encoded(items, workers=workers, max_changes=max_changes, engine=engine,
                               scheduler=scheduler):
        yield _decode_out(item)
