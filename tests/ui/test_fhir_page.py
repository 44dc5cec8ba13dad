"""FHIR on the pages (AppTest): a Bundle uploaded to the what-if page gives
its case with each fact's source beside it, conflicts named, the adaptive
questions under "Ask next", a PAS response and a Questionnaire to download
(valid R4B); a bad bundle is refused with the case kept.  The Batch page
reads a JSONL of bundles as the same cases."""

from __future__ import annotations

import copy
import datetime as dt
import json
import sys
from pathlib import Path

import pytest
from solver.rules import declared
from conftest import CASE_MD_PLANS
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]

import caseform as cf  # noqa: E402
import present as pr  # noqa: E402
from fhir_build import bundle_for, observation  # noqa: E402
from solver.engine.solver import Solver  # noqa: E402
from solver.fhir.dtr import questionnaire  # noqa: E402

APP = str(ROOT / "ui" / "app.py")
BATCH = str(ROOT / "ui" / "batch.py")
ADULT = json.loads((ROOT / "examples/ohsu_adult_rr.json").read_text())
INCOMPLETE = json.loads((ROOT / "examples/cvs_frontline_incomplete.json").read_text())


@pytest.fixture
def downloads(monkeypatch) -> dict:
    """file name -> bytes of every download button the page draws (AppTest's
    runtime keeps them in a MemoryMediaFileStorage)."""
    got: dict = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def record(self, path_or_data, mimetype, kind, filename=None):
        if filename is not None:
            got[filename] = path_or_data
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    return got


def only_case_md_plans(app: AppTest) -> AppTest:
    """The page asked of the plans CASE.md describes, whose facts the bundled examples hold, when the
    rule base has others too (a plan added as a file): these tests are about those plans' decisions."""
    if set(declared.of().plans) - set(CASE_MD_PLANS):
        app.multiselect(key="case:plans").set_value(list(CASE_MD_PLANS)).run()
    return app


@pytest.fixture
def at() -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    assert not app.exception, app.exception
    return only_case_md_plans(app)


def upload(app: AppTest, name: str, obj) -> AppTest:
    data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    app.file_uploader[0].set_value((name, data, "application/json")).run()
    assert not app.exception, app.exception
    return app


def headers(app: AppTest) -> dict[str, str]:
    out = {}
    for m in app.markdown:
        # a decision line: "**name** &nbsp; badge ..."; the strip's "**short name** badge" (one per plan) is not
        if m.value.startswith("**") and "-badge[" in m.value and m.value.split("**", 2)[2].startswith(" &nbsp; "):
            out[m.value[2:].split("**", 1)[0]] = m.value.split("-badge[", 1)[1].split("]", 1)[0].split(": ")[-1]
    return out


def captions(app: AppTest) -> list[str]:
    return [c.value for c in app.caption]


def texts(app: AppTest) -> str:
    return "\n".join(m.value for m in app.markdown)


# ------------------------------------------------------------------ what-if page

def test_a_bundle_upload_gives_the_cases_decisions_and_sources(at):
    at.button(key="btn:blank").click().run()
    upload(at, "adult-bundle.json", bundle_for(ADULT))
    assert not at.error
    only_case_md_plans(at)
    assert at.number_input(key="fact:age_years").value == 52
    assert at.number_input(key="fact:weight_kg").value == 78.4
    assert at.radio(key="fact:cd22_positive").value == "yes"
    assert at.text_input(key="fact:icd10_codes").value == "C91.02"
    assert set(headers(at).values()) == {"APPROVED"}                    # as the case itself decides
    notes = captions(at)
    assert "from Observation/obs-weight-kg valueQuantity" in notes
    assert "from Patient/pat1 birthDate" in notes
    assert any(n.startswith("from QuestionnaireResponse/qr1 item[linkId=cd22_positive]") for n in notes)
    assert any("Loaded: the FHIR bundle `adult-bundle.json`" in c for c in notes)
    assert any(c.startswith("Request date: 2025-03-01, from Claim/claim1 created") for c in notes)
    assert not at.date_input                          # a bundle has its own request date


def test_a_fact_changed_by_hand_no_longer_claims_the_bundle(at):
    upload(at, "adult-bundle.json", bundle_for(ADULT))
    at.number_input(key="fact:weight_kg").set_value(90.0).run()
    notes = captions(at)
    assert "from Observation/obs-weight-kg valueQuantity" not in notes
    assert "changed on this page (the bundle's value: 78.4)" in notes
    assert "from Patient/pat1 birthDate" in notes                       # the others still do


