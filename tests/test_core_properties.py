"""Properties over random cases (hypothesis): missing sets really complete
their pathway, knowing more never overturns approved/denied, needs_info always
says what is missing, and junk input never raises anything but CaseError."""

from __future__ import annotations

import typing

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solver import CaseError, decide
from solver.engine import Solver
from solver.models import Facts, parse_case

SOLVER = Solver()
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NUMBERS = {
    "age_years": [0.5, 1, 17.9, 18, 40, 64.9, 65, 80], "weight_kg": [3.5, 70], "height_cm": [150],
    "planned_cycles": [1, 6, 7, 12], "units_per_21_days": [10, 63, 64], "prior_systemic_therapies": [0, 1, 3],
    "cycles_received": [0, 5, 6, 9], "months_since_initial_authorization": [0, 5.9, 6, 8],
}


def _values(name, field):
    if name in NUMBERS:
        return st.sampled_from(NUMBERS[name])
    inner = [a for a in typing.get_args(field.annotation) if a is not type(None)][0]
    if inner is bool:
        return st.booleans()
    return st.sampled_from(typing.get_args(inner))


FACTS = {n: _values(n, f) for n, f in Facts.model_fields.items() if n != "icd10_codes"}
cases = st.fixed_dictionaries({
    "drug": st.sampled_from(["inotuzumab_ozogamicin", "inotuzumab_ozogamicin", "blinatumomab"]),
    "request": st.sampled_from(["initial", "initial", "continuation"]),
    "facts": st.fixed_dictionaries({}, optional=FACTS),
})


def _value_in(fact, entry):
    """A value meeting one missing fact: its first listed value, or a number in its range."""
    if "values" in entry:
        return entry["values"][0]
    lo, hi = entry["range"]
    integer = Facts.model_fields[fact].annotation == typing.Optional[int]
    if lo is not None:
        return lo
    if hi is not None:
        return hi - 1 if integer else hi - 0.5
    return 1 if integer else 50.0


@SETTINGS
@given(cases)
def test_filling_a_missing_set_gives_its_outcome(case):
    result = decide(case, solver=SOLVER)
    for r in result.results:
        assert (r.decision == "needs_info") == bool(r.missing)
        for m in r.missing:
            facts = dict(case["facts"])
            for f in m.facts:
                facts[f.fact] = _value_in(f.fact, f.model_dump())
            after = decide({**case, "plans": [r.plan], "facts": facts}, solver=SOLVER).results[0]
            wanted = {"approved"} if m.outcome == "approved" else {"approved", "case_review"}
            assert after.decision in wanted, (r.plan, m)


@SETTINGS
@given(cases, st.data())
def test_learning_more_never_overturns_approved_or_denied(case, data):
    before = {r.plan: r.decision for r in decide(case, solver=SOLVER).results}
    unknown = [n for n in FACTS if n not in case["facts"]]
    learn = data.draw(st.lists(st.sampled_from(unknown), unique=True, max_size=6)) if unknown else []
    facts = {**case["facts"], **{n: data.draw(FACTS[n]) for n in learn}}
    after = {r.plan: r.decision for r in decide({**case, "facts": facts}, solver=SOLVER).results}
    for plan, dec in before.items():
        if dec in ("approved", "denied"):
            assert after[plan] == dec


@SETTINGS
@given(cases)
def test_same_case_same_bytes(case):
    parsed = parse_case(case)
    assert SOLVER.decide_json(parsed) == SOLVER.decide_json(parsed) == decide(case, solver=SOLVER).to_json()


JSON = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                    max_leaves=12)


@SETTINGS
@given(st.one_of(JSON, st.fixed_dictionaries({"facts": st.dictionaries(st.sampled_from(sorted(FACTS)), JSON)})))
def test_random_json_gives_a_result_or_a_case_error(data):
    try:
        decide(data, solver=SOLVER)
    except CaseError as err:
        assert str(err)
