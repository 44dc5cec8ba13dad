"""A pool's processes leave when the process that started them is killed outright (kill -9),
also where they run under a fork server (the service's pool; a batch started by a threaded
program, as the Streamlit pages are): no solver process, fork server or resource tracker is
left behind (solver/base/procs.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]

# A threaded program (so the batch pool runs under a fork server) deciding cases on 2 workers.
PROGRAM = """
import json, threading, time
threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
from solver.analysis.batch import stream_encoded
line = json.dumps({"facts": {"age_years": 40, "diagnosis": "all"}})
out = stream_encoded(iter([line] * 100000), workers=2)
next(out)
print("deciding", flush=True)
for _ in out:
    pass
"""


def test_a_batch_under_a_fork_server_leaves_nothing_behind_a_kill_9():
    proc = subprocess.Popen([sys.executable, "-c", PROGRAM], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "deciding"
        kids = psutil.Process(proc.pid).children(recursive=True)
        assert any("forkserver" in " ".join(k.cmdline()) for k in kids)
    finally:
        proc.kill()
        proc.wait()
    _, alive = psutil.wait_procs(kids, timeout=20)
    assert not alive, [" ".join(p.cmdline())[-80:] for p in alive]


def _die_half_way_through_a_result():
    """In a pool's worker: write the start of a result message into the pool's result pipe (a
    length, then less than that), then die, as a worker killed while sending its answer does."""
    import os
    import signal
    import struct

    frame = sys._getframe()
    while frame is not None and "result_queue" not in frame.f_locals:
        frame = frame.f_back
    writer = frame.f_locals["result_queue"]._writer
    os.write(writer.fileno(), struct.pack("!i", 100000) + b"\x80" * 100)
    os.kill(os.getpid(), signal.SIGKILL)


def _pool():
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("forkserver"))


def test_a_worker_dead_half_way_through_its_result_leaves_a_bare_pool_waiting_for_good():
    """The fault the guard is for (CPython 3.11's pool): without it, the future of the dead worker
    never ends.  A Python whose pool notices by itself skips this test, saying so."""
    from concurrent.futures import TimeoutError as FuturesTimeout
    from concurrent.futures.process import BrokenProcessPool

    import pytest

    from solver.base.procs import unstick

    pool = _pool()
    try:
        future = pool.submit(_die_half_way_through_a_result)
        with pytest.raises(FuturesTimeout):
            try:
                future.result(timeout=6)
            except BrokenProcessPool:
                pytest.skip(f"this Python ({sys.version.split()[0]}) notices the dead worker by itself")
    finally:
        unstick(pool)
        pool.shutdown(wait=False, cancel_futures=True)


def test_the_guard_takes_a_pool_a_dead_worker_left_waiting_for_broken():
    from concurrent.futures.process import BrokenProcessPool

    import pytest

    from solver.base.procs import guard

    pool = _pool()
    guard(pool, grace=0.5)
    try:
        assert pool.submit(int, "7").result(timeout=60) == 7        # both workers up
        # broken within a generous deadline (a bare pool waits for good; the guard takes about
        # its grace, 0.5 s), not within a window a busy machine could miss
        with pytest.raises(BrokenProcessPool):
            pool.submit(_die_half_way_through_a_result).result(timeout=60)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
