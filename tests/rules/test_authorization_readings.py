"""Findings of a line-by-line reading of the rules against the documents
(issue 12): what an approval grants where it is the rest of an earlier
authorization, and the criterion a MassHealth reauthorization rests on."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solver.rules.loading import RuleBaseError
from solver.engine.solver import Solver
from solver.fhir.pas import pas_bundle
from solver.fhir.inputs import case_from

ROOT = Path(__file__).resolve().parents[2]
SOLVER = Solver()

CONTINUING = {"diagnosis": "all", "b_cell_precursor": True, "cd22_positive": True,       # a listed indication
              "disease_setting": "relapsed_refractory", "ph_status": "positive", "regimen": "single_agent",
              "unacceptable_toxicity": False, "disease_progression": False}


def decide(plan: str, request: str, facts: dict, drug: str = "inotuzumab_ozogamicin") -> dict:
    case, _ = case_from({"plans": [plan], "drug": drug, "request": request, "facts": facts})
    return SOLVER.solve(case)["results"][0]


@settings(max_examples=60, deadline=None)
@given(months=st.floats(min_value=0, max_value=5.99, allow_nan=False).map(lambda x: round(x, 2)),
       cycles=st.integers(min_value=0, max_value=5))
def test_ohsu_renewal_grants_what_is_left_of_the_initial_authorization(months, cycles):
    r = decide("ohsu", "continuation", {"months_since_initial_authorization": months, "cycles_received": cycles})
    assert r["decision"] == "approved" and r["pathway"] == "ohsu_renewal"
    auth = r["authorization"]
    assert auth["max_cycles"] == 6 - cycles
    assert auth["months"] == pytest.approx(6 - months) and auth["max_units_per_21_days"] == 63
    assert isinstance(auth["months"], int) == (months == int(months))        # 4, not 4.0


def test_ohsu_initial_approval_is_the_whole_authorization():
    r = decide("ohsu", "initial", {"age_years": 40, "diagnosis": "all", "b_cell_precursor": True,
                                   "disease_setting": "relapsed_refractory", "regimen": "single_agent",
                                   "prior_inotuzumab": False, "cd22_positive": True, "baseline_ecg_normal": True,
                                   "ecg_monitoring_planned": True, "planned_cycles": 4, "units_per_21_days": 50})
    assert r["decision"] == "approved"
    assert r["authorization"] == {"months": 6, "max_cycles": 6, "max_units_per_21_days": 63}


@pytest.mark.parametrize("cycles", range(6))
def test_cvs_continuation_counts_the_cycles_already_given(cycles):
    r = decide("cvs_caremark", "continuation", {**CONTINUING, "cycles_received": cycles})
    assert r["decision"] == "approved"
    assert r["authorization"] == {"months": 12, "max_cycles": 6 - cycles, "max_units_per_21_days": None}
    assert decide("cvs_caremark", "continuation", {**CONTINUING, "cycles_received": 6})["decision"] == "denied"


@pytest.mark.parametrize("drug", ["inotuzumab_ozogamicin", "blinatumomab"])
def test_masshealth_reauthorization_shows_the_criterion_it_rests_on(drug):
    r = decide("masshealth", "continuation", {}, drug=drug)
    assert r["decision"] == "approved" and r["authorization"]["months"] == 12
    (pw,) = [p for p in r["pathways"] if p["id"] == r["pathway"]]
    (c,) = pw["criteria"]
    assert c["id"] == "mh_r1" and c["status"] == "met"
    assert c["text"].startswith("Reauthorization by prescriber will infer a positive response to therapy.")
    assert "Reauthorizations will be granted for 12 months." in c["text"] and "Limitations" in c["source"]
    assert c["reading"]


def test_a_fraction_of_a_month_left_ends_the_pas_period_within_that_month():
    case, _ = case_from({"plans": ["ohsu"], "request": "continuation",
                         "facts": {"months_since_initial_authorization": 2.5, "cycles_received": 1}})
    result = SOLVER.solve(case)
    got = pas_bundle(result, SOLVER.rules.plans, created=dt.date(2025, 3, 1))
    (resp,) = [e["resource"] for e in got["entry"]]
    assert resp["preAuthPeriod"] == {"start": "2025-03-01", "end": "2025-06-16"}


def test_authorization_left_is_checked_by_the_rule_base(tmp_path):
    logic = tmp_path / "logic"
    shutil.copytree(ROOT / "logic", logic)
    with open(logic / "bcbs_fep.lp", "a") as fh:
        fh.write("\nauthorization_left(fep_no_such, months, cycles_received).\n"
                 "authorization_left(fep_no_such2, months, diagnosis).\n")
    with pytest.raises(RuleBaseError, match="authorization_left without its authorization"):
        Solver(logic)
