"""The record's listing (`audit`, the Recorded decisions page) is done by the database: filters
and the newest-first limit give what filtering the whole list in Python gives, and `count`
agrees.  Run on SQLite here and on PostgreSQL in tests/service/test_store_pg.py.

A damaged record is said, never sent (SERVICE.md, "Nothing lost"): a store written by the
service's own code, then damaged (bytes of an answer overwritten in the file, answers and
requests changed by SQL, whole pages of random bytes), gives `$inquire` the damaged-record
outcome and never those bytes; `serve` refuses a file PRAGMA quick_check rejects, in one line;
`audit` names each damaged record and exits 1.  A store written before the digest opens."""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from solver.service.records import DamagedRecord, Record, StoreError
from solver.service.store import open_store
from conftest import run_cli

DECISIONS = [{"ohsu": "approved"}, {"bcbs_fep": "denied", "bcbsnc": "approved"}, {"masshealth": "needs_info"},
             {"bcbs_fep": "approved", "ohsu": "needs_info"}, {}]


def fill(store) -> None:
    for i in range(25):
        kind = "crd" if i % 3 == 0 else "submit"
        store.record(Record(kind, b"req-%d" % i, b"ans-%d" % i, "application/json", "v1", DECISIONS[i % 5],
                            submission=f"urn:x|S-{i}" if kind == "submit" else f"hook-{i}"))


def check_listing(store) -> None:
    everything = store.list()
    assert [r["seq"] for r in everything] == sorted(r["seq"] for r in everything) and len(everything) == 25
    since = everything[10]["decided_at"]
    for kw in ({}, {"plan": "bcbs_fep"}, {"plan": "ohsu"}, {"plan": "cvs_caremark"}, {"kind": "crd"},
               {"since": since}, {"plan": "ohsu", "kind": "submit", "since": since}, {"before": since},
               {"before": since, "plan": "bcbs_fep"}):
        want = [r for r in everything
                if ("plan" not in kw or kw["plan"] in r["decisions"]) and r["kind"] == kw.get("kind", r["kind"])
                and r["decided_at"] >= kw.get("since", "") and ("before" not in kw or r["decided_at"] < kw["before"])]
        assert store.list(**kw) == want, kw
        assert store.count(**kw) == len(want), kw
        for limit in (1, 4, 100):
            assert store.list(**kw, limit=limit) == want[-limit:], (kw, limit)
    got = store.entry(everything[3]["seq"])
    assert got["request"] == b"req-3" and got["answer"] == b"ans-3" and got["decisions"] == DECISIONS[3]
    assert store.entry(10_000) is None


def test_sqlite_lists_as_asked(tmp_path):
    store = open_store(str(tmp_path / "d.sqlite"))
    try:
        fill(store)
        check_listing(store)
    finally:
        store.close()


# ------------------------------------------------------------------ a damaged record is said, never sent

ROOT = Path(__file__).resolve().parents[2]
PAS = ROOT / "examples" / "fhir" / "pas_request_besponsa.json"
FHIR = "application/fhir+json"


def submitted(ident: str) -> bytes:
    bundle = json.loads(PAS.read_text())
    bundle["entry"][0]["resource"]["identifier"] = [{"system": "urn:test", "value": ident}]
    bundle["identifier"]["value"] = f"bundle-{ident}"             # so that each answer differs (it names it)
    return json.dumps(bundle).encode()


def record_submit(store, ident: str) -> bytes:
    """A $submit answered by the service's worker code and recorded as the service records it."""
    from solver.service import work

    body = submitted(ident)
    a = work.handle("submit", body, {"base_url": "http://test/"})
    assert a.status == 200 and a.record is not None
    store.record(Record(kind=a.record["kind"], request=body, answer=a.body, media_type=a.media,
                        rules_version=a.record["rules_version"], decisions=a.record["decisions"],
                        submission=a.record.get("submission")))
    return a.body


