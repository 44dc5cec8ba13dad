"""FHIR in (shared/spec/FHIR.md): each kind of fact from its resource, the
bad and the foreign bundles, the real Da Vinci PAS examples, the command
line, and the round trip case -> bundle -> case."""

from __future__ import annotations

import copy
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_build import (bundle, bundle_for, claim, condition, observation, patient, questionnaire_response)
from solver.engine.solver import Solver
from solver.text.jsontext import dump_text
from solver.fhir.reader import read_bundle
from solver.fhir.resources import FhirError
from solver.fhir.inputs import case_from, result_for
from solver.case.models import parse_case
from strategies import cases
from solver.rules import declared
from conftest import CASE_MD_PLANS, run_cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "tests" / "fhir" / "examples").glob("*.json"))
ON = dt.date(2025, 3, 1)
SOLVER = Solver()


def facts_of(*resources, **kw) -> dict:
    return read_bundle(bundle(claim(), *resources), **kw).case["facts"]


def qr(*items, **kw) -> dict:
    return questionnaire_response(list(items), **kw)


# ------------------------------------------------------------------ each kind of fact

@pytest.mark.parametrize("born, age", [
    ("1990-03-01", 35), ("1990-03-02", 34), ("1990-02-28", 35),     # a birthday on the request date counts
    ("2000-02-29", 25), ("2025-03-01", 0),
])
def test_age_in_completed_years_on_the_request_date(born, age):
    got = read_bundle(bundle(claim(created="2025-03-01T23:59:00-05:00"), patient(dt.date.fromisoformat(born))))
    assert got.case["facts"]["age_years"] == age
    assert got.sources["age_years"] == [{"resource": "Patient/pat1", "element": "birthDate"}]
    assert got.sources["request_date"] == [{"resource": "Claim/claim1", "element": "created"}]


def test_29_february_birthdays_turn_a_year_on_1_march():
    on_28 = read_bundle(bundle(claim(created="2025-02-28"), patient(dt.date(2000, 2, 29))))
    on_1 = read_bundle(bundle(claim(created="2025-03-01"), patient(dt.date(2000, 2, 29))))
    assert (on_28.case["facts"]["age_years"], on_1.case["facts"]["age_years"]) == (24, 25)


@pytest.mark.parametrize("fact, value, unit, expected", [
    ("weight_kg", 70.5, "kg", 70.5), ("weight_kg", 70500, "g", 70.5), ("weight_kg", 100, "[lb_av]", 45.359237),
    ("height_cm", 176, "cm", 176), ("height_cm", 1.76, "m", 176), ("height_cm", 70, "[in_i]", 177.8),
])
def test_ucum_units_convert(fact, value, unit, expected):
    assert facts_of(observation(fact, value, unit))[fact] == pytest.approx(expected)


def test_an_unknown_unit_is_an_error_naming_the_observation():
    with pytest.raises(FhirError, match=r"Observation/obs1 valueQuantity: unit 'lb'"):
        facts_of(observation("weight_kg", 150, "lb"))


def test_the_latest_observation_on_or_before_the_request_date_wins_and_statuses_count():
    got = read_bundle(bundle(claim(created="2025-03-01"),
                             observation("weight_kg", 70, oid="old", effective="2025-01-01"),
                             observation("weight_kg", 72, oid="new", effective="2025-02-20"),
                             observation("weight_kg", 90, oid="later", effective="2025-04-01"),
                             observation("weight_kg", 99, oid="prelim", status="preliminary"),
                             observation("weight_kg", 98, oid="wrong", status="entered-in-error")))
    assert got.case["facts"]["weight_kg"] == 72
    assert got.sources["weight_kg"] == [{"resource": "Observation/new", "element": "valueQuantity"}]
    assert {"Observation/later (taken after the request date)", "Observation/prelim (status preliminary)",
            "Observation/wrong (status entered-in-error)", "Observation/old (an older weight_kg)"} <= set(got.unused)


def test_two_observations_of_one_date_that_disagree_give_unknown_and_a_conflict():
    got = read_bundle(bundle(claim(), observation("weight_kg", 70, oid="a", effective="2025-02-01"),
                             observation("weight_kg", 75, oid="b", effective="2025-02-01")))
    assert "weight_kg" not in got.case["facts"]
    (c,) = got.conflicts
    assert c["fact"] == "weight_kg" and {v["resource"] for v in c["values"]} == {"Observation/a", "Observation/b"}
    same = read_bundle(bundle(claim(), observation("weight_kg", 70, oid="a"), observation("weight_kg", 70, oid="b")))
    assert same.case["facts"]["weight_kg"] == 70 and len(same.sources["weight_kg"]) == 2 and not same.conflicts