def test_conflicts_are_named_with_both_sources(at):
    b = bundle_for(ADULT)
    later = observation("weight_kg", 80.0, oid="obs-w2")
    b["entry"].append({"resource": later})
    upload(at, "conflict.json", b)
    warnings = [w.value for w in at.warning]
    line = next(w for w in warnings if "weight_kg" in w)
    assert "Observation/obs-weight-kg valueQuantity" in line and "Observation/obs-w2 valueQuantity" in line
    assert "78.4" in line and "80" in line and "left unknown" in line
    assert at.number_input(key="fact:weight_kg").value is None


def incomplete_bundle(at: AppTest) -> AppTest:
    """The bundled incomplete example as a bundle (a bundle names no plans: its two set on the page)."""
    upload(at, "incomplete.json", bundle_for(INCOMPLETE))
    at.multiselect(key="case:plans").set_value(INCOMPLETE["plans"]).run()
    assert not at.exception, at.exception
    return at


def test_ask_next_lists_what_the_plans_still_need(at):
    incomplete_bundle(at)
    assert headers(at)["CVS Caremark"] == "NEEDS INFO"
    body = texts(at)
    assert "##### Ask next" in body
    ask = next(m.value for m in at.markdown if m.value.startswith("1. "))
    first = ask.splitlines()[:3]
    assert "(`cd22_positive`)" in first[0] and "(`ph_status`)" in first[1] and "(`planned_cycles`)" in first[2]
    assert "CD22-positive" in first[0]


def test_nothing_to_ask_for_an_approved_case(at):
    assert any(c.startswith("Nothing to ask") for c in captions(at))


def test_the_fhir_downloads_are_valid_r4b(at, downloads):
    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B.questionnaire import Questionnaire

    incomplete_bundle(at)
    pas = next(b for b in at.get("download_button") if b.key == "dl:pas")
    assert not pas.proto.disabled
    name = INCOMPLETE["case_id"]
    response = json.loads(downloads[f"{name}.pas.json"])
    Bundle.model_validate(response)
    claims = [e["resource"] for e in response["entry"]]
    assert {c["insurer"]["identifier"]["value"] for c in claims} == {"cvs_caremark", "ohsu"}
    assert all(c["created"] == "2025-03-01" and c["request"] == {"reference": "Claim/claim1"} for c in claims)
    assert all(c["patient"] == {"reference": "Patient/pat1"} for c in claims)
    q = json.loads(downloads[f"{name}.questionnaire.json"])
    Questionnaire.model_validate(q)
    assert [i["linkId"] for i in q["item"]][:3] == ["cd22_positive", "ph_status", "planned_cycles"]


def test_a_plain_case_needs_a_request_date_for_the_pas_response(at, downloads):
    from fhir.resources.R4B.bundle import Bundle

    pas = next(b for b in at.get("download_button") if b.key == "dl:pas")
    assert pas.proto.disabled
    assert any("needs a request date" in c for c in captions(at))
    assert at.date_input(key="case:request_date").value is None      # never today's date
    at.date_input(key="case:request_date").set_value(dt.date(2025, 4, 2)).run()
    assert not at.exception, at.exception
    pas = next(b for b in at.get("download_button") if b.key == "dl:pas")
    assert not pas.proto.disabled
    response = json.loads(downloads[f"{ADULT['case_id']}.pas.json"])
    Bundle.model_validate(response)
    assert {e["resource"]["created"] for e in response["entry"]} == {"2025-04-02"}


@pytest.mark.parametrize("bad, why", [
    ({"resourceType": "Patient", "id": "p"}, "not a Bundle"),
    ({"resourceType": "Bundle", "type": "collection", "entry": []}, "no request date"),
])
def test_a_bad_bundle_is_refused_and_the_case_kept(at, bad, why):
    upload(at, "bad-bundle.json", bad)
    errors = [e.value for e in at.error]
    assert errors and "bad-bundle.json" in errors[0] and why in errors[0], errors
    assert at.number_input(key="fact:age_years").value == 52
    assert headers(at)["OHSU Health Services"] == "APPROVED"
    assert any("Loaded: the bundled example" in c for c in captions(at))


def test_a_bundle_with_a_bad_element_names_it(at):
    b = bundle_for(ADULT)
    b["entry"][1]["resource"]["birthDate"] = "not-a-date"
    upload(at, "bad-birth.json", b)
    errors = [e.value for e in at.error]
    assert errors and "Patient/pat1" in errors[0] and "birthDate" in errors[0], errors
    assert at.number_input(key="fact:age_years").value == 52


def test_a_plain_case_after_a_bundle_has_no_sources(at):
    upload(at, "adult-bundle.json", bundle_for(ADULT))
    upload(at, "mh.json", (ROOT / "examples/masshealth_blinatumomab.json").read_bytes())
    assert not any(c.startswith("from ") for c in captions(at))
    assert at.date_input(key="case:request_date").value is None