def settled(path: Path) -> None:
    """Everything in the main file (no write-ahead log left), as a stopped server leaves it."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def overwrite_inside(path: Path, recorded: bytes, width: int = 48) -> None:
    """Overwrite `width` bytes of `recorded` where they lie in the file (a stretch found nowhere else
    in it), leaving the file's structure, and so PRAGMA quick_check, as they were."""
    data = bytearray(path.read_bytes())
    for start in range(0, len(recorded) - width, 8):
        piece = recorded[start:start + width]
        if data.count(piece) == 1:
            at = data.find(piece)
            data[at:at + width] = bytes(random.Random(start).randrange(256) for _ in range(width))
            path.write_bytes(bytes(data))
            return
    raise AssertionError("no stretch of the record is found once in the file")


def page_size(path: Path) -> int:
    size = int.from_bytes(path.read_bytes()[16:18], "big")
    return 65536 if size == 1 else size


def damage_pages(path: Path, pages, seed: int = 23) -> None:
    """Random bytes over whole pages (numbered from 1; page 1, with the file's header, left intact)."""
    data = bytearray(path.read_bytes())
    size, rnd = page_size(path), random.Random(seed)
    for page in pages:
        assert page > 1
        data[(page - 1) * size:page * size] = rnd.randbytes(size)
    path.write_bytes(bytes(data))


def test_an_answer_changed_in_the_file_or_by_sql_is_damaged_never_given_back(tmp_path):
    path = tmp_path / "d.sqlite"
    store = open_store(str(path))
    answers = {ident: record_submit(store, ident) for ident in ("A", "B", "C", "D")}
    store.close()
    settled(path)
    overwrite_inside(path, answers["B"])                       # bytes of #2's answer overwritten on disk
    db = sqlite3.connect(path)
    db.execute("UPDATE decisions SET answer = ? WHERE seq = 3", (answers["A"],))   # another answer, valid JSON
    db.execute("UPDATE decisions SET request = CAST(request || ' ' AS BLOB) WHERE seq = 4")
    db.commit()
    db.close()
    store = open_store(str(path), check=True)                 # quick_check cannot see inside a row: the digests do
    try:
        assert store.submission("urn:test|A") == (answers["A"], FHIR)
        for ident, seq in (("B", 2), ("C", 3)):
            with pytest.raises(DamagedRecord) as got:
                store.submission(f"urn:test|{ident}")
            assert got.value.seq == seq and "its answer does not match the SHA-256" in got.value.reason
            with pytest.raises(DamagedRecord):
                store.entry(seq)
        assert store.submission("urn:test|D") == (answers["D"], FHIR)   # $inquire reads only the answer
        with pytest.raises(DamagedRecord, match="#4 is damaged: its request does not match"):
            store.entry(4)
        assert store.entry(1)["answer"] == answers["A"] and store.entry(1)["integrity"] == "ok"
        listed = store.list(verify=True)
        assert [(r["seq"], r["integrity"]) for r in listed] == [(1, "ok"), (2, "damaged"), (3, "damaged"),
                                                                (4, "damaged")]
        assert listed[1]["decisions"] == listed[0]["decisions"] and listed[0]["damage"] is None
    finally:
        store.close()


def test_an_index_leading_to_another_submission_is_damaged_not_its_answer(tmp_path):
    """The index $inquire reads damaged so that it leads to another row (quick_check does not
    compare an index with its table): that row's answer matches its own digest, and is still not sent."""
    path = tmp_path / "d.sqlite"
    store = open_store(str(path))
    answers = {ident: record_submit(store, ident) for ident in ("A", "B", "C")}
    store.close()
    settled(path)
    data = path.read_bytes()
    cell = b"urn:test|B\x02"                              # the index's cell: the key, then the row's seq (2)
    assert data.count(cell) == 1
    path.write_bytes(data.replace(cell, b"urn:test|B\x03"))     # now leading to C's row
    store = open_store(str(path), check=True)
    try:
        with pytest.raises(DamagedRecord, match="the index of submissions leads to another record"):
            store.submission("urn:test|B")
        assert store.submission("urn:test|C") == (answers["C"], FHIR)
        assert store.entry(2)["answer"] == answers["B"]       # the row itself is sound
    finally:
        store.close()


