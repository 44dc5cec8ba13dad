"""The what-if page under Streamlit's AppTest: loads on the example, a fact
change moves the decision it should, a missing set's button fills it, the
baseline comparison shows what changed, a bad upload is refused by name."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import CASE_MD_PLANS
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "ui" / "app.py")
from caseform import FACTS  # noqa: E402
from solver.rules import declared  # noqa: E402

N_FACTS = len(declared.of().case_facts)


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


def rows(app: AppTest) -> dict[str, str]:
    """Plan name -> its decision line (name, badge, what decides it or holds it back)."""
    out = {}
    for m in app.markdown:
        # a decision line: "**name** &nbsp; badge ..."; the strip's "**short name** badge" (one per plan) is not
        if m.value.startswith("**") and "-badge[" in m.value and m.value.split("**", 2)[2].startswith(" &nbsp; "):
            out[m.value[2:].split("**", 1)[0]] = m.value
    return out


def headers(app: AppTest) -> dict[str, str]:
    """Plan name -> the decision badge on its line."""
    return {name: row.split("-badge[", 1)[1].split("]", 1)[0].split(": ")[-1]    # after the badge's icon
            for name, row in rows(app).items()}


def open_card(app: AppTest, plan: str) -> AppTest:
    """Open a plan's card (its contents are drawn only while it is open)."""
    app.session_state[f"card:{plan}"] = True
    app.run()
    assert not app.exception, app.exception
    return app


def texts(app: AppTest) -> str:
    return "\n".join(m.value for m in app.markdown)


def test_page_opens_on_the_example_with_every_plan(at):
    cards = headers(at)
    assert set(cards) == {"BCBS Federal Employee Program", "Blue Cross NC", "CVS Caremark", "MassHealth",
                          "OHSU Health Services"}
    assert set(cards.values()) == {"APPROVED"}
    assert at.number_input(key="fact:age_years").value == 52
    assert at.radio(key="fact:with_rituximab").value == "unknown"       # the example does not say
    open_card(at, "ohsu")
    assert "Decided by" in texts(at) and "`ohsu_iii_1`" in texts(at)
    assert any("Decided in" in c.value for c in at.caption)


def test_changing_a_fact_changes_the_decision(at):
    at.radio(key="fact:cd22_positive").set_value("no").run()
    cards = headers(at)
    assert cards["OHSU Health Services"] == "DENIED"          # OHSU III.1: CD22-positive
    assert cards["BCBS Federal Employee Program"] == "DENIED"
    assert cards["MassHealth"] == "APPROVED"                   # CD22 is not a MassHealth criterion
    open_card(at, "ohsu")
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
    open_card(at, "cvs_caremark")
    at.button(key="fill:cvs_caremark:0").click().run()
    assert not at.exception
    assert headers(at)["CVS Caremark"] == "APPROVED"


def test_a_change_can_be_tried(at):
    # OHSU's first listed change for the approved example: a B-lymphoblastic lymphoma goes to case review.
    open_card(at, "ohsu")
    at.button(key="try:ohsu:0").click().run()
    assert headers(at)["OHSU Health Services"] == "CASE REVIEW"
    open_card(at, "ohsu")
    at.button(key="try:ohsu:1").click().run()          # the changed case's second change denies it
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
    at.file_uploader[0].set_value(("bad.json", bad, "application/json")).run()
    errors = [e.value for e in at.error]
    assert errors and "facts.age_years" in errors[0] and "bad.json" in errors[0]
    assert at.number_input(key="fact:age_years").value == 52
    assert at.radio(key="fact:cd22_positive").value == "yes"


def test_a_valid_edge_value_is_kept_not_made_unknown(at):
    edge = json.dumps({"facts": {"weight_kg": 0.05, "age_years": 17.99}}).encode()
    at.file_uploader[0].set_value(("edge.json", edge, "application/json")).run()
    assert not at.error and not at.exception
    assert at.number_input(key="fact:weight_kg").value == 0.05
    assert at.number_input(key="fact:age_years").value == 17.99


def test_the_summary_says_why_a_plan_is_denied(at):
    at.radio(key="fact:cd22_positive").set_value("no").run()
    ohsu = rows(at)["OHSU Health Services"]
    assert ("`ohsu_iii_2` cd22_positive is no; the policy allows yes — III. Initial Approval Criteria, item 2: "
            "Patient has CD22-positive disease") in ohsu
    assert "approved if **cd22_positive** = yes" in ohsu


def test_no_plan_chosen_is_said(at):
    at.multiselect(key="case:plans").set_value([]).run()
    assert any("No plan is chosen" in w.value for w in at.warning)


