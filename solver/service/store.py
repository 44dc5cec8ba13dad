"""The record of every decision the service answered (SERVICE.md, "Nothing lost").

    store = Store("decisions.sqlite")            # one file; WAL
    seq = store.record(Record(kind="submit", ...))   # durable when it returns: then the answer may leave
    store.submission("urn:ex|PA-1")              # the answer bytes $inquire gives back, or None
    store.list(since="2026-01-01", plan="ohsu")  # what `pa-solver audit` prints

One SQLite file in write-ahead-log mode.  A write is committed before
`record` returns, and a committed transaction survives the process being
killed (SIGKILL) at any later point: WAL with `synchronous=NORMAL` loses a
commit only to a power cut or an operating-system crash, never to the death
of the process; `--store-sync full` makes it survive those too, at the cost
of an fsync per answer.

Outgrowing one file: `--store postgresql://user@host/db` keeps the same table
in PostgreSQL (`PgStore`, psycopg 3; `pip install 'pa-solver[postgres]'`).
Every write is its own committed transaction before `record` returns
(PostgreSQL's default `synchronous_commit=on`: on disk, not only in memory).
Everything is plain SQL over one table through the DB-API, so the two differ
only in the placeholder, the key's type, the blobs' type and how the new key
comes back (README, "The service").

A damaged record is said, never sent (SERVICE.md, "Nothing lost"): each row
keeps the SHA-256 of its answer beside the request's, and a read that would
hand out bytes (`submission`, `entry`) checks them first, raising
`DamagedRecord` on a mismatch or when the database cannot read the row at all
(SQLite's "database disk image is malformed" on an overwritten page).  A
SHA-256 is a few microseconds of a `$submit` (README); it catches what the
file's own structure cannot, bytes overwritten inside a row.  Stores written
before the digest was kept get the column when opened; their older rows have
none and read as before (an answer that is not even JSON is still refused),
and `list(verify=True)` (`pa-solver audit`) calls them unverified.
`open_store(..., check=True)` runs SQLite's `PRAGMA quick_check` first
(`serve` refuses a file it rejects).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import sqlite3
import threading
from typing import Iterable, Optional

SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind           TEXT NOT NULL,            -- submit | crd
    submission     TEXT,                     -- the Claim's identifier, system|value ($inquire finds it)
    request_sha256 TEXT NOT NULL,
    request        BLOB NOT NULL,            -- the request's bytes, as received
    answer         BLOB NOT NULL,            -- the answer's bytes, as sent
    media_type     TEXT NOT NULL,
    rules_version  TEXT NOT NULL,
    decided_at     TEXT NOT NULL,            -- UTC, ISO 8601
    decisions      TEXT NOT NULL,            -- JSON: {plan: decision}
    answer_sha256  TEXT                      -- checked on every read; NULL: recorded before it was kept
);
CREATE INDEX IF NOT EXISTS decisions_submission ON decisions (submission);
CREATE INDEX IF NOT EXISTS decisions_decided_at ON decisions (decided_at);
"""


class StoreError(RuntimeError):
    """The store cannot be opened or written (a full disk, a read-only file, not a database).
    `damage`: why, when the cause is damage to what is stored (else None: a lock, a lost connection)."""

    def __init__(self, message: str, damage: Optional[str] = None):
        super().__init__(message)
        self.damage = damage


class DamagedRecord(StoreError):
    """A record that is there but cannot be given back as written: its bytes do not match the
    SHA-256 kept with them, or the database cannot read it.  `seq` is None where the damage kept
    even the row's number from being read; `reason` says what is wrong, in a few words."""

    def __init__(self, seq: Optional[int], reason: str):
        super().__init__(f"record #{seq if seq is not None else '?'} is damaged: {reason}", reason)
        self.seq, self.reason = seq, reason