OLD_SCHEMA = """
CREATE TABLE decisions (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, submission TEXT,
    request_sha256 TEXT NOT NULL, request BLOB NOT NULL, answer BLOB NOT NULL, media_type TEXT NOT NULL,
    rules_version TEXT NOT NULL, decided_at TEXT NOT NULL, decisions TEXT NOT NULL);
CREATE INDEX decisions_submission ON decisions (submission);
CREATE INDEX decisions_decided_at ON decisions (decided_at);
"""


def old_store(path: Path) -> None:
    """A store as the service wrote it before answers' digests were kept: one sound row, one whose
    answer is no longer JSON."""
    import hashlib

    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    for ident, answer in (("old-1", b'{"resourceType": "Bundle"}'), ("old-2", b'{"resourceType": \x93\x00\xff')):
        db.execute("INSERT INTO decisions (kind, submission, request_sha256, request, answer, media_type, "
                   "rules_version, decided_at, decisions) VALUES ('submit', ?, ?, ?, ?, ?, 'v0', "
                   "'2026-01-02T03:04:05+00:00', '{\"ohsu\": \"approved\"}')",
                   (f"urn:test|{ident}", hashlib.sha256(b"{}").hexdigest(), b"{}", answer, FHIR))
    db.commit()
    db.close()


def test_an_old_store_opens_and_its_rows_read_as_before_unverified(tmp_path):
    path = tmp_path / "old.sqlite"
    old_store(path)
    for _ in range(2):                                         # the column added once; opening again is a no-op
        store = open_store(str(path), check=True)
        try:
            assert store.submission("urn:test|old-1") == (b'{"resourceType": "Bundle"}', FHIR)
            with pytest.raises(DamagedRecord, match="its answer is not JSON"):     # still never sent
                store.submission("urn:test|old-2")
            assert store.entry(1)["integrity"] == "unverified"
            store.record(Record("submit", b"{}", b"{}", FHIR, "v1", {"ohsu": "approved"}, submission="urn:test|new"))
            assert [r["integrity"] for r in store.list(verify=True)][:3] == ["unverified", "damaged", "ok"]
        finally:
            store.close()
    audit = subprocess.run([sys.executable, "-m", "solver.cli", "audit", "--store", str(path)],
                           capture_output=True, text=True, timeout=60)
    assert audit.returncode == 1 and "Traceback" not in audit.stderr, audit.stderr
    lines = audit.stdout.splitlines()
    assert "unverified" in lines[1] and "damaged" in lines[2] and "(its answer is not JSON" in lines[2]
    assert "1 unverified: recorded before answers' digests were kept" in lines
    assert lines[-1] == "1 damaged (never sent; restore them from a backup): #2"