def test_a_good_upload_replaces_the_case(at):
    case = json.loads((ROOT / "examples/masshealth_blinatumomab.json").read_text())
    at.file_uploader[0].set_value(("mh.json", json.dumps(case).encode(), "application/json")).run()
    assert not at.error
    assert at.selectbox(key="case:drug").value == "blinatumomab"
    assert headers(at)["OHSU Health Services"] == "NO POLICY"


def test_an_invalid_typed_value_names_the_field(at):
    at.text_input(key="fact:icd10_codes").set_value("not-a-code").run()
    assert any("facts.icd10_codes" in e.value for e in at.error)


# ------------------------------------------------------------------ hostile uploads

EXAMPLE = (ROOT / "examples/masshealth_blinatumomab.json").read_bytes()
HOSTILE = {
    "not-utf8.json": (b'{"facts": {"age_years": 5\xff}}', "not UTF-8"),
    "nested.json": (b"[" * 10_000 + b"]" * 10_000, "nested more than"),
    "long-int.json": (b'{"facts": {"prior_systemic_therapies": ' + b"9" * 5000 + b"}}", "too many digits"),
    "duplicate.json": (b'{"facts": {"age_years": 5, "age_years": 70}}', "'age_years' appears twice"),
    "list.json": (b"[1, 2]", "expected a JSON object"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_upload_is_refused_with_the_reason_and_the_case_kept(at, name):
    data, why = HOSTILE[name]
    at.file_uploader[0].set_value((name, data, "application/json")).run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert errors and name in errors[0] and why in errors[0], errors
    assert at.number_input(key="fact:age_years").value == 52           # the example is still there
    assert headers(at)["OHSU Health Services"] == "APPROVED"
    assert any("Loaded: the bundled example" in c.value for c in at.caption)


def test_a_byte_order_marked_upload_is_accepted(at):
    at.file_uploader[0].set_value(("bom.json", b"\xef\xbb\xbf" + EXAMPLE, "application/json")).run()
    assert not at.exception and not at.error
    assert at.selectbox(key="case:drug").value == "blinatumomab"
    assert headers(at)["OHSU Health Services"] == "NO POLICY"


# ------------------------------------------------------------------ what the page says

def test_the_example_box_says_what_is_loaded(at):
    at.button(key="btn:blank").click().run()
    assert at.selectbox(key="src:example").value is None               # no example named any more
    assert any("Loaded: a blank case" in c.value for c in at.caption)
    at.file_uploader[0].set_value(("mh.json", EXAMPLE, "application/json")).run()
    assert any("Loaded: the upload `mh.json`" in c.value for c in at.caption)
    assert at.selectbox(key="src:example").value is None
    at.selectbox(key="src:example").set_value("continuation.json")
    at.button(key="btn:load").click().run()
    assert any("Loaded: the bundled example `continuation.json`" in c.value for c in at.caption)


def test_an_invalid_case_says_what_is_wrong_and_keeps_the_last_decisions_marked_stale(at):
    at.radio(key="fact:cd22_positive").set_value("no").run()
    at.text_input(key="fact:icd10_codes").set_value("not-a-code").run()
    assert not at.exception
    assert any("facts.icd10_codes" in e.value and "'not-a-code'" in e.value for e in at.error)
    assert not any("Decided in" in c.value for c in at.caption)
    assert any("Not decided: the case is invalid" in c.value for c in at.caption)
    assert "**Stale**" in texts(at)
    assert headers(at)["OHSU Health Services"] == "DENIED"             # the last valid case's, marked stale
    assert "(stale)" in texts(at)
    at.text_input(key="fact:icd10_codes").set_value("C91.02").run()
    assert not at.error and "**Stale**" not in texts(at)


def test_masshealth_leads_with_a_set_that_approves_and_fill_approves(at):
    at.button(key="btn:blank").click().run()
    row = rows(at)["MassHealth"]
    assert "for approved" in row and "new_to_plan_on_treatment" not in row
    open_card(at, "masshealth")
    at.button(key="fill:masshealth:0").click().run()
    assert headers(at)["MassHealth"] == "APPROVED"


def test_a_card_shows_each_reading_once(at):
    open_card(at, "ohsu")
    body = texts(at)
    reading = "Every initial pathway needs prior_inotuzumab false"
    assert body.count(reading) == 1
    assert body.count("*(reading 1)*") > 10                            # every criterion points to it


def test_fep_denial_reason_is_never_cut_mid_sentence(at):
    at.radio(key="fact:cd22_positive").set_value("no").run()
    fep = rows(at)["BCBS Federal Employee Program"]
    assert "relapsed or refractory CD22-positive B-cell precursor acute lymphoblastic leukemia" in fep
    assert "approved if **cd22_positive** = yes" in fep


def test_labels_name_the_fact_as_the_reasons_do(at):
    assert at.radio(key="fact:cd22_positive").label == "CD22-positive (cd22_positive)"
    assert at.radio(key="fact:b_cell_precursor").label == "B-cell precursor (b_cell_precursor)"


def test_no_deprecated_use_container_width():
    for path in [ROOT / "ui" / name for name in ("app.py", "whatif.py", "caseform.py", "present.py")]:
        assert "use_container_width" not in path.read_text(), path


def marked(app: AppTest) -> list[str]:
    """The facts the legend over the facts names as marked (the bar beside each is CSS, checked in
    tests/ui/test_browser.py), in name order; [] when nothing is marked."""
    for c in app.caption:
        if "marked fact" in c.value:
            return re.findall(r"`(\w+)`", c.value.split("(", 1)[1].split(")", 1)[0])
    return []


def test_the_facts_a_decision_rests_on_are_marked_and_the_others_cannot_change_it(at):
    at.segmented_control(key="mark").set_value("ohsu").run()
    at.number_input(key="fact:planned_cycles").set_value(8).run()
    assert headers(at)["OHSU Health Services"] == "DENIED"
    assert marked(at) == ["planned_cycles"]
    legend = [c.value for c in at.caption if "marked fact" in c.value]
    assert legend and f"**OHSU: denied** rests on the 1 marked fact of {N_FACTS}" in legend[0]
    assert f"Rests on 1 of {N_FACTS} facts: **planned_cycles** = 8" in "\n".join(c.value for c in at.caption)
    assert "planned_cycles is 8; the policy allows at most 6 — I. Length of Authorization" in rows(at)["OHSU Health Services"]
    # every muted fact, set to another value or left unknown: OHSU still denies
    tried = 0
    for spec in [s for n, s in FACTS.items() if n != "planned_cycles"]:
        if spec.kind == "bool":
            widget, values = at.radio(key=spec.key), ["no" if widget_value(at, spec) == "yes" else "yes", "unknown"]
        elif spec.kind == "enum":
            widget, values = at.selectbox(key=spec.key), list(spec.choices)[:2] + ["unknown"]
        elif spec.kind == "list":
            widget, values = at.text_input(key=spec.key), ["C83.50", ""]
        else:
            widget, values = at.number_input(key=spec.key), [1, None]
        before = widget.value
        for value in values:
            widget.set_value(value).run()
            assert not at.exception, at.exception
            assert headers(at)["OHSU Health Services"] == "DENIED", (spec.name, value)
            tried += 1
        (at.radio if spec.kind == "bool" else at.selectbox if spec.kind == "enum" else
         at.text_input if spec.kind == "list" else at.number_input)(key=spec.key).set_value(before).run()
    assert tried > 40
    at.number_input(key="fact:planned_cycles").set_value(4).run()            # the marked fact does change it
    assert headers(at)["OHSU Health Services"] == "APPROVED"


def widget_value(at: AppTest, spec):
    return at.radio(key=spec.key).value


def test_marking_follows_the_chosen_plan_and_can_be_cleared(at):
    first = marked(at)
    assert first and st_value(at) == "bcbs_fep"
    at.segmented_control(key="mark").set_value("masshealth").run()
    assert marked(at) != first
    at.segmented_control(key="mark").set_value(None).run()
    assert marked(at) == []


def st_value(at: AppTest):
    return at.segmented_control(key="mark").value


def test_the_marked_facts_legend_counts_what_it_lists(at):
    """Issue 26: "rests on the 5 marked facts" listed 6 names: the ICD-10 codes a derived diagnosis
    came from were listed (and marked) besides the facts counted.  The count is of the names in the
    parentheses; the codes' widget is named after them, as marked too."""
    assert any("derived from the ICD-10 codes" in c.value for c in at.caption)   # the example derives it
    for plan in ("bcbs_fep", "bcbsnc", "ohsu"):
        at.segmented_control(key="mark").set_value(plan).run()
        (legend,) = [c.value for c in at.caption if "marked fact" in c.value]
        count = int(re.search(r"rests on the (\d+) marked fact", legend).group(1))
        assert len(marked(at)) == count, legend
        assert "diagnosis" in marked(at) and "icd10_codes" not in marked(at), legend
        assert "`icd10_codes` is marked too: the diagnosis was derived from it." in legend, legend
