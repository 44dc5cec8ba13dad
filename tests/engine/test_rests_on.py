"""`rests_on` (issue 18, second part): a subset-minimal set of the case's facts on which each
plan's decision rests.

(a) sufficiency: completions drawn at random (every other fact any value of its domain, or
unknown) never change the decision; (b) minimality: for each fact of the set, a completion of
the rest that changes the decision exists: clingo finds one, and the test decides it as an
ordinary case to see the decision differ; every plan, both drugs, both requests."""

from __future__ import annotations

import random

import clingo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solver.engine.solver import Solver
from solver.fhir.inputs import case_from
from strategies import any_cases
from conftest import CASE_MD_PLANS

SOLVER = Solver()
RB_FACTS = SOLVER.rules.case_facts


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
        assert r["rests_on_count"] == len(kept) and r["facts_count"] == len(RB_FACTS)
        for _ in range(4):
            facts = {}
            for name in RB_FACTS:
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


def witness(parsed, derived: dict, plan: str, kept: list[str], dropped: str) -> dict:
    """A completion of `kept` less `dropped` that decides otherwise (a model of the exact check,
    the rests_check part, with `dropped` dropped), as a case."""
    rb = SOLVER.rests_checker
    lits = SOLVER.assumptions(parsed, derived, rb)
    lits += [lit if p == plan and f in kept else -lit for (p, f), lit in rb.keep.items()]
    lits += [lit if p == plan else -lit for p, lit in rb.check.items()] + [-rb.verify]
    lits.append(rb.ctl.symbolic_atoms[clingo.Function("drop", [clingo.Function(plan), clingo.Function(dropped)])].literal)
    with rb.ctl.solve(assumptions=lits, yield_=True) as handle:
        model = handle.model()
        assert model is not None, (plan, kept, dropped)
        symbols = model.symbols(shown=True)
    facts = {}
    for name in RB_FACTS:
        if name in kept and name != dropped:
            v = SOLVER.value(parsed, derived, name)
            if v is not None:
                facts[name] = v
    for sym in symbols:
        if sym.name == "fv":
            name, d = sym.arguments[1].name, sym.arguments[2]
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
                        other = witness(parsed, result["derived_facts"], r["plan"], kept, f)
                        assert decision(other, r["plan"]) != r["decision"], (r["plan"], f, other)
                        checked += 1
    assert checked > 100


def test_the_cli_says_it():
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-m", "solver.cli", "decide", "examples/cvs_frontline_incomplete.json",
                          "--json", "--why"], capture_output=True, text=True, cwd=root, timeout=120)
    got = {r["plan"]: r for r in json.loads(out.stdout)["results"]}
    assert {f["fact"] for f in got["cvs_caremark"]["rests_on"]} >= {"cd22_positive", "ph_status"}
    plain = subprocess.run([sys.executable, "-m", "solver.cli", "decide", "examples/cvs_frontline_incomplete.json",
                            "--json"], capture_output=True, text=True, cwd=root, timeout=120)
    assert "rests_on" not in plain.stdout                                     # asked for only


def test_the_shared_solver_of_the_pages_answers_why_too():
    from solver.engine.solver import SharedSolver

    parsed, _ = case_from({"facts": {"planned_cycles": 8}, "plans": ["ohsu"]})
    (r,) = SharedSolver().solve(parsed, why=True)["results"]
    assert r["rests_on"] == [{"fact": "planned_cycles", "value": 8}]


def _boundaries(name: str) -> list:
    """Each value of the fact's domain in the rule base once (a number: each interval's lower
    bound, or 1 below its upper bound when it has no lower), and None (unknown)."""
    fd = SOLVER.rules.facts[name]
    out: list = [None]
    for sym in fd.values:
        if fd.kind == "bool":
            out.append(sym.string == "true")
        elif fd.kind == "enum":
            out.append(sym.string)
        else:
            lo, hi = (a.number if a.type.name == "Number" else None for a in sym.arguments)
            v = lo if lo is not None else (hi - 1 if hi is not None else 0)
            v = max(v, 1) if name in ("weight_kg", "height_cm", "planned_cycles") else max(v, 0)
            out.append(float(v) if fd.kind == "number" else int(v))
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(any_cases(), st.randoms(use_true_random=False))
def test_a_brute_force_over_domain_boundaries_finds_each_rested_fact_needed(case, rnd):
    """(b) decided as ordinary cases: for each fact of rests_on, the fact takes each value of its
    domain (and unknown) while the facts outside rests_on take the case's values, all unknown,
    random values, or clingo's witness's values; some such completion must decide otherwise."""
    parsed, result = explained(case)
    derived = result["derived_facts"]
    given = {n: SOLVER.value(parsed, derived, n) for n in RB_FACTS}
    for r in result["results"]:
        kept = {f["fact"]: f["value"] for f in r["rests_on"]}
        backgrounds = [{n: v for n, v in given.items() if n not in kept}, {}]
        backgrounds += [{n: _draw(n, rnd) for n in RB_FACTS if n not in kept and rnd.random() < 0.7} for _ in range(4)]
        for f in kept:
            facts_of = witness(parsed, derived, r["plan"], list(kept), f)["facts"]
            theirs = [{n: v for n, v in facts_of.items() if n not in kept}]
            found = any(
                decision({"drug": parsed.drug, "request": parsed.request,
                          "facts": {k: v for k, v in {**back, **kept, f: value}.items() if v is not None}},
                         r["plan"]) != r["decision"]
                for back in backgrounds + theirs for value in _boundaries(f))
            assert found, (r["plan"], r["decision"], kept, f)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(any_cases())
