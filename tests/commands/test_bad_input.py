"""Hostile and broken input, options and faults: nothing is lost, nothing
prints a traceback.  Each test names the edge it guards."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from solver import decide_many
from solver.text.jsontext import NotJSON, loads
from solver.case.models import CaseError, parse_case
from conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GOOD = (EXAMPLES / "batch.jsonl").read_bytes().splitlines()

DEEP = b"[" * 10_000 + b"]" * 10_000
HUGE_INT = b'{"case_id":"big","facts":{"age_years":' + b"9" * 5000 + b"}}"
BAD_UTF8 = b'{"case_id":"u8","facts":{"diagnosis":"\xff\xfe"}}'
INF = b'{"case_id":"n1","facts":{"age_years":1e309}}'
DUP = b'{"case_id":"dup","drug":"blinatumomab","drug":"inotuzumab_ozogamicin"}'
SURROGATE = b'{"case_id":"sur","facts":{"diagnosis":"\\ud800"}}'
HOSTILE = [DEEP, HUGE_INT, BAD_UTF8, INF, DUP, SURROGATE]


def cli(*args, stdin=None, timeout=180, **kw):
    """pa-solver as a user runs it (bytes in, bytes out)."""
    return run_cli(*args, stdin=stdin, timeout=timeout, text=False, **kw)


def no_traceback(res):
    assert b"Traceback" not in res.stderr and b"Traceback" not in res.stdout, res.stderr.decode(errors="replace")


# ------------------------------------------------------------------ the reader

@pytest.mark.parametrize("data, why", [
    (DEEP, "nested more than 64 deep"), (HUGE_INT, "too many digits"), (BAD_UTF8, "not UTF-8"),
    (DUP, "'drug' appears twice"), (SURROGATE, "lone UTF-16 surrogate"), (b"{broken", "Expecting"),
])
def test_every_unreadable_text_is_one_clear_error(data, why):
    with pytest.raises(NotJSON, match=why):
        loads(data)


def test_a_byte_order_mark_is_accepted_and_a_case_id_survives_a_bad_value():
    assert loads(b"\xef\xbb\xbf" + b'{"case_id": "w"}') == {"case_id": "w"}
    assert parse_case(b"\xef\xbb\xbf" + (EXAMPLES / "ohsu_adult_rr.json").read_bytes()).case_id == "example-ohsu-adult-rr"
    with pytest.raises(CaseError) as err:
        parse_case(INF)
    assert err.value.case_id == "n1" and "facts.age_years" in str(err.value)
    with pytest.raises(CaseError) as err:
        parse_case(HUGE_INT)
    assert err.value.case_id == "big"


# ------------------------------------------------------------------ batch: one line out per line in

def hostile_batch() -> bytes:
    lines = GOOD[:150] + HOSTILE + [b"", b"   "] + GOOD[150:]
    return b"\n".join(lines) + b"\n"


@pytest.fixture(scope="module")
def batch_runs():
    return {w: cli("batch", "-", "--workers", w, "--no-progress", stdin=hostile_batch()) for w in ("1", "2")}


def test_hostile_lines_become_error_lines_in_place_and_the_rest_is_decided(batch_runs):
    data = hostile_batch()
    numbered = [(i, line) for i, line in enumerate(data.split(b"\n")[:-1], 1) if line.strip()]
    for workers, res in batch_runs.items():
        no_traceback(res)
        assert res.returncode == 1, (workers, res.stderr)         # some lines were errors
        out = res.stdout.decode("utf-8").splitlines()
        assert len(out) == len(numbered) == 200 + len(HOSTILE)
        rows = [json.loads(line) for line in out]
        errors = [r for r in rows if "error" in r]
        assert [r["line"] for r in errors] == list(range(151, 151 + len(HOSTILE)))
        assert [r["case_id"] for r in errors] == [None, "big", "u8", "n1", "dup", "sur"]
        decided = [r for r in rows if "results" in r]
        assert len(decided) == 200
        # the good lines give exactly what they give alone
        assert [r["case_id"] for r in decided] == [json.loads(g)["case_id"] for g in GOOD]
    assert batch_runs["1"].stdout == batch_runs["2"].stdout


def test_a_clean_batch_exits_zero_and_matches_the_hostile_runs_good_lines(batch_runs):
    clean = cli("batch", str(EXAMPLES / "batch.jsonl"), "--workers", "2")
    assert clean.returncode == 0
    hostile_ok = [line for line in batch_runs["2"].stdout.splitlines() if b'"results"' in line]
    assert clean.stdout.splitlines() == hostile_ok


def test_decide_many_and_an_over_long_line(monkeypatch):
    got = list(decide_many([DEEP, GOOD[0], INF], workers=1))
    assert isinstance(got[0], CaseError) and isinstance(got[2], CaseError) and got[2].case_id == "n1"
    assert got[1].case_id == json.loads(GOOD[0])["case_id"]

    from solver.commands import io as cli_io

    monkeypatch.setattr(cli_io, "MAX_LINE", 100)
    src = io.BytesIO(GOOD[0][:90] + b"\n" + b"x" * 1000 + b"\n\n" + GOOD[1][:50] + b"\n")
    errors: list = []
    lines = list(cli_io.input_lines(src, errors))
    assert [n for n, _ in lines] == [1, 2, 4] and lines[1][1] is cli_io.TOO_LONG and not errors


def test_decide_many_yields_what_it_decided_before_its_source_fails():
    def source():
        for line in GOOD[:100]:
            yield line
        raise OSError("the source broke")

    for workers in (1, 2):
        got = []
        with pytest.raises(OSError, match="the source broke"):
            for r in decide_many(source(), workers=workers):
                got.append(r)
        assert [r.case_id for r in got] == [json.loads(g)["case_id"] for g in GOOD[:100]]


# ------------------------------------------------------------------ single cases

@pytest.mark.parametrize("data, why", [
    (DEEP, b"nested more than 64 deep"), (HUGE_INT, b"too many digits"), (BAD_UTF8, b"not UTF-8"),
    (INF, b"facts.age_years: must be a finite number"), (DUP, b"'drug' appears twice"),
])
def test_decide_refuses_hostile_input_with_one_line(data, why, tmp_path):
    for args, stdin in ((["-"], data), ([str(tmp_path / "case.json")], None)):
        (tmp_path / "case.json").write_bytes(data)
        res = cli("decide", *args, stdin=stdin)
        no_traceback(res)
        assert res.returncode == 2 and res.stdout == b""
        assert why in res.stderr and res.stderr.count(b"\n") == 1
        res.stderr.decode("utf-8")                # what we print is text, whatever came in


def test_decide_with_stdin_closed_and_a_bom_file(tmp_path):
    res = subprocess.run([sys.executable, "-m", "solver.cli", "decide", "-"], stdin=subprocess.DEVNULL,
                         capture_output=True, cwd=ROOT, timeout=60)
    assert res.returncode == 2 and b"not valid JSON" in res.stderr          # empty stdin
    closed = subprocess.run(f"{sys.executable} -m solver.cli decide - <&-", shell=True, capture_output=True,
                            cwd=ROOT, timeout=60)
    no_traceback(closed)
    assert closed.returncode == 2 and b"standard input" in closed.stderr and b"closed" in closed.stderr
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + (EXAMPLES / "ohsu_adult_rr.json").read_bytes())
    assert cli("decide", str(bom), "--json").stdout == cli("decide", str(EXAMPLES / "ohsu_adult_rr.json"),
                                                           "--json").stdout


def test_a_case_file_larger_than_a_line_may_be_is_refused_without_reading_it_all():
    res = cli("decide", "-", stdin=b" " * (17 << 20))
    no_traceback(res)
    assert res.returncode == 2 and b"larger than 16 MiB" in res.stderr


def test_the_table_cannot_be_forged_by_a_case_id():
    case = {"case_id": "x\n\nohsu: APPROVED via ohsu_adult_rr_single\x1b[2J\u202e", "plans": ["ohsu"], "facts": {}}
    res = cli("decide", "-", stdin=json.dumps(case).encode())
    text = res.stdout.decode()
    assert "\x1b" not in text and "\u202e" not in text
    assert [line for line in text.splitlines() if line.startswith("ohsu:")] == ["ohsu: NEEDS_INFO"] or \
        all("APPROVED" not in line for line in text.splitlines() if line.startswith("ohsu"))
    assert "x\\x0a\\x0aohsu: APPROVED" in text


def test_explain_reads_jsonl_on_stdin_like_batch():
    lines = b"\n".join(GOOD[:3]) + b"\n"
    res = cli("explain", "-", "--max-changes", "1", stdin=lines)
    assert res.returncode == 0
    via_batch = cli("batch", "-", "--max-changes", "1", stdin=lines)
    assert res.stdout == via_batch.stdout and len(res.stdout.splitlines()) == 3
    one = cli("explain", "-", "--json", "--max-changes", "1", stdin=(EXAMPLES / "ohsu_adult_rr.json").read_bytes())
    assert one.returncode == 0 and json.loads(one.stdout)["case_id"] == "example-ohsu-adult-rr"


# ------------------------------------------------------------------ options and output checked first

@pytest.mark.parametrize("args, why", [
    (["batch", "examples/batch.jsonl", "--workers", "-1"], b"--workers: must be at least 1"),
    (["batch", "examples/batch.jsonl", "--workers", "0", "--engine", "dask"], b"--workers: must be at least 1"),
    (["batch", "examples/batch.jsonl", "--engine", "dask", "--scheduler", "nonsense://foo"], b"unknown protocol"),
    (["batch", "examples/batch.jsonl", "--scheduler", "tcp://localhost:8786"], b"--scheduler needs --engine dask"),
    (["report", "examples/batch.jsonl", "-o", "no/such/dir/r.json", "--format", "json"], b"does not exist"),
    (["report", "examples/batch.jsonl", "-o", "examples", "--format", "json"], b"a directory"),
    (["report", "examples/batch.jsonl", "--top", "0"], b"--top: must be at least 1"),
    (["decide", "examples"], b"a directory, not a file"),
    (["batch", "no/such.jsonl"], b"no such file"),
])
def test_bad_options_and_paths_exit_2_before_any_work(args, why):
    start = time.monotonic()
    res = cli(*args)
    no_traceback(res)
    assert res.returncode == 2 and why in res.stderr and res.stdout == b""
    assert time.monotonic() - start < 20


def test_a_full_disk_is_an_error_not_a_traceback():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    for args in (["decide", "examples/ohsu_adult_rr.json", "--json"], ["batch", "examples/batch.jsonl"],
                 ["report", "examples/batch.jsonl", "--max-changes", "0", "--format", "json"]):
        with open("/dev/full", "wb") as full:
            res = subprocess.run([sys.executable, "-m", "solver.cli", *args], stdout=full, stderr=subprocess.PIPE,
                                 cwd=ROOT, timeout=120)
        assert res.returncode == 2 and b"No space left on device" in res.stderr, args
        assert b"Traceback" not in res.stderr and b"Exception ignored" not in res.stderr


def test_workers_are_capped_at_the_work():
    from solver.analysis.engines import map_chunks

    pids = set(map_chunks(_pid, [[1], [2]], workers=64))
    assert 1 <= len(pids) <= 2


def test_a_dask_local_cluster_is_capped_at_the_work():
    pytest.importorskip("distributed")
    from solver.analysis.engines import map_chunks

    sizes = set(map_chunks(_cluster_size, [[1], [2]], workers=50, engine="dask"))
    assert sizes == {2}


def _cluster_size(chunk):
    """The number of workers in the cluster this task runs on."""
    from distributed import get_client

    return len(get_client().scheduler_info()["workers"])


def _pid(chunk):
    time.sleep(0.2)
    return os.getpid()


def test_something_that_is_not_a_scheduler_is_refused_in_seconds(monkeypatch):
    pytest.importorskip("distributed")
    from solver.analysis import cluster
    from solver.analysis.engines import map_chunks
    from solver.analysis.workers import EngineError

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    monkeypatch.setattr(cluster, "CONNECT_SECONDS", 2)
    start = time.monotonic()
    with pytest.raises(EngineError, match="cannot reach a Dask scheduler"):
        list(map_chunks(_pid, [[1]], engine="dask", scheduler=f"tcp://127.0.0.1:{port}"))
    assert time.monotonic() - start < 15
    listener.close()


# ------------------------------------------------------------------ faults

def _crash_on_poison(chunk):
    if "poison" in chunk:
        os.kill(os.getpid(), signal.SIGKILL)
    return [("ok", x) for x in chunk]


def test_a_case_that_kills_its_worker_is_an_error_line_and_the_others_are_kept():
    from solver.analysis.batch import lost_cases
    from solver.analysis.engines import map_chunks

    chunks = [["a", "b"], ["c", "poison", "d"], ["e"], ["f"]]
    warnings: list = []
    got = [x for part in map_chunks(_crash_on_poison, chunks, workers=2, on_lost=lost_cases,
                                    warn=warnings.append) for x in part]
    assert [x[1] for x in got if x[0] == "ok"] == ["a", "b", "c", "d", "e", "f"]
    assert [x for x in got if x[0] == "error"] == [("error", None, "(worker): the worker process died deciding this case")]
    assert [x[0] for x in got] == ["ok", "ok", "ok", "error", "ok", "ok", "ok"]
    assert warnings


def _slow_batch(tmp_path) -> Path:
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"\n".join(GOOD * 8) + b"\n")
    return path


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def _wait_for_children(proc, n=2, seconds=30):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        kids = _children(proc.pid)
        if len(kids) >= n:
            return kids
        time.sleep(0.1)
    pytest.fail("the batch started no workers")


@pytest.mark.skipif(sys.platform != "linux", reason="pgrep and prctl: Linux")
def test_killing_a_worker_loses_nothing(tmp_path):
    path = _slow_batch(tmp_path)
    expected = cli("batch", str(path), "--workers", "2", "--max-changes", "1").stdout
    proc = subprocess.Popen([sys.executable, "-m", "solver.cli", "batch", str(path), "--workers", "2",
                             "--max-changes", "1"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    kids = _wait_for_children(proc)
    time.sleep(0.5)
    os.kill(kids[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0 and b"Traceback" not in err and b"worker process died" in err
    assert out == expected


@pytest.mark.skipif(sys.platform != "linux", reason="pgrep and prctl: Linux")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_workers_die_with_their_parent(tmp_path, sig):
    path = _slow_batch(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "solver.cli", "batch", str(path), "--workers", "2",
                             "--max-changes", "2"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    kids = _wait_for_children(proc)
    time.sleep(0.3)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert b"Traceback" not in err
    end = time.monotonic() + 20
    while time.monotonic() < end and any(_alive(k) for k in kids):
        time.sleep(0.1)
    assert not any(_alive(k) for k in kids), "a worker outlived its parent"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_a_worker_dies_of_sigterm_and_leaves_ctrl_c_to_its_parent():
    """The pool ends surviving workers with SIGTERM when one dies; a worker that
    inherited the CLI's SIGTERM handler would raise SystemExit inside a case
    and then block sending it back.  Workers take SIGTERM's default and ignore
    SIGINT (the parent handles Ctrl-C and they die with it)."""
    import signal as sg

    from solver.analysis.pool import die_with_parent, start_pool

    def handler(signum, frame):
        raise SystemExit(1)

    old = sg.signal(sg.SIGTERM, handler)
    try:
        with start_pool(1) as pool:
            got = pool.submit(_signal_dispositions).result(timeout=60)
    finally:
        sg.signal(sg.SIGTERM, old)
    assert got == (sg.SIG_DFL, sg.SIG_IGN)
    assert die_with_parent is not None


def _signal_dispositions():
    import signal as sg

    return sg.getsignal(sg.SIGTERM), sg.getsignal(sg.SIGINT)


def _half_sent_then_dead(chunk, marker):
    """In a worker, the first time: take the result pipe's lock, write half a
    message (a length header promising more than follows) and die, as a worker
    SIGKILLed in the middle of sending its result does."""
    import gc
    from multiprocessing.queues import SimpleQueue

    if not os.path.exists(marker):
        open(marker, "w").close()
        queues = [q for q in gc.get_objects() if isinstance(q, SimpleQueue)]
        for q in queues:
            q._wlock.acquire()
            q._writer._send(b"\x00\x00\x10\x00" + b"half")     # 4096 bytes promised, 4 sent
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.05)
    return [x * 2 for x in chunk]


@pytest.mark.skipif(sys.platform != "linux", reason="fork and SIGKILL: Linux")
def test_a_worker_dead_in_the_middle_of_sending_loses_nothing_and_hangs_nothing(tmp_path):
    """CPython 3.11's pool then waits forever for the rest of the message (and
    the other worker for the pipe's lock): seen here about once in 40 kills
    under load.  The batch notices the dead worker and starts over."""
    from solver.analysis.engines import map_chunks

    marker = str(tmp_path / "died")
    warned = []
    t = time.monotonic()
    got = list(map_chunks(_half_sent_then_dead, ([i, i + 1] for i in range(0, 40, 2)), marker, workers=2,
                          warn=warned.append))
    assert got == [[2 * i, 2 * i + 2] for i in range(0, 40, 2)]
    assert os.path.exists(marker) and warned and time.monotonic() - t < 60


def test_a_bug_reaches_the_user_as_one_line_not_a_traceback(tmp_path, monkeypatch, capsys):
    """Whatever fault a command meets that no check foresaw is said in one line naming it, exit
    70; PA_SOLVER_DEBUG=1 lets it through with its traceback for whoever fixes it."""
    import pytest

    from solver import cli
    from solver.service import store
    from solver.service.sqlstore import SqlStore

    db = tmp_path / "d.sqlite"
    store.open_store(str(db)).close()

    def broken(self, *a, **k):
        raise KeyError("no such column")

    monkeypatch.setattr(SqlStore, "list", broken)
    monkeypatch.delenv("PA_SOLVER_DEBUG", raising=False)
    assert cli.main(["audit", "--store", str(db)]) == 70
    err = capsys.readouterr().err
    assert "internal error, a bug in pa-solver" in err and "KeyError" in err and "Traceback" not in err
    monkeypatch.setenv("PA_SOLVER_DEBUG", "1")
    with pytest.raises(KeyError):
        cli.main(["audit", "--store", str(db)])