def test_icd10_codes_with_and_without_the_dot_from_conditions_and_the_claim():
    got = read_bundle(bundle(claim(diagnoses=("C9100",)), condition("C91.02", cid="c1"),
                             condition("c83.50", cid="c2"), condition("C92.00", cid="c3", verification="refuted"),
                             condition("C92.10", cid="c4", verification="entered-in-error")))
    assert got.case["facts"]["icd10_codes"] == ["C83.50", "C91.00", "C91.02"]
    assert {s["resource"] for s in got.sources["icd10_codes"]} == {"Claim/claim1", "Condition/c1", "Condition/c2"}
    with pytest.raises(FhirError, match=r"Condition/c9 code: 'XYZ' is not an ICD-10 code"):
        read_bundle(bundle(claim(), condition("XYZ", cid="c9")))


def test_questionnaire_items_at_any_depth_as_coding_or_string_and_unanswered_is_unknown():
    items = [
        {"linkId": "group", "item": [
            {"linkId": "cd22_positive", "answer": [{"valueBoolean": True}]},
            {"linkId": "ph_status", "answer": [{"valueCoding": {"code": "negative"}}]},
            {"linkId": "outer", "answer": [{"valueBoolean": True, "item": [
                {"linkId": "regimen", "answer": [{"valueString": "single_agent"}]}]}]},
        ]},
        {"linkId": "planned_cycles", "answer": [{"valueInteger": 4}]},
        {"linkId": "months_since_initial_authorization", "answer": [{"valueDecimal": 4.5}]},
        {"linkId": "prior_inotuzumab"},                                      # no answer: unknown
        {"linkId": "favourite_colour", "answer": [{"valueString": "blue"}]},  # not a fact: unused
        {"linkId": "request", "answer": [{"valueCoding": {"code": "continuation"}}]},
    ]
    got = read_bundle(bundle(claim(), qr(*items)))
    f = got.case["facts"]
    assert (f["cd22_positive"], f["ph_status"], f["regimen"], f["planned_cycles"],
            f["months_since_initial_authorization"]) == (True, "negative", "single_agent", 4, 4.5)
    assert "prior_inotuzumab" not in f
    assert "QuestionnaireResponse/qr1 item favourite_colour" in got.unused
    assert got.case["request"] == "initial"              # the Claim's certificationType comes first
    no_claim = read_bundle(bundle(claim(), qr(*items)) | {"entry": [{"resource": qr(*items, authored="2025-02-02")},
                                                                     {"resource": claim()}]})
    assert no_claim.case["request"] == "initial"


def test_request_from_the_questionnaire_without_a_certification_type():
    c = claim()
    del c["item"][0]["extension"]
    got = read_bundle(bundle(c, qr({"linkId": "request", "answer": [{"valueCoding": {"code": "continuation"}}]})))
    assert got.case["request"] == "continuation"
    assert read_bundle(bundle(claim(request="continuation"))).case["request"] == "continuation"


def test_a_questionnaire_and_an_observation_that_disagree_give_unknown_and_a_conflict():
    got = read_bundle(bundle(claim(), observation("weight_kg", 70),
                             qr({"linkId": "weight_kg", "answer": [{"valueDecimal": 71}]})))
    assert "weight_kg" not in got.case["facts"] and got.conflicts[0]["fact"] == "weight_kg"


def test_a_value_that_breaks_the_contract_names_its_source():
    with pytest.raises(FhirError, match=r"QuestionnaireResponse/qr1 item\[linkId=planned_cycles\]: "
                                        r"facts.planned_cycles: Input should be less than or equal to 20"):
        read_bundle(bundle(claim(), qr({"linkId": "planned_cycles", "answer": [{"valueInteger": 99}]})))
    with pytest.raises(FhirError, match=r"item ph_status: expected valueCoding or valueString"):
        read_bundle(bundle(claim(), qr({"linkId": "ph_status", "answer": [{"valueBoolean": True}]})))
    with pytest.raises(FhirError, match="facts.ph_status"):
        read_bundle(bundle(claim(), qr({"linkId": "ph_status", "answer": [{"valueString": "maybe"}]})))


def test_dates_come_from_the_request_never_the_clock():
    c = claim()
    del c["created"]
    with pytest.raises(FhirError):                       # created is required by R4B: the Claim is invalid
        read_bundle(bundle(c))
    q = qr({"linkId": "cd22_positive", "answer": [{"valueBoolean": True}]}, authored="2024-06-30T12:00:00Z")
    mr = {"resourceType": "MedicationRequest", "id": "mr1", "status": "active", "intent": "order",
          "subject": {"reference": "Patient/pat1"},
          "medicationCodeableConcept": {"coding": [{"system": "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
                                                    "code": "J9039"}]}}
    got = read_bundle(bundle(mr, q, patient(dt.date(2000, 7, 1))))
    assert got.request_date == dt.date(2024, 6, 30) and got.case["facts"]["age_years"] == 23
    assert got.case["drug"] == "blinatumomab"
    stamped = read_bundle(bundle(mr, patient(dt.date(2000, 7, 1)), timestamp="2025-07-01T00:00:00Z"))
    assert stamped.case["facts"]["age_years"] == 25
    with pytest.raises(FhirError, match="--as-of"):
        read_bundle(bundle(mr))
    assert read_bundle(bundle(mr), as_of=dt.date(2020, 1, 1)).request_date == dt.date(2020, 1, 1)


