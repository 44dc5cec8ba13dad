"""The local engine: a process pool on this machine, one worker per core
(never more than the cores and the memory hold: solver/analysis/workers.py),
and a window of workers * 4 chunks.  Each worker grounds the rule base once
and reuses it; a worker that dies loses nothing (its chunk runs again alone)."""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Iterator, Optional

from solver.analysis.workers import EngineError
from solver.base.procs import guard


def die_with_parent(owner: Optional[int] = None) -> None:
    """In a worker: be killed when the parent dies, however it dies (Linux
    PR_SET_PDEATHSIG), so no worker is left blocked on a queue no one feeds;
    under a fork server the parent is the fork server, so the worker also
    watches `owner`, the process that started the pool (solver/base/procs.py).
    Signals are the parent's business: a forked worker would inherit the CLI's
    SIGTERM handler (SystemExit), and the pool, when a worker dies, terminates
    the others with SIGTERM -- raised inside a case, SystemExit would be caught
    by the pool's worker loop, which then blocks sending it back on a queue
    lock the dead worker may hold.  So SIGTERM kills a worker outright, and
    Ctrl-C (sent to the whole process group) is left to the parent."""
    import signal

    if owner is not None and os.getppid() != owner:
        from solver.base.procs import leave_with

        leave_with(owner)
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (ValueError, OSError):
        pass
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)          # PR_SET_PDEATHSIG
        if os.getppid() == 1:                           # the parent died before prctl
            os._exit(1)
    except (OSError, AttributeError):
        pass


def start_pool(workers: int) -> ProcessPoolExecutor:
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context(), initializer=die_with_parent,
                               initargs=(os.getpid(),))
    guard(pool, GRACE)
    return pool


def run_local(fn, args, chunks, workers: int, ordered: bool, on_lost, warn) -> Iterator:
    """The local engine: a process pool and a window of workers * 4 chunks.
    After a worker dies, the pool is started again and the chunk that was
    waited for runs alone; a second death convicts it."""
    window = workers * 4
    pool = start_pool(workers)
    pending: deque = deque()            # [chunk, future or None: not (again) submitted]
    done = False
    try:
        while True:
            try:
                for e in pending:
                    if e[1] is None:
                        e[1] = pool.submit(fn, e[0], *args)
                while len(pending) < window:
                    chunk = next(chunks, None)
                    if chunk is None:
                        break
                    e = [chunk, None]
                    pending.append(e)           # before submit: a chunk is never lost
                    e[1] = pool.submit(fn, chunk, *args)
                if not pending:
                    done = True
                    return
                entry = pending[0] if ordered else next((e for e in pending if e[1].done()), pending[0])
                result = entry[1].result()
            except BrokenProcessPool:
                _discard(pool)
                if warn is not None:
                    warn("a worker process died (killed or out of memory); its cases are decided again")
                pool = start_pool(workers)
                entry = pending[0]
                result = _alone(pool, fn, args, entry[0], on_lost, warn)
                _discard(pool)                  # it may have broken again; start clean
                pool = start_pool(workers)
                for e in pending:
                    e[1] = None
            pending.remove(entry)
            yield result
    finally:
        # All done: wait for the workers to exit (they are reaped, and their
        # resource use counted).  Stopped early (an error, a signal, a consumer
        # that stopped reading): cancel what is queued and do not wait.
        pool.shutdown(wait=done, cancel_futures=not done)


def _discard(pool: ProcessPoolExecutor) -> None:
    """Shut a broken pool down after killing the workers it has left: Python
    3.11's pool, broken, loops putting stop signals into a full queue that
    its surviving workers no longer read."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            proc.kill()
        except (OSError, AttributeError, ValueError):
            pass
    pool.shutdown(wait=False, cancel_futures=True)


# How long a pool may sit with a dead worker and an unanswered future before it
# is taken for broken (it normally notices within milliseconds): a worker killed
# while sending its result can leave it waiting for good (solver/base/procs.py).
GRACE = 3.0


def _alone(pool, fn, args, chunk, on_lost, warn):
    try:
        return pool.submit(fn, chunk, *args).result()
    except BrokenProcessPool:
        if on_lost is None:
            raise EngineError("a worker process died twice on the same piece of work") from None
        return on_lost(chunk, lambda c: _retry_alone(fn, args, c), warn)


def _retry_alone(fn, args, chunk):
    """fn(chunk) in a pool of its own: the result, or None when the worker dies."""
    with start_pool(1) as pool:
        try:
            return pool.submit(fn, chunk, *args).result()
        except BrokenProcessPool:
            return None



def _mp_context():
    """fork where this process has one thread (cheap, and workers stay our
    children, so getrusage sees them); forkserver where other threads run (a
    Streamlit server, a progress-bar monitor): forking a threaded process can
    copy a lock some other thread holds."""
    if threading.active_count() > 1 and "forkserver" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("forkserver")
    return None
