"""ui/present.py on its own: a result put into the page's words."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

import present as pr  # noqa: E402
from solver import Solver  # noqa: E402
from solver.case.models import parse_case  # noqa: E402

SOLVER = Solver()
# the policy sentence, quoted up to its reference mark "(1)."
FEP_RS_2 = ("Besponsa is a CD22-directed antibody and cytotoxic drug conjugate indicated for the treatment of "
            "relapsed or refractory CD22-positive B-cell precursor acute lymphoblastic leukemia (ALL) in adult and "
            "pediatric patients 1 year and older")


def result(case: dict, plan: str, max_changes: int = 2) -> dict:
    (r,) = [r for r in SOLVER.solve(parse_case(case), max_changes)["results"] if r["plan"] == plan]
    return r


def test_sets_that_approve_come_first():
    r = result({}, "masshealth")
    assert r["missing"][0]["outcome"] == "case_review"                  # the solver's order
    ordered = pr.order_missing(r["missing"])
    assert [m["outcome"] for m in ordered][0] == "approved"
    assert ordered[-1]["outcome"] == "case_review"
    assert sorted(map(json.dumps, ordered)) == sorted(map(json.dumps, r["missing"]))
    assert "for approved" in pr.reason(r) and "new_to_plan_on_treatment" not in pr.reason(r)


def test_a_sentence_is_never_cut_inside():
    assert pr.clip_sentences(FEP_RS_2, 60) == FEP_RS_2                  # one sentence: whole
    two = "First sentence is here. Second one is long enough to be dropped from the line."
    assert pr.clip_sentences(two, 30) == "First sentence is here. …"
    assert pr.clip_sentences(two, 200) == two
    assert pr.clip_sentences("a | b") == "a / b"                       # a table cell stays one cell


def test_the_fep_denial_keeps_the_words_that_matter():
    case = json.loads((ROOT / "examples/ohsu_adult_rr.json").read_text())
    case["facts"]["cd22_positive"] = False
    line = pr.reason(result(case, "bcbs_fep"))
    assert FEP_RS_2 in line and "approved if **cd22_positive** = yes" in line


def test_each_reading_once_per_card():
    r = result(json.loads((ROOT / "examples/ohsu_adult_rr.json").read_text()), "ohsu")
    readings = pr.card_readings(r)
    total = sum(1 for pw in r["pathways"] for c in pw["criteria"] if c.get("reading"))
    assert total > 20 and len(readings) < 6
    text = pr.criteria_markdown(r)
    for reading in readings:
        assert text.count(reading) == 1