def test_a_damaged_page_is_read_around_and_refused_at_start(tmp_path):
    path = tmp_path / "d.sqlite"
    store = open_store(str(path))
    for i in range(60):
        answer = b'{"answer": %d, "pad": "%s"}' % (i, b"a" * 1500)
        store.record(Record("submit", b"request %04d " % i + b"r" * 1500, answer, FHIR, "v1", {"ohsu": "approved"},
                            submission=f"urn:x|S-{i}"))
    store.close()
    settled(path)
    damage_pages(path, [path.read_bytes().find(b"request 0030 ") // page_size(path) + 1])   # record #31's page
    with pytest.raises(StoreError, match=r"^--store .*d\.sqlite: the file is damaged; PRAGMA quick_check says: "):
        open_store(str(path), check=True)
    store = open_store(str(path))
    try:
        assert store.damaged_pages()                          # what `audit` says of the file besides its records
        with pytest.raises(DamagedRecord, match="#31 is damaged: the database cannot read it"):
            store.entry(31)
        with pytest.raises(DamagedRecord, match="the database cannot read it"):
            store.submission("urn:x|S-30")
        listed = store.list(verify=True)
        bad = [r["seq"] for r in listed if r["integrity"] == "damaged"]
        assert 31 in bad and len(bad) < 10 and all(r["kind"] is None for r in listed if r["integrity"] == "damaged")
        assert [r["seq"] for r in listed if r["integrity"] == "ok"] == [s for s in range(1, 61) if s not in bad]
        newest = store.list(verify=True, limit=40)             # newest first when a limit is read row by row
        assert [r["seq"] for r in newest] == sorted(r["seq"] for r in newest) and newest[-1]["seq"] == 60
        assert len(newest) == 40
    finally:
        store.close()


# ------------------------------------------------------------------ the service: $inquire, serve, audit

def inquiry(ident: str) -> bytes:
    return json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Claim", "identifier": [{"system": "urn:test", "value": ident}]}}]}).encode()


def submit_all(tmp_path: Path, store: Path, idents) -> dict[str, bytes]:
    """$submit each through a real server, stopped after: the answers as sent."""
    from test_service import Server

    s = Server(tmp_path, "--workers", "1", store=store)
    try:
        got = {}
        for ident in idents:
            r = s.post("/fhir/Claim/$submit", submitted(ident), FHIR)
            assert r.status_code == 200
            got[ident] = r.content
        assert len(set(got.values())) == len(got)                  # each answer its own bytes
        return got
    finally:
        assert s.stop() == 0


def said_damaged(r, ident: str) -> str:
    """A damaged record's answer: 503 and an OperationOutcome naming it, none of the record's bytes."""
    assert r.status_code == 503 and r.headers["content-type"].startswith(FHIR), (r.status_code, r.content[:200])
    (issue,) = r.json()["issue"]
    assert issue["code"] == "exception" and issue["severity"] == "error"
    assert issue["diagnostics"].startswith(f"the record of submission {ident!r} (identifier system 'urn:test') "
                                           f"is damaged, so it is not sent: ")
    return issue["diagnostics"]


def audit(store: Path, *args: str) -> subprocess.CompletedProcess:
    return run_cli("audit", "--store", str(store), *args, timeout=120)


def test_inquire_says_a_changed_record_is_damaged_and_audit_names_it(tmp_path):
    from test_service import Server

    path = tmp_path / "d.sqlite"
    idents = [f"sub-{i}" for i in range(8)]
    answers = submit_all(tmp_path, path, idents)
    settled(path)
    overwrite_inside(path, answers["sub-2"])                   # #3's answer overwritten on disk
    db = sqlite3.connect(path)
    db.execute("UPDATE decisions SET answer = ? WHERE seq = 6", (answers["sub-4"],))  # #6 given #5's answer
    db.commit()
    db.close()
    s = Server(tmp_path, "--workers", "1", store=path)         # quick_check passes: the file's structure is sound
    try:
        for ident in idents:
            r = s.post("/fhir/Claim/$inquire", inquiry(ident), FHIR)
            if ident in ("sub-2", "sub-5"):
                assert "its answer does not match the SHA-256 recorded with it" in said_damaged(r, ident)
                assert answers[ident][:64] not in r.content and answers["sub-4"][-64:] not in r.content
            else:
                assert r.status_code == 200 and r.content == answers[ident], ident
    finally:
        assert s.stop() == 0
    log = s.proc.stderr.read().decode()
    assert "Traceback" not in log
    assert [line for line in log.splitlines() if "damaged" in line] == [
        f"$inquire urn:test|sub-{i}: record #{i + 1} is damaged: its answer does not match the SHA-256 recorded "
        f"with it" for i in (2, 5)]
    words = audit(path)
    assert words.returncode == 1 and "Traceback" not in words.stderr, words.stderr
    lines = words.stdout.splitlines()
    assert lines[0].startswith("8 decisions recorded in ")
    assert [line.split()[0] for line in lines[1:9] if "  damaged  " in line] == ["3", "6"]
    assert lines[-1] == "2 damaged (never sent; restore them from a backup): #3, #6"
    rows = [json.loads(line) for line in audit(path, "--json").stdout.splitlines()]
    assert [(r["seq"], r["integrity"]) for r in rows if r["integrity"] != "ok"] == [(3, "damaged"), (6, "damaged")]
    assert audit(path, "--since", "2999-01-01").returncode == 0           # nothing listed is damaged
    helped = subprocess.run([sys.executable, "-m", "solver.cli", "audit", "--help"], capture_output=True, text=True,
                            timeout=60)
    helped = " ".join(helped.stdout.split())
    assert "Exit status: 0 nothing listed is damaged, 1 at least one record (or the file) is" in helped
    assert "--store PATH|URL the record `serve --store` writes" in helped


def test_damaged_pages_are_said_while_serving_and_refused_at_the_next_start(tmp_path):
    from test_service import Server

    path = tmp_path / "d.sqlite"
    idents = [f"sub-{i}" for i in range(40)]
    answers = submit_all(tmp_path, path, idents)
    settled(path)
    s = Server(tmp_path, "--workers", "1", store=path)          # sound at its start; damaged while it serves
    pages = path.stat().st_size // page_size(path)
    damage_pages(path, range(pages // 2, pages + 1, 3))
    damaged = []
    try:
        for ident in idents:
            r = s.post("/fhir/Claim/$inquire", inquiry(ident), FHIR)
            if r.status_code == 200:
                assert r.content == answers[ident], ident           # an answer is the very bytes, or none
            else:
                said_damaged(r, ident)
                damaged.append(ident)
    finally:
        assert s.stop() == 0
    assert damaged, "no record read a damaged page"
    log = s.proc.stderr.read().decode()
    assert "Traceback" not in log
    assert len([line for line in log.splitlines() if "is damaged" in line]) == len(damaged)
    # the next start refuses the file, in one line naming it and what PRAGMA quick_check said
    refused = subprocess.run([sys.executable, "-m", "solver.cli", "serve", "--port", "0", "--store", str(path)],
                             capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert refused.returncode == 2 and refused.stdout == ""
    (line,) = refused.stderr.splitlines()
    assert line.startswith(f"error: --store {path}: the file is damaged; PRAGMA quick_check says: "), line
    # audit lists what it can read, each damaged record named; exit 1
    words = audit(path)
    assert words.returncode == 1 and "Traceback" not in words.stderr, words.stderr
    named = [int(line.split()[0]) for line in words.stdout.splitlines()[1:] if "  damaged  " in line]
    assert named and {f"sub-{n - 1}" for n in named} >= set(damaged)
    assert words.stdout.splitlines()[-1].startswith("the file is damaged (serve refuses it); PRAGMA quick_check "
                                                    "says: ")


def test_a_file_that_is_no_database_is_said_so_not_damaged(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a database, only words\n" * 200)
    with pytest.raises(StoreError, match=r"^--store .*notes\.txt: file is not a database$"):
        open_store(str(path), check=True)


def test_the_store_files_a_served_checkout_makes_are_ignored_by_git():
    """`serve` in a checkout writes decisions.sqlite (the default --store) and SQLite's -wal, -shm
    and -journal beside it: none of them may be committed by accident."""
    root = Path(__file__).resolve().parents[2]
    inside = subprocess.run(["git", "-C", str(root), "rev-parse", "--is-inside-work-tree"], capture_output=True,
                            text=True)
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        pytest.skip("not a git checkout")
    names = ["decisions.sqlite", "decisions.sqlite-wal", "decisions.sqlite-shm", "decisions.sqlite-journal"]
    got = subprocess.run(["git", "-C", str(root), "check-ignore", "--no-index", *names], capture_output=True, text=True)
    assert sorted(got.stdout.split()) == sorted(names), got.stdout + got.stderr
