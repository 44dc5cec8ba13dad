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
    decisions      TEXT NOT NULL             -- JSON: {plan: decision}
);
CREATE INDEX IF NOT EXISTS decisions_submission ON decisions (submission);
CREATE INDEX IF NOT EXISTS decisions_decided_at ON decisions (decided_at);
"""


class StoreError(RuntimeError):
    """The store cannot be opened or written (a full disk, a read-only file, not a database)."""


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
    decisions      TEXT NOT NULL
);
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


def open_store(spec: str, sync: str = "normal") -> "Store":
    """The store a --store names: a PostgreSQL URL, or a SQLite file."""
    return PgStore(spec) if is_url(spec) else Store(spec, sync)


class Store:
    """One SQLite file (the default)."""

    INSERT = ("INSERT INTO decisions (kind, submission, request_sha256, request, answer, media_type, rules_version, "
              "decided_at, decisions) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
    P = "?"
    errors: tuple = (sqlite3.Error,)

    def __init__(self, path: str, sync: str = "normal"):
        self.path = os.fspath(path)
        if sync not in ("normal", "full"):
            raise ValueError(f"sync must be normal or full, not {sync!r}")
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={sync.upper()}")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as err:
            raise StoreError(f"--store {self.path}: {err}") from None

    def record(self, rec: Record) -> int:
        """Write one answered decision; durable (committed) when this returns its sequence number."""
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")
        row = (rec.kind, rec.submission, hashlib.sha256(rec.request).hexdigest(), rec.request, rec.answer,
               rec.media_type, rec.rules_version, now, json.dumps(rec.decisions, sort_keys=True))
        with self._lock:
            try:
                return self._insert(row)
            except self.errors as err:
                raise StoreError(f"cannot record the decision in {shown(self.path)}: {_one_line(err)}") from None

    def _insert(self, row: tuple) -> int:
        return int(self._db.execute(self.INSERT, row).lastrowid)

    def _rows(self, sql: str, args) -> list:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except self.errors as err:
                raise StoreError(f"cannot read {shown(self.path)}: {_one_line(err)}") from None

    def submission(self, key: str) -> Optional[tuple[bytes, str]]:
        """The latest answer recorded for a submission: (bytes, media type), or None."""
        rows = self._rows("SELECT answer, media_type FROM decisions WHERE submission = "
                          f"{self.P} AND kind = 'submit' ORDER BY seq DESC LIMIT 1", (key,))
        return None if not rows else (bytes(rows[0][0]), rows[0][1])

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
             limit: Optional[int] = None, before: Optional[str] = None) -> list[dict]:
        """Recorded decisions, oldest first: seq, kind, submission, time, rules version, request hash and
        the decision per plan (`plan`: only records that decided that plan; `before`: decided before
        that time; `limit`: only the newest that many, read as such, so a page of a large record
        costs what the page holds)."""
        where, args = self._where(since, plan, kind, before)
        sql = ("SELECT seq, kind, submission, decided_at, rules_version, request_sha256, decisions FROM decisions"
               + where + " ORDER BY seq" + (" DESC" if limit else ""))
        if limit:
            sql += f" LIMIT {int(limit)}"
        rows = self._rows(sql, args)
        if limit:
            rows.reverse()
        out = []
        for seq, k, sub, at, version, digest, decisions in rows:
            dec = json.loads(decisions)
            if plan is not None and plan not in dec:        # LIKE's "_" matches any one character
                continue
            out.append({"seq": seq, "kind": k, "submission": sub, "decided_at": at, "rules_version": version,
                        "request_sha256": digest, "decisions": dec})
        return out

    def entry(self, seq: int) -> Optional[dict]:
        """One recorded decision whole (its request's and answer's bytes too), or None."""
        rows = self._rows("SELECT kind, submission, decided_at, rules_version, request_sha256, decisions, request, "
                          f"answer, media_type FROM decisions WHERE seq = {self.P}", (seq,))
        if not rows:
            return None
        kind, sub, at, version, digest, decisions, request, answer, media = rows[0]
        return {"seq": seq, "kind": kind, "submission": sub, "decided_at": at, "rules_version": version,
                "request_sha256": digest, "decisions": json.loads(decisions), "request": bytes(request),
                "answer": bytes(answer), "media_type": media}

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
    points them all at one database; each keeps its own connection."""

    INSERT = Store.INSERT.replace("?", "%s") + " RETURNING seq"
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


def _redacted(text: str, url: str) -> str:
    """A driver's message without the URL's password (drivers echo a URL they cannot parse)."""
    text = text.replace(url, shown(url))
    text = re.sub(r"(postgres(?:ql)?://[^:/@\s\"']*):[^\s\"']*@", r"\1:***@", text)
    return re.sub(r"(password\s*=\s*)\S+", r"\1***", text)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def submission_key(identifiers: Iterable[dict]) -> Optional[str]:
    """The key a Claim's first identifier with a value gives: "system|value" ("|value" without a system)."""
    for ident in identifiers or []:
        if isinstance(ident, dict) and isinstance(ident.get("value"), str) and ident["value"]:
            system = ident.get("system") if isinstance(ident.get("system"), str) else ""
            return f"{system}|{ident['value']}"
    return None
