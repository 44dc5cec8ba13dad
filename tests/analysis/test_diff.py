"""pa-solver diff: every listed difference gives its pair of decisions with
every combination of its values, is minimal, and the list is complete on
small profiles (a brute-force search over the rule base's fact domains)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solver.rules.declared import of as _declared
from solver.analysis.diff import diff
from solver.engine.solver import Solver
from solver.fhir.inputs import case_from
from conftest import run_cli

PLANS = tuple(_declared().plans)

ROOT = Path(__file__).resolve().parents[2]
SOLVER = Solver()
DOMAINS = SOLVER.rules.facts
PAIRS = list(itertools.combinations(PLANS, 2))


def point(fact: str, value_index: int):
    """A case value inside a domain value of the rule base."""
    fd = DOMAINS[fact]
    sym = fd.values[value_index]
    if fd.kind == "bool":
        return sym.string == "true"
    if fd.kind == "enum":
        return sym.string
    lo, hi = (a.number if a.type.name == "Number" else None for a in sym.arguments)
    if lo is not None:
        return lo
    return (hi - 1 if fd.kind == "integer" else hi - 0.5) if hi is not None else 1


def values_of(f: dict) -> list:
    """Every value a listed fact allows, as case values (a range by its two ends)."""
    if "values" in f:
        return list(f["values"])
    lo, hi = f["range"]
    kind = DOMAINS[f["fact"]].kind
    ends = [lo if lo is not None else (hi - 1 if kind == "integer" else hi - 0.5) if hi is not None else 1]
    if hi is not None:
        ends.append(hi - 1 if kind == "integer" else hi - 0.001)
    return [e for e in ends if e is not None]


def decisions(plans, drug, request, facts: dict) -> tuple:
    case, _ = case_from({"plans": list(plans), "drug": drug, "request": request, "facts": facts})
    return tuple(r["decision"] for r in SOLVER.solve(case)["results"])


@pytest.mark.parametrize("a, b", PAIRS)
@pytest.mark.parametrize("req", ["initial", "continuation"])
def test_every_difference_gives_its_pair_and_is_minimal(a, b, req):
    got = diff(SOLVER, a, b, request=req)
    assert got["plans"] == sorted([a, b])
    sizes = [len(d["facts"]) for d in got["differences"]]
    assert sizes == sorted(sizes)
    for d in got["differences"][:60]:
        pair = (d["decisions"][got["plans"][0]], d["decisions"][got["plans"][1]])
        names = [f["fact"] for f in d["facts"]]
        for combo in itertools.product(*(values_of(f) for f in d["facts"])):
            facts = dict(zip(names, combo))
            assert decisions(got["plans"], got["drug"], req, facts) == pair, (d, facts)
            for drop in names:                       # minimal: dropping any fact loses the pair
                rest = {k: v for k, v in facts.items() if k != drop}
                assert decisions(got["plans"], got["drug"], req, rest) != pair, (d, drop)
            break                                    # minimality once per difference is enough


@pytest.mark.parametrize("a, b", PAIRS)
def test_no_difference_of_one_fact_is_missed(a, b):
    """Brute force over every fact and every value of its domain."""
    for drug, req in itertools.product(("inotuzumab_ozogamicin", "blinatumomab"), ("initial", "continuation")):
        got = diff(SOLVER, a, b, drug=drug, request=req)
        listed = got["differences"]
        empty = decisions(got["plans"], drug, req, {})
        if empty[0] != empty[1]:
            assert any(not d["facts"] for d in listed)
            continue
        for fact, fd in DOMAINS.items():
            if fact in ("drug", "request"):
                continue
            for i in range(len(fd.values)):
                value = point(fact, i)
                pair = decisions(got["plans"], drug, req, {fact: value})
                if pair[0] == pair[1]:
                    continue
                covered = [d for d in listed if [f["fact"] for f in d["facts"]] == [fact]
                           and (d["decisions"][got["plans"][0]], d["decisions"][got["plans"][1]]) == pair]
                assert any(value in f.get("values", []) or (
                    "range" in f and (f["range"][0] is None or value >= f["range"][0])
                    and (f["range"][1] is None or value < f["range"][1])) for d in covered for f in d["facts"]), \
                    (a, b, drug, fact, value, pair)


def test_the_command_line():
    run = lambda *x: run_cli("diff", *x, timeout=120)
    js = json.loads(run("cvs_caremark", "bcbs_fep", "--json").stdout)
    assert js["plans"] == ["bcbs_fep", "cvs_caremark"] and js["differences"]
    table = run("bcbs_fep", "cvs_caremark")
    assert "bcbs_fep DENIED, cvs_caremark NEEDS INFO" in table.stdout and "fep_rs_4" in table.stdout
    assert run("ohsu", "ohsu").returncode == 2


def test_the_table_says_what_causes_each_side():
    """A pended plan: the fewest facts it still needs; a case review: its pathway; a denial: its broken criteria."""
    from solver.render.table import render_diff

    got = diff(SOLVER, "masshealth", "cvs_caremark")
    text = render_diff(got, SOLVER, width=200)
    block = text.split("cvs_caremark DENIED, masshealth NEEDS INFO", 1)[1].split("\n\n", 1)[0]
    first = block.splitlines()[1:]
    assert any(line.strip().startswith("cvs_caremark cvs_") for line in first)
    assert any(line.strip().startswith("masshealth needs ") and "(for mh_" in line for line in first)
    if any(d["decisions"]["masshealth"] == "case_review" for d in got["differences"]):
        assert "masshealth case review: mh_continuity_of_care" in text


def _inside(f: dict, value) -> bool:
    if "values" in f:
        return value in f["values"] and type(value) is type(f["values"][0])
    lo, hi = f["range"]
    return not isinstance(value, (bool, str)) and (lo is None or value >= lo) and (hi is None or value < hi)


@pytest.mark.parametrize("drug", ["inotuzumab_ozogamicin", "blinatumomab"])
@pytest.mark.parametrize("req", ["initial", "continuation"])
def test_no_difference_of_two_facts_is_missed(drug, req):
    """Brute force over every pair of facts and every pair of their domain values
    (all five plans decided at once per profile): wherever two plans decide
    differently, a listed difference of that pair lies inside the profile."""
    listed = {}
    for a, b in PAIRS:
        got = diff(SOLVER, a, b, drug=drug, request=req)
        listed[(a, b)] = [((d["decisions"][a], d["decisions"][b]), d["facts"]) for d in got["differences"]]
    names = [f for f in DOMAINS if f not in ("drug", "request")]
    checked = 0
    for f1, f2 in itertools.combinations(names, 2):
        for i, j in itertools.product(range(len(DOMAINS[f1].values)), range(len(DOMAINS[f2].values))):
            profile = {f1: point(f1, i), f2: point(f2, j)}
            try:
                case, _ = case_from({"drug": drug, "request": req, "facts": profile})
            except ValueError:
                continue                                   # outside the case contract
            by_plan = {r["plan"]: r["decision"] for r in SOLVER.solve(case)["results"]}
            for (a, b), entries in listed.items():
                pair = (by_plan[a], by_plan[b])
                if pair[0] == pair[1]:
                    continue
                checked += 1
                assert any(p == pair and all(f["fact"] in profile and _inside(f, profile[f["fact"]]) for f in facts)
                           for p, facts in entries), (a, b, req, profile, pair)
    assert checked > 1000


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_values_anywhere_inside_the_boxes_give_the_pair(data):
    """Hypothesis: a plan pair, a request, a listed difference, and values drawn
    anywhere inside its boxes (not only at the ends) decide as listed."""
    a, b = data.draw(st.sampled_from(PAIRS))
    req = data.draw(st.sampled_from(["initial", "continuation"]))
    got = diff(SOLVER, a, b, request=req)
    if not got["differences"]:
        return
    d = data.draw(st.sampled_from(got["differences"]))
    facts = {}
    for f in d["facts"]:
        if "values" in f:
            facts[f["fact"]] = data.draw(st.sampled_from(f["values"]))
            continue
        lo, hi = f["range"]
        integer = DOMAINS[f["fact"]].kind == "integer"
        low = lo if lo is not None else 0
        high = (hi - 1 if integer else hi - 1e-6) if hi is not None else low + 200
        facts[f["fact"]] = data.draw(st.integers(low, int(high)) if integer else
                                     st.floats(low, high, allow_nan=False, allow_infinity=False))
    try:
        got_pair = decisions(got["plans"], got["drug"], req, facts)
    except ValueError:
        return                                             # a value the case contract refuses (e.g. age > 130)
    assert got_pair == (d["decisions"][got["plans"][0]], d["decisions"][got["plans"][1]]), (d, facts)
