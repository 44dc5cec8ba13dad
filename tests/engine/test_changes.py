"""Changes that would change a decision (CASE.md, `changes`), found by clingo.

- Every listed change, applied to the case, gives the decision it names, for
  every combination of the values it lists (a range: both ends) (hypothesis,
  random cases).
- Every single fact that can flip a plan's decision on its own is listed, with
  every value that flips it: checked against a brute-force search over the
  rule base's fact domains (in this test only) on random cases.
- Entries are minimal and sorted as CASE.md says; at most N facts each; the
  answer does not depend on what was solved before.
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from solver import Solver, explain
from solver.text.jsontext import dump_text
from solver.case.models import parse_case
from strategies import any_cases, bounds, kind
from conftest import CASE_MD_PLANS

ROOT = Path(__file__).resolve().parents[2]
SOLVER = Solver()
RB = SOLVER.rules
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def point(name: str, lo, hi, at_top: bool = False):
    """A valid value of number fact `name` in [lo, hi), the lowest or the highest."""
    b = bounds(name)
    floor = b.get("ge", b.get("gt"))
    ceil = b.get("le", b.get("lt"))
    integer = kind(name) == "integer"
    low = lo if lo is not None else floor
    if low is None:
        low = 0
    if "gt" in b and low == b["gt"]:
        low = low + (1 if integer else 0.5)
    high = hi if hi is not None else (ceil if ceil is not None else low + 10)
    if not at_top:
        return low
    top = high - 1 if integer else high - 0.5
    if hi is None and ceil is not None and "le" in b:
        top = ceil
    return max(low, top if not integer else math.floor(top))


def applied(case: dict, facts: list[dict], last: bool = False) -> dict:
    """The case with each fact of a change (or missing set) given a listed value."""
    out = json.loads(json.dumps(case))
    out.setdefault("facts", {})
    for f in facts:
        if "values" in f:
            value = f["values"][-1 if last else 0]
        else:
            value = point(f["fact"], *f["range"], at_top=last)
        out["facts"][f["fact"]] = value
        if f["fact"] == "diagnosis":
            out["facts"].pop("icd10_codes", None)
    return out


def corners(facts: list[dict]) -> list[list[dict]]:
    """Every combination of each fact's listed values (a range: its two ends),
    as single-value facts: 'every listed value gives that decision'."""
    options = []
    for f in facts:
        if "values" in f:
            options.append([{"fact": f["fact"], "values": [v]} for v in f["values"]])
        else:
            lo, hi = f["range"]
            ends = {point(f["fact"], lo, hi), point(f["fact"], lo, hi, at_top=True)}
            options.append([{"fact": f["fact"], "values": [v]} for v in sorted(ends)])
    return [list(c) for c in itertools.product(*options)]


def decisions(case: dict) -> dict:
    return {r["plan"]: r["decision"] for r in SOLVER.solve(parse_case(case))["results"]}


@SETTINGS
@given(any_cases())
def test_every_listed_change_gives_the_decision_it_names(case):
    result = SOLVER.solve(parse_case(case), 2)
    for r in result["results"]:
        for entry in r["changes"]:
            assert entry["decision"] != r["decision"]
            assert 1 <= len(entry["facts"]) <= 2
            for combo in corners(entry["facts"]):
                assert decisions(applied(case, combo))[r["plan"]] == entry["decision"], (r["plan"], entry, combo)


@SETTINGS
@given(any_cases())
def test_changes_are_minimal_sorted_and_name_the_current_value(case):
    parsed = parse_case(case)
    result = SOLVER.solve(parsed, 2)
    for r in result["results"]:
        entries = r["changes"]
        keys = [(len(e["facts"]), e["decision"], [f["fact"] for f in e["facts"]]) for e in entries]
        assert keys == sorted(keys)
        for e in entries:
            names = {f["fact"] for f in e["facts"]}
            assert not any(o["decision"] == e["decision"] and {f["fact"] for f in o["facts"]} < names
                           for o in entries), e
            for f in e["facts"]:
                current = result["derived_facts"].get(f["fact"], getattr(parsed.facts, f["fact"]))
                assert f["from"] == current
        if r["decision"] == "no_policy":
            assert entries == []


def brute_force_single_flips(case: dict) -> set[tuple]:
    """(plan, new decision, fact, domain value) for every single fact change
    that flips a plan, by trying each value of each fact's domain."""
    base = decisions(case)
    parsed = parse_case(case)
    known = {**{n: getattr(parsed.facts, n) for n in RB.facts if n not in ("drug", "request")},
             **SOLVER.solve(parsed)["derived_facts"]}
    flips = set()
    for name, fd in RB.facts.items():
        if name in ("drug", "request"):
            continue
        current = known.get(name)
        cur_index = None if current is None else fd.index(current)
        for i, d in enumerate(fd.values):
            if i == cur_index:
                continue
            if fd.kind in ("number", "integer"):
                lo, hi = (a.number if a.type == a.type.Number else None for a in d.arguments)
                value = point(name, lo, hi)
                if fd.index(value) != i:        # the interval holds no valid value
                    continue
            elif fd.kind == "bool":
                value = d.string == "true"
            else:
                value = d.string
            changed = applied(case, [{"fact": name, "values": [value]}])
            for plan, dec in decisions(changed).items():
                if dec != base[plan]:
                    flips.add((plan, dec, name, i))
    return flips


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_cases())
def test_every_single_fact_flip_is_listed(case):
    listed = set()
    for r in SOLVER.solve(parse_case(case), 1)["results"]:
        for e in r["changes"]:
            (f,) = e["facts"]
            fd = RB.facts[f["fact"]]
            if "range" in f:
                lo, hi = f["range"]
                idx = [i for i, d in enumerate(fd.values)
                       if (lo is None or (d.arguments[0].type == d.arguments[0].type.Number and d.arguments[0].number >= lo))
                       and (hi is None or (d.arguments[1].type == d.arguments[1].type.Number and d.arguments[1].number <= hi))]
            else:
                idx = [fd.index(v) for v in f["values"]]
            listed |= {(r["plan"], e["decision"], f["fact"], i) for i in idx}
    flips = brute_force_single_flips(case)
    assert flips <= listed, sorted(flips - listed)


