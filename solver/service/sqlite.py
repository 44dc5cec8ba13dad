"""The store in one SQLite file (the default; solver/service/store.py): write-ahead log, the
schema, adding the answer's digest to a file written before it was kept, PRAGMA quick_check, and
which of SQLite's errors are damage.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from typing import Optional

from solver.service.records import StoreError, one_line, said
from solver.service.sqlstore import SqlStore

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

SQLITE_CORRUPT, SQLITE_NOTADB = 11, 26          # the primary result codes of a damaged file


def _utf8(raw: bytes) -> str:
    """SQLite's TEXT as str.  Bytes that are not UTF-8 (a damaged row) raise UnicodeDecodeError, which
    reads as damage; sqlite3's own decoding raises an OperationalError, the class a lock raises."""
    return raw.decode("utf-8")


class SqliteStore(SqlStore):
    """One SQLite file (the default)."""

    # the highest seq given out: AUTOINCREMENT's counter first (a table of its own, so it outlives
    # damage to the decisions' pages), else the table's largest key
    TOP = ("SELECT seq FROM sqlite_sequence WHERE name = 'decisions'", "SELECT MAX(seq) FROM decisions")
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
            raise StoreError(f"--store {self.path}: {said(err)}", self._damage(err)) from None

    def _quick_check(self) -> None:
        found = self.damaged_pages()
        if found:
            raise StoreError(f"--store {self.path}: the file is damaged; PRAGMA quick_check says: {found}", found)

    def damaged_pages(self) -> Optional[str]:
        """What PRAGMA quick_check finds wrong with the file's pages, in one line (None: nothing).  It
        checks the structure of every page, the tables' and the indexes' (an index `$inquire` reads
        may be damaged where every row is sound); the rows' contents are the digests' part."""
        try:
            with self._lock:
                found = [one_line(r[0]) for r in self._db.execute("PRAGMA quick_check").fetchall()]
        except (sqlite3.Error, UnicodeDecodeError) as err:
            code = getattr(err, "sqlite_errorcode", None)
            if code is not None and code & 0xFF == SQLITE_NOTADB:
                raise                                   # not a database at all: said as such by the caller
            found = [said(err)]                         # too damaged to be checked at all
        if found == ["ok"]:
            return None
        return found[0] + (f" (and {len(found) - 1} more)" if len(found) > 1 else "")

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
        if isinstance(err, UnicodeDecodeError):
            return "its text is not UTF-8"
        code = getattr(err, "sqlite_errorcode", None)
        if isinstance(err, sqlite3.DatabaseError) and code is not None and code & 0xFF in (SQLITE_CORRUPT,
                                                                                           SQLITE_NOTADB):
            return f"the database cannot read it ({one_line(err)})"
        return None

    def _insert(self, row: tuple) -> int:
        return int(self._db.execute(self.INSERT, row).lastrowid)
