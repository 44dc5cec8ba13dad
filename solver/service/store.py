"""The record of every decision the service answered (SERVICE.md, "Nothing lost").

    store = open_store("decisions.sqlite")       # one file; WAL
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

The parts: solver/service/records.py (a record, the errors, the checks of a row against its
digests), sqlstore.py (the SQL both databases share), sqlite.py (`SqliteStore`) and postgres.py
(`PgStore`).
"""

from __future__ import annotations

from solver.service.postgres import PgStore
from solver.service.records import is_url
from solver.service.sqlite import SqliteStore
from solver.service.sqlstore import SqlStore


def open_store(spec: str, sync: str = "normal", check: bool = False) -> SqlStore:
    """The store a --store names: a PostgreSQL URL, or a SQLite file.  `check`: first refuse a SQLite
    file whose pages PRAGMA quick_check finds damaged (StoreError saying what it found)."""
    return PgStore(spec) if is_url(spec) else SqliteStore(spec, sync, check)
