"""The record's listing (`audit`, the Recorded decisions page) is done by the database: filters
and the newest-first limit give what filtering the whole list in Python gives, and `count`
agrees.  Run on SQLite here and on PostgreSQL in tests/test_store_pg.py."""

from __future__ import annotations

from solver.service.store import Record, open_store

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