def test_one_change_is_the_single_fact_part_of_two():
    case = json.loads((ROOT / "examples/ohsu_adult_rr.json").read_text())
    one = SOLVER.solve(parse_case(case), 1)
    two = SOLVER.solve(parse_case(case), 2)
    for r1, r2 in zip(one["results"], two["results"]):
        assert r1["changes"], r1["plan"]
        assert all(len(e["facts"]) == 1 for e in r1["changes"])
        assert r1["changes"] == [e for e in r2["changes"] if len(e["facts"]) == 1]


def test_known_flips_on_the_bundled_example():
    """The adult relapsed case is approved by every plan; a hand check of a few
    flips against the policies (OHSU: ECG baseline must be normal; CVS: at most
    6 cycles; BCBS NC covers other cancers with NCCN 1 or 2A, so only a
    non-cancer diagnosis denies alone)."""
    case = json.loads((ROOT / "examples/ohsu_adult_rr.json").read_text())
    by_plan = {r.plan: r for r in explain(case).results if r.plan in CASE_MD_PLANS}
    assert {r.decision for r in by_plan.values()} == {"approved"}

    def single(plan, fact):
        return [(e.decision, e.facts[0].values, e.facts[0].range) for e in by_plan[plan].changes
                if len(e.facts) == 1 and e.facts[0].fact == fact]

    assert single("ohsu", "baseline_ecg_normal") == [("denied", [False], None)]
    assert single("cvs_caremark", "planned_cycles") == [("denied", None, [7, None])]
    assert single("bcbsnc", "diagnosis") == [("denied", ["non_cancer"], None)]
    assert single("bcbs_fep", "age_years") == [("denied", None, [None, 1])]


def test_same_bytes_whatever_was_solved_before():
    cases = [json.loads(p.read_text()) for p in sorted((ROOT / "examples").glob("*.json"))]
    first = [dump_text(SOLVER.solve(parse_case(c), 2)) for c in cases]
    fresh = Solver()
    again = [dump_text(fresh.solve(parse_case(c), 2)) for c in reversed(cases)]
    assert first == list(reversed(again))
    model = [explain(c, solver=fresh).to_json() for c in cases]
    assert model == first


def test_same_bytes_across_processes_and_hash_seeds():
    import os

    example = str(ROOT / "examples/ohsu_adult_rr.json")
    outs = {subprocess.run([sys.executable, "-m", "solver.cli", "explain", example, "--json"],
                           capture_output=True, check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
            for seed in ("1", "2", "random")}
    assert len(outs) == 1


def test_max_changes_out_of_range_is_refused():
    import pytest

    with pytest.raises(ValueError, match="max_changes"):
        SOLVER.solve(parse_case({}), 9)


def test_cli_explain_json_and_table():
    example = str(ROOT / "examples/cvs_frontline_incomplete.json")
    out = subprocess.run([sys.executable, "-m", "solver.cli", "explain", example, "--json"],
                         capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    assert all("changes" in r for r in data["results"])
    assert out.strip() == dump_text(SOLVER.solve(parse_case(json.loads(Path(example).read_text())), 2))
    one = json.loads(subprocess.run([sys.executable, "-m", "solver.cli", "explain", example, "--json",
                                     "--max-changes", "1"], capture_output=True, text=True, check=True).stdout)
    assert all(len(e["facts"]) == 1 for r in one["results"] for e in r["changes"])
    table = subprocess.run([sys.executable, "-m", "solver.cli", "explain", example],
                           capture_output=True, text=True, check=True).stdout
    assert "would change" in table and "cd22_positive" in table
    bad = subprocess.run([sys.executable, "-m", "solver.cli", "explain", example, "--max-changes", "7"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "max-changes" in bad.stderr
