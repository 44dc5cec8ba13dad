"""A worker process's watch on the process it works for.

A pool started through a fork server (the service; the Streamlit pages) has processes that are
not children of the process that uses them, and each holds both ends of its own queue's pipes:
when that process is killed outright (SIGKILL leaves no goodbye) nothing ends them, and their
fork server and resource tracker stay too (seen after kill -9: tests/service/test_service.py).  A thread
in each worker ends it when the owner is gone.
"""

from __future__ import annotations

import os
import threading
import time


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie, dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True                     # no /proc: os.kill's answer stands


def leave_with(owner: int, every: float = 0.5) -> None:
    """In a worker: leave (exit at once) when the process `owner` is gone."""

    def watch() -> None:
        while alive(owner):
            time.sleep(every)
        os._exit(0)

    threading.Thread(target=watch, name="leave-with-owner", daemon=True).start()


# ---------------------------------------------------------------- a pool a dead worker left stuck
#
# CPython's ProcessPoolExecutor (3.11, seen here under load in batches and in the service; both guard their pools) has
# one result pipe for all its workers.  A worker killed while writing its result leaves half a
# message in it: the pool's manager thread then waits for the rest for good (this process holds
# a copy of the pipe's write end, so no end-of-file comes), never notices the dead worker, and
# every future of the pool waits with it.  The way out: kill the pool's workers and close this
# process's copy of the write end; the manager reads end-of-file, takes the pool for broken and
# fails its futures with BrokenProcessPool, as for any other dead worker.

def has_dead_worker(pool) -> bool:
    """Whether one of `pool`'s worker processes has ended (a ProcessPoolExecutor's private list)."""
    return any(p.exitcode is not None for p in list((getattr(pool, "_processes", None) or {}).values()))


def unstick(pool) -> None:
    """End a pool a dead worker left waiting (see above): its futures then fail as broken."""
    for p in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            p.kill()
        except (OSError, AttributeError, ValueError):
            pass
    writer = getattr(getattr(pool, "_result_queue", None), "_writer", None)
    try:
        if writer is not None:
            writer.close()
    except OSError:
        pass


def guard(pool, grace: float = 1.0, every: float = 0.2) -> threading.Thread:
    """Watch `pool` from a thread: when a worker has been dead `grace` seconds and the pool has not
    taken itself for broken (it normally does within milliseconds), `unstick` it.  The watch ends
    with the pool (shut down, broken, or collected)."""
    import weakref

    ref = weakref.ref(pool)
    del pool

    def watch() -> None:
        dead_since = None
        while True:
            time.sleep(every)
            p = ref()
            if p is None or getattr(p, "_broken", False) or getattr(p, "_shutdown_thread", False):
                return
            if not has_dead_worker(p):
                dead_since = None
                continue
            dead_since = dead_since or time.monotonic()
            if time.monotonic() - dead_since >= grace:
                unstick(p)
                return

    t = threading.Thread(target=watch, name="pool-guard", daemon=True)
    t.start()
    return t
