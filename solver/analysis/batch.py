"""Streaming batch work over every local core, or over a Dask cluster.

Cases are read lazily and sent to workers in chunks; at most a fixed number
of chunks is in flight, so memory stays flat however long the input, and
results come back in input order.  Each worker grounds the rule base once (a
clingo Control can be shared neither between processes nor between threads)
and reuses it.

Engines (`engine=`):

- ``local`` (default): a process pool on this machine, one worker per core
  (never more than the cores and the memory hold: worker_plan).
- ``dask``: the same chunks as Dask futures, on the cluster at `scheduler`
  (an address such as ``tcp://host:8786`` or a ``distributed.Client``), or on
  a ``LocalCluster`` started here when no scheduler is given.  Nothing else
  changes: same chunks, same window, same order, same bytes.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import sys
import threading
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from itertools import chain, islice
from typing import Any, Callable, Iterable, Iterator, Optional, Union

from solver.text.jsontext import NotJSON, loads
from solver.base.contract import CaseError
from solver.fhir.inputs import case_from, result_for
from solver.text.jsontext import dump_text
from solver.base.procs import guard

CHUNK = 64
ENGINES = ("local", "dask")


class EngineError(RuntimeError):
    """An engine that cannot run here (not installed, scheduler unreachable)."""


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


# How many solver processes may run at once.  More than MAX_WORKERS is refused
# outright (no machine this runs on has a use for it: 500 asked for once started
# 314 processes and took 12 GB in 31 s before one line came out); below it, a
# request is lowered to what this machine can run: one process per usable core,
# and no more than three quarters of the available memory holds at WORKER_MEMORY
# each.  WORKER_MEMORY is a measured peak, rounded up (pa-solver batch, 2
# workers, 20,000 cases of bench/bench.py's mix; psutil every 0.2 s): a local
# worker 53 MB RSS (40 MB PSS) deciding, 50 MB explaining (--max-changes 2), 41
# MB with --why, 39 MB counting a report; a Dask LocalCluster worker 94 MB; a
# `serve` solver process 35 MB.  RSS counts the pages a forked worker shares
# with its parent, so it errs on the safe side.
MAX_WORKERS = 256
WORKER_MEMORY = {"local": 64 << 20, "dask": 128 << 20}
MEMORY_SHARE = 0.75


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, as taskset or a
    container's cpuset sets it), else every core."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def available_memory() -> Optional[int]:
    """Bytes that new processes can still take: the kernel's MemAvailable
    (/proc/meminfo; else the free pages, sysconf), lowered to what the memory
    limit of this process's cgroup (a container's) leaves; None when unknown."""
    avail = None
    try:
        with open("/proc/meminfo", "rb") as fh:
            for line in fh:
                if line.startswith(b"MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            pass
    for limit, used in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),       # cgroup v2
                        ("/sys/fs/cgroup/memory/memory.limit_in_bytes",                      # cgroup v1
                         "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit, "rb") as fh:
                cap = fh.read().strip()
            with open(used, "rb") as fh:
                left = int(cap) - int(fh.read().strip())       # "max": ValueError, no limit
        except (OSError, ValueError):
            continue
        if int(cap) < 1 << 60:                                  # v1 writes "no limit" as a huge number
            avail = max(0, left) if avail is None else min(avail, max(0, left))
        break
    return avail


def worker_plan(workers: Optional[int], engine: Optional[str] = "local") -> tuple[int, Optional[str]]:
    """(the number of worker processes to start, a note when a number asked
    for was lowered, else None) for `workers` (None: every usable core) on
    `engine`'s processes on this machine (None: none here, a remote Dask
    cluster's own workers do the work, so only the number is checked).
    A number outside 1..MAX_WORKERS is EngineError."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise EngineError(f"workers must be a whole number of at least 1, not {workers!r}")
    if workers is not None and workers > MAX_WORKERS:
        raise EngineError(f"workers must be at most {MAX_WORKERS}, not {workers}")
    if engine is None:
        return workers or usable_cores(), None
    cores = usable_cores()
    n, why = cores, f"{cores} usable core{'s' * (cores != 1)}"
    avail = available_memory()
    per = WORKER_MEMORY.get(engine, WORKER_MEMORY["local"])
    if avail is not None and int(avail * MEMORY_SHARE) // per < n:
        n = max(1, int(avail * MEMORY_SHARE) // per)
        size = f"{avail / (1 << 30):.1f} GiB" if avail >= 1 << 30 else f"{avail >> 20} MiB"
        why = f"{MEMORY_SHARE:.0%} of the {size} of memory available, at about " \
              f"{per >> 20} MiB per solver process"
    if workers is None:
        return n, None
    if workers <= n:
        return workers, None
    return n, f"--workers {workers} lowered to {n}: this machine runs {n} solver process{'es' * (n != 1)} at " \
              f"once ({why})"


def check_workers(workers: Optional[int], engine: Optional[str] = "local") -> int:
    """The number of workers to start: `workers`, or every usable core, never
    more than this machine runs at once (worker_plan)."""
    return worker_plan(workers, engine)[0]


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
            yield from _local_pool(fn, args, chunks, workers, ordered, on_lost, warn)
    elif first:
        with _dask_client(scheduler, workers) as client:
            slots = max(1, sum(client.nthreads().values()))
            yield from _windowed(lambda c: client.submit(fn, c, *args, pure=False), chunks, slots * 4, ordered,
                                 _dask_result)
    src.reraise()


def _die_with_parent(owner: Optional[int] = None) -> None:
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


def _pool(workers: int) -> ProcessPoolExecutor:
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context(), initializer=_die_with_parent,
                               initargs=(os.getpid(),))
    guard(pool, GRACE)
    return pool


