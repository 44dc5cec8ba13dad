"""The SQL both stores share (solver/service/store.py): one table of decisions through the
DB-API, written under one lock, read with each row checked (solver/service/records.py).  A
subclass opens the connection and says how its database differs: the placeholder, how the new
key comes back, the highest key given out, and which errors are damage.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Optional

from solver.service.records import (DamagedRecord, Record, StoreError, checked, listed, said, shown, submitted,
                                    unreadable, whole)


class Listing:
    """The table's listings (`pa-solver audit`, ui/recorded.py's pages): filtered, a page at a time, and,
    checked, read around damage; over the queries a store runs (`_rows`, `_each`)."""

    LISTED = "seq, kind, submission, decided_at, rules_version, request_sha256, decisions"
    CHECKED = ", request, answer, answer_sha256"
    TOP: tuple = ()                                 # queries for the highest seq given out, the first that says
    P = "?"
    path = ""

    def _rows(self, sql: str, args) -> list:
        raise NotImplementedError

    def _each(self, sql: str, args, keep) -> list:
        raise NotImplementedError

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
        where, args = _where(self.P, since, plan, kind, before)
        sql = (f"SELECT {self.LISTED}{self.CHECKED if verify else ''} FROM decisions"
               + where + " ORDER BY seq" + (" DESC" if limit else ""))
        if limit:
            sql += f" LIMIT {int(limit)}"
        try:
            out = self._each(sql, args, (lambda row: checked(row, plan)) if verify else
                             (lambda row: listed(row, plan, self.path)))
        except StoreError as err:
            if not verify or err.damage is None:
                raise
            out = self._probe(since, plan, kind, before, limit)
        if limit:
            out.reverse()
        return out

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
                out.append(unreadable(seq, err.damage))
                continue
            got = checked(rows[0], plan) if rows else None
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

    def count(self, since: Optional[str] = None, plan: Optional[str] = None, kind: Optional[str] = None,
              before: Optional[str] = None) -> int:
        where, args = _where(self.P, since, plan, kind, before)
        return int(self._rows("SELECT COUNT(*) FROM decisions" + where, args)[0][0])


class SqlStore(Listing):
    """The table of decisions written and read by key; a subclass sets `path`, `_db` (a DB-API connection)
    and `_lock`."""

    INSERT = ("INSERT INTO decisions (kind, submission, request_sha256, request, answer, answer_sha256, media_type, "
              "rules_version, decided_at, decisions) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    errors: tuple = ()

    def _insert(self, row: tuple) -> int:
        raise NotImplementedError

    def _damage(self, err: BaseException) -> Optional[str]:
        """What damage a failed read shows, in a few words; None when it shows none (a lock, a lost
        connection: the same read may work later)."""
        raise NotImplementedError

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
                raise StoreError(f"cannot record the decision in {shown(self.path)}: {said(err)}") from None

    def _failed(self, err: BaseException) -> StoreError:
        return StoreError(f"cannot read {shown(self.path)}: {said(err)}", self._damage(err))

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

    def _damaged_read(self, sql: str, args, seq: Optional[int]) -> list:
        """The rows of a read that hands out bytes; DamagedRecord (record `seq`) where the database
        cannot read them."""
        try:
            return self._rows(sql, args)
        except StoreError as err:
            if err.damage is None:
                raise
            raise DamagedRecord(seq, err.damage) from None

    def submission(self, key: str) -> Optional[tuple[bytes, str]]:
        """The latest answer recorded for a submission: (bytes, media type), or None.  DamagedRecord
        when its bytes do not match their digest or cannot be read: never the bytes."""
        # the row's own submission, read by its seq (the key's column alone is read from the index)
        rows = self._damaged_read("SELECT seq, (SELECT r.submission FROM decisions r WHERE r.seq = decisions.seq), "
                                  f"answer, answer_sha256, media_type FROM decisions WHERE submission = {self.P} "
                                  "AND kind = 'submit' ORDER BY seq DESC LIMIT 1", (key,), None)
        return submitted(key, rows[0]) if rows else None

    def entry(self, seq: int) -> Optional[dict]:
        """One recorded decision whole (its request's and answer's bytes too), or None; DamagedRecord
        when its bytes do not match their digests or cannot be read: never the bytes.  `integrity`:
        ok, or unverified for a record kept before the answer's digest was."""
        rows = self._damaged_read("SELECT kind, submission, decided_at, rules_version, request_sha256, decisions, "
                                  f"request, answer, answer_sha256, media_type FROM decisions WHERE seq = {self.P}",
                                  (seq,), seq)
        return whole(seq, rows[0]) if rows else None

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _where(p: str, since: Optional[str], plan: Optional[str], kind: Optional[str],
           before: Optional[str] = None) -> tuple[str, list]:
    """The WHERE clause of a listing (placeholder `p`), done by the database (an index on the time; a
    plan by its key in the decisions' JSON, which json.dumps writes as "plan": "decision")."""
    where, args = [], []
    if since is not None:
        where.append(f"decided_at >= {p}")
        args.append(since)
    if before is not None:
        where.append(f"decided_at < {p}")
        args.append(before)
    if kind is not None:
        where.append(f"kind = {p}")
        args.append(kind)
    if plan is not None:
        where.append(f"decisions LIKE {p}")
        args.append(f'%{json.dumps(plan)}: %')
    return (" WHERE " + " AND ".join(where)) if where else "", args
