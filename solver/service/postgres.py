"""The store in PostgreSQL (`--store postgresql://...`; solver/service/store.py): psycopg 3, the
schema, a listing through a server-side cursor, and which of PostgreSQL's errors are damage.
"""

from __future__ import annotations

import threading
from typing import Optional

from solver.service.records import StoreError, one_line, redacted, shown
from solver.service.sqlstore import SqlStore

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


class PgStore(SqlStore):
    """The same table in PostgreSQL: one connection, autocommit (each write its own committed
    transaction), the writer lock as for SQLite.  A deployment with more than one server process
    points them all at one database; each keeps its own connection.  The digests check each record
    on read as for SQLite."""

    INSERT = SqlStore.INSERT.replace("?", "%s") + " RETURNING seq"
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
            raise StoreError(f"--store {shown(url)}: {redacted(one_line(err), url)}") from None

    def _insert(self, row: tuple) -> int:
        return int(self._db.execute(self.INSERT, row).fetchone()[0])

    def damaged_pages(self) -> Optional[str]:
        return None                 # PostgreSQL checks its own pages (data checksums, where enabled)

    def _damage(self, err: BaseException) -> Optional[str]:
        if getattr(err, "sqlstate", None) in ("XX001", "XX002"):          # data_corrupted, index_corrupted
            return f"the database cannot read it ({one_line(err)})"
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
