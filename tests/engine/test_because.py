"""`because` on every judged criterion (issue 18, part 1): the facts a criterion tested, the
case's value of each, the test in words, and whether it holds.

Checked here against an independent reading: the words are parsed back into a test and
evaluated on the value directly; the values are the case's own; and the criterion's status,
which clingo decides, agrees with the tests shown (met: all hold; not met: one fails;
unknown: none fails and one is unknown).  Every plan, both drugs, both requests."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings

from solver import decide
from solver.engine.solver import Solver
from solver.fhir.inputs import case_from
from strategies import any_cases

SOLVER = Solver()


def evaluate(test: str, value) -> bool:
    """A test's words (FactDomain.words) read back and applied to a known value."""
    if test == "documented":
        return True
    if test in ("true", "false"):
        return value is (test == "true")
    m = re.fullmatch(r"in \[(.*)\]", test)
    if m:
        return value in m.group(1).split(", ")
    for alternative in test.split(" or "):
        ok = True
        for part in alternative.split(" and "):
            op, bound = part.split(" ")
            bound = float(bound)
            ok &= {">=": value >= bound, "<=": value <= bound, "<": value < bound}[op]
        if ok:
            return True
    return False


def check(case: dict) -> int:
    parsed, _ = case_from(case)
    result = SOLVER.solve(parsed)
    facts = dict(case.get("facts") or {})
    facts.update(result["derived_facts"])
    n = 0
    for r in result["results"]:
        for pw in r["pathways"]:
            for c in pw["criteria"]:
                because = c["because"]
                assert because, (r["plan"], c["id"])                 # every criterion tests some fact
                holds = []
                for b in because:
                    if b["fact"] == "drug":
                        want = parsed.drug
                    elif b["fact"] == "request":
                        want = parsed.request
                    else:
                        want = facts.get(b["fact"])
                    if isinstance(want, float) or isinstance(b["value"], float):
                        assert (want is None and b["value"] is None) or float(want) == float(b["value"]), b
                    else:
                        assert b["value"] == want, (c["id"], b, want)
                    if b["value"] is None:
                        assert b["holds"] is None, b
                    else:
                        assert b["holds"] is evaluate(b["test"], b["value"]), (c["id"], b)
                    holds.append(b["holds"])
                if c["status"] == "met":
                    assert all(h is True for h in holds), (c["id"], because)
                elif c["status"] == "not_met":
                    assert any(h is False for h in holds), (c["id"], because)
                else:
                    assert not any(h is False for h in holds) and any(h is None for h in holds), (c["id"], because)
                n += 1
    return n


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(any_cases())
def test_because_shows_the_case_values_and_tests_that_hold_as_the_status_says(case):
    check(case)


def test_every_plan_both_drugs_both_requests():
    seen = 0
    for drug in ("inotuzumab_ozogamicin", "blinatumomab"):
        for request in ("initial", "continuation"):
            for facts in ({}, {"age_years": 70, "diagnosis": "all", "planned_cycles": 8, "cd22_positive": False,
                               "with_rituximab": True, "cycles_received": 2, "months_since_initial_authorization": 6}):
                seen += check({"drug": drug, "request": request, "facts": facts})
    assert seen > 200


def test_words_and_the_branch_that_decided():
    r = {p.plan: p for p in decide({"facts": {"planned_cycles": 8, "age_years": 70, "regimen": "tki_combination",
                                              "ph_status": "negative"}, "plans": ["ohsu", "cvs_caremark"]}).results}
    crit = {c.id: c for pw in r["ohsu"].pathways for c in pw.criteria}
    (b,) = crit["ohsu_i_1"].because
    assert (b.fact, b.value, b.test, b.holds) == ("planned_cycles", 8, "<= 6", False)
    (b,) = crit["ohsu_iii_a1"].because
    assert (b.test, b.holds) == (">= 18", True)
    # CVS rr criterion 4 (single agent, or a TKI with Ph-positive, or mini-hyper-CVD): every option broken;
    # shown: the option with the fewest broken tests (a TKI: the regimen holds, Ph-negative breaks it)
    cvs = {c.id: c for pw in r["cvs_caremark"].pathways for c in pw.criteria}
    got = [(b.fact, b.test, b.holds) for b in cvs["cvs_rr_4"].because]
    assert got == [("ph_status", "in [positive]", False), ("regimen", "in [tki_combination]", True)]