# ------------------------------------------------------------------ the page's modules

def test_load_input_reads_a_bundle_as_its_case():
    case, fhir = cf.load_input(json.dumps(bundle_for(ADULT)).encode())
    assert fhir is not None and fhir.request_date == dt.date(2025, 3, 1)
    assert case["facts"]["age_years"] == 52 and case["facts"]["weight_kg"] == 78.4
    plain, none = cf.load_input(json.dumps(ADULT).encode())
    assert none is None and plain == cf.load_case_json(json.dumps(ADULT).encode())


def test_source_notes_follow_the_value():
    case, fhir = cf.load_input(json.dumps(bundle_for(ADULT)).encode())
    assert pr.source_note("weight_kg", fhir, case) == "from Observation/obs-weight-kg valueQuantity"
    assert pr.source_note("weight_kg", None, case) is None
    changed = copy.deepcopy(case)
    changed["facts"]["weight_kg"] = 90
    assert "Observation" not in pr.source_note("weight_kg", fhir, changed)
    del changed["facts"]["weight_kg"]
    assert "Observation" not in pr.source_note("weight_kg", fhir, changed)
    assert pr.source_note("with_rituximab", fhir, case) is None          # the bundle does not say


def test_ask_next_is_the_adaptive_questionnaires_first_items():
    solver = Solver()
    from solver.case.models import parse_case

    result = solver.solve(parse_case(INCOMPLETE))
    q = questionnaire(solver, INCOMPLETE["drug"], INCOMPLETE["request"], INCOMPLETE["plans"], result)
    asked = pr.ask_next(q, 2)
    assert [f for _, f in asked] == ["cd22_positive", "ph_status"]
    assert asked[0][0] == q["item"][0]["text"]


def test_the_fhir_downloads_of_a_case_are_what_the_command_line_prints():
    import subprocess

    from solver.fhir.pas import pas_bundle
    from solver.case.models import parse_case

    solver = Solver()
    path = ROOT / "examples/cvs_frontline_incomplete.json"
    result = solver.solve(parse_case(INCOMPLETE), 2)                    # the page's result, with changes
    q = cf.fhir_json(questionnaire(solver, INCOMPLETE["drug"], INCOMPLETE["request"], INCOMPLETE["plans"], result))
    pas = cf.fhir_json(pas_bundle(result, solver.rules.plans, dt.date(2025, 4, 2)))
    cli = [sys.executable, "-m", "solver.cli"]
    assert q == subprocess.run(cli + ["questionnaire", str(path)], capture_output=True, text=True, cwd=ROOT).stdout
    assert pas == subprocess.run(cli + ["decide", str(path), "--format", "pas", "--as-of", "2025-04-02"],
                                 capture_output=True, text=True, cwd=ROOT).stdout


# ------------------------------------------------------------------ batch page

def test_the_batch_page_reads_bundles_as_the_same_cases():
    # A bundle names no plans: the cases ask every plan too.
    incomplete = {k: v for k, v in INCOMPLETE.items() if k != "plans"}
    cases = [ADULT, incomplete, {**ADULT, "case_id": "no-cd22", "facts": {**ADULT["facts"], "cd22_positive": False}}]
    as_cases = "\n".join(json.dumps(c) for c in cases).encode()
    as_bundles = "\n".join(json.dumps(bundle_for(c)) for c in cases).encode()

    def table(data: bytes):
        at = AppTest.from_file(BATCH, default_timeout=120).run()
        at.file_uploader(key="batch:upload").set_value(("x.jsonl", data, "application/json"))
        at.run()
        assert not at.exception, at.exception
        return at

    a, b = table(as_cases), table(as_bundles)
    assert {m.label: m.value for m in b.metric}["Could not be read"] == "0"
    assert a.dataframe[-1].value.equals(b.dataframe[-1].value)           # the whole report, row for row
    assert any("3 lines read as FHIR Bundles" in c.value for c in b.caption)


def test_a_bad_bundle_line_is_counted_by_its_reason():
    lines = [json.dumps(bundle_for(ADULT)), json.dumps({"resourceType": "Bundle", "type": "collection"})]
    at = AppTest.from_file(BATCH, default_timeout=120).run()
    at.file_uploader(key="batch:upload").set_value(("x.jsonl", "\n".join(lines).encode(), "application/json"))
    at.run()
    assert not at.exception, at.exception
    m = {m.label: m.value for m in at.metric}
    assert m["Cases"] == "2" and m["Could not be read"] == "1"
    errors = next(d.value for d in at.dataframe if "field at fault" in d.value.columns)
    assert errors["field at fault"].str.startswith("no request date").all()
