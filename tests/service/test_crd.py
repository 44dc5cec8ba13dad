"""CRD (CDS Hooks) and DTR ($next-question, the plans' Questionnaires) on a running service.

The CRD test kit's hook requests (tests/crd, unchanged) each get a valid answer; the worked
example (examples/crd/order_sign_besponsa.json) and its variants give each row of SERVICE.md's
table; $next-question walks a form filler to a decision for every plan, both drugs, both
requests, in at most as many steps as the smallest missing set has facts."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_service import Server
from solver.rules import declared

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = json.loads((ROOT / "examples" / "crd" / "order_sign_besponsa.json").read_text())
EXT = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
FHIR = "application/fhir+json"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("crd"), "--workers", "2")
    yield s
    s.stop()


def hook(server: Server, req: dict, service: str | None = None) -> dict:
    r = server.post(f"/cds-services/{service or 'pa-solver-' + req['hook']}", json.dumps(req).encode())
    assert r.status_code == 200, r.text
    got = r.json()
    assert set(got) == {"cards", "systemActions"}
    for card in got["cards"]:
        assert len(card["summary"]) <= 140 and card["indicator"] in ("info", "warning", "critical")
        assert card["source"]["label"] and card["detail"]
    return got


def sub(ext: dict) -> dict:
    """url -> value of a coverage-information extension's parts (the value's one key)."""
    out = {}
    for e in ext["extension"]:
        (value,) = [v for k, v in e.items() if k.startswith("value")]
        out[e["url"]] = value
    return out


def coverage_info(got: dict) -> list[dict]:
    return [sub(e) for a in got["systemActions"] for e in a["resource"].get("extension", []) if e["url"] == EXT]


def with_answers(example: dict, **answers) -> dict:
    req = copy.deepcopy(example)
    qr = req["prefetch"]["questionnaireResponses"]["entry"][0]["resource"]
    items = qr["item"][0]["item"]
    for name, value in answers.items():
        items[:] = [i for i in items if i["linkId"] != name]
        if value is not None:
            key = {bool: "valueBoolean", int: "valueInteger", str: "valueCoding"}[type(value)]
            items.append({"linkId": name, "answer": [{key: {"code": value} if key == "valueCoding" else value}]})
    return req


# ------------------------------------------------------------------ discovery and the test kit's requests

def test_discovery_lists_every_crd_hook_with_its_prefetch(server):
    got = httpx.get(server.url + "/cds-services").json()
    hooks = {s["hook"]: s for s in got["services"]}
    assert {"order-sign", "order-select"} <= set(hooks)
    assert set(hooks["order-sign"]["prefetch"]) == {"patient", "coverage", "conditions", "observations",
                                                    "questionnaireResponses"}


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "tests" / "crd").glob("*_hook_request.json")))
def test_every_hook_request_of_the_crd_test_kit_gets_a_valid_answer(server, name):
    req = json.loads((ROOT / "tests" / "crd" / name).read_text())
    got = hook(server, req)
    assert got == {"cards": [], "systemActions": []}          # none orders our drugs: nothing, never an error


# ------------------------------------------------------------------ SERVICE.md's table

def test_the_worked_example_needs_information_and_asks_for_it(server):
    from fhir.resources.R4B.medicationrequest import MedicationRequest

    got = hook(server, EXAMPLE)
    (action,) = got["systemActions"]                          # the ondansetron order gets nothing
    assert action["type"] == "update" and action["resource"]["id"] == "mr-besponsa-1"
    MedicationRequest.model_validate(action["resource"])     # the order with the extension is valid R4B
    (info,) = coverage_info(got)
    assert info["covered"] == "conditional" and info["pa-needed"] == "auth-needed"
    assert info["doc-needed"] == "clinical" and info["doc-purpose"] == "withpa"
    assert info["coverage"] == {"reference": "Coverage/cov-ohsu"} and info["date"] == "2025-03-01"
    assert info["questionnaire"].endswith("/fhir/Questionnaire/pa-inotuzumab-ozogamicin-initial-ohsu")
    (card,) = got["cards"]
    assert card["source"]["label"] == "OHSU Health Services" and card["indicator"] == "warning"
    assert "cd22_positive" in card["detail"] and "units_per_21_days" in card["detail"]
    assert card["links"][0]["url"] == info["questionnaire"]
    # the link opens the plan's Questionnaire
    q = httpx.get(info["questionnaire"])
    assert q.status_code == 200 and q.json()["resourceType"] == "Questionnaire"
    # stable: the same order, facts and rules give the same assertion id
    assert coverage_info(hook(server, EXAMPLE))[0]["coverage-assertion-id"] == info["coverage-assertion-id"]
    changed = coverage_info(hook(server, with_answers(EXAMPLE, planned_cycles=5)))[0]
    assert changed["coverage-assertion-id"] != info["coverage-assertion-id"]


def test_each_decision_gives_its_row(server):
    approved = coverage_info(hook(server, with_answers(EXAMPLE, cd22_positive=True, units_per_21_days=40)))[0]
    assert (approved["covered"], approved["pa-needed"]) == ("covered", "satisfied")
    assert approved["satisfied-pa-id"] == approved["coverage-assertion-id"] and "doc-needed" not in approved
    got = hook(server, with_answers(EXAMPLE, cd22_positive=False))
    denied = coverage_info(got)[0]
    assert denied["covered"] == "not-covered" and "pa-needed" not in denied
    assert "ohsu_iii_2" in denied["reason"]["text"] and "Patient has CD22-positive disease" in denied["reason"]["text"]
    assert got["cards"][0]["indicator"] == "critical"
    # B-lymphoblastic lymphoma (C83.50, no ALL code): case review, with why a person reviews it
    lbl = with_answers(EXAMPLE, cd22_positive=True, units_per_21_days=40)
    cond = lbl["prefetch"]["conditions"]["entry"][0]["resource"]
    cond["code"]["coding"] = [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C83.50"}]
    review = coverage_info(hook(server, lbl))[0]
    assert (review["covered"], review["pa-needed"], review["doc-needed"]) == ("conditional", "auth-needed", "clinical")
    assert "Appendix 1" in review["reason"]["text"]


def test_which_plan_comes_from_the_coverage(server):
    # a Coverage naming no plan of ours: no action, no card
    other = copy.deepcopy(EXAMPLE)
    cov = other["prefetch"]["coverage"]["entry"][0]["resource"]
    cov["class"][0]["value"] = "some-other-plan"
    cov["payor"][0]["identifier"]["value"] = "some-other-payer"
    assert hook(server, other) == {"cards": [], "systemActions": []}
    # the payor identifier when no class names a plan
    payor = copy.deepcopy(EXAMPLE)
    pc = payor["prefetch"]["coverage"]["entry"][0]["resource"]
    del pc["class"]
    pc["payor"][0]["identifier"]["value"] = "masshealth"
    (info,) = coverage_info(hook(server, payor))
    assert info["coverage"] == {"reference": "Coverage/cov-ohsu"}
    assert hook(server, payor)["cards"][0]["source"]["label"] == "MassHealth"
    # no Coverage at all: every plan the server was started with
    bare = copy.deepcopy(EXAMPLE)
    del bare["prefetch"]["coverage"]
    got = hook(server, bare)
    assert len(coverage_info(got)) == len(declared.of().plans)
    assert all("no Coverage in the request" in i["coverage"]["display"] for i in coverage_info(got))


def test_order_select_judges_the_selected_orders_only(server):
    req = copy.deepcopy(EXAMPLE)
    req["hook"] = "order-select"
    req["context"]["selections"] = ["MedicationRequest/mr-ondansetron"]
    assert hook(server, req) == {"cards": [], "systemActions": []}
    req["context"]["selections"] = ["MedicationRequest/mr-besponsa-1"]
    assert len(hook(server, req)["cards"]) == 1


def test_bad_hook_requests_are_answered_400(server):
    r = server.post("/cds-services/pa-solver-order-sign", b'{"hook": "order-sign"}')
    assert r.status_code == 400 and "context" in r.json()["error"]
    r = server.post("/cds-services/pa-solver-order-sign", json.dumps(dict(EXAMPLE, hook="order-select")).encode())
    assert r.status_code == 400 and "not the hook of service" in r.json()["error"]
    assert server.post("/cds-services/nope", json.dumps(EXAMPLE).encode()).status_code == 404


def test_an_order_whose_data_breaks_case_md_gets_a_card_saying_so(server):
    bad = copy.deepcopy(EXAMPLE)
    qr = bad["prefetch"]["questionnaireResponses"]["entry"][0]["resource"]
    qr["item"][0]["item"].append({"linkId": "planned_cycles", "answer": [{"valueInteger": 99}]})
    got = hook(server, bad)
    assert got["systemActions"] == []
    (card,) = got["cards"]
    assert card["summary"] == "Besponsa: coverage could not be judged" and card["indicator"] == "warning"
    assert "QuestionnaireResponse/qr1" in card["detail"] and "planned_cycles" in card["detail"]


def test_crd_decisions_are_recorded(server):
    hook(server, EXAMPLE)
    audit = subprocess.run([sys.executable, "-m", "solver.cli", "audit", "--store", str(server.store), "--kind", "crd",
                            "--json"], capture_output=True, text=True, timeout=60)
    rows = [json.loads(line) for line in audit.stdout.splitlines()]
    assert rows and any(r["submission"] == EXAMPLE["hookInstance"] and r["decisions"] == {"ohsu": "needs_info"}
                        for r in rows)
    # the words too: a CRD row names its hookInstance (the line once broke on it: no "system|" in the key)
    words = subprocess.run([sys.executable, "-m", "solver.cli", "audit", "--store", str(server.store)],
                           capture_output=True, text=True, timeout=60)
    assert words.returncode == 0 and "Traceback" not in words.stderr, words.stderr
    assert any(f"crd {EXAMPLE['hookInstance']}  ohsu needs_info" in line for line in words.stdout.splitlines())


# ------------------------------------------------------------------ DTR

def walk(server: Server, plan: str, drug: str, request: str, answers: dict, pick) -> tuple[dict, int]:
    """Answer every question $next-question asks (with `pick`) until it completes."""
    qid = f"pa-{drug}-{request}-{plan}".replace("_", "-")
    qr = {"resourceType": "QuestionnaireResponse", "status": "in-progress",
          "questionnaire": f"{server.url}/fhir/Questionnaire/{qid}",
          "item": [{"linkId": k, "answer": [v]} for k, v in answers.items()]}
    for step in range(30):
        r = server.post("/fhir/Questionnaire/$next-question", json.dumps(qr).encode(), FHIR)
        assert r.status_code == 200, r.text
        qr = r.json()
        if qr["status"] == "completed":
            return qr, step
        question = qr["contained"][0]["item"][-1]
        for item in qr["item"]:
            if item["linkId"] == question["linkId"]:
                item["answer"] = [pick(question)]
    raise AssertionError("no end")


def decisions(qr: dict) -> dict:
    """plan id -> decision code, from a completed response's per-plan decision extensions
    (solver/fhir/nextq.py, decision_extension)."""
    out = {}
    for e in qr["extension"]:
        assert e["url"] == "urn:pa-solver:plan-decision", e
        parts = {p["url"]: p for p in e["extension"]}
        (coding,) = parts["decision"]["valueCodeableConcept"]["coding"]
        out[parts["plan"]["valueReference"]["identifier"]["value"]] = coding["code"]
    return out


def needed_value(missing_facts: dict):
    def pick(question: dict) -> dict:
        f = missing_facts[question["linkId"]]
        if "values" in f:
            v = f["values"][0]
            return {"valueBoolean": v} if isinstance(v, bool) else {"valueCoding": {"code": v}}
        lo, hi = f["range"]
        n = lo if lo is not None else (hi - 1 if hi is not None else 1)
        return {"valueInteger": int(n)} if question["type"] == "integer" else {"valueDecimal": n}
    return pick


@pytest.mark.parametrize("drug, req", [("inotuzumab_ozogamicin", "initial"), ("inotuzumab_ozogamicin", "continuation"),
                                           ("blinatumomab", "initial")])
@pytest.mark.parametrize("plan", list(declared.of().plans))
def test_next_question_reaches_a_decision_within_the_smallest_missing_set(server, plan, drug, req):
    from solver import decide

    (r,) = decide({"drug": drug, "request": req, "plans": [plan]}).results
    if r.decision != "needs_info":
        return                                                  # no_policy: nothing to ask
    smallest = r.missing[0]
    facts = {f.fact: f.model_dump(exclude_none=True) for f in smallest.facts}
    qr, steps = walk(server, plan, drug, req, {}, needed_value(facts))
    got = decisions(qr)
    assert got[plan] != "needs_info" and steps <= len(smallest.facts), (plan, steps, got)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.sampled_from(["cvs_caremark", "ohsu", "masshealth"]), seed=st.randoms(use_true_random=False))
def test_next_question_with_any_answers_ends(server, plan, seed):
    """Whatever the answers (any option, any number), the walk ends completed, never asking a fact twice."""
    def pick(question: dict) -> dict:
        t = question["type"]
        if t == "boolean":
            return {"valueBoolean": seed.random() < 0.5}
        if t == "choice":
            return {"valueCoding": seed.choice(question["answerOption"])["valueCoding"]}
        if t == "integer":
            return {"valueInteger": seed.randint(1, 12)}          # inside every integer fact's CASE.md range
        return {"valueDecimal": round(seed.uniform(1, 90), 1)}
    qr, steps = walk(server, plan, "inotuzumab_ozogamicin", "initial", {}, pick)
    asked = [i["linkId"] for i in qr["contained"][0]["item"]]
    assert len(asked) == len(set(asked)) == steps


def test_a_completed_response_names_each_plan_and_its_decision_in_words(server):
    """What a form filler shows: the plan by name, the decision in words (not `display: "ohsu"`), valid R4B."""
    from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

    from solver.engine.solver import Solver

    names = Solver().rules.plans
    qr, steps = walk(server, "ohsu", "inotuzumab_ozogamicin", "initial",
                     {"diagnosis": {"valueCoding": {"code": "non_cancer"}}}, None)
    assert steps == 0
    QuestionnaireResponse.model_validate(qr)
    (e,) = qr["extension"]
    parts = {p["url"]: p for p in e["extension"]}
    assert set(parts) == {"plan", "decision"}
    assert parts["plan"]["valueReference"] == {"identifier": {"system": "urn:pa-solver:plan", "value": "ohsu"},
                                               "display": names["ohsu"]}
    assert parts["decision"]["valueCodeableConcept"] == {
        "coding": [{"system": "urn:pa-solver:decision", "code": "denied", "display": "Denied"}], "text": "Denied"}


def test_next_question_errors(server):
    r = server.post("/fhir/Questionnaire/$next-question", b'{"resourceType": "Patient"}', FHIR)
    assert r.status_code == 422
    r = server.post("/fhir/Questionnaire/$next-question",
                    b'{"resourceType": "QuestionnaireResponse", "status": "completed"}', FHIR)
    assert r.status_code == 400 and "in-progress" in r.json()["issue"][0]["diagnostics"]
    bad = {"resourceType": "QuestionnaireResponse", "status": "in-progress",
           "item": [{"linkId": "age_years", "answer": [{"valueDecimal": 200}]}]}
    r = server.post("/fhir/Questionnaire/$next-question", json.dumps(bad).encode(), FHIR)
    assert r.status_code == 400 and "age_years" in r.json()["issue"][0]["diagnostics"]
    q = httpx.get(server.url + "/fhir/Questionnaire/pa-nothing")
    assert q.status_code == 404 and q.json()["resourceType"] == "OperationOutcome"


def test_the_plans_questionnaires_are_valid_r4b(server):
    from fhir.resources.R4B.questionnaire import Questionnaire

    for plan in ("ohsu", "masshealth"):
        q = httpx.get(f"{server.url}/fhir/Questionnaire/pa-inotuzumab-ozogamicin-initial-{plan}".replace("_", "-"))
        Questionnaire.model_validate(q.json())
