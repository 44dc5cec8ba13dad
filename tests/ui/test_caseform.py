"""ui/caseform.py on its own: widget state <-> case, filling, comparing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

ROOT = Path(__file__).resolve().parents[2]

import caseform as cf  # noqa: E402
from solver import Solver  # noqa: E402
from solver.case.models import CaseError, Facts, parse_case  # noqa: E402
from strategies import cases  # noqa: E402

SOLVER = Solver()


def test_every_fact_has_exactly_one_widget_in_one_group():
    grouped = [n for names in cf.GROUPS.values() for n in names]
    assert sorted(grouped) == sorted(Facts.model_fields)
    assert len(grouped) == len(set(grouped))
    assert len({s.key for s in cf.FACTS.values()}) == len(cf.FACTS)


def test_kinds_and_bounds_come_from_the_model():
    assert cf.FACTS["age_years"].kind == "number" and (cf.FACTS["age_years"].low, cf.FACTS["age_years"].high) == (0, 130)
    assert cf.FACTS["planned_cycles"].kind == "integer" and cf.FACTS["planned_cycles"].high == 20
    assert cf.FACTS["ph_status"].choices == ("positive", "negative")
    assert cf.FACTS["cd22_positive"].kind == "bool"
    assert cf.FACTS["icd10_codes"].kind == "list"


def test_an_untouched_form_is_an_all_unknown_case():
    state = cf.state_from_case({})
    assert all(state[s.key] in (None, cf.UNKNOWN, "") for s in cf.FACTS.values())
    assert cf.case_from_state(state) == {"drug": "inotuzumab_ozogamicin", "request": "initial", "facts": {}}


def test_false_and_unknown_stay_apart():
    state = cf.state_from_case({"facts": {"cd22_positive": False, "prior_systemic_therapies": 0}})
    assert state["fact:cd22_positive"] == cf.NO
    assert state["fact:b_cell_precursor"] == cf.UNKNOWN
    assert state["fact:prior_systemic_therapies"] == 0
    assert cf.case_from_state(state)["facts"] == {"cd22_positive": False, "prior_systemic_therapies": 0}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_state_round_trip_keeps_the_case(case):
    try:
        parsed = parse_case(case)
    except CaseError:
        return
    again = parse_case(cf.case_from_state(cf.state_from_case(cf.canonical(parsed))))
    assert again.facts == parsed.facts
    assert (again.drug, again.request) == (parsed.drug, parsed.request)
    assert again.case_id == (parsed.case_id or None)          # an empty id box is no id
    assert set(again.plans or cf.PLANS) == set(parsed.plans or cf.PLANS)


def test_load_case_json_names_the_bad_field():
    with pytest.raises(CaseError, match=r"facts\.age_years"):
        cf.load_case_json(b'{"facts": {"age_years": 200}}')
    with pytest.raises(CaseError, match=r"facts\.colour: unknown field"):
        cf.load_case_json('{"facts": {"colour": "red"}}')
    with pytest.raises(CaseError, match="not valid JSON"):
        cf.load_case_json(b"{not json")


BLANKS = [{}, {"drug": "blinatumomab"}, {"request": "continuation"}]


@pytest.mark.parametrize("case", [json.loads(p.read_text()) for p in sorted((ROOT / "examples").glob("*.json"))]
                         + BLANKS, ids=lambda c: c.get("case_id") or json.dumps(c))
def test_filling_a_missing_set_meets_its_pathway(case):
    result = SOLVER.solve(parse_case(case))
    for r in result["results"]:
        for m in r["missing"]:
            filled = cf.apply_values(cf.state_from_case(case), cf.fill_values(m["facts"]))
            after = SOLVER.solve(parse_case(cf.case_from_state(filled)))
            (r2,) = [x for x in after["results"] if x["plan"] == r["plan"]]
            status = {p["id"]: p["status"] for p in r2["pathways"]}
            assert status[m["pathway"]] == "met", (r["plan"], m)


def test_values_in_ranges_are_valid_and_inside():
    age = cf.FACTS["age_years"]
    assert cf.value_in_range(age, None, 1) == 0.9                      # just below the threshold
    assert cf.value_in_range(age, 18, 65) == 18
    assert cf.value_in_range(age, 65, None) == 65
    assert cf.value_in_range(cf.FACTS["planned_cycles"], None, 7) == 6
    assert cf.value_in_range(cf.FACTS["units_per_21_days"], None, 64) == 63
    assert cf.value_in_range(cf.FACTS["prior_systemic_therapies"], None, None) == 0
    assert cf.value_in_range(cf.FACTS["cycles_received"], 6, None) == 6
    assert cf.value_in_range(cf.FACTS["weight_kg"], None, None) == 70.0
    assert cf.FACTS["weight_kg"].low > 0


def test_diff_lists_what_changed_in_chart_order():
    a = {"drug": "inotuzumab_ozogamicin", "facts": {"age_years": 52, "cd22_positive": True}}
    b = {"drug": "inotuzumab_ozogamicin", "facts": {"age_years": 70, "ph_status": "positive", "cd22_positive": True}}
    assert cf.diff_facts(a, b) == [("age_years", 52, 70), ("ph_status", None, "positive")]
    assert cf.diff_facts(a, a) == []


@pytest.mark.parametrize("name", ["masshealth_blinatumomab.json", "ohsu_adult_rr.json"])
def test_result_download_is_what_explain_prints(name):
    # The page shows the changes of at most 2 facts: the download carries them.
    case = cf.canonical(parse_case(json.loads((ROOT / "examples" / name).read_text())))
    page = cf.result_json(SOLVER.solve(parse_case(case), 2))
    cli = subprocess.run([sys.executable, "-m", "solver.cli", "explain", "-", "--json", "--max-changes", "2"],
                         input=cf.case_json(case), capture_output=True, text=True, check=True).stdout
    assert page == cli
    assert '"changes":' in page


def test_without_changes_the_download_is_what_decide_prints():
    case = cf.canonical(parse_case(json.loads((ROOT / "examples/masshealth_blinatumomab.json").read_text())))
    cli = subprocess.run([sys.executable, "-m", "solver.cli", "decide", "-", "--json"], input=cf.case_json(case),
                         capture_output=True, text=True, check=True).stdout
    assert cf.result_json(SOLVER.solve(parse_case(case))) == cli


HOSTILE = {
    b'{"facts": {"age_years": 5\xff}}': "not UTF-8",
    b"[" * 10_000 + b"]" * 10_000: "nested more than 64",
    b'{"facts": {"prior_systemic_therapies": ' + b"9" * 5000 + b"}}": "too many digits",
    b'{"facts": {"age_years": 5, "age_years": 70}}': "'age_years' appears twice",
}


@pytest.mark.parametrize("data", list(HOSTILE), ids=["not-utf8", "nested", "long-int", "duplicate"])
def test_hostile_uploads_are_case_errors_saying_why(data):
    with pytest.raises(CaseError, match=HOSTILE[data]):
        cf.load_case_json(data)


def test_a_byte_order_mark_is_accepted():
    data = (ROOT / "examples/ohsu_adult_rr.json").read_bytes()
    assert cf.load_case_json(b"\xef\xbb\xbf" + data) == cf.load_case_json(data)


def test_whole_numbers_read_as_whole():
    age = cf.FACTS["age_years"]
    assert cf.case_value(age, 52.0) == 52 and isinstance(cf.case_value(age, 52.0), int)
    assert cf.case_value(age, 17.99) == 17.99
    case = cf.case_from_state(cf.state_from_case(cf.load_case_json(b'{"facts": {"age_years": 52}}')))
    assert '"age_years": 52\n' in cf.case_json(case)
    assert cf.show(52.0) == "52"


def test_every_label_names_its_fact():
    for name, spec in cf.FACTS.items():
        assert spec.label.endswith(f"({name})"), spec.label
    assert cf.FACTS["b_cell_precursor"].label == "B-cell precursor (b_cell_precursor)"


def test_number_widget_bounds_are_never_tighter_than_the_model():
    # Streamlit resets a value outside a number widget's bounds to its default
    # (here: unknown), so a widget bound must admit every valid value.
    weight = cf.FACTS["weight_kg"]
    assert (weight.min_value, weight.max_value) == (0, 500) and weight.low > 0
    for spec in cf.FACTS.values():
        if spec.kind in ("integer", "number"):
            field = Facts.model_fields[spec.name]
            for value in (spec.low, spec.high):
                if value is not None:
                    Facts(**{spec.name: field.annotation.__args__[0](value)})     # fill values are valid
                    assert spec.min_value is None or value >= spec.min_value
                    assert spec.max_value is None or value <= spec.max_value
