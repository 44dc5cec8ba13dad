"""Where `pa-solver ui` listens (issue 23, item 8): the pages show cases, health data, and have
no access check, so they listen on 127.0.0.1 unless --host (or Streamlit's --server.address)
says otherwise; other options go on to `streamlit run`, after the command's own."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from solver import cli
from solver.commands.ui import streamlit_option

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ the command it runs

@pytest.fixture
def execv(monkeypatch):
    """cli.main(["ui", ...]) -> the argv it would exec (Streamlit is not started)."""
    seen: dict = {}

    def fake(path, argv):
        seen["argv"] = argv
        raise SystemExit(0)

    monkeypatch.setattr(os, "execv", fake)
    monkeypatch.setenv("PA_SOLVER_STORE", "")

    def run(*args):
        seen.clear()
        with pytest.raises(SystemExit):
            cli.main(["ui", *args])
        return seen["argv"]

    return run


def _address(argv):
    return streamlit_option(argv, "server.address")


def test_the_pages_listen_on_localhost_unless_told(execv, capsys):
    argv = execv("--server.port", "8600")
    assert argv.count("--server.address") == 1 and _address(argv) == "127.0.0.1"
    assert argv[-2:] == ["--server.port", "8600"]          # the user's options last: theirs is the last word
    assert capsys.readouterr().err == ""
    argv = execv("--host", "0.0.0.0", "--server.headless", "true")
    assert _address(argv) == "0.0.0.0" and "--host" not in argv and argv[-2:] == ["--server.headless", "true"]
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("warning: the pages listen on 0.0.0.0: anyone who can reach it")
    for given in (["--server.address", "0.0.0.0"], ["--server.address=0.0.0.0"]):   # Streamlit's own spelling
        argv = execv(*given)
        assert _address(argv) == "0.0.0.0" and sum(a.startswith("--server.address") for a in argv) == 1
    capsys.readouterr()
    for local in ("127.0.0.1", "::1", "localhost", "unix:///tmp/pages.sock"):
        assert _address(execv("--host", local)) == local
        assert capsys.readouterr().err == ""


def test_host_and_server_address_together_are_one_line_and_exit_2(monkeypatch, capsys):
    monkeypatch.setattr(os, "execv", lambda *a: pytest.fail("started"))
    assert cli.main(["ui", "--host", "0.0.0.0", "--server.address", "127.0.0.1"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["error: --host 0.0.0.0 and --server.address 127.0.0.1: choose one"]


def test_the_help_says_where_it_listens_and_how_options_pass():
    text = " ".join(subprocess.run([sys.executable, "-m", "solver.cli", "ui", "--help"], capture_output=True,
                                   text=True, cwd=ROOT, timeout=60).stdout.split())
    assert "listen on 127.0.0.1, this machine only, unless --host" in text
    assert "Every other option is passed on to `streamlit run` as given" in text
    assert "--host ADDRESS" in text


# ------------------------------------------------------------------ the server it starts

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def other_addresses() -> list[str]:
    """This machine's IPv4 addresses that are not loopback."""
    psutil = pytest.importorskip("psutil")
    return [a.address for addrs in psutil.net_if_addrs().values() for a in addrs
            if a.family == socket.AF_INET and not a.address.startswith("127.")]


class Pages:
    """`pa-solver ui` on a free port, up when /_stcore/health answers on 127.0.0.1."""

    def __init__(self, *args: str):
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-m", "solver.cli", "ui", "--server.headless", "true",
                                      "--server.port", str(self.port), *args],
                                     cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{self.port}/_stcore/health"
        deadline = time.monotonic() + 180
        while True:
            try:
                if urllib.request.urlopen(url, timeout=5).read() == b"ok":
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    out = self.stop()
                    pytest.fail(f"the pages did not start on {url}: {out[-2000:]}")
                time.sleep(0.3)

    def listening(self) -> set[str]:
        """The addresses the server listens on at its port (the command execs Streamlit: same pid)."""
        import psutil

        conns = psutil.Process(self.proc.pid).net_connections(kind="inet")
        return {c.laddr.ip for c in conns if c.status == psutil.CONN_LISTEN and c.laddr.port == self.port}

    def cmdline(self) -> list[str]:
        import psutil

        return psutil.Process(self.proc.pid).cmdline()

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.stdout.read().decode(errors="replace")


def test_pa_solver_ui_listens_on_localhost_only():
    pytest.importorskip("psutil")
    pages = Pages()
    try:
        assert pages.listening() == {"127.0.0.1"}
        assert _address(pages.cmdline()) == "127.0.0.1"
        for address in other_addresses():                       # not reachable from another interface
            with pytest.raises(OSError):
                socket.create_connection((address, pages.port), timeout=5).close()
    finally:
        out = pages.stop()
    assert pages.proc.returncode == 0, out[-2000:]
    assert "Network URL" not in out and f"http://127.0.0.1:{pages.port}" in out


def test_pa_solver_ui_host_opens_it_wider_when_asked():
    pytest.importorskip("psutil")
    pages = Pages("--host", "0.0.0.0")
    try:
        assert pages.listening() == {"0.0.0.0"}
        assert _address(pages.cmdline()) == "0.0.0.0"
        for address in other_addresses()[:1]:
            socket.create_connection((address, pages.port), timeout=30).close()
    finally:
        out = pages.stop()
    assert pages.proc.returncode == 0, out[-2000:]
    assert "warning: the pages listen on 0.0.0.0" in out
