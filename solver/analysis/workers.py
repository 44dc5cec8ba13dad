"""How many worker processes a batch starts (the worker plan): a number asked
for, or every usable core, never more than this machine's cores and memory
hold; and the error of an engine that cannot run here."""

from __future__ import annotations

import os
from typing import Optional


class EngineError(RuntimeError):
    """An engine that cannot run here (not installed, scheduler unreachable)."""



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