def _local_pool(fn, args, chunks, workers: int, ordered: bool, on_lost, warn) -> Iterator:
    """The local engine: a process pool and a window of workers * 4 chunks.
    After a worker dies, the pool is started again and the chunk that was
    waited for runs alone; a second death convicts it."""
    window = workers * 4
    pool = _pool(workers)
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
                pool = _pool(workers)
                entry = pending[0]
                result = _alone(pool, fn, args, entry[0], on_lost, warn)
                _discard(pool)                  # it may have broken again; start clean
                pool = _pool(workers)
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
    with _pool(1) as pool:
        try:
            return pool.submit(fn, chunk, *args).result()
        except BrokenProcessPool:
            return None


def _dask_result(future):
    try:
        return future.result()
    except Exception as err:                     # KilledWorker, a lost connection, a cancelled future
        raise EngineError(f"the Dask cluster could not finish the work: {type(err).__name__}: {err}") from None


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
            check_scheduler(scheduler)
            self.client = _connect(Client, scheduler)
            self._own = [self.client]
        else:
            self.client = scheduler

    def __enter__(self):
        return self.client

    def __exit__(self, *exc):
        for obj in self._own:
            obj.close()


CONNECT_SECONDS = 10


def check_scheduler(address: str) -> None:
    """Refuse, before any work, an address that cannot be a Dask scheduler's:
    `tcp://host:port`, `tls://host:port` (or another of distributed's
    protocols), or `host:port`."""
    try:
        from distributed.comm import parse_address
        from distributed.comm.registry import backends
    except ImportError:
        raise EngineError("the dask engine needs Dask: pip install 'pa-solver[dask]'") from None
    try:
        scheme, loc = parse_address(address)
    except (ValueError, TypeError) as err:
        raise EngineError(f"--scheduler {address!r} is not a scheduler address: {err}") from None
    if scheme not in backends:
        raise EngineError(f"--scheduler {address!r}: unknown protocol {scheme!r} (use one of "
                          f"{', '.join(sorted(backends))}, e.g. tcp://host:8786)")
    if scheme in ("tcp", "tls") and not re.fullmatch(r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):[0-9]{1,5}", loc):
        raise EngineError(f"--scheduler {address!r}: expected {scheme}://HOST:PORT")


def _connect(Client, address: str):
    """A client of the scheduler at `address`, or EngineError within about
    CONNECT_SECONDS: something that listens there but is not a scheduler must
    not hang the batch."""
    import dask

    box: dict = {}

    def connect():
        try:
            with dask.config.set({"distributed.comm.timeouts.connect": f"{CONNECT_SECONDS}s"}):
                box["client"] = Client(address, timeout=f"{CONNECT_SECONDS}s")
        except BaseException as err:                  # OSError, TimeoutError, a protocol error
            box["error"] = err

    thread = threading.Thread(target=connect, name="dask-connect", daemon=True)
    thread.start()
    thread.join(CONNECT_SECONDS + 5)
    if "client" in box:
        return box["client"]
    why = f"{type(box['error']).__name__}: {box['error']}" if "error" in box else \
        f"no answer in {CONNECT_SECONDS + 5} s"
    raise EngineError(f"cannot reach a Dask scheduler at {address}: {why}")


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


def _lost_cases(chunk: list, run_alone: Callable, warn) -> list:
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
                           engine=engine, scheduler=scheduler, on_lost=_lost_cases, warn=warn):
        yield from part


def stream(items: Iterable, workers: Optional[int] = None, max_changes: int = 0, engine: str = "local",
           scheduler: Any = None, warn: Optional[Callable[[str], None]] = None
           ) -> Iterator[Union[CaseResult, CaseError]]:
    for item in stream_encoded(items, workers=workers, max_changes=max_changes, engine=engine,
                               scheduler=scheduler, warn=warn):
        yield _decode_out(item)
