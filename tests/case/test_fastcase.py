"""The fast path (msgspec) never decides differently from pydantic: what it
accepts pydantic accepts with the same values, and a one-shot command reads a
valid case without importing pydantic at all."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solver.case import fastcase
from solver.engine.solver import Solver
from solver.text.jsontext import dump_text
from solver.case.models import Case, CaseError, Facts, parse_case
from strategies import FACT_NAMES, bounds, cases, enum_values, kind
from strategies import ANY, CASE_LIKE, JSON, JUNK_FACTS

ROOT = Path(__file__).resolve().parents[2]
SOLVER = Solver()


def pydantic_view(case: Case) -> dict:
    return case.model_dump()


def fast_view(case: fastcase.FastCase) -> dict:
    return msgspec.to_builtins(case, builtin_types=(float,), order="deterministic")


def agrees(obj) -> None:
    """If the fast path takes `obj`, pydantic takes it too, with the same values."""
    fast = fastcase.parse(obj)
    if fast is None:
        return
    try:
        ref = parse_case(obj)
    except CaseError as err:                                    # pragma: no cover - the failure we guard
        pytest.fail(f"the fast path accepted what pydantic refuses: {obj!r}: {err}")
    got = fast_view(fast)
    want = pydantic_view(ref)
    assert got == want and all(type(got["facts"][k]) is type(want["facts"][k]) for k in want["facts"]), obj


def test_the_structs_have_the_models_fields_in_order():
    assert tuple(f.name for f in msgspec.structs.fields(fastcase.FastFacts)) == tuple(Facts.model_fields)
    assert tuple(f.name for f in msgspec.structs.fields(fastcase.FastCase)) == tuple(Case.model_fields)


@pytest.mark.parametrize("name", FACT_NAMES)
def test_every_fact_has_the_same_type_choices_and_bounds(name):
    """At each bound and beside it, every choice and a wrong one: both
    validators agree on what is a value of the fact."""
    k = kind(name)
    if k in ("integer", "number"):
        b = bounds(name)
        probes = [0, 1, -1, 0.5, 10**6, True, "1", float("inf"), float("nan")]
        for v in b.values():
            probes += [v, v - 1, v + 1, v - 0.001, v + 0.001]
    elif k == "enum":
        probes = list(enum_values(name)) + ["nope", 1, True]
    elif k == "bool":
        probes = [True, False, 0, 1, "true"]
    else:
        probes = [["C91.00"], ["c9100"], [" C91.0 "], ["X"], "C91.00", [1], []]
    for v in probes:
        obj = {"facts": {name: v}}
        fast = fastcase.parse(obj)
        try:
            parse_case(obj)
            ok = True
        except CaseError:
            ok = False
        if fast is not None:
            assert ok, (name, v)
            agrees(obj)
        elif k != "list" and not (isinstance(v, float) and not math.isfinite(v)):
            # narrower only where it says so: codes to normalise, infinities, duplicates
            assert not ok, (name, v)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_valid_cases_take_the_fast_path_and_decide_the_same(case):
    fast = fastcase.parse(case)
    assert fast is not None, case
    agrees(case)
    assert dump_text(SOLVER.solve(fast, 1)) == dump_text(SOLVER.solve(parse_case(case), 1))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(JSON, CASE_LIKE, st.fixed_dictionaries({"facts": JUNK_FACTS}),
                 cases().flatmap(lambda c: st.sampled_from(FACT_NAMES).flatmap(
                     lambda n: ANY.map(lambda v: {**c, "facts": {**c["facts"], n: v}})))))
def test_junk_is_never_accepted_by_the_fast_path_alone(obj):
    agrees(obj)


def test_examples_decide_the_same_either_way():
    for path in sorted((ROOT / "examples").glob("*.json")):
        obj = json.loads(path.read_text())
        fast = fastcase.parse(obj)
        assert fast is not None, path
        assert dump_text(SOLVER.solve(fast, 2)) == dump_text(SOLVER.solve(parse_case(obj), 2))


def test_a_one_shot_decide_of_a_valid_case_does_not_import_pydantic():
    probe = ("import sys, runpy; sys.argv = ['pa-solver', 'decide', 'examples/ohsu_adult_rr.json', '--json'];"
             "import solver.cli as c; rc = c.main();"
             "print('PYDANTIC' if 'pydantic' in sys.modules else 'NO-PYDANTIC', file=sys.stderr)")
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert res.returncode == 0 and "NO-PYDANTIC" in res.stderr
    bad = subprocess.run([sys.executable, "-m", "solver.cli", "decide", "-"], input='{"facts":{"age_years":131}}',
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert bad.returncode == 2 and "facts.age_years: Input should be less than or equal to 130" in bad.stderr