class Record:
    __slots__ = ("kind", "submission", "request", "answer", "media_type", "rules_version", "decisions")

    def __init__(self, kind: str, request: bytes, answer: bytes, media_type: str, rules_version: str,
                 decisions: dict, submission: Optional[str] = None):
        self.kind, self.submission, self.request, self.answer = kind, submission, request, answer
        self.media_type, self.rules_version, self.decisions = media_type, rules_version, decisions


PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    seq            BIGSERIAL PRIMARY KEY,
    kind           TEXT NOT NULL,
    submission     TEXT,
    request_sha256 TEXT NOT NULL,
    request        BYTEA NOT NULL,
    answer         BYTEA NOT NULL,
    media_type     TEXT NOT NULL,
    rules_version  TEXT NOT NULL,
    decided_at     TEXT NOT NULL,
    decisions      TEXT NOT NULL,
    answer_sha256  TEXT
);
ALTER TABLE decisions ADD COLUMN IF NOT EXISTS answer_sha256 TEXT;
CREATE INDEX IF NOT EXISTS decisions_submission ON decisions (submission);
CREATE INDEX IF NOT EXISTS decisions_decided_at ON decisions (decided_at);
"""


def is_url(spec: str) -> bool:
    """A --store that names a PostgreSQL database rather than a file."""
    return spec.startswith(("postgresql://", "postgres://"))


def shown(spec: str) -> str:
    """A --store as it may be printed: a URL's password replaced by ***."""
    # up to the last "@": a password may hold one (unencoded); better to hide the host too than a part of it
    return re.sub(r"^(postgres(?:ql)?://[^:/@]*):.*@", r"\1:***@", spec) if is_url(spec) else spec


def open_store(spec: str, sync: str = "normal", check: bool = False) -> "Store":
    """The store a --store names: a PostgreSQL URL, or a SQLite file.  `check`: first refuse a SQLite
    file whose pages PRAGMA quick_check finds damaged (StoreError saying what it found)."""
    return PgStore(spec) if is_url(spec) else Store(spec, sync, check)


SQLITE_CORRUPT, SQLITE_NOTADB = 11, 26          # the primary result codes of a damaged file
MEDIA_TYPE = re.compile(r"[\w!#$&^.+-]+/[\w!#$&^.+-]+")


def _utf8(raw: bytes) -> str:
    """SQLite's TEXT as str.  Bytes that are not UTF-8 (a damaged row) raise UnicodeDecodeError, which
    reads as damage; sqlite3's own decoding raises an OperationalError, the class a lock raises."""
    return raw.decode("utf-8")


