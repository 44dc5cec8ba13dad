"""How many worker processes a command starts (issue 23, item 6): `--workers` on batch, explain,
report and serve is a whole number from 1 to MAX_WORKERS, anything else one line and exit 2;
a number this machine cannot run at once (its usable cores, its available memory at the
measured size of a solver process) is lowered, said in one line on stderr, and the output is
the same bytes as with one worker."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from solver.analysis import workers as plan
from solver.analysis.engines import map_chunks
from solver.analysis.workers import MAX_WORKERS, WORKER_MEMORY, EngineError, usable_cores, worker_plan
from conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
BATCH = str(EXAMPLES / "batch.jsonl")


def cli(*args: str, stdin: bytes | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return run_cli(*args, stdin=stdin, timeout=timeout, text=False)


# ------------------------------------------------------------------ refused: one line, exit 2, before any work

@pytest.mark.parametrize("value, why", [
    ("500", f"must be at most {MAX_WORKERS}, not 500"),
    ("100000", f"must be at most {MAX_WORKERS}, not 100000"),
    ("0", "must be at least 1, not 0"),
    ("-1", "must be at least 1, not -1"),
    ("abc", "expected a whole number, not 'abc'"),
])
def test_batch_refuses_a_worker_count_out_of_range_in_one_line(value, why):
    res = cli("batch", BATCH, "--workers", value, "--no-progress")
    lines = res.stderr.decode().splitlines()
    assert res.returncode == 2 and res.stdout == b"", res.stderr
    assert len(lines) == 1 and lines[0].startswith("error: pa-solver batch: argument --workers: ")
    assert why in lines[0]


@pytest.mark.parametrize("command", [
    ["explain", BATCH], ["report", BATCH], ["batch", BATCH, "--engine", "dask"], ["serve", "--port", "0"],
])
def test_every_command_with_workers_refuses_500(command, tmp_path):
    start = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "solver.cli", *command, "--workers", "500"], capture_output=True,
                         cwd=tmp_path if command[0] == "serve" else ROOT, timeout=120)
    lines = res.stderr.decode().splitlines()
    assert res.returncode == 2 and res.stdout == b"" and len(lines) == 1, res.stderr
    assert f"argument --workers: must be at most {MAX_WORKERS}, not 500" in lines[0]
    assert time.monotonic() - start < 60          # refused before any work (a server never started)
    assert not (tmp_path / "decisions.sqlite").exists()


def test_the_help_gives_the_bounds_the_code_uses():
    for command in ("batch", "report", "explain", "serve"):
        text = " ".join(cli(command, "--help").stdout.decode().split())
        assert f"1-{MAX_WORKERS}" in text and f"{WORKER_MEMORY['local'] >> 20} MiB each" in text, command
    text = " ".join(cli("batch", "--help").stdout.decode().split())
    assert f"{WORKER_MEMORY['dask'] >> 20} MiB with --engine dask" in text


# ------------------------------------------------------------------ lowered: a note, and the same output

def _more_than_this_machine_runs() -> int:
    n = worker_plan(None)[0] + 1
    if n > MAX_WORKERS:
        pytest.skip(f"this machine runs {n - 1} workers at once: no number up to {MAX_WORKERS} is lowered")
    return n


NOTE = re.compile(r"note: --workers (\d+) lowered to (\d+): this machine runs \2 solver process(es)? at once \(.+\)")


def test_a_lowered_batch_says_so_in_one_line_and_writes_what_one_worker_writes():
    n = _more_than_this_machine_runs()
    capped = cli("batch", BATCH, "--workers", str(n), "--no-progress")
    one = cli("batch", BATCH, "--workers", "1", "--no-progress")
    assert capped.returncode == one.returncode == 0, capped.stderr
    lines = capped.stderr.decode().splitlines()
    assert len(lines) == 1 and NOTE.fullmatch(lines[0]), lines
    assert int(NOTE.fullmatch(lines[0])[1]) == n and int(NOTE.fullmatch(lines[0])[2]) < n
    assert capped.stdout == one.stdout and len(one.stdout.splitlines()) == 200
    assert one.stderr == b""                       # a number the machine runs: no note


def test_a_lowered_report_counts_what_one_worker_counts():
    n = _more_than_this_machine_runs()
    capped = cli("report", BATCH, "--workers", str(n), "--max-changes", "0", "--format", "json", "--no-progress")
    one = cli("report", BATCH, "--workers", "1", "--max-changes", "0", "--format", "json", "--no-progress")
    assert capped.returncode == one.returncode == 0, capped.stderr
    assert [bool(NOTE.fullmatch(line)) for line in capped.stderr.decode().splitlines()] == [True]
    assert json.loads(capped.stdout) == json.loads(one.stdout)


def test_serve_lowers_its_solver_processes_and_says_so(tmp_path):
    n = _more_than_this_machine_runs()
    proc = subprocess.Popen([sys.executable, "-m", "solver.cli", "serve", "--port", "0", "--workers", str(n)],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        note = proc.stderr.readline().decode().rstrip("\n")      # both lines come before the server starts
        started = proc.stderr.readline().decode()
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    match = NOTE.fullmatch(note)
    assert match and int(match[1]) == n, (note, started)
    lowered = int(match[2])
    assert f"; {lowered} solver process{'es' * (lowered != 1)};" in started


# ------------------------------------------------------------------ the plan itself

def test_the_plan_is_the_cores_and_the_memory(monkeypatch):
    monkeypatch.setattr(plan, "usable_cores", lambda: 8)
    monkeypatch.setattr(plan, "available_memory", lambda: 64 << 30)
    assert worker_plan(None) == (8, None) and worker_plan(3) == (3, None) and worker_plan(8) == (8, None)
    n, note = worker_plan(200)
    assert n == 8 and note == "--workers 200 lowered to 8: this machine runs 8 solver processes at once " \
                              "(8 usable cores)"
    # memory binds: 3/4 of 300 MiB holds 3 local workers of 64 MiB, 1 Dask worker of 128 MiB
    monkeypatch.setattr(plan, "available_memory", lambda: 300 << 20)
    assert worker_plan(None) == (3, None)
    n, note = worker_plan(8)
    assert n == 3 and "(75% of the 300 MiB of memory available, at about 64 MiB per solver process)" in note
    assert worker_plan(8, "dask")[0] == 1
    monkeypatch.setattr(plan, "available_memory", lambda: 0)            # never fewer than one
    assert worker_plan(4) == (1, worker_plan(4)[1]) and worker_plan(4)[1].startswith("--workers 4 lowered to 1")
    monkeypatch.setattr(plan, "available_memory", lambda: None)          # unknown: the cores only
    assert worker_plan(None) == (8, None)
    # a remote Dask cluster's workers are not ours to count: the number is only checked
    assert worker_plan(200, None) == (200, None)
    for bad in (0, -1, MAX_WORKERS + 1, 1.5, True, "4"):
        with pytest.raises(EngineError):
            worker_plan(bad)


def test_map_chunks_starts_no_more_workers_than_the_plan(monkeypatch):
    monkeypatch.setattr(plan, "available_memory", lambda: 100 << 20)    # one 64 MiB worker fits in 3/4
    pids = set(map_chunks(_pid, [[i] for i in range(8)], workers=8))
    assert len(pids) == 1


def _pid(chunk):
    import os

    return os.getpid()


def test_available_memory_is_read():
    avail = plan.available_memory()
    if not sys.platform.startswith("linux"):
        pytest.skip("read from /proc/meminfo on Linux")
    with open("/proc/meminfo") as fh:
        total = int(next(line for line in fh if line.startswith("MemTotal:")).split()[1]) * 1024
    assert 0 < avail <= total
    assert usable_cores() >= 1


# ------------------------------------------------------------------ the size a worker is planned at, measured

def test_a_solver_process_stays_within_the_memory_planned_for_it():
    """A batch's workers, measured while they hold the cases decided so far: each one's RSS
    (shared pages counted, so an over-estimate) is within WORKER_MEMORY['local']."""
    psutil = pytest.importorskip("psutil")
    lines = (EXAMPLES / "batch.jsonl").read_bytes().splitlines() * 10            # 2,000 cases
    proc = subprocess.Popen([sys.executable, "-m", "solver.cli", "batch", "-", "--workers", "2", "--no-progress",
                             "--max-changes", "1"], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    gate = threading.Event()

    def feed():                                  # half the cases, then the rest once the workers are measured
        try:
            proc.stdin.write(b"\n".join(lines[:1000]) + b"\n")
            proc.stdin.flush()
            gate.wait(600)
            proc.stdin.write(b"\n".join(lines[1000:]) + b"\n")
            proc.stdin.close()
        except OSError:
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        got = 0
        # the workers have decided at least 300 cases (the batch has read about 960 of the 1,000 and waits
        # for a whole chunk of 64 more, so its last few lines may sit in its output's buffer)
        while got < 300:
            line = proc.stdout.readline()
            assert line, proc.stderr.read().decode()[-2000:]
            got += 1
        workers = [p for p in psutil.Process(proc.pid).children() if "resource_tracker" not in " ".join(p.cmdline())]
        sizes = [p.memory_info().rss for p in workers]
        assert sizes, "no worker process found"
        assert max(sizes) <= WORKER_MEMORY["local"], [s >> 20 for s in sizes]
    finally:
        gate.set()
        out = proc.stdout.read()                 # the rest, while the rest of the cases go in (not communicate:
        err = proc.stderr.read()                 # it would miss what readline buffered)
        proc.wait(600)
        writer.join(60)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert got + len(out.splitlines()) == 2000
