"""The store in PostgreSQL (`--store postgresql://...`): Debian's PostgreSQL, started here in a
temporary folder on a free port (skipped where it is not installed; .ci/run installs it).  The
same contract as the SQLite file: a $submit is recorded before it is answered, $inquire gives
the same bytes back after kill -9 and a restart, `audit` lists what was decided; a URL's
password never shows in a message."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from test_service import FHIR, free_port, kill_9_during_load_loses_nothing

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (the [test] extra has it)")
BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
if not BIN:
    pytest.skip("PostgreSQL is not installed (.ci/run installs Debian's postgresql)", allow_module_level=True)
BIN = Path(BIN[-1])


@pytest.fixture(scope="module")
def pg_url():
    """A throwaway PostgreSQL server: initdb in a temporary folder, trust on 127.0.0.1 only."""
    root = os.geteuid() == 0
    as_user = ["runuser", "-u", "postgres", "--"] if root else []
    folder = Path(tempfile.mkdtemp(prefix="pa-pg-"))
    data = folder / "data"
    if root:
        shutil.chown(folder, "postgres")
    subprocess.run([*as_user, str(BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "pa", "--no-sync"],
                   check=True, capture_output=True, timeout=120)
    port = free_port()
    proc = subprocess.Popen([*as_user, str(BIN / "postgres"), "-D", str(data), "-p", str(port), "-k", str(folder),
                             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=on"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"postgresql://pa@127.0.0.1:{port}/postgres"
    deadline = time.time() + 60
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            break
        except psycopg.OperationalError:
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"PostgreSQL did not start: {proc.stderr.read().decode(errors='replace')[-2000:]}")
            time.sleep(0.2)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(folder, ignore_errors=True)


def fresh(url: str) -> str:
    """An empty database of its own on the server (each test starts clean)."""
    name = f"t{time.time_ns()}"
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}")
    return url.rsplit("/", 1)[0] + "/" + name


def test_the_store_keeps_and_lists_what_it_recorded(pg_url):
    from solver.service.postgres import PgStore
    from solver.service.records import Record
    from solver.service.store import open_store

    url = fresh(pg_url)
    store = open_store(url)
    assert isinstance(store, PgStore)
    seqs = [store.record(Record("submit", b"req-%d" % i, b"answer-%d" % i, FHIR, "v1", {"ohsu": "approved"},
                                submission="urn:x|A")) for i in range(3)]
    store.record(Record("crd", b"hook", b"cards", "application/json", "v1", {"masshealth": "needs_info"}))
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    assert store.submission("urn:x|A") == (b"answer-2", FHIR)                  # the latest
    assert store.submission("urn:x|B") is None
    assert store.count() == 4
    assert [r["kind"] for r in store.list(kind="crd")] == ["crd"]
    assert len(store.list(plan="ohsu")) == 3 and store.list(since="2999-01-01") == []
    store.close()
    again = open_store(url)                          # the table is there; nothing lost
    assert again.count() == 4
    again.close()


def test_postgresql_lists_as_asked(pg_url):
    from solver.service.store import open_store
    from test_store import check_listing, fill

    store = open_store(fresh(pg_url))
    try:
        fill(store)
        check_listing(store)
    finally:
        store.close()


def test_kill_9_during_load_loses_no_answered_submission(pg_url, tmp_path):
    kill_9_during_load_loses_nothing(tmp_path, fresh(pg_url))


def test_a_store_that_cannot_be_reached_is_said_without_its_password(tmp_path):
    closed = free_port()
    url = f"postgresql://pa:s3cret-pw@127.0.0.1:{closed}/postgres"
    for args in (["serve", "--port", str(free_port()), "--store", url], ["audit", "--store", url]):
        r = subprocess.run([sys.executable, "-m", "solver.cli", *args], capture_output=True, text=True,
                           cwd=tmp_path, timeout=60)
        assert r.returncode == 2, r.stderr
        assert "--store postgresql://pa:***@127.0.0.1" in r.stderr and "s3cret" not in r.stderr + r.stdout
        assert "Traceback" not in r.stderr
    bad = subprocess.run([sys.executable, "-m", "solver.cli", "audit", "--store", "postgresql://pa:s3cret@[bad"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert bad.returncode == 2 and "s3cret" not in bad.stderr and "Traceback" not in bad.stderr, bad.stderr


def test_a_changed_answer_is_said_damaged_never_sent_and_audit_names_it(pg_url, tmp_path):
    """The digest check on PostgreSQL: a row's answer altered by SQL is a damaged record to $inquire,
    to the store's readers and to `audit` (exit 1), never its bytes."""
    from solver.service.records import DamagedRecord
    from solver.service.store import open_store
    from test_service import Server
    from test_store import audit, inquiry, said_damaged, submit_all

    url = fresh(pg_url)
    answers = submit_all(tmp_path, url, ["pg-0", "pg-1", "pg-2"])
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("UPDATE decisions SET answer = %s WHERE seq = 2", (answers["pg-0"],))
    store = open_store(url)
    try:
        with pytest.raises(DamagedRecord, match="#2 is damaged: its answer does not match the SHA-256"):
            store.submission("urn:test|pg-1")
        with pytest.raises(DamagedRecord):
            store.entry(2)
        assert store.entry(3)["answer"] == answers["pg-2"]
        assert [r["integrity"] for r in store.list(verify=True)] == ["ok", "damaged", "ok"]
        assert [r["seq"] for r in store.list(verify=True, limit=2)] == [2, 3]
    finally:
        store.close()
    s = Server(tmp_path, "--workers", "1", store=url)
    try:
        said_damaged(s.post("/fhir/Claim/$inquire", inquiry("pg-1"), FHIR), "pg-1")
        assert s.post("/fhir/Claim/$inquire", inquiry("pg-2"), FHIR).content == answers["pg-2"]
    finally:
        assert s.stop() == 0
    words = audit(url)
    assert words.returncode == 1 and words.stdout.splitlines()[-1] == \
        "1 damaged (never sent; restore them from a backup): #2", words.stdout + words.stderr


def test_an_old_table_gets_the_digest_column_and_its_rows_read_unverified(pg_url):
    import hashlib

    from solver.service.records import Record
    from solver.service.store import open_store

    url = fresh(pg_url)
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("CREATE TABLE decisions (seq BIGSERIAL PRIMARY KEY, kind TEXT NOT NULL, submission TEXT, "
                   "request_sha256 TEXT NOT NULL, request BYTEA NOT NULL, answer BYTEA NOT NULL, media_type TEXT "
                   "NOT NULL, rules_version TEXT NOT NULL, decided_at TEXT NOT NULL, decisions TEXT NOT NULL)")
        db.execute("INSERT INTO decisions (kind, submission, request_sha256, request, answer, media_type, "
                   "rules_version, decided_at, decisions) VALUES ('submit', 'urn:x|old', %s, '{}', '{\"a\": 1}', "
                   "%s, 'v0', '2026-01-02T00:00:00+00:00', '{}')", (hashlib.sha256(b"{}").hexdigest(), FHIR))
    for _ in range(2):
        store = open_store(url)
        try:
            assert store.submission("urn:x|old") == (b'{"a": 1}', FHIR)
            store.record(Record("submit", b"{}", b"{}", FHIR, "v1", {}, submission="urn:x|new"))
            assert [r["integrity"] for r in store.list(verify=True)][:2] == ["unverified", "ok"]
        finally:
            store.close()
