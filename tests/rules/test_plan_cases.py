"""Per-plan case files (tests/plan_cases/<plan>.yaml): plain data an analyst can
read — name, input, expected decision, pathway, authorization, criterion
statuses, missing sets, and (`changes`) every single fact change that would
change the decision, checked by hand against the policy — run against the
solver."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from solver import decide, explain
from solver.engine.rulebase import RuleBase

HERE = Path(__file__).resolve().parents[1] / "plan_cases"
FILES = {p.stem: yaml.safe_load(p.read_text()) for p in sorted(HERE.glob("*.yaml"))}
CASES = [(plan, c) for plan, doc in FILES.items() for c in doc["cases"]]


def _missing(result):
    out = []
    for m in result.missing:
        facts = {}
        for f in m.facts:
            facts[f.fact] = f.values if f.values is not None else {"range": f.range}
        out.append({"pathway": m.pathway, "facts": facts})
    return out


@pytest.mark.parametrize("plan, case", CASES, ids=[f"{p}: {c['name']}" for p, c in CASES])
def test_case(plan, case):
    expect = case["expect"]
    (r,) = decide({**case["input"], "plans": [plan]}).results
    assert r.decision == expect["decision"]
    if "pathway" in expect:
        assert r.pathway == expect["pathway"]
    if "note" in expect:                     # null: no note; a string: words the note holds
        if expect["note"] is None:
            assert r.note is None, r.note
        else:
            assert r.note is not None and expect["note"] in r.note, r.note
    if "authorization" in expect:
        got = r.authorization.model_dump() if r.authorization else None
        assert got == expect["authorization"]
    statuses = {c.id: c.status for pw in r.pathways for c in pw.criteria}
    for cid, status in expect.get("criteria", {}).items():
        assert statuses.get(cid) == status, cid
    if "missing" in expect:
        assert _missing(r) == expect["missing"]
    if "changes" in expect:
        (x,) = explain({**case["input"], "plans": [plan]}, max_changes=1).results
        got = [[e.decision, e.facts[0].fact, e.facts[0].values if e.facts[0].values is not None
                else {"range": e.facts[0].range}] for e in x.changes]
        assert got == expect["changes"]
    if "missing_facts" in expect:
        got = sorted(sorted(f.fact for f in m.facts) for m in r.missing)
        assert got == sorted(sorted(s) for s in expect["missing_facts"])


def test_every_criterion_is_shown_met_broken_and_unknown():
    seen = {}
    for plan, case in CASES:
        for cid, status in case["expect"].get("criteria", {}).items():
            seen.setdefault(cid, set()).add(status)
    unbreakable = {cid for doc in FILES.values() for cid in doc.get("unbreakable", {})}
    rules = RuleBase()
    tests = rules.criterion_facts
    for cid in rules.criteria:
        # a criterion that reads only the request (always known) is never unknown
        never_unknown = set(tests.get(cid, ())) <= {"drug", "request"}
        wanted = {"met"} | ({"unknown"} if not never_unknown else set()) \
            | ({"not_met"} if cid not in unbreakable else set())
        assert wanted <= seen.get(cid, set()), f"{cid}: only {sorted(seen.get(cid, set()))}"


def test_every_reading_of_case_md_is_exercised():
    readings = {r for doc in FILES.values() for c in doc["cases"] if (r := c.get("reading"))}
    for plan in ("cvs_caremark", "bcbs_fep", "ohsu", "masshealth", "bcbsnc"):
        assert any(c.get("reading") for c in FILES[plan]["cases"]), plan
    assert len(readings) >= 20
