"""A worker process's watch on the process it works for.

A pool started through a fork server (the service; the Streamlit pages) has processes that are
not children of the process that uses them, and each holds both ends of its own queue's pipes:
when that process is killed outright (SIGKILL leaves no goodbye) nothing ends them, and their
fork server and resource tracker stay too (seen after kill -9: tests/test_service.py).  A thread
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
