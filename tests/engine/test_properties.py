"""Properties of the solver over random valid cases (strategies.py) and random junk.

- Filling a reported missing set with its values meets the set's pathway and
  gives the set's outcome for that plan (first listed values, and last ones).
- Learning more unknown facts never turns approved or denied into anything else.
- needs_info carries missing sets; no other decision does.
- Missing sets are subset-minimal, sorted, name an open pathway of their plan,
  and list only facts the case does not know.
- The same case gives byte-identical JSON, whatever was solved before and on a
  freshly built Solver.
- Random JSON never raises anything but CaseError.
"""

from __future__ import annotations

import json
import math
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solver import CaseError, CaseResult, Solver, decide, decide_many
from solver.case.models import parse_case
from strategies import (
    ANY, CASE_LIKE, JSON, JUNK_FACTS, FACT_NAMES, FACT_VALUES, SCALAR_FACTS, any_cases, bounds, cases, enum_values, kind,
)

SOLVER = Solver()
# PA_PROPERTY_SCALE=20 runs twenty times the examples (a deeper search, minutes).
SCALE = float(os.environ.get("PA_PROPERTY_SCALE", "1"))


def props(n: int):
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def by_plan(result: CaseResult) -> dict:
    return {r.plan: r for r in result.results}


def known_facts(case: dict, result: CaseResult) -> set:
    """Facts the solver sees as known: given non-null, or derived (diagnosis from ICD-10)."""
    known = {n for n, v in case.get("facts", {}).items() if v is not None}
    return known | set(result.derived_facts)


# ------------------------------------------------------------ filling a missing set


def value_in_range(fact: str, low, high, end: str):
    """A valid value of `fact` in [low, high): near the low end for end="first",
    near the high end for end="last" (CASE.md: null is no bound)."""
    integer = kind(fact) == "integer"
    b = bounds(fact)
    vmin = b.get("ge", b.get("gt"))          # valid range of the fact itself
    vmax = b.get("le", b.get("lt"))
    if end == "first":
        if low is not None:
            x = low
        elif high is not None:
            x = high - 1 if integer else high - 0.5
        else:
            x = 1 if integer else 50.0        # "any documented value"
    else:
        if high is not None:
            x = high - 1 if integer else high - 0.5
        elif low is not None:
            x = low + 7 if integer else low + 7.5
        else:
            x = 7 if integer else 70.5
    # respect the fact's own valid range (still inside [low, high))
    if vmax is not None and x > vmax:
        x = vmax
    if vmin is not None and (x < vmin or ("gt" in b and x <= vmin)):
        x = vmin + (1 if integer else 0.25) if "gt" in b else vmin
    if integer:
        x = int(x)
    assert (low is None or x >= low) and (high is None or x < high), \
        f"{fact}: range [{low}, {high}) holds no valid value"
    return x


def fill_value(mf, end: str):
    if mf.values is not None:
        assert mf.values, f"{mf.fact}: empty value list"
        return mf.values[0] if end == "first" else mf.values[-1]
    assert mf.range is not None and len(mf.range) == 2, mf
    return value_in_range(mf.fact, mf.range[0], mf.range[1], end)


@props(120)
@given(any_cases())
def test_filling_a_missing_set_gives_its_outcome(case):
    result = decide(case, solver=SOLVER)
    for r in result.results:
        for m in r.missing:
            for end in ("first", "last"):
                facts = dict(case["facts"])
                for mf in m.facts:
                    facts[mf.fact] = fill_value(mf, end)
                after = by_plan(decide({**case, "facts": facts}, solver=SOLVER))[r.plan]
                wanted = {"approved"} if m.outcome == "approved" else {"case_review", "approved"}
                assert after.decision in wanted, (r.plan, end, m.model_dump(), after.decision)
                status = {p.id: p.status for p in after.pathways}
                assert status[m.pathway] == "met", (r.plan, end, m.model_dump(), status)


# ------------------------------------------------------------ monotone in knowledge


@st.composite
def case_and_more_knowledge(draw):
    case = draw(any_cases())
    result = decide(case, solver=SOLVER)
    known = known_facts(case, result)
    unknown = [n for n in SCALAR_FACTS if n not in known]
    if "icd10_codes" not in case["facts"] or case["facts"]["icd10_codes"] is None:
        unknown.append("icd10_codes")     # codes only ever add a diagnosis that is unknown
    learn = draw(st.lists(st.sampled_from(unknown), unique=True, min_size=1, max_size=len(unknown))) if unknown else []
    more = {**case["facts"], **{n: draw(FACT_VALUES[n]) for n in learn}}
    return case, result, {**case, "facts": more}


@props(150)
@given(case_and_more_knowledge())
def test_learning_more_never_overturns_approved_or_denied(args):
    case, before, more = args
    after = by_plan(decide(more, solver=SOLVER))
    for r in before.results:
        if r.decision in ("approved", "denied"):
            assert after[r.plan].decision == r.decision, (r.plan, case, more)
        if r.decision == "no_policy":
            assert after[r.plan].decision == "no_policy"


