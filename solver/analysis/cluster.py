"""The dask engine: the same chunks as Dask futures, on the cluster at
`scheduler` (an address such as ``tcp://host:8786`` or a
``distributed.Client``), or on a ``LocalCluster`` started here when no
scheduler is given; a window of four futures per worker thread."""

from __future__ import annotations

import re
import threading
from collections import deque
from typing import Iterator

from solver.analysis.workers import EngineError


def run_dask(fn, args, chunks, workers: int, scheduler, ordered: bool) -> Iterator:
    """The dask engine: fn(chunk, *args) as futures on the cluster (see
    `_dask_client`), slots * 4 of them in flight."""
    with _dask_client(scheduler, workers) as client:
        slots = max(1, sum(client.nthreads().values()))
        yield from _windowed(lambda c: client.submit(fn, c, *args, pure=False), chunks, slots * 4, ordered,
                             _dask_result)


def _dask_result(future):
    try:
        return future.result()
    except Exception as err:                     # KilledWorker, a lost connection, a cancelled future
        raise EngineError(f"the Dask cluster could not finish the work: {type(err).__name__}: {err}") from None



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
