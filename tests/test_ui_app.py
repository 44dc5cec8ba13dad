"""The what-if page under Streamlit's AppTest: loads on the example, a fact
change moves the decision it should, a missing set's button fills it, the
baseline comparison shows what changed, a bad upload is refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "ui" / "app.py")


@pytest.fixture
def at() -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    assert not app.exception, app.exception
    return app


def headers(app: AppTest) -> dict[str, str]:
    """Plan name -> the decision badge on its card."""
    out = {}
    for m in app.markdown:
        if m.value.startswith("#### "):
            name, rest = m.value[5:].split(" &nbsp; ", 1)
            out[name] = rest.split("[", 1)[1].split("]", 1)[0].split(": ")[-1]    # after the badge's icon
    return out


def texts(app: AppTest) -> str:
    return "\n".join(m.value for m in app.markdown)


def test_page_opens_on_the_example_with_every_plan(at):
    cards = headers(at)
    assert set(cards) == {"BCBS Federal Employee Program", "Blue Cross NC", "CVS Caremark", "MassHealth",
                          "OHSU Health Services"}
    assert set(cards.values()) == {"APPROVED"}
    assert at.number_input(key="fact:age_years").value == 52
    assert at.radio(key="fact:with_rituximab").value == "unknown"       # the example does not say
    assert "Decided by" in texts(at) and "`ohsu_iii_1`" in texts(at)
    assert any("Decided in" in c.value for c in at.caption)


def test_changing_a_fact_changes_the_decision(at):
    at.radio(key="fact:cd22_positive").set_value("no").run()
    cards = headers(at)
    assert cards["OHSU Health Services"] == "DENIED"          # OHSU III.1: CD22-positive
    assert cards["BCBS Federal Employee Program"] == "DENIED"
    assert cards["MassHealth"] == "APPROVED"                   # CD22 is not a MassHealth criterion
    assert "Why not" in texts(at)


def test_unknown_is_not_false(at):
    at.radio(key="fact:cd22_positive").set_value("unknown").run()
    cards = headers(at)
    assert cards["OHSU Health Services"] == "NEEDS INFO"
    assert "**cd22_positive** = yes" in texts(at)


def test_start_blank_leaves_every_fact_unknown(at):
    at.button(key="btn:blank").click().run()
    assert at.number_input(key="fact:age_years").value is None
    assert all(r.value == "unknown" for r in at.radio)
    assert set(headers(at).values()) <= {"NEEDS INFO"}


def test_a_missing_set_button_fills_it_and_the_decision_moves(at):
    at.selectbox(key="src:example").set_value("cvs_frontline_incomplete.json")
    at.button(key="btn:load").click().run()
    assert headers(at)["CVS Caremark"] == "NEEDS INFO"
    at.button(key="fill:cvs_caremark:0").click().run()
    assert not at.exception
    assert headers(at)["CVS Caremark"] == "APPROVED"


def test_a_change_can_be_tried(at):
    # OHSU's first listed change for the approved example denies it.
    at.button(key="try:ohsu:0").click().run()
    assert headers(at)["OHSU Health Services"] == "DENIED"


def test_baseline_shows_what_changed_and_resets(at):
    at.button(key="btn:pin").click().run()
    assert "Facts that differ:** none" in texts(at)
    at.number_input(key="fact:age_years").set_value(0.5).run()
    body = texts(at)
    assert "| age_years | 52 | **0.5** |" in body
    assert "changed — baseline APPROVED" in body               # under 1: not the FDA label (FEP)
    assert "← changed" in body
    assert headers(at)["BCBS Federal Employee Program"] == "DENIED"
    at.button(key="btn:reset").click().run()
    assert at.number_input(key="fact:age_years").value == 52
    assert set(headers(at).values()) == {"APPROVED"}


def test_a_bad_upload_is_refused_with_the_field_named_and_the_case_kept(at):
    bad = json.dumps({"facts": {"age_years": 200, "cd22_positive": False}}).encode()
    at.file_uploader(key="src:upload").set_value(("bad.json", bad, "application/json")).run()
    errors = [e.value for e in at.error]
    assert errors and "facts.age_years" in errors[0] and "bad.json" in errors[0]
    assert at.number_input(key="fact:age_years").value == 52
    assert at.radio(key="fact:cd22_positive").value == "yes"


def test_a_valid_edge_value_is_kept_not_made_unknown(at):
    edge = json.dumps({"facts": {"weight_kg": 0.05, "age_years": 17.99}}).encode()
    at.file_uploader(key="src:upload").set_value(("edge.json", edge, "application/json")).run()
    assert not at.error and not at.exception
    assert at.number_input(key="fact:weight_kg").value == 0.05
    assert at.number_input(key="fact:age_years").value == 17.99


def test_the_summary_says_why_a_plan_is_denied(at):
    at.radio(key="fact:cd22_positive").set_value("no").run()
    (table,) = [m.value for m in at.markdown if m.value.startswith("| plan | decision")]
    (ohsu,) = [row for row in table.splitlines() if row.startswith("| OHSU")]
    assert "`ohsu_iii_2` Patient has CD22-positive disease" in ohsu
    assert "approved if **cd22_positive** = yes" in ohsu


def test_no_plan_chosen_is_said(at):
    at.multiselect(key="case:plans").set_value([]).run()
    assert any("No plan is chosen" in w.value for w in at.warning)


def test_a_good_upload_replaces_the_case(at):
    case = json.loads((ROOT / "examples/masshealth_blinatumomab.json").read_text())
    at.file_uploader(key="src:upload").set_value(("mh.json", json.dumps(case).encode(), "application/json")).run()
    assert not at.error
    assert at.selectbox(key="case:drug").value == "blinatumomab"
    assert headers(at)["OHSU Health Services"] == "NO POLICY"


def test_an_invalid_typed_value_names_the_field(at):
    at.text_input(key="fact:icd10_codes").set_value("not-a-code").run()
    assert any("facts.icd10_codes" in e.value for e in at.error)
