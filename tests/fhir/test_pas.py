"""PAS out: one ClaimResponse per decided plan, valid under the R4B models,
with the review action, the specific reason and the authorization period."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle

from fhir_build import bundle_for
from solver.engine.solver import Solver
from solver.fhir.pas import ACTION, REVIEW_ACTION, REVIEW_ACTION_CODE, pas_bundle
from solver.fhir.inputs import case_from, result_for
from conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]
SOLVER = Solver()


def review_code(cr: dict) -> str:
    (adj,) = cr["item"][0]["adjudication"]
    (ext,) = [e for e in adj["extension"] if e["url"] == REVIEW_ACTION]
    (code,) = [e for e in ext["extension"] if e["url"] == REVIEW_ACTION_CODE]
    return code["valueCodeableConcept"]["coding"][0]["code"]


def pas_for(case: dict) -> tuple[dict, dict]:
    case_obj, fhir = case_from(bundle_for(case))
    result = result_for(SOLVER, case_obj, fhir)
    return result, pas_bundle(result, SOLVER.rules.plans, fhir.request_date, fhir.claim, {"reference": fhir.patient})


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "examples").glob("*.json")))
def test_every_example_gives_a_valid_pas_bundle_with_the_decisions(name):
    case = json.loads((ROOT / "examples" / name).read_text())
    result, out = pas_for(case)
    Bundle.model_validate(out)                                   # valid R4B
    decided = [r for r in result["results"] if r["decision"] in ACTION]
    responses = [e["resource"] for e in out["entry"]]
    assert [cr["insurer"]["identifier"]["value"] for cr in responses] == [r["plan"] for r in decided]
    for r, cr in zip(decided, responses):
        assert review_code(cr) == ACTION[r["decision"]][0]
        assert cr["use"] == "preauthorization" and cr["outcome"] == "complete" and cr["created"] == "2025-03-01"
        assert cr["request"] == {"reference": "Claim/claim1"} and cr["patient"] == {"reference": "Patient/pat1"}
        notes = " ".join(n["text"] for n in cr.get("processNote", []))
        if r["decision"] == "denied":
            broken = {c["id"] for pw in r["pathways"] for c in pw["criteria"] if c["status"] == "not_met"}
            reason = cr["item"][0]["adjudication"][0].get("reason")       # none: no pathway for the request
            codes = {c["code"] for c in reason["coding"]} if reason else set()
            assert (bool(codes) == bool(broken)) and codes <= broken and all(code in notes for code in codes)
        if r["decision"] == "needs_info":
            for m in r["missing"]:
                assert all(f["fact"] in notes for f in m["facts"])
        months = (r.get("authorization") or {}).get("months")
        if r["decision"] == "approved" and months:
            start = dt.date.fromisoformat(cr["preAuthPeriod"]["start"])
            end = dt.date.fromisoformat(cr["preAuthPeriod"]["end"])
            assert start == dt.date(2025, 3, 1)
            if months == int(months):
                assert (end.year - start.year) * 12 + end.month - start.month == months and end.day == 1
            else:                           # what is left of an earlier authorization: days of a month too
                assert abs((end - start).days - months * 365.25 / 12) <= 3
        else:
            assert "preAuthPeriod" not in cr


def test_the_command_line_prints_pas_for_a_bundle_and_asks_a_plain_case_for_its_date(tmp_path):
    case = json.loads((ROOT / "examples/ohsu_adult_rr.json").read_text())
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle_for(case)))
    run = lambda *a: run_cli(*a, timeout=120)
    out = run("decide", str(path), "--format", "pas")
    assert out.returncode == 0
    Bundle.model_validate(json.loads(out.stdout))
    plain = run("decide", "examples/ohsu_adult_rr.json", "--format", "pas")
    assert plain.returncode == 2 and "--as-of" in plain.stderr
    dated = run("decide", "examples/ohsu_adult_rr.json", "--format", "pas", "--as-of", "2025-01-31")
    got = json.loads(dated.stdout)
    Bundle.model_validate(got)
    ohsu = [e["resource"] for e in got["entry"] if e["resource"]["insurer"]["identifier"]["value"] == "ohsu"][0]
    assert ohsu["preAuthPeriod"] == {"start": "2025-01-31", "end": "2025-07-31"}
    assert run("decide", str(path), "--json", "--format", "pas").returncode == 2


OHSU_OK = {"prior_inotuzumab": False, "cd22_positive": True, "baseline_ecg_normal": True,
           "ecg_monitoring_planned": True, "diagnosis": "all", "b_cell_precursor": True, "planned_cycles": 6,
           "units_per_21_days": 63}
DISPOSITION_CASES = {
    "approved, 6 months": ({"plans": ["ohsu"], "facts": {**OHSU_OK, "age_years": 18, "disease_setting":
                                                          "relapsed_refractory", "regimen": "single_agent"}},
                           "Approved: pathway ohsu_adult_rr_single (6 months)"),
    "approved, no duration": ({"plans": ["bcbs_fep"], "facts": {**OHSU_OK, "age_years": 18, "disease_setting":
                                                                 "relapsed_refractory"}},
                              "Approved: pathway fep_fda_label"),
    "denied": ({"plans": ["bcbs_fep"], "facts": {**OHSU_OK, "age_years": 41, "diagnosis": "lymphoblastic_lymphoma",
                                                 "disease_setting": "relapsed_refractory"}},
               "Denied: criterion fep_rs_3 not met (pathway fep_fda_label)"),
    "needs_info": ({"plans": ["cvs_caremark"], "facts": {"age_years": 30, "diagnosis": "all", "b_cell_precursor": True,
                                                         "disease_setting": "frontline_induction",
                                                         "regimen": "mini_hyper_cvd"}},
                   "Pended for information: cd22_positive, ph_status and planned_cycles (toward pathway cvs_frontline)"),
    "case_review": ({"plans": ["ohsu"], "facts": {**OHSU_OK, "diagnosis": "lymphoblastic_lymphoma", "age_years": 8,
                                                  "disease_setting": "relapsed_refractory", "regimen": "single_agent"}},
                    "Pended for case review: pathway ohsu_lbl_pediatric_rr_single"),
}


@pytest.mark.parametrize("kind", sorted(DISPOSITION_CASES))
def test_the_disposition_says_each_decision_once_in_words(kind):
    """One line a person reads first: the decision's word once (not `approved: Approved: ...`), then
    the pathway and the authorization's months, the criteria not met, or the facts still needed."""
    case, expected = DISPOSITION_CASES[kind]
    case_obj, fhir = case_from(case)
    result = result_for(SOLVER, case_obj, fhir)
    (cr,) = [e["resource"] for e in pas_bundle(result, SOLVER.rules.plans, dt.date(2025, 3, 1))["entry"]]
    assert result["results"][0]["decision"] == kind.split(",")[0]
    assert cr["disposition"] == expected
    words = cr["disposition"].lower().replace(":", " ").split()
    assert sum(w in ("approved", "denied", "pended", "needs_info", "case_review") for w in words) == 1


def test_the_disposition_names_each_way_to_complete_a_pended_request_once():
    case = json.loads((ROOT / "examples/continuation.json").read_text())
    _, out = pas_for(case)
    (cvs,) = [e["resource"] for e in out["entry"] if e["resource"]["insurer"]["identifier"]["value"] == "cvs_caremark"]
    assert cvs["disposition"] == "Pended for information: ph_status and regimen (toward pathway cvs_continuation)"
    assert len(cvs["processNote"]) == 3                         # the notes keep each set with its values
