"""`rests_on` (issue 18, second part): a subset-minimal set of the case's facts on which each
plan's decision rests.

(a) sufficiency: completions drawn at random (every other fact any value of its domain, or
unknown) never change the decision; (b) minimality: for each fact of the set, a completion of
the rest that changes the decision exists: clingo finds one, and the test decides it as an
ordinary case to see the decision differ; every plan, both drugs, both requests."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solver.engine import Solver
from solver.inputs import case_from
from strategies import any_cases

SOLVER = Solver()
RB = SOLVER.rester


def decision(case: dict, plan: str) -> str:
    parsed, _ = case_from(dict(case, plans=[plan]))
    (r,) = SOLVER.solve(parsed)["results"]
    return r["decision"]


def explained(case: dict) -> tuple[dict, dict]:
    parsed, _ = case_from(case)
    return parsed, SOLVER.solve(parsed, why=True)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(any_cases(), st.randoms(use_true_random=False))
def test_random_completions_of_rests_on_keep_the_decision(case, rnd):
    parsed, result = explained(case)
    for r in result["results"]:
        kept = {f["fact"]: f["value"] for f in r["rests_on"]}
        assert r["rests_on_count"] == len(kept) and r["facts_count"] == len(RB.keep)
        for _ in range(4):
            facts = {}
            for name in RB.keep:
                if name in kept:
                    if kept[name] is not None:
                        facts[name] = kept[name]
                elif rnd.random() < 0.6:                   # else: left unknown
                    facts[name] = _draw(name, rnd)
            completion = {"drug": parsed.drug, "request": parsed.request, "facts": facts}
            assert decision(completion, r["plan"]) == r["decision"], (r["plan"], kept, facts)


def _draw(name: str, rnd: random.Random):
    """A value of the fact's domain in the rule base: a declared value, or a number inside an interval."""
    fd = SOLVER.rules.facts[name]
    sym = rnd.choice(fd.values)
    if fd.kind == "bool":
        return sym.string == "true"
    if fd.kind == "enum":
        return sym.string
    lo, hi = (a.number if a.type.name == "Number" else None for a in sym.arguments)
    lo = 0 if lo is None else lo
    hi = lo + 3 if hi is None else hi
    value = rnd.randint(lo, hi - 1)
    caps = {"age_years": 130, "weight_kg": 500, "height_cm": 300, "planned_cycles": 20, "cycles_received": 20}
    value = min(value, caps.get(name, value))
    if name in ("weight_kg", "height_cm", "planned_cycles"):
        value = max(value, 1)
    return float(value) if fd.kind == "number" else value


def witness(parsed, derived: dict, plan: str, kept: list[str]) -> dict:
    """A completion of `kept` (from the rests part's model) that decides otherwise, as a case."""
    lits = SOLVER.assumptions(parsed, derived, RB)
    plan_lits = [lit if p == plan else -lit for p, lit in RB.rplan.items()]
    model: list = []
    res = RB.ctl.solve(assumptions=lits + plan_lits + [RB.keep[f] for f in kept],
                       on_model=lambda m: model.extend(m.symbols(shown=True)))
    assert res.satisfiable
    facts = {}
    for name in RB.keep:
        if name in kept:
            v = SOLVER._value(parsed, derived, name)
            if v is not None:
                facts[name] = v
    for sym in model:
        if sym.name == "fv":
            name, d = sym.arguments[0].name, sym.arguments[1]
            fd = SOLVER.rules.facts[name]
            if fd.kind == "bool":
                facts[name] = d.string == "true"
            elif fd.kind == "enum":
                facts[name] = d.string
            else:
                lo = d.arguments[0].number if d.arguments[0].type.name == "Number" else None
                hi = d.arguments[1].number if d.arguments[1].type.name == "Number" else None
                v = lo if lo is not None else (hi - 1 if hi is not None else 0)
                v = max(v, 1) if name in ("weight_kg", "height_cm", "planned_cycles") else max(v, 0)
                facts[name] = float(v) if fd.kind == "number" else int(v)
    return {"drug": parsed.drug, "request": parsed.request, "facts": facts}


CASES = [
    {"facts": {}},
    {"facts": {"planned_cycles": 8, "age_years": 70, "diagnosis": "all"}},
    {"facts": {"age_years": 52, "diagnosis": "all", "b_cell_precursor": True, "cd22_positive": True,
               "ph_status": "negative", "disease_setting": "relapsed_refractory", "regimen": "single_agent",
               "planned_cycles": 4, "units_per_21_days": 30, "baseline_ecg_normal": True,
               "ecg_monitoring_planned": True, "prior_inotuzumab": False, "weight_kg": 70,
               "dose_within_label": True, "prescriber_specialty": "oncology", "prior_systemic_therapies": 1}},
    {"facts": {"diagnosis": "lymphoblastic_lymphoma", "b_cell_precursor": True, "cd22_positive": False,
               "new_to_plan_on_treatment": True, "supplied_by_samples_or_pap": False, "nccn_category": "2A"}},
]


def test_each_fact_of_rests_on_is_needed_every_plan_drug_and_request():
    checked = 0
    for base in CASES:
        for drug in ("inotuzumab_ozogamicin", "blinatumomab"):
            for request in ("initial", "continuation"):
                case = dict(base, drug=drug, request=request)
                parsed, result = explained(case)
                for r in result["results"]:
                    kept = [f["fact"] for f in r["rests_on"]]
                    for f in kept:
                        other = witness(parsed, result["derived_facts"], r["plan"], [k for k in kept if k != f])
                        assert decision(other, r["plan"]) != r["decision"], (r["plan"], f, other)
                        checked += 1
    assert checked > 100


def test_the_cli_says_it():
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-m", "solver.cli", "decide", "examples/cvs_frontline_incomplete.json",
                          "--json", "--why"], capture_output=True, text=True, cwd=root, timeout=120)
    got = {r["plan"]: r for r in json.loads(out.stdout)["results"]}
    assert {f["fact"] for f in got["cvs_caremark"]["rests_on"]} >= {"cd22_positive", "ph_status"}
    plain = subprocess.run([sys.executable, "-m", "solver.cli", "decide", "examples/cvs_frontline_incomplete.json",
                            "--json"], capture_output=True, text=True, cwd=root, timeout=120)
    assert "rests_on" not in plain.stdout                                     # asked for only


def test_the_shared_solver_of_the_pages_answers_why_too():
    from solver.engine import SharedSolver

    parsed, _ = case_from({"facts": {"planned_cycles": 8}, "plans": ["ohsu"]})
    (r,) = SharedSolver().solve(parsed, why=True)["results"]
    assert r["rests_on"] == [{"fact": "planned_cycles", "value": 8}]
