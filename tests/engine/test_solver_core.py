"""End-to-end checks of the solver on hand-made cases: one per plan outcome,
determinism, the missing-set contract, and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from solver import CaseError, decide
from solver.engine.solver import Solver
from solver.case.models import parse_case
from conftest import CASE_MD_PLANS
from conftest import run_cli as run

ROOT = Path(__file__).resolve().parents[2]

FULL_ADULT_RR = {
    "age_years": 52, "weight_kg": 78, "diagnosis": "all", "b_cell_precursor": True, "cd22_positive": True,
    "ph_status": "negative", "disease_setting": "relapsed_refractory", "regimen": "single_agent",
    "planned_cycles": 4, "units_per_21_days": 30, "dose_within_label": True, "baseline_ecg_normal": True,
    "ecg_monitoring_planned": True, "prior_inotuzumab": False, "prior_systemic_therapies": 2,
    "prescriber_specialty": "hematology", "nccn_category": "2A",
}


def plan(result, plan_id):
    (r,) = [r for r in result.results if r.plan == plan_id]
    return r


def test_full_adult_relapsed_profile_is_approved_everywhere_with_each_plans_limits():
    res = decide({"facts": FULL_ADULT_RR})
    assert {r.plan: r.decision for r in res.results if r.plan in CASE_MD_PLANS} == dict.fromkeys(
        CASE_MD_PLANS, "approved")
    assert plan(res, "ohsu").authorization.model_dump() == {"months": 6, "max_cycles": 6, "max_units_per_21_days": 63}
    assert plan(res, "cvs_caremark").authorization.months == 12
    assert plan(res, "masshealth").authorization.months == 6
    assert plan(res, "bcbs_fep").authorization.months is None
    assert plan(res, "ohsu").pathway == "ohsu_adult_rr_single"


def test_one_broken_fact_denies_and_unknown_asks():
    broken = decide({"plans": ["ohsu"], "facts": {**FULL_ADULT_RR, "prior_inotuzumab": True}})
    assert plan(broken, "ohsu").decision == "denied"
    assert plan(broken, "ohsu").missing == []
    unknown = decide({"plans": ["ohsu"], "facts": {k: v for k, v in FULL_ADULT_RR.items() if k != "prior_inotuzumab"}})
    r = plan(unknown, "ohsu")
    assert r.decision == "needs_info"
    # The adult and the pediatric single-agent pathways both need only it.
    assert [(m.pathway, [(f.fact, f.values, f.criteria) for f in m.facts]) for m in r.missing] == [
        (p, [("prior_inotuzumab", [False], ["ohsu_iii_1"])]) for p in ("ohsu_adult_rr_single", "ohsu_pediatric_rr_single")]


def test_ohsu_rituximab_note_never_denies_and_is_a_note_from_65():
    """CASE.md version 2: the note limits the rituximab add-on, not Besponsa."""
    facts = {**FULL_ADULT_RR, "disease_setting": "frontline_consolidation", "regimen": "mini_hyper_cvd",
             "with_rituximab": True, "substantial_comorbidities": False}
    young = plan(decide({"plans": ["ohsu"], "facts": {**facts, "age_years": 64.9}}), "ohsu")
    old = plan(decide({"plans": ["ohsu"], "facts": {**facts, "age_years": 65}}), "ohsu")
    assert (young.decision, young.note) == ("approved", None)
    assert old.decision == "approved" and old.note.startswith("The rituximab add-on is not supported by the policy")
    assert "III. Adult B-Cell Precursor ALL, note (*)" in old.note        # where the note stands
    # the note is no criterion: the age needed is only the adult pathway's
    no_age = decide({"plans": ["ohsu"], "facts": {k: v for k, v in facts.items() if k != "age_years"}})
    (m,) = plan(no_age, "ohsu").missing
    assert [(f.fact, f.range) for f in m.facts] == [("age_years", [18, None])]
    assert "ohsu_iii_a3_note" not in {c.id for pw in old.pathways for c in pw.criteria}


def test_masshealth_continuity_of_care_is_case_review_and_blinatumomab_is_covered():
    r = plan(decide({"plans": ["masshealth"], "facts": {"new_to_plan_on_treatment": True,
                                                        "supplied_by_samples_or_pap": False}}), "masshealth")
    assert (r.decision, r.pathway, r.authorization) == ("case_review", "mh_continuity_of_care", None)
    blin = decide({"drug": "blinatumomab", "facts": {"diagnosis": "all", "prescriber_specialty": "oncology",
                                                     "weight_kg": 30, "dose_within_label": True,
                                                     "complete_remission_after_initial": True}})
    assert plan(blin, "masshealth").decision == "approved"
    assert {r.plan for r in blin.results if r.decision == "no_policy" and r.plan in CASE_MD_PLANS} == \
        {"bcbs_fep", "bcbsnc", "cvs_caremark", "ohsu"}


def test_bcbsnc_non_cancer_is_denied_and_compendia_support_covers_other_cancers():
    assert plan(decide({"plans": ["bcbsnc"], "facts": {"diagnosis": "non_cancer"}}), "bcbsnc").decision == "denied"
    r = plan(decide({"plans": ["bcbsnc"], "facts": {"diagnosis": "other_cancer", "nccn_category": "1"}}), "bcbsnc")
    assert (r.decision, r.pathway) == ("approved", "nc_compendia")


def test_icd10_code_gives_the_diagnosis_when_it_is_absent():
    res = decide({"plans": ["cvs_caremark"], "facts": {"icd10_codes": ["C83.52"]}})
    assert res.derived_facts == {"diagnosis": "lymphoblastic_lymphoma"}
    # CASE.md version 2: B-lymphoblastic lymphoma meeting a pathway otherwise goes to case review
    r = plan(decide({"plans": ["ohsu"], "facts": {**FULL_ADULT_RR, "diagnosis": None, "icd10_codes": ["C83.52"]}}), "ohsu")
    assert (r.decision, r.pathway) == ("case_review", "ohsu_lbl_adult_rr_single")


def test_cvs_alternatives_for_the_same_facts_are_each_listed():
    facts = {"diagnosis": "all", "b_cell_precursor": True, "cd22_positive": True,
             "disease_setting": "relapsed_refractory", "planned_cycles": 4}
    r = plan(decide({"plans": ["cvs_caremark"], "facts": facts}), "cvs_caremark")
    got = sorted(json.dumps({f.fact: f.values for f in m.facts}, sort_keys=True) for m in r.missing)
    assert got == sorted(json.dumps(x, sort_keys=True) for x in [
        {"ph_status": ["positive", "negative"], "regimen": ["single_agent"]},
        {"ph_status": ["positive", "negative"], "regimen": ["mini_hyper_cvd", "mini_hyper_cvd_blinatumomab"]},
        {"ph_status": ["positive"], "regimen": ["tki_combination"]},
    ])


def test_same_case_gives_identical_json_whatever_was_solved_before():
    case = {"case_id": "x", "facts": {"diagnosis": "all", "disease_setting": "relapsed_refractory"}}
    fresh = Solver().decide_json(parse_case(case))
    used = Solver()
    for age in range(0, 90, 7):
        used.decide_json(parse_case({"facts": {"age_years": age, "regimen": "single_agent"}}))
    assert used.decide_json(parse_case(case)) == fresh
    assert decide(case).to_json() == fresh


@pytest.mark.parametrize("bad, field", [
    ({"facts": {"age_years": 131}}, "facts.age_years"),
    ({"facts": {"weight": 70}}, "facts.weight"),
    ({"facts": {"ph_status": "pos"}}, "facts.ph_status"),
    ({"facts": {"planned_cycles": 3.5}}, "facts.planned_cycles"),
    ({"facts": {"planned_cycles": True}}, "facts.planned_cycles"),
    ({"facts": {"cycles_received": 21.0}}, "facts.cycles_received"),
    ({"drug": "aspirin"}, "drug"),
    ({"plans": ["aetna"]}, "plans[0]"),
])
def test_bad_input_names_the_field(bad, field):
    with pytest.raises(CaseError) as err:
        decide(bad)
    assert str(err.value).startswith(field)


def test_a_whole_number_written_with_a_point_is_that_integer():
    """JSON has one kind of number (and JSON Schema, the service's OpenAPI document, agrees): 4.0 is 4."""
    facts = {"planned_cycles": 4, "units_per_21_days": 30, "prior_systemic_therapies": 2, "cycles_received": 0}
    as_float = {k: float(v) for k, v in facts.items()}
    assert decide({"facts": as_float}).to_json() == decide({"facts": facts}).to_json()


def test_cli_decide_table_json_stdin_and_exit_codes():
    table = run("decide", "examples/ohsu_adult_rr.json")
    assert table.returncode == 0 and "ohsu: APPROVED via ohsu_adult_rr_single" in table.stdout
    one, two = run("decide", "examples/ohsu_adult_rr.json", "--json"), run("decide", "-", "--json",
                                                                         stdin=(ROOT / "examples/ohsu_adult_rr.json").read_text())
    assert one.stdout == two.stdout and json.loads(one.stdout)["case_id"] == "example-ohsu-adult-rr"
    bad = run("decide", "-", stdin='{"facts": {"age_years": -1}}')
    assert bad.returncode == 2 and "facts.age_years" in bad.stderr and bad.stdout == ""
    assert run("decide", "no/such/file.json").returncode == 2
    assert run("decide", "-", stdin="{not json").returncode == 2


def test_cli_batch_keeps_order_and_isolates_bad_lines():
    lines = [json.dumps({"case_id": "a", "facts": FULL_ADULT_RR}), "{broken", json.dumps({"case_id": "b", "facts": {"x": 1}}),
             json.dumps({"case_id": "c", "facts": {"diagnosis": "non_cancer"}, "plans": ["bcbsnc"]})]
    outs = {}
    for workers in ("1", "2"):
        res = run("batch", "-", "--workers", workers, stdin="\n".join(lines) + "\n")
        assert res.returncode == 1                 # every line written, some of them errors
        outs[workers] = res.stdout
        rows = [json.loads(l) for l in res.stdout.splitlines()]
        assert [r.get("case_id") for r in rows] == ["a", None, "b", "c"]
        assert "error" in rows[1] and "facts.x" in rows[2]["error"]
        assert (rows[1]["line"], rows[2]["line"]) == (2, 3)
        assert rows[3]["results"][0]["decision"] == "denied"
    assert outs["1"] == outs["2"]


def test_the_fast_model_reader_reads_what_the_public_api_shows():
    """engine.shown_handles reads symbol handles through clingo's C API; they
    must be exactly the shown symbols, in the same order, for both groundings."""
    from solver.engine.solver import Solver
    from solver.engine.rulebase import shown_handles
    from solver.case.models import parse_case

    solver = Solver()
    case = parse_case({"facts": {"age_years": 40, "ph_status": "negative"}})     # many missing sets
    for rb in (solver.rules, solver.explainer):
        lits = solver.assumptions(case, {}, rb)
        if rb.part == "explain":
            lits += [lit if k == 2 else -lit for k, lit in rb.limits.items()]
        else:
            lits += [-rb.search_off]
        seen = []

        def check(m):
            fast = list(shown_handles(m))
            public = [s._rep for s in m.symbols(shown=True)]
            assert fast == public
            seen.append(len(fast))

        rb.ctl.solve(assumptions=lits, on_model=check)
        assert len(seen) > 1 and all(seen), rb.part


def test_a_shared_solver_answers_many_threads_at_once():
    """The page shares one solver between sessions (threads): same bytes as
    one thread, no error, however the solves interleave."""
    from concurrent.futures import ThreadPoolExecutor

    from solver.engine.solver import SharedSolver, Solver
    from solver.text.jsontext import dump_text
    from solver.case.models import parse_case

    cases = [parse_case(json.loads(p.read_text())) for p in sorted((ROOT / "examples").glob("*.json"))] * 6
    expected = [dump_text(Solver().solve(c, 2)) for c in cases]
    shared = SharedSolver()
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda c: dump_text(shared.solve(c, 2)), cases))
    assert got == expected


def test_the_solver_releases_every_external_and_only_those():
    """RuleBase releases the externals it knows (no scan of every atom at
    start-up); a new #external in logic/ must be known to it."""
    solver = Solver()
    for rb in (solver.rules, solver.explainer):
        externals = {a.literal for a in rb.ctl.symbolic_atoms if a.is_external}
        assert set(rb.external_literals()) == externals, rb.part