class Store:
    """One SQLite file (the default)."""

    INSERT = ("INSERT INTO decisions (kind, submission, request_sha256, request, answer, answer_sha256, media_type, "
              "rules_version, decided_at, decisions) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    LISTED = "seq, kind, submission, decided_at, rules_version, request_sha256, decisions"
    CHECKED = ", request, answer, answer_sha256"
    # the highest seq given out: AUTOINCREMENT's counter first (a table of its own, so it outlives
    # damage to the decisions' pages), else the table's largest key
    TOP = ("SELECT seq FROM sqlite_sequence WHERE name = 'decisions'", "SELECT MAX(seq) FROM decisions")
    P = "?"
    errors: tuple = (sqlite3.Error, UnicodeDecodeError)

    def __init__(self, path: str, sync: str = "normal", check: bool = False):
        self.path = os.fspath(path)
        if sync not in ("normal", "full"):
            raise ValueError(f"sync must be normal or full, not {sync!r}")
        self._lock = threading.Lock()
        self._db = None
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self._db.text_factory = _utf8
            if check:
                self._quick_check()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={sync.upper()}")
            self._db.executescript(SCHEMA)
            self._migrate()
        except (sqlite3.Error, UnicodeDecodeError, StoreError) as err:
            if self._db is not None:
                self._db.close()
            if isinstance(err, StoreError):
                raise
            raise StoreError(f"--store {self.path}: {_said(err)}", self._damage(err)) from None

    def _quick_check(self) -> None:
        said = self.damaged_pages()
        if said:
            raise StoreError(f"--store {self.path}: the file is damaged; PRAGMA quick_check says: {said}", said)

    def damaged_pages(self) -> Optional[str]:
        """What PRAGMA quick_check finds wrong with the file's pages, in one line (None: nothing).  It
        checks the structure of every page, the tables' and the indexes' (an index `$inquire` reads
        may be damaged where every row is sound); the rows' contents are the digests' part."""
        try:
            with self._lock:
                said = [_one_line(r[0]) for r in self._db.execute("PRAGMA quick_check").fetchall()]
        except (sqlite3.Error, UnicodeDecodeError) as err:
            code = getattr(err, "sqlite_errorcode", None)
            if code is not None and code & 0xFF == SQLITE_NOTADB:
                raise                                   # not a database at all: said as such by the caller
            said = [_said(err)]                         # too damaged to be checked at all
        if said == ["ok"]:
            return None
        return said[0] + (f" (and {len(said) - 1} more)" if len(said) > 1 else "")

    def _migrate(self) -> None:
        """A store written before the answer's digest was kept gets the column; its older rows stay
        without one (unverified: a digest taken now would vouch for bytes that may already be damaged)."""
        if self._has_digest():
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if not self._has_digest():                  # another process may have added it meanwhile
                self._db.execute("ALTER TABLE decisions ADD COLUMN answer_sha256 TEXT")
            self._db.execute("COMMIT")
        finally:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")

    def _has_digest(self) -> bool:
        return any(r[1] == "answer_sha256" for r in self._db.execute("PRAGMA table_info(decisions)"))

    def _damage(self, err: BaseException) -> Optional[str]:
        """What damage a failed read shows, in a few words; None when it shows none (a lock, a lost
        connection: the same read may work later)."""
        if isinstance(err, UnicodeDecodeError):
            return "its text is not UTF-8"
        code = getattr(err, "sqlite_errorcode", None)
        if isinstance(err, sqlite3.DatabaseError) and code is not None and code & 0xFF in (SQLITE_CORRUPT,
                                                                                           SQLITE_NOTADB):
            return f"the database cannot read it ({_one_line(err)})"
        return None

    def record(self, rec: Record) -> int:
        """Write one answered decision; durable (committed) when this returns its sequence number."""
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")
        row = (rec.kind, rec.submission, hashlib.sha256(rec.request).hexdigest(), rec.request, rec.answer,
               hashlib.sha256(rec.answer).hexdigest(), rec.media_type, rec.rules_version, now,
               json.dumps(rec.decisions, sort_keys=True))
        with self._lock:
            try:
                return self._insert(row)
            except self.errors as err:
                raise StoreError(f"cannot record the decision in {shown(self.path)}: {_said(err)}") from None

    def _insert(self, row: tuple) -> int:
        return int(self._db.execute(self.INSERT, row).lastrowid)

    def _failed(self, err: BaseException) -> StoreError:
        return StoreError(f"cannot read {shown(self.path)}: {_said(err)}", self._damage(err))

    def _rows(self, sql: str, args) -> list:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except self.errors as err:
                raise self._failed(err) from None

    def _each(self, sql: str, args, keep) -> list:
        """keep(row) for each row the query gives, read as it goes (a listing that checks digests
        holds one row's bytes at a time, not the table's); None from keep leaves the row out."""
        with self._lock:
            try:
                return [got for got in map(keep, self._db.execute(sql, args)) if got is not None]
            except self.errors as err:
                raise self._failed(err) from None

    def submission(self, key: str) -> Optional[tuple[bytes, str]]:
        """The latest answer recorded for a submission: (bytes, media type), or None.  DamagedRecord
        when its bytes do not match their digest or cannot be read: never the bytes."""
        try:
            # the row's own submission, read by its seq (the key's column alone is read from the index)
            rows = self._rows("SELECT seq, (SELECT r.submission FROM decisions r WHERE r.seq = decisions.seq), answer, "
                              f"answer_sha256, media_type FROM decisions WHERE submission = {self.P} AND kind = 'submit' "
                              "ORDER BY seq DESC LIMIT 1", (key,))
        except StoreError as err:
            if err.damage is None:
                raise
            raise DamagedRecord(None, err.damage) from None
        if not rows:
            return None
        seq, sub, answer, digest, media = rows[0]
        # a damaged index can lead to another submission's row, whose answer matches its own digest
        damage = ("the index of submissions leads to another record" if sub != key else None) or \
            _answer_damage(answer, digest) or _media_damage(media)
        if damage:
            raise DamagedRecord(seq, damage)
        return bytes(answer), media

    def _where(self, since: Optional[str], plan: Optional[str], kind: Optional[str],
               before: Optional[str] = None) -> tuple[str, list]:
        """The WHERE clause of a listing, done by the database (an index on the time; a plan by its key
        in the decisions' JSON, which json.dumps writes as "plan": "decision")."""
        where, args = [], []
        if since is not None:
            where.append(f"decided_at >= {self.P}")
            args.append(since)
        if before is not None:
            where.append(f"decided_at < {self.P}")
            args.append(before)
        if kind is not None:
            where.append(f"kind = {self.P}")
            args.append(kind)
        if plan is not None:
            where.append(f"decisions LIKE {self.P}")
            args.append(f'%{json.dumps(plan)}: %')
        return (" WHERE " + " AND ".join(where)) if where else "", args

    def list(self, since: Optional[str] = None, plan: Optional[str] = None, kind: Optional[str] = None,
             limit: Optional[int] = None, before: Optional[str] = None, verify: bool = False) -> list[dict]:
        """Recorded decisions, oldest first: seq, kind, submission, time, rules version, request hash and
        the decision per plan (`plan`: only records that decided that plan; `before`: decided before
        that time; `limit`: only the newest that many, read as such, so a page of a large record
        costs what the page holds).

        `verify` (`pa-solver audit`): each record is also read whole and checked against its digests:
        `integrity` ok, damaged (`damage` says what is wrong) or unverified (recorded before the
        answer's digest was kept), and `answer_sha256`.  Where the database cannot read the table
        whole (a damaged page), each record is then read alone, so only those on damaged pages are
        lost: each listed as damaged, what could not be read None, whatever the filters."""
        where, args = self._where(since, plan, kind, before)
        sql = (f"SELECT {self.LISTED}{self.CHECKED if verify else ''} FROM decisions"
               + where + " ORDER BY seq" + (" DESC" if limit else ""))
        if limit:
            sql += f" LIMIT {int(limit)}"
        try:
            out = self._each(sql, args, (lambda row: _checked(row, plan)) if verify else
                             (lambda row: self._listed(row, plan)))
        except StoreError as err:
            if not verify or err.damage is None:
                raise
            out = self._probe(since, plan, kind, before, limit)
        if limit:
            out.reverse()
        return out

    def _listed(self, row: tuple, plan: Optional[str]) -> Optional[dict]:
        seq, k, sub, at, version, digest, decisions = row
        dec = _decisions(decisions)
        if dec is None:
            raise StoreError(f"cannot read {shown(self.path)}: record #{seq} is damaged (its decisions are not "
                             f"JSON); pa-solver audit lists the damaged records", "its decisions are not JSON")
        if plan is not None and plan not in dec:        # LIKE's "_" matches any one character
            return None
        return {"seq": seq, "kind": k, "submission": sub, "decided_at": at, "rules_version": version,
                "request_sha256": digest, "decisions": dec}

    def _probe(self, since: Optional[str], plan: Optional[str], kind: Optional[str], before: Optional[str],
               limit: Optional[int]) -> list[dict]:
        """The checked listing one record at a time, each seq looked up alone (newest first when
        `limit`): the rows on undamaged pages are read whatever the damage elsewhere."""
        top = self._top()
        out: list[dict] = []
        for seq in (range(top, 0, -1) if limit else range(1, top + 1)):
            if limit and len(out) >= limit:
                break
            try:
                rows = self._rows(f"SELECT {self.LISTED}{self.CHECKED} FROM decisions WHERE seq = {self.P}", (seq,))
            except StoreError as err:
                if err.damage is None:
                    raise
                out.append({"seq": seq, "kind": None, "submission": None, "decided_at": None, "rules_version": None,
                            "request_sha256": None, "decisions": {}, "answer_sha256": None, "integrity": "damaged",
                            "damage": err.damage})
                continue
            got = _checked(rows[0], plan) if rows else None
            if got is not None and got["kind"] == (kind or got["kind"]) and (
                    got["damage"] or ((since is None or str(got["decided_at"]) >= since)
                                      and (before is None or str(got["decided_at"]) < before))):
                out.append(got)
        return out

    def _top(self) -> int:
        """The highest seq given out (0: none); StoreError when the database cannot say."""
        failed = None
        for sql in self.TOP:
            try:
                rows = self._rows(sql, ())
            except StoreError as err:
                failed = err
                continue
            if rows and rows[0][0] is not None:
                return int(rows[0][0])
        if failed is not None:
            raise failed
        return 0

    def entry(self, seq: int) -> Optional[dict]:
        """One recorded decision whole (its request's and answer's bytes too), or None; DamagedRecord
        when its bytes do not match their digests or cannot be read: never the bytes.  `integrity`:
        ok, or unverified for a record kept before the answer's digest was."""
        try:
            rows = self._rows("SELECT kind, submission, decided_at, rules_version, request_sha256, decisions, request, "
                              f"answer, answer_sha256, media_type FROM decisions WHERE seq = {self.P}", (seq,))
        except StoreError as err:
            if err.damage is None:
                raise
            raise DamagedRecord(seq, err.damage) from None
        if not rows:
            return None
        kind, sub, at, version, digest, decisions, request, answer, answer_digest, media = rows[0]
        dec = _decisions(decisions)
        damage = (_answer_damage(answer, answer_digest) or _request_damage(request, digest)
                  or (None if dec is not None else "its decisions are not JSON") or _media_damage(media))
        if damage:
            raise DamagedRecord(seq, damage)
        return {"seq": seq, "kind": kind, "submission": sub, "decided_at": at, "rules_version": version,
                "request_sha256": digest, "decisions": dec, "request": bytes(request),
                "answer": bytes(answer), "media_type": media, "answer_sha256": answer_digest,
                "integrity": "unverified" if answer_digest is None else "ok"}

    def count(self, since: Optional[str] = None, plan: Optional[str] = None, kind: Optional[str] = None,
              before: Optional[str] = None) -> int:
        where, args = self._where(since, plan, kind, before)
        return int(self._rows("SELECT COUNT(*) FROM decisions" + where, args)[0][0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


class PgStore(Store):
    """The same table in PostgreSQL: one connection, autocommit (each write its own committed
    transaction), the writer lock as for SQLite.  A deployment with more than one server process
    points them all at one database; each keeps its own connection.  The digests check each record
    on read as for SQLite."""

    INSERT = Store.INSERT.replace("?", "%s") + " RETURNING seq"
    TOP = ("SELECT MAX(seq) FROM decisions",)
    P = "%s"

    def __init__(self, url: str):
        self.path = url
        self._lock = threading.Lock()
        try:
            import psycopg
        except ImportError:
            raise StoreError(f"--store {shown(url)}: PostgreSQL needs psycopg "
                             f"(pip install 'pa-solver[postgres]')") from None
        self.errors = (psycopg.Error,)
        try:
            self._db = psycopg.connect(url, autocommit=True, connect_timeout=10)
            self._db.execute(PG_SCHEMA)
        except (psycopg.Error, ValueError) as err:
            raise StoreError(f"--store {shown(url)}: {_redacted(_one_line(err), url)}") from None

    def _insert(self, row: tuple) -> int:
        return int(self._db.execute(self.INSERT, row).fetchone()[0])

    def damaged_pages(self) -> Optional[str]:
        return None                 # PostgreSQL checks its own pages (data checksums, where enabled)

    def _damage(self, err: BaseException) -> Optional[str]:
        if getattr(err, "sqlstate", None) in ("XX001", "XX002"):          # data_corrupted, index_corrupted
            return f"the database cannot read it ({_one_line(err)})"
        return None

    def _each(self, sql: str, args, keep) -> list:
        """As SQLite's, through a server-side cursor (a client-side one holds the whole result)."""
        with self._lock:
            try:
                with self._db.transaction(), self._db.cursor(name="pa_listing") as cur:
                    cur.itersize = 64
                    cur.execute(sql, args)
                    return [got for got in map(keep, cur) if got is not None]
            except self.errors as err:
                raise self._failed(err) from None


def _decisions(text) -> Optional[dict]:
    """A record's decisions ({plan: decision}), or None when they are not what was written (damaged)."""
    try:
        dec = json.loads(text)
    except (TypeError, ValueError):
        return None
    return dec if isinstance(dec, dict) else None


def _is_bytes(value) -> bool:
    return isinstance(value, (bytes, bytearray, memoryview))


def _answer_damage(answer, digest: Optional[str]) -> Optional[str]:
    """What is wrong with a recorded answer, or None.  One recorded before digests were kept is
    at least JSON (the service answers nothing else)."""
    if not _is_bytes(answer):
        return "its answer is not the bytes recorded"
    if digest is None:
        try:
            json.loads(bytes(answer))
        except ValueError:
            return "its answer is not JSON; it was recorded before answers' digests were kept"
        return None
    if hashlib.sha256(answer).hexdigest() != digest:
        return "its answer does not match the SHA-256 recorded with it"
    return None


def _request_damage(request, digest: Optional[str]) -> Optional[str]:
    if not _is_bytes(request) or hashlib.sha256(request).hexdigest() != digest:
        return "its request does not match the SHA-256 recorded with it"
    return None


def _media_damage(media) -> Optional[str]:
    return None if isinstance(media, str) and MEDIA_TYPE.fullmatch(media) else "its media type is not one"


def _checked(row: tuple, plan: Optional[str]) -> Optional[dict]:
    """A listed record with its integrity (ok / damaged / unverified) and what is damaged, if anything."""
    seq, kind, sub, at, version, digest, decisions, request, answer, answer_digest = row
    dec = _decisions(decisions)
    if plan is not None and dec is not None and plan not in dec:
        return None
    damage = (_answer_damage(answer, answer_digest) or _request_damage(request, digest)
              or (None if dec is not None else "its decisions are not JSON"))
    return {"seq": seq, "kind": kind, "submission": sub, "decided_at": at, "rules_version": version,
            "request_sha256": digest, "decisions": dec or {}, "answer_sha256": answer_digest,
            "integrity": "damaged" if damage else "unverified" if answer_digest is None else "ok", "damage": damage}


def _redacted(text: str, url: str) -> str:
    """A driver's message without the URL's password (drivers echo a URL they cannot parse)."""
    text = text.replace(url, shown(url))
    text = re.sub(r"(postgres(?:ql)?://[^:/@\s\"']*):[^\s\"']*@", r"\1:***@", text)
    return re.sub(r"(password\s*=\s*)\S+", r"\1***", text)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _said(err: BaseException) -> str:
    """A store error in one line (text that is not UTF-8 is a damaged row, not a codec's matter)."""
    return "a record's text is not UTF-8 (damaged)" if isinstance(err, UnicodeDecodeError) else _one_line(err)


def submission_key(identifiers: Iterable[dict]) -> Optional[str]:
    """The key a Claim's first identifier with a value gives: "system|value" ("|value" without a system)."""
    for ident in identifiers or []:
        if isinstance(ident, dict) and isinstance(ident.get("value"), str) and ident["value"]:
            system = ident.get("system") if isinstance(ident.get("system"), str) else ""
            return f"{system}|{ident['value']}"
    return None
