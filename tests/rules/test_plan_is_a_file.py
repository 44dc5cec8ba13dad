"""A plan is a file, a fact is a line (shared/spec/RULES.md).

A rules folder is built from logic/ and one more plan written for this test
(tests/rules_acme/: `acme.lp` and its document `policies/acme.txt`): a plan the
project has never seen, with a drug of its own (Zorbita, HCPCS J9999), two
facts of its own (`ecog_status`, an integer of 0-5; `measurable_disease`, a
bool) and a payer identifier.  Every command, the service (CRD by payer id,
$submit, $next-question), a FHIR bundle whose QuestionnaireResponse carries
the new facts and the What-if page know it, with no code changed; and with the
file taken out again, nothing knows it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]
ACME = Path(__file__).resolve().parents[1] / "rules_acme"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
FHIR = "application/fhir+json"

CASE = {"case_id": "acme-1", "drug": "zorbitumab", "plans": ["acme", "ohsu"],
        "facts": {"age_years": 40, "ecog_status": 1, "measurable_disease": True}}


@pytest.fixture(scope="module")
def rules(tmp_path_factory) -> Path:
    """logic/ and the acme plan (its file, its document beside it)."""
    folder = tmp_path_factory.mktemp("rules") / "logic"
    shutil.copytree(ROOT / "logic", folder)
    shutil.copy(ACME / "acme.lp", folder / "acme.lp")
    (folder / "policies").mkdir()
    shutil.copy(ACME / "policies" / "acme.txt", folder / "policies" / "acme.txt")
    return folder


def run(*args: str, stdin: bytes | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    r = run_cli(*args, stdin=stdin, timeout=180, env={**os.environ, **(env or {})}, text=False)
    assert b"Traceback" not in r.stderr, r.stderr.decode()
    return r


def ok(*args: str, stdin: bytes | None = None) -> str:
    r = run(*args, stdin=stdin)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode()


def by_plan(out: str) -> dict:
    return {r["plan"]: r for r in json.loads(out)["results"]}


def acme_bundle(**facts) -> dict:
    """A PAS request for Zorbita whose QuestionnaireResponse answers the new facts."""
    items = []
    for name, value in facts.items():
        items.append({"linkId": name, "answer": [{"valueBoolean": value} if isinstance(value, bool)
                                                 else {"valueInteger": value}]})
    return {"resourceType": "Bundle", "type": "collection", "identifier": {"system": "urn:test", "value": "b-acme"},
            "entry": [
                {"resource": {"resourceType": "Claim", "id": "c1", "status": "active", "use": "preauthorization",
                              "identifier": [{"system": "urn:test:claims", "value": "acme-claim-1"}],
                              "type": {"coding": [{"code": "professional"}]}, "patient": {"reference": "Patient/p1"},
                              "created": "2026-11-02", "provider": {"reference": "Organization/o1"},
                              "priority": {"coding": [{"code": "normal"}]},
                              "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "Coverage/c1"}}],
                              "item": [{"sequence": 1, "productOrService": {"coding": [
                                  {"system": HCPCS, "code": "J9999"}]}}]}},
                {"resource": {"resourceType": "Patient", "id": "p1", "birthDate": "1980-01-01"}},
                {"resource": {"resourceType": "QuestionnaireResponse", "id": "qr1", "status": "completed",
                              "item": items}}]}


# ------------------------------------------------------------------ every command

def test_every_command_knows_the_new_plan_its_drug_and_its_facts(rules, tmp_path):
    r = "--rules", str(rules)
    case = json.dumps(CASE).encode()
    got = by_plan(ok("decide", "-", "--json", *r, stdin=case))
    assert got["acme"]["decision"] == "approved" and got["acme"]["pathway"] == "acme_zorbita"
    assert got["acme"]["authorization"]["months"] == 6
    assert got["ohsu"]["decision"] == "no_policy"                     # Zorbita is acme's alone

    # the range declared by range/3 is checked, by name
    bad = run("decide", "-", *r, stdin=json.dumps({**CASE, "facts": {"ecog_status": 6}}).encode())
    assert bad.returncode == 2 and bad.stderr.decode().strip() == \
        "error: invalid case: facts.ecog_status: Input should be less than or equal to 5"

    unknown = json.dumps({**CASE, "facts": {"age_years": 40}}).encode()
    need = by_plan(ok("decide", "-", "--json", *r, stdin=unknown))["acme"]
    assert need["decision"] == "needs_info"
    assert sorted(f["fact"] for f in need["missing"][0]["facts"]) == ["ecog_status", "measurable_disease"]

    changes = by_plan(ok("explain", "-", "--json", "--max-changes", "1", *r, stdin=case))["acme"]["changes"]
    assert {c["facts"][0]["fact"] for c in changes} >= {"ecog_status", "measurable_disease"}

    assert "acme" in ok("why", "-", "--plan", "acme", *r, stdin=case)

    q = json.loads(ok("questionnaire", "--plans", "acme", "--drug", "zorbitumab", *r))
    items = {i["linkId"]: i for i in q["item"]}
    assert items["ecog_status"]["text"] == "ECOG performance status of the patient (0 to 5)"
    assert items["ecog_status"]["type"] == "integer" and items["measurable_disease"]["type"] == "boolean"

    d = json.loads(ok("diff", "acme", "ohsu", "--json", *r))
    assert d["plans"] == ["acme", "ohsu"] and d["differences"]

    cov = json.loads(ok("coverage", "acme", "--json", *r))["plans"][0]
    assert cov["counts"]["unaccounted"] == 0 and cov["counts"]["encoded"] == 5

    assert ok("plan", "check", "acme", *r).splitlines()[-1] == "0 problems"

    lines = tmp_path / "cases.jsonl"
    lines.write_text(json.dumps(CASE) + "\n" + json.dumps({**CASE, "case_id": "acme-2", "facts": {}}) + "\n")
    out = ok("batch", str(lines), "--workers", "1", "--no-progress", *r)
    assert [by_plan(line)["acme"]["decision"] for line in out.splitlines()] == ["approved", "needs_info"]
    results = tmp_path / "results.jsonl"
    results.write_text(out)
    rep = json.loads(ok("report", str(results), "--format", "json", *r))
    assert "acme" in rep["plans"]

    # a FHIR bundle: the drug by its declared HCPCS code, the new facts from the QuestionnaireResponse
    fhir = json.loads(ok("decide", "-", "--json", *r, stdin=json.dumps(acme_bundle(ecog_status=2,
                                                                                   measurable_disease=True)).encode()))
    assert fhir["fhir"]["case"]["drug"] == "zorbitumab"
    assert fhir["fhir"]["case"]["facts"]["ecog_status"] == 2
    assert by_plan(json.dumps(fhir))["acme"]["decision"] == "approved"


def test_without_the_file_nothing_knows_it(rules):
    """The installed rule base (no acme.lp): the plan, its drug and its facts are refused by name."""
    bad = run("decide", "-", stdin=json.dumps(CASE).encode())
    assert bad.returncode == 2
    said = bad.stderr.decode()
    assert "drug: Input should be 'inotuzumab_ozogamicin' or 'blinatumomab'" in said
    assert "facts.ecog_status: unknown field" in said and "plans[0]" in said
    diff = run("diff", "acme", "ohsu")
    assert diff.returncode == 2 and "invalid choice: 'acme'" in diff.stderr.decode()
    fhir = run("decide", "-", stdin=json.dumps(acme_bundle(ecog_status=1)).encode())
    assert fhir.returncode == 2 and "requests neither" in fhir.stderr.decode()
    q = json.loads(ok("questionnaire"))
    assert "ecog_status" not in {i["linkId"] for i in q["item"]}


# ------------------------------------------------------------------ the service

def test_the_service_knows_it(rules, tmp_path):
    import httpx
    from served import Server

    s = Server(tmp_path, "--workers", "1", "--rules", str(rules))
    try:
        # CRD: an order for Zorbita under a Coverage whose payor identifier payer_id/3 declares
        hook = {"hook": "order-sign", "hookInstance": "acme-hook-1",
                "context": {"userId": "Practitioner/x", "patientId": "p1", "draftOrders": {
                    "resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
                        "resourceType": "MedicationRequest", "id": "mr1", "status": "draft", "intent": "order",
                        "medicationCodeableConcept": {"coding": [{"system": HCPCS, "code": "J9999"}]},
                        "subject": {"reference": "Patient/p1"}, "authoredOn": "2026-11-02",
                        "insurance": [{"reference": "Coverage/cov1"}]}}]}},
                "prefetch": {"patient": {"resourceType": "Patient", "id": "p1", "birthDate": "1980-01-01"},
                             "coverage": {"resourceType": "Coverage", "id": "cov1", "status": "active",
                                          "payor": [{"identifier": {"system": "http://example.org/payers",
                                                                    "value": "ACME-7"}}]}}}
        r = s.post("/cds-services/pa-solver-order-sign", json.dumps(hook).encode())
        assert r.status_code == 200, r.text
        actions = r.json()["systemActions"]
        assert len(actions) == 1
        ext = actions[0]["resource"]["extension"][-1]
        assert ext["url"].endswith("ext-coverage-information")
        assert {e["url"]: e for e in ext["extension"]}["covered"]["valueCode"] == "conditional"   # facts missing
        assert r.json()["cards"][0]["summary"].startswith("Zorbita")

        # PAS $submit: one ClaimResponse per plan, acme's approved
        sub = s.post("/fhir/Claim/$submit", json.dumps(acme_bundle(ecog_status=0, measurable_disease=True)).encode(),
                     FHIR)
        assert sub.status_code == 200, sub.text
        crs = [e["resource"] for e in sub.json()["entry"] if e["resource"]["resourceType"] == "ClaimResponse"]
        assert any("acme" in json.dumps(c) and c.get("outcome") == "complete" for c in crs), crs

        # DTR: $next-question asks acme's own facts, in its own words
        qr = {"resourceType": "QuestionnaireResponse", "status": "in-progress",
              "questionnaire": f"{s.url}/fhir/Questionnaire/pa-zorbitumab-initial-acme",
              "item": [{"linkId": "age_years", "answer": [{"valueDecimal": 40}]}]}
        asked = []
        for _ in range(5):
            r = s.post("/fhir/Questionnaire/$next-question", json.dumps(qr).encode(), FHIR)
            assert r.status_code == 200, r.text
            qr = r.json()
            if qr["status"] == "completed":
                break
            q = qr["contained"][0]["item"][-1]
            asked.append(q["linkId"])
            for item in qr["item"]:
                if item["linkId"] == q["linkId"]:
                    item["answer"] = [{"valueInteger": 1} if q["type"] == "integer" else {"valueBoolean": True}]
        assert sorted(asked) == ["ecog_status", "measurable_disease"] and qr["status"] == "completed"

        api = httpx.get(s.url + "/openapi.json", timeout=30).json()
        assert "acme" in json.dumps(api) and "zorbitumab" in json.dumps(api)
    finally:
        assert s.stop() == 0


# ------------------------------------------------------------------ the page

PAGE = """
import json, sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=120).run()
labels = [w.label for w in at.number_input] + [w.label for w in at.radio] + [w.label for w in at.selectbox]
print(json.dumps({"labels": labels, "options": [list(w.options) for w in at.multiselect],
                  "drugs": [list(w.options) for w in at.selectbox if w.label == "Drug"],
                  "errors": [e.value for e in at.exception]}))
"""


@pytest.mark.parametrize("with_acme", [True, False])
def test_the_what_if_page_knows_it(rules, with_acme):
    env = {**os.environ, "PA_SOLVER_LOGIC": str(rules) if with_acme else str(ROOT / "logic")}
    r = subprocess.run([sys.executable, "-c", PAGE, str(ROOT / "ui" / "app.py")], capture_output=True, cwd=ROOT,
                       timeout=300, env=env)
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    got = json.loads(r.stdout.decode().strip().splitlines()[-1])
    assert not got["errors"], got["errors"]
    labels = " ".join(got["labels"])
    assert ("ECOG performance status (ecog_status)" in labels) is with_acme
    assert ("Measurable disease (measurable_disease)" in labels) is with_acme
    assert any("Acme Health Plan" in opts for opts in got["options"]) is with_acme     # the plans picker
    assert any("zorbitumab" in opts for opts in got["drugs"]) is with_acme
    assert any("OHSU Health Services" in opts for opts in got["options"])