# ------------------------------------------------------------------ bad and foreign bundles

def test_bad_and_foreign_bundles_are_refused_clearly():
    bad = bundle(claim(), {"resourceType": "Patient", "id": "p9", "birthDate": "1970-13-45"})
    with pytest.raises(FhirError, match=r"Patient/p9 \(entry 1\) birthDate: "):
        read_bundle(bad)
    with pytest.raises(FhirError, match="unknown resource type 'Spaceship'"):
        read_bundle(bundle(claim(), {"resourceType": "Spaceship", "id": "x"}))
    with pytest.raises(FhirError, match="a bare Patient resource"):
        read_bundle(patient(dt.date(1970, 1, 1)))
    both = claim()
    both["item"].append(copy.deepcopy(claim("blinatumomab")["item"][0]))
    with pytest.raises(FhirError, match="both blinatumomab and inotuzumab_ozogamicin: pick one with --drug"):
        read_bundle(bundle(both))
    assert read_bundle(bundle(both), drug="blinatumomab").case["drug"] == "blinatumomab"
    other = claim()
    other["item"][0]["productOrService"]["coding"][0]["code"] = "G0154"
    with pytest.raises(FhirError, match=r"neither .* looked in Claim/claim1 item.productOrService"):
        read_bundle(bundle(other))
    with pytest.raises(FhirError, match="no resource"):
        read_bundle({"resourceType": "Bundle", "type": "collection", "entry": [{"fullUrl": "x"}]})


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_da_vinci_pas_examples_give_a_clean_answer(path):
    """HL7's PAS 2.2.1 example bundles (home care, referral, surgery; two
    responses): none asks for Besponsa or Blincyto, so each is one clear
    error, never a traceback."""
    res = subprocess.run([sys.executable, "-m", "solver.cli", "decide", str(path)], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr and res.stderr.count("\n") == 1
    obj = json.loads(path.read_text())
    if obj["entry"][0]["resource"]["resourceType"] == "ClaimResponse":
        assert "a response bundle" in res.stderr
    else:
        assert "requests neither" in res.stderr and "looked in Claim/" in res.stderr


def test_a_da_vinci_request_with_our_drug_code_is_decided():
    """The richest PAS example, its service swapped for Besponsa's HCPCS code."""
    obj = json.loads((ROOT / "tests/fhir/examples/Bundle-ReferralAuthorizationBundleExample.json").read_text())
    claim_res = obj["entry"][0]["resource"]
    claim_res["item"][0]["productOrService"] = {"coding": [{"system": "http://www.cms.gov/Medicare/Coding/"
                                                                      "HCPCSReleaseCodeSets", "code": "J9229"}]}
    got = read_bundle(obj)
    assert got.case["drug"] == "inotuzumab_ozogamicin" and got.request_date == dt.date(2005, 5, 2)
    assert got.case["facts"]["icd10_codes"] == ["G89.4"] and "Organization/InsurerExample" in got.unused
    result = result_for(SOLVER, *case_from(obj))
    assert {r["decision"] for r in result["results"]} <= {"denied", "needs_info", "approved", "case_review"}


# ------------------------------------------------------------------ the command line and batches

def test_decide_a_bundle_on_the_command_line(tmp_path):
    case = json.loads((ROOT / "examples/ohsu_adult_rr.json").read_text())
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle_for(case)))
    run = lambda *a: run_cli(*a, timeout=120)
    table = run("decide", str(path))
    assert table.returncode == 0 and "ohsu: APPROVED" in table.stdout
    assert "Patient/pat1 birthDate" in table.stdout and "Observation/obs-weight-kg valueQuantity" in table.stdout
    out = json.loads(run("decide", str(path), "--json").stdout)
    derived = tmp_path / "derived.json"
    derived.write_text(json.dumps(out["fhir"]["case"]))
    alone = json.loads(run("decide", str(derived), "--json").stdout)
    assert alone == {k: v for k, v in out.items() if k != "fhir"}
    assert out["fhir"]["request_date"] == "2025-03-01"


