"""A pool's processes leave when the process that started them is killed outright (kill -9),
also where they run under a fork server (the service's pool; a batch started by a threaded
program, as the Streamlit pages are): no solver process, fork server or resource tracker is
left behind (solver/procs.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]

# A threaded program (so the batch pool runs under a fork server) deciding cases on 2 workers.
PROGRAM = """
import json, threading, time
threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
from solver.batch import stream_encoded
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
