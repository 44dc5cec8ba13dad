"""Streaming work over every local core, or over a Dask cluster.

Work is read lazily and sent to workers in chunks; at most a fixed number
of chunks is in flight, so memory stays flat however long the input, and
results come back in input order.  Each worker grounds the rule base once (a
clingo Control can be shared neither between processes nor between threads)
and reuses it.

Engines (`engine=`):

- ``local`` (default): a process pool on this machine, one worker per core
  (never more than the cores and the memory hold: worker_plan), in
  solver/analysis/pool.py.
- ``dask``: the same chunks as Dask futures, on the cluster at `scheduler`
  (an address such as ``tcp://host:8786`` or a ``distributed.Client``), or on
  a ``LocalCluster`` started here when no scheduler is given, in
  solver/analysis/cluster.py.  Nothing else changes: same chunks, same
  window, same order, same bytes.
"""

from __future__ import annotations

from itertools import chain, islice
from typing import Any, Callable, Iterable, Iterator, Optional

from solver.analysis.cluster import run_dask
from solver.analysis.pool import run_local
from solver.analysis.workers import EngineError, check_workers

ENGINES = ("local", "dask")


class _Source:
    """An iterator that stops, instead of raising, when its source raises; the
    error is raised by `reraise` once the results already under way are out."""

    def __init__(self, items: Iterable):
        self._it = iter(items)
        self.error: Optional[BaseException] = None

    def __iter__(self):
        return self

    def __next__(self):
        if self.error is not None:
            raise StopIteration
        try:
            return next(self._it)
        except StopIteration:
            raise
        except Exception as err:
            self.error = err
            raise StopIteration from None

    def reraise(self) -> None:
        if self.error is not None:
            raise self.error


def map_chunks(fn: Callable, chunks: Iterable, *args, workers: Optional[int] = None, engine: str = "local",
               scheduler: Any = None, ordered: bool = True, on_lost: Optional[Callable] = None,
               warn: Optional[Callable[[str], None]] = None) -> Iterator:
    """fn(chunk, *args) for each chunk, on the engine, with a bounded window of
    chunks in flight; results in input order (or as they finish).

    No more workers start than there are chunks.  When the source of chunks
    raises, the results of the chunks already read are yielded first.  A
    worker process that dies (killed, out of memory) loses nothing: its chunk
    is run again alone; a chunk that kills a worker twice is given to
    `on_lost(chunk, fn, args)` (a chunk of cases is then retried case by case,
    see `stream_encoded`), or raises EngineError without it.  `warn` hears of
    each lost worker."""
    if engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")
    workers = check_workers(workers, engine if engine == "local" or scheduler is None else None)
    src = _Source(chunks)
    first = list(islice(src, workers * 4))          # no more workers than there is work for
    workers = min(workers, max(1, len(first)))
    chunks = chain(first, src)
    if engine == "local":
        if workers == 1:
            for chunk in chunks:
                yield fn(chunk, *args)
        else:
            yield from run_local(fn, args, chunks, workers, ordered, on_lost, warn)
    elif first:
        yield from run_dask(fn, args, chunks, workers, scheduler, ordered)
    src.reraise()


def chunked(items: Iterable, size: int) -> Iterator[list]:
    """Lists of `size` items; when `items` raises, the items read before it
    come out first, then the error."""
    part: list = []
    it = iter(items)
    try:
        for item in it:
            part.append(item)
            if len(part) == size:
                yield part
                part = []
    except Exception:
        if part:
            yield part
        raise
    if part:
        yield part