def test_clingo_proves_each_set_sufficient_and_each_fact_needed(case):
    """The exact check with `verify` on: no completion of a whole set decides otherwise (the
    bounds were sound), and dropping any one fact lets one do so."""
    parsed, result = explained(case)
    sets = {r["plan"]: [f["fact"] for f in r["rests_on"]] for r in result["results"] if r["rests_on"]}
    if not sets:
        return
    needed, loose = SOLVER.needed(parsed, result["derived_facts"], sets, verify=True)
    assert loose == set()
    assert {pl: sorted(n) for pl, n in needed.items()} == sets


def test_the_answer_does_not_depend_on_the_cases_decided_before():
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    lines = (root / "examples" / "batch.jsonl").read_text().splitlines()[:25]
    cases = [case_from(json.loads(line))[0] for line in lines]
    first, second = Solver(), Solver()
    forward = [json.dumps(first.solve(c, why=True), sort_keys=True) for c in cases]
    backward = [json.dumps(second.solve(c, why=True), sort_keys=True) for c in reversed(cases)]
    assert forward == backward[::-1]


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(any_cases(), min_size=1, max_size=6))
def test_kept_answers_equal_fresh_ones(cases):
    """rests_on keeps answers per plan by the places of the plan's facts in their domains: a
    solver that keeps nothing answers the same, whatever came before."""
    from solver.engine.rests_on import Bounded

    fresh = Solver()
    fresh.rests_cache, fresh.needed_cache = Bounded(0), Bounded(0)
    for case in cases + cases[::-1]:
        parsed, _ = case_from(case)
        assert SOLVER.why(parsed) == fresh.why(parsed)


def test_batch_why_lines_carry_what_decide_why_says():
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-m", "solver.cli", "batch", "examples/batch.jsonl", "--why",
                          "--workers", "2"], capture_output=True, text=True, cwd=root, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    source = (root / "examples" / "batch.jsonl").read_text().splitlines()
    assert len(lines) == len(source)
    for line, case in list(zip(lines, source))[::7]:
        whole = SOLVER.solve(case_from(json.loads(case))[0], why=True)
        assert line["case_id"] == whole["case_id"]
        for mine, theirs in zip(line["results"], whole["results"]):
            assert set(mine) == {"plan", "drug", "request", "decision", "pathway", "authorization", "rests_on",
                                 "rests_on_count", "facts_count"}
            assert mine == {k: theirs[k] for k in mine}
    refused = subprocess.run([sys.executable, "-m", "solver.cli", "batch", "examples/batch.jsonl", "--why", "--lean"],
                             capture_output=True, text=True, cwd=root, timeout=120)
    assert refused.returncode == 2 and "--why" in refused.stderr and "Traceback" not in refused.stderr


def test_a_why_line_for_a_fhir_bundle_says_where_each_fact_came_from():
    """A bundle's why line carries `fhir` (the derived case, each fact's source, conflicts, what
    was not used) exactly as `decide --why` gives it, so a rested fact can be traced to its element."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    bundle = root / "examples" / "fhir" / "pas_request_besponsa.json"
    line = json.dumps(json.loads(bundle.read_text()))
    out = subprocess.run([sys.executable, "-m", "solver.cli", "batch", "-", "--why", "--workers", "1"],
                         input=line + "\n" + json.dumps({"facts": {"age_years": 40}}) + "\n",
                         capture_output=True, text=True, cwd=root, timeout=300)
    assert out.returncode == 0, out.stderr
    first, second = [json.loads(x) for x in out.stdout.splitlines()]
    whole = json.loads(subprocess.run([sys.executable, "-m", "solver.cli", "decide", str(bundle), "--json", "--why"],
                                      capture_output=True, text=True, cwd=root, timeout=120, check=True).stdout)
    assert first["fhir"] == whole["fhir"] and first["fhir"]["sources"]
    rested = {f["fact"] for r in first["results"] if r["plan"] in CASE_MD_PLANS for f in r["rests_on"]}
    assert rested and rested <= set(first["fhir"]["case"]["facts"]) | {"diagnosis"}
    assert "fhir" not in second                     # a plain case has no bundle to trace