# ------------------------------------------------------------ shape of the missing sets


@props(200)
@given(any_cases())
def test_needs_info_and_only_needs_info_has_missing_sets(case):
    for r in decide(case, solver=SOLVER).results:
        if r.decision == "needs_info":
            assert r.missing, (r.plan, case)
        else:
            assert r.missing == [], (r.plan, r.decision)


@props(200)
@given(any_cases())
def test_missing_sets_are_subset_minimal_within_their_plan(case):
    for r in decide(case, solver=SOLVER).results:
        sets = [frozenset(f.fact for f in m.facts) for m in r.missing]
        for i, s in enumerate(sets):
            for j, o in enumerate(sets):
                assert not (i != j and o < s), (r.plan, sorted(o), "is inside", sorted(s))


@props(200)
@given(any_cases())
def test_missing_sets_are_well_formed(case):
    """Sorted by size then pathway; each names an open pathway of its plan with that
    pathway's outcome; lists only unknown facts, each once, with values from the
    fact's domain or a range, and the criteria of that pathway it helps meet."""
    result = decide(case, solver=SOLVER)
    known = known_facts(case, result)
    for r in result.results:
        assert [(len(m.facts), m.pathway) for m in r.missing] == sorted((len(m.facts), m.pathway) for m in r.missing)
        pathways = {p.id: p for p in r.pathways}
        for m in r.missing:
            assert m.facts, (r.plan, m)
            pw = pathways[m.pathway]
            assert pw.status == "open" and pw.outcome == m.outcome
            crit = {c.id: c.status for c in pw.criteria}
            names = [f.fact for f in m.facts]
            assert names == sorted(set(names))
            for f in m.facts:
                assert f.fact in FACT_NAMES and f.fact not in known, (f.fact, known)
                assert f.criteria and all(crit.get(c) == "unknown" for c in f.criteria), (f, crit)
                if kind(f.fact) in ("bool", "enum"):
                    domain = (True, False) if kind(f.fact) == "bool" else enum_values(f.fact)
                    assert f.range is None and f.values and set(f.values) <= set(domain)
                else:
                    assert f.values is None and len(f.range) == 2
                    lo, hi = f.range
                    assert lo is None or hi is None or lo < hi


# ------------------------------------------------------------ byte-identical output


@props(40)
@given(any_cases(), st.lists(any_cases(), max_size=12))
def test_same_case_same_bytes_whatever_came_before_and_on_a_fresh_solver(case, others):
    first = decide(case, solver=SOLVER).to_json()
    for other in others:
        decide(other, solver=SOLVER)
    again = decide(case, solver=SOLVER).to_json()
    fresh = decide(case, solver=Solver()).to_json()
    assert first == again == fresh
    assert decide(json.dumps(case), solver=SOLVER).to_json() == first      # JSON text in, same bytes out
    assert SOLVER.decide_json(parse_case(case)) == first                    # the batch path's serializer
    assert json.loads(first)["case_id"] == case.get("case_id")


@props(10)
@given(st.lists(any_cases(), min_size=1, max_size=20))
def test_decide_many_gives_the_same_bytes_in_order(batch):
    got = [r.to_json() for r in decide_many(batch, workers=1)]
    assert got == [decide(c, solver=SOLVER).to_json() for c in batch]


# ------------------------------------------------------------ junk never crashes

def _result_or_case_error(data):
    try:
        out = decide(data, solver=SOLVER)
    except CaseError as err:
        assert str(err).strip()
        return None
    assert isinstance(out, CaseResult)
    json.loads(out.to_json())
    return out


@props(200)
@given(st.one_of(JSON, CASE_LIKE, st.fixed_dictionaries({"facts": JUNK_FACTS})))
def test_random_json_gives_a_result_or_a_case_error(data):
    _result_or_case_error(data)
    try:
        text = json.dumps(data)     # NaN / Infinity as JSON text too
    except (ValueError, OverflowError):
        return
    _result_or_case_error(text)


@props(100)
@given(st.one_of(st.text(max_size=40), st.binary(max_size=40),
                 cases().map(json.dumps).flatmap(lambda s: st.integers(0, len(s)).map(lambda i: s[:i]))))
def test_random_text_gives_a_result_or_a_case_error(text):
    _result_or_case_error(text)


@props(100)
@given(cases(), st.sampled_from(FACT_NAMES), ANY)
def test_one_wrong_value_in_a_valid_case_names_its_field_or_is_accepted(case, name, value):
    case = {**case, "facts": {**case["facts"], name: value}}
    try:
        decide(case, solver=SOLVER)
    except CaseError as err:
        assert f"facts.{name}" in str(err), str(err)
    else:
        # accepted: then it was null or a valid value of that fact
        if value is not None and kind(name) in ("integer", "number"):
            assert not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
