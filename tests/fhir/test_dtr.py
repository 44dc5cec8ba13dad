"""DTR out: a Questionnaire from the rule base, adaptive for a case; a
response to it, in a bundle, decides like the case it answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire

from fhir_build import answer, bundle_for, questionnaire_response
from solver.engine.solver import Solver
from solver.fhir.dtr import questionnaire
from solver.fhir.inputs import case_from, result_for
from strategies import FACT_NAMES, kind
from conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]
SOLVER = Solver()
RULES = SOLVER.rules


@pytest.mark.parametrize("drug, req", [("inotuzumab_ozogamicin", "initial"),
                                           ("inotuzumab_ozogamicin", "continuation"), ("blinatumomab", "initial")])
def test_the_full_questionnaire_asks_every_fact_the_plans_criteria_test(drug, req):
    request = req
    q = questionnaire(SOLVER, drug, request)
    Questionnaire.model_validate(q)
    cf = RULES.criterion_facts
    for item in q["item"]:
        served = [c["code"] for c in item["code"]]
        assert served and all(item["linkId"] in cf[c] for c in served)
        assert all(any(c in pw.criteria and drug in pw.drugs and request in pw.requests
                       for pw in RULES.pathways.values()) for c in served)
        if item["type"] == "choice":
            assert [o["valueCoding"]["code"] for o in item["answerOption"]] == \
                [v.string for v in RULES.facts[item["linkId"]].values]
        assert item["type"] == {"bool": "boolean", "enum": "choice", "integer": "integer",
                                "number": "quantity" if item["linkId"] in ("weight_kg", "height_cm") else "decimal"
                                }[kind(item["linkId"])]
    asked = {i["linkId"] for i in q["item"]}
    tested = {f for pw in RULES.pathways.values() if drug in pw.drugs and request in pw.requests
              for c in pw.criteria for f in cf.get(c, ())}
    assert asked == tested & set(FACT_NAMES)            # drug and request are the request's, not questions


def test_blinatumomab_asks_only_masshealth_s_facts():
    q = questionnaire(SOLVER, "blinatumomab", "initial")
    plans = {c["code"].split("_")[0] for i in q["item"] for c in i["code"]}
    assert plans == {"mh"}


def test_the_adaptive_questionnaire_asks_only_what_is_missing_most_needed_first():
    case = json.loads((ROOT / "examples/cvs_frontline_incomplete.json").read_text())
    case["plans"] = ["cvs_caremark", "masshealth", "ohsu", "bcbsnc"]
    case_obj, fhir = case_from(case)
    result = result_for(SOLVER, case_obj, fhir)
    q = questionnaire(SOLVER, case_obj.drug, case_obj.request, case_obj.plans, result)
    Questionnaire.model_validate(q)
    need: dict = {}
    for r in result["results"]:
        if r["decision"] == "needs_info":
            for m in r["missing"]:
                for f in m["facts"]:
                    need.setdefault(f["fact"], set()).add(r["plan"])
    linkids = [i["linkId"] for i in q["item"]]
    assert set(linkids) == set(need) and not set(linkids) & set(case["facts"])
    counts = [len(need[f]) for f in linkids]
    assert counts == sorted(counts, reverse=True) and counts[0] >= 2


def test_answering_the_questionnaire_in_a_bundle_decides_like_the_case_it_came_from():
    case = json.loads((ROOT / "examples/cvs_frontline_incomplete.json").read_text())
    case_obj, _ = case_from(case)
    result = result_for(SOLVER, case_obj, None)
    q = questionnaire(SOLVER, case_obj.drug, case_obj.request, case_obj.plans, result)
    (cvs,) = [r for r in result["results"] if r["plan"] == "cvs_caremark"]
    fill = {f["fact"]: (f["values"][0] if "values" in f else (f["range"][0] if f["range"][0] is not None
                                                               else f["range"][1] - 1))
            for f in cvs["missing"][0]["facts"]}
    answers = [{"linkId": i["linkId"], "answer": [answer(kind(i["linkId"]), fill[i["linkId"]])]}
               for i in q["item"] if i["linkId"] in fill]
    b = bundle_for(case)
    b["entry"].append({"resource": questionnaire_response(answers, qid="dtr1")})
    filled = {**case, "facts": {**case["facts"], **fill}}
    got = result_for(SOLVER, *case_from(b))
    want = result_for(SOLVER, *case_from(filled))
    asked = set(case_obj.plans)                  # a bundle names no plans: every plan decides it
    assert [(r["plan"], r["decision"]) for r in got["results"] if r["plan"] in asked] == \
        [(r["plan"], r["decision"]) for r in want["results"]]
    assert [r for r in got["results"] if r["plan"] == "cvs_caremark"][0]["decision"] == "approved"


def test_the_command_line():
    run = lambda *a: run_cli("questionnaire", *a, timeout=120)
    full = run("--plans", "ohsu")
    Questionnaire.model_validate(json.loads(full.stdout))
    adaptive = run("examples/cvs_frontline_incomplete.json")
    assert adaptive.returncode == 0
    # both plans need the first three (CASE.md version 2: OHSU no longer denies the 68-year-old with
    # rituximab, it needs information too), then OHSU's own
    assert [i["linkId"] for i in json.loads(adaptive.stdout)["item"]] == [
        "cd22_positive", "ph_status", "planned_cycles",
        "baseline_ecg_normal", "ecg_monitoring_planned", "prior_inotuzumab", "units_per_21_days"]