def test_batch_takes_bundles_mixed_with_cases():
    case = json.loads((ROOT / "examples/ohsu_adult_rr.json").read_text())
    lines = [json.dumps(case), json.dumps(bundle_for(case)), json.dumps(patient(None))]
    res = subprocess.run([sys.executable, "-m", "solver.cli", "batch", "-", "--workers", "1"], input="\n".join(lines),
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert res.returncode == 1 and len(rows) == 3
    assert rows[0]["results"] == rows[1]["results"] and "fhir" in rows[1]
    assert "a bare Patient resource" in rows[2]["error"] and rows[2]["line"] == 3


# ------------------------------------------------------------------ round trip

def _whole_age(case: dict) -> dict:
    facts = dict(case.get("facts", {}))
    if facts.get("age_years") is not None:
        facts["age_years"] = float(int(facts["age_years"]))
    if facts.get("icd10_codes") is not None:     # codes are a set: the reader gives them sorted, once each
        from solver.base.contract import icd10

        facts["icd10_codes"] = sorted({icd10(c) for c in facts["icd10_codes"]})
        if not facts["icd10_codes"]:             # no code: no Condition, so unknown
            del facts["icd10_codes"]
    return {**case, "facts": {k: v for k, v in facts.items() if v is not None}}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.booleans())
def test_random_cases_survive_the_round_trip_through_fhir(case, nested):
    case = _whole_age(case)
    case.pop("plans", None)
    if not case.get("case_id"):
        case.pop("case_id", None)            # FHIR has no empty strings: an empty id is no id
    want = parse_case(case)
    got, fhir = case_from(bundle_for(case, ON, nested=nested))
    assert not fhir.conflicts
    assert parse_case(fhir.case).model_dump() == want.model_dump()
    assert dump_text(SOLVER.solve(got, 0)) == dump_text(SOLVER.solve(want, 0))


JUNK = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
                    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3),
                    max_leaves=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mangled_bundles_give_an_error_or_a_result_never_a_traceback(data):
    case = json.loads((ROOT / "examples/ohsu_adult_rr.json").read_text())
    obj = bundle_for(case)
    # replace one value somewhere in the bundle by junk
    paths = []

    def walk(o, path):
        if isinstance(o, dict):
            for k, v in o.items():
                paths.append(path + (k,))
                walk(v, path + (k,))
        elif isinstance(o, list):
            for i, v in enumerate(o):
                paths.append(path + (i,))
                walk(v, path + (i,))
    walk(obj, ())
    path = data.draw(st.sampled_from(paths))
    target = obj
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = data.draw(JUNK)
    try:
        case_out, fhir = case_from(obj)
    except FhirError as err:
        assert str(err).strip()
        return
    except Exception as err:                                   # CaseError subclasses are fine too
        from solver.base.contract import CaseError

        assert isinstance(err, CaseError), repr(err)
        return
    result_for(SOLVER, case_out, fhir)


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "examples").glob("*.json")))
def test_every_example_as_a_bundle_decides_like_the_case(name):
    """Bundles for every plan and both drugs (the examples include Blincyto
    for MassHealth and a continuation): same decisions, same missing sets."""
    case = json.loads((ROOT / "examples" / name).read_text())
    case["facts"] = _whole_age(case)["facts"]
    got = result_for(SOLVER, *case_from(bundle_for(case)))
    want = result_for(SOLVER, *case_from({k: v for k, v in case.items() if k != "plans"}))
    assert got["fhir"]["case"]["drug"] == case.get("drug", "inotuzumab_ozogamicin")
    assert {k: v for k, v in got.items() if k != "fhir"} == want


def test_the_python_api_takes_a_bundle_and_keeps_plain_results_unchanged():
    from solver import decide, decide_many

    case = json.loads((ROOT / "examples/ohsu_adult_rr.json").read_text())
    got = decide(bundle_for(case))
    assert got.fhir["sources"]["age_years"] == [{"resource": "Patient/pat1", "element": "birthDate"}]
    assert '"fhir":' in got.to_json() and '"fhir"' not in decide(case).to_json()
    assert decide(json.dumps(bundle_for(case)).encode()).to_json() == got.to_json()
    many = list(decide_many([bundle_for(case), case], workers=1))
    assert many[0].to_json() == got.to_json() and many[1].fhir is None


def test_the_bundled_pas_example_is_decided_with_its_sources():
    path = ROOT / "examples" / "fhir" / "pas_request_besponsa.json"
    res = subprocess.run([sys.executable, "-m", "solver.cli", "decide", str(path)], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert res.returncode == 0
    for plan in CASE_MD_PLANS:
        assert f"{plan}: APPROVED" in res.stdout
    assert "age_years = 52  <- Patient/pat1 birthDate" in res.stdout
    got = read_bundle(json.loads(path.read_text()))
    assert {"Organization/payer1", "Organization/prov1", "Coverage/cov1"} <= set(got.unused)
