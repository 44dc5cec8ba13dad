"""A served app for the tests of any room: `pa-solver serve` in a subprocess on a free local port,
up when /health answers (the service's workers warm every kind of request first)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`pa-solver serve` in a subprocess, up when /health answers."""

    def __init__(self, tmp: Path, *args: str, store: Path | None = None):
        self.port = free_port()
        self.store = store or tmp / "decisions.sqlite"
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "solver.cli", "serve", "--port", str(self.port),
                                      "--store", str(self.store), *args], cwd=tmp,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 120                   # its workers warm every kind of request first
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {self.proc.stderr.read().decode()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("the server did not start")

    def post(self, path: str, body: bytes, media: str = "application/json", **kw) -> httpx.Response:
        return httpx.post(self.url + path, content=body, headers={"Content-Type": media, **kw.pop("headers", {})},
                          timeout=kw.pop("timeout", 60), **kw)

    def stop(self, sig=signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.returncode != 0:                   # say why, in the failure
            print("server stderr:", self.proc.stderr.read().decode(errors="replace")[-3000:])
        return self.proc.returncode
