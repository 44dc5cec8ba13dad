"""Limits on loading a rule base, and a clean stop while clingo loads one.

A rule folder is data anyone may hand to `--rules` or `PA_SOLVER_LOGIC`, and
clingo can spend forever on it: a grounding that never ends
(`n(0). n(X+1) :- n(X).`), a 50 MB file (minutes of parsing), an `#include` of
a FIFO (a read that never returns).  Three limits hold a load:

- `rules_mb`: the bytes of every file clingo would read (the folder's `.lp`
  files and what they `#include`), checked while the engine reads them for the
  version hash, before clingo sees any (solver/engine/solver.py);
- `seconds` and `memory_mb`: each parse-and-ground of the rule base, watched by
  a thread while clingo works (clingo releases the GIL; `Control.ground` cannot
  be interrupted, so past a limit the watch says so in one line and ends the
  process, exit 2).

The watch runs only where a command asked for it (`guard`: the command line);
a library caller's process is never ended from here.  The real rule base loads
in about 0.2 s and 5 MB per grounding, in 130 kB of files.

Signals.  While clingo grounds, the main thread is inside C and no Python signal
handler runs; one that ran later inside clingo's logger callback and raised
(SystemExit, KeyboardInterrupt) would abort the process with a traceback and
clingo's `PANIC: exception in nothrow scope`.  During a guarded load SIGTERM
and SIGINT are therefore noted through `signal.set_wakeup_fd`, written by the
C-level handler at once, and the watch thread ends the process (exit 128 +
the signal, as the shell reports a killed command); a signal that lands as the
load finishes is raised again after it, where the command's own handlers see it.

No clingo import here: a command that loads no rules pays nothing for this module.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Callable, Mapping, Optional

# name of the environment variable, default, what it limits (the --help text: HELP)
SETTINGS = (
    ("PA_SOLVER_LOAD_SECONDS", 30.0, "seconds each grounding of a rule base may take"),
    ("PA_SOLVER_LOAD_MB", 1024.0, "memory (MB) each grounding of a rule base may add"),
    ("PA_SOLVER_RULES_MB", 4.0, "size (MB) of a rule base's files together, includes counted"),
)

HELP = ("Limits on loading a rule base (logic/, --rules DIR, PA_SOLVER_LOGIC): "
        + "; ".join(f"{name}, {what} (default {default:g})" for name, default, what in SETTINGS)
        + ". A rule base over a limit is refused in one line, exit 2.")

TICK = 0.025            # seconds between the watch's looks at the clock and the memory


class RuleBaseError(RuntimeError):
    """The rule base violates one of its own checks (vocabulary.lp, error/2), or cannot be loaded
    (solver/engine/solver.py).  Defined here, not in the engine, so that the command line can catch it
    without importing clingo."""


class Limits:
    def __init__(self, seconds: float = SETTINGS[0][1], memory_mb: float = SETTINGS[1][1],
                 rules_mb: float = SETTINGS[2][1]):
        self.seconds, self.memory_mb, self.rules_mb = seconds, memory_mb, rules_mb

    @property
    def rules_bytes(self) -> int:
        return int(self.rules_mb * (1 << 20))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "Limits":
        """The limits the environment sets; ValueError naming the variable for a value that is
        not a positive number."""
        got = []
        for name, default, _ in SETTINGS:
            text = environ.get(name, "").strip()
            if not text:
                got.append(default)
                continue
            try:
                value = float(text)
            except ValueError:
                value = float("nan")
            if not value > 0 or value == float("inf"):
                raise ValueError(f"{name}={text!r}: expected a positive number")
            got.append(value)
        return cls(*got)


# What the engine applies: the size limit always, the watch only once `guard` is called.
LIMITS = Limits()
_SAY: Optional[Callable[[str], None]] = None


def guard(limits: Limits, say: Callable[[str], None]) -> None:
    """From now on every load of a rule base in this process runs under `limits`; past one,
    `say` one line and end the process with exit 2 (the command line's choice)."""
    global LIMITS, _SAY
    LIMITS, _SAY = limits, say


def loading(folder: str) -> "_Watch":
    """A context around one parse-and-ground of the rule base in `folder` (a no-op unless `guard`
    was called)."""
    return _Watch(folder) if _SAY is not None else _NOTHING


class _Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


_NOTHING = _Nothing()
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _rss() -> Optional[int]:
    """This process's resident memory in bytes (None where it cannot be read cheaply)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024      # the peak: an upper bound
    except (ImportError, OSError):
        return None


try:
    _PAGE = os.sysconf("SC_PAGE_SIZE")
except (AttributeError, ValueError, OSError):      # pragma: no cover - not POSIX
    _PAGE = 4096


class _Watch:
    """One guarded load: a thread that watches the clock, the memory and the signals."""

    def __init__(self, folder: str):
        self.folder = folder
        self.limits = LIMITS
        self.late: list[int] = []

    def __enter__(self):
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)
        self.done = False
        self.old_fd = None
        self.old_handlers: dict = {}
        if threading.current_thread() is threading.main_thread():
            try:
                self.old_fd = signal.set_wakeup_fd(self.write_fd, warn_on_full_buffer=False)
                self.old_handlers = {s: signal.signal(s, _noted) for s in _SIGNALS}
            except (ValueError, OSError):              # pragma: no cover - no signals here
                self.old_fd = None
        self.start = time.monotonic()
        self.base = _rss()
        self.thread = threading.Thread(target=self._watch, name="rule-base-load-watch", daemon=True)
        self.thread.start()
        return self

    def _watch(self) -> None:
        import select

        limits, deadline = self.limits, self.start + self.limits.seconds
        while True:
            ready, _, _ = select.select([self.read_fd], [], [], TICK)
            signals = [b for b in (_drain(self.read_fd) if ready else b"") if b in _SIGNALS]
            if self.done:
                self.late.extend(signals)
                return
            if signals:
                _leave(128 + signals[0])
            if time.monotonic() > deadline:
                self._over(f"did not load within {limits.seconds:g} s (PA_SOLVER_LOAD_SECONDS)")
            rss = _rss()
            if rss is not None and self.base is not None and rss - self.base > limits.memory_mb * (1 << 20):
                self._over(f"took more than {limits.memory_mb:g} MB of memory to load (PA_SOLVER_LOAD_MB)")

    def _over(self, what: str) -> None:
        try:
            _SAY(f"the rule base in {self.folder} {what}")
        finally:
            _leave(2)

    def __exit__(self, *exc) -> None:
        self.done = True
        try:
            os.write(self.write_fd, b"\0")             # wake the watch now, not at its next tick
        except OSError:
            pass
        self.thread.join()
        if self.old_fd is not None:
            signal.set_wakeup_fd(self.old_fd)
            for s, handler in self.old_handlers.items():
                if handler is not None:
                    signal.signal(s, handler)
        late = self.late + [b for b in _drain(self.read_fd) if b in _SIGNALS]
        os.close(self.read_fd)
        os.close(self.write_fd)
        if late:                                        # it came as the load ended: the usual handler's
            signal.raise_signal(late[0])


def _noted(signum, frame) -> None:
    """The Python-level handler during a load: nothing (the wakeup byte is the note), so that
    nothing is raised inside a clingo callback."""


def _drain(fd: int) -> bytes:
    out = b""
    while True:
        try:
            chunk = os.read(fd, 256)
        except (BlockingIOError, InterruptedError):
            return out
        except OSError:
            return out
        if not chunk:
            return out
        out += chunk


def _leave(code: int) -> None:
    """End the process now (clingo holds the main thread; nothing can be unwound)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(code)
