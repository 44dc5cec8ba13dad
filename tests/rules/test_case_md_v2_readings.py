"""CASE.md version 2: the three readings that gave wrong decisions, shown with the project's own tools.

- OHSU, B-lymphoblastic lymphoma: case review (was denied).
- OHSU, the rituximab note: a note on the add-on, never a denial (was a criterion).
- CVS Caremark continuation: CD22 and the indication of one initial pathway (was diagnosis only).

Version 1 of the two plan files stays in tests/rules_v1.  `diff PLAN --against tests/rules_v1`
must list only profiles that these readings move, `report --compare` over the examples must count
the moves, and every reading is checked at its boundaries against an independent reading of
CASE.md written here in Python (never the rule base's own words).
"""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import pytest

from solver.analysis.diff import Against
from solver.engine.solver import Solver
from solver.fhir.inputs import case_from
from conftest import run_cli as run

ROOT = Path(__file__).resolve().parents[2]
V1 = ROOT / "tests" / "rules_v1"
EXAMPLES = [ROOT / "examples" / "v2_readings.jsonl", ROOT / "examples" / "batch.jsonl"]
TODAY = Solver()

OHSU_OK = {"prior_inotuzumab": False, "cd22_positive": True, "baseline_ecg_normal": True,
           "ecg_monitoring_planned": True, "b_cell_precursor": True, "planned_cycles": 4, "units_per_21_days": 50}


@pytest.fixture(scope="module")
def v1_folder(tmp_path_factory) -> Path:
    """A whole rule base as version 1 had it: today's shared files, version 1's two plan files."""
    folder = tmp_path_factory.mktemp("v1") / "rules_v1"
    shutil.copytree(ROOT / "logic", folder)
    for f in V1.glob("*.lp"):
        shutil.copy(f, folder / f.name)
    return folder


@pytest.fixture(scope="module")
def v1_solver(v1_folder) -> Solver:
    return Solver(v1_folder)


def decide(solver: Solver, plan: str, facts: dict, request: str = "initial") -> dict:
    case, _ = case_from({"plans": [plan], "request": request, "facts": facts})
    (r,) = solver.solve(case)["results"]
    return r


# ------------------------------------------------------------------ diff --against version 1

def _values(d: dict, fact: str):
    f = next((f for f in d["facts"] if f["fact"] == fact), None)
    return None if f is None else f.get("values", f.get("range"))


def _representative(d: dict, fds: dict) -> dict:
    """One case inside a difference: each fact's first listed value, or a number inside its range."""
    out = {}
    for f in d["facts"]:
        fd = fds[f["fact"]]
        if "values" in f:
            out[f["fact"]] = f["values"][0]
        else:
            lo, hi = f["range"]
            v = lo if lo is not None else (hi - 1 if hi is not None else 1)
            out[f["fact"]] = int(v) if fd.kind == "integer" else float(v)
    return out


def test_ohsu_against_version_1_parts_only_where_the_two_readings_move(v1_solver):
    got = Against(TODAY, "ohsu", V1).diff(TODAY)
    diffs = got["differences"]
    assert got["plans"] == ["ohsu", "ohsu@rules_v1"] and diffs
    kinds = set()
    for d in diffs:
        today, v1 = d["decisions"]["ohsu"], d["decisions"]["ohsu@rules_v1"]
        if _values(d, "diagnosis") == ["lymphoblastic_lymphoma"]:
            kinds.add("lymphoma")
            assert v1 == "denied" and today in ("case_review", "needs_info"), d
        else:
            # the rituximab note, which version 1 judged on the frontline consolidation pathway
            kinds.add("rituximab")
            assert _values(d, "disease_setting") == ["frontline_consolidation"], d
            rtx = _values(d, "with_rituximab")
            if rtx is None:         # version 1 asked whether rituximab is added; version 2 need not know
                assert (today, v1) == ("approved", "needs_info"), d
            else:                   # with rituximab at 65 or older, or with substantial comorbidities
                assert rtx == [True], d
                assert _values(d, "substantial_comorbidities") == [True] or _values(d, "age_years")[0] >= 65, d
                assert v1 == "denied" and today in ("approved", "needs_info"), d
        # the pair is real: one case inside the profile, decided by each rule base
        facts = _representative(d, TODAY.rules.facts)
        assert (decide(TODAY, "ohsu", facts)["decision"], decide(v1_solver, "ohsu", facts)["decision"]) \
            == (today, v1), (d, facts)
    assert kinds == {"lymphoma", "rituximab"}
    # the request the readings do not touch: nothing parts
    assert Against(TODAY, "ohsu", V1).diff(TODAY, request="continuation")["differences"] == []


def test_cvs_against_version_1_parts_only_on_continuation_and_only_for_an_unlisted_indication(v1_solver):
    assert Against(TODAY, "cvs_caremark", V1).diff(TODAY)["differences"] == []       # initial: unchanged
    diffs = Against(TODAY, "cvs_caremark", V1).diff(TODAY, request="continuation")["differences"]
    assert diffs
    for d in diffs:
        today, v1 = d["decisions"]["cvs_caremark"], d["decisions"]["cvs_caremark@rules_v1"]
        # version 2 is stricter: it never approves where version 1 did not
        assert (v1, today) in {("approved", "denied"), ("approved", "needs_info"), ("needs_info", "denied")}, d
        named = {f["fact"] for f in d["facts"]}
        if today == "denied":    # denied by the new criteria: CD22-negative, or an indication not listed
            assert _values(d, "cd22_positive") == [False] or named & {"disease_setting", "ph_status", "regimen"}, d
        facts = _representative(d, TODAY.rules.facts)
        assert (decide(TODAY, "cvs_caremark", facts, "continuation")["decision"],
                decide(v1_solver, "cvs_caremark", facts, "continuation")["decision"]) == (today, v1), (d, facts)
    assert any(_values(d, "cd22_positive") == [False] for d in diffs)
    assert any(_values(d, "disease_setting") == ["frontline_induction", "frontline_consolidation"]
               and _values(d, "ph_status") == ["positive"] for d in diffs)


def test_diff_against_version_1_on_the_command_line():
    out = run("diff", "ohsu", "--against", str(V1))
    assert out.returncode == 0, out.stderr
    assert "ohsu CASE REVIEW, ohsu@rules_v1 DENIED" in out.stdout
    assert 'with_rituximab = true' in out.stdout
    js = run("diff", "cvs_caremark", "--against", str(V1), "--request", "continuation", "--json")
    assert js.returncode == 0 and json.loads(js.stdout)["against"]["folder"].endswith("rules_v1")


# ------------------------------------------------------------------ report --compare over the examples

def test_report_compare_over_the_examples_counts_what_the_readings_move(v1_folder, v1_solver, tmp_path):
    for example in EXAMPLES:
        old, new = tmp_path / f"{example.stem}.old.jsonl", tmp_path / f"{example.stem}.new.jsonl"
        for path, extra in ((old, ["--rules", str(v1_folder)]), (new, [])):
            got = run("batch", str(example), "--workers", "1", *extra)
            assert got.returncode == 0, got.stderr
            path.write_text(got.stdout)
        cmp = run("report", "--compare", str(old), str(new), "--format", "json")
        assert cmp.returncode == 0, cmp.stderr
        report = json.loads(cmp.stdout)
        # the same moves, counted case by case with two solvers in this process
        expect: dict = {}
        for line in example.read_text().splitlines():
            case, _ = case_from(json.loads(line))
            a, b = v1_solver.solve(case), TODAY.solve(case)
            for ra, rb in zip(a["results"], b["results"]):
                if ra["decision"] != rb["decision"]:
                    key = f"{ra['decision']} -> {rb['decision']}"
                    expect.setdefault(ra["plan"], {}).setdefault(key, 0)
                    expect[ra["plan"]][key] += 1
                    # every move is one of the three readings'
                    f = case.facts
                    if ra["plan"] == "ohsu":
                        assert f.with_rituximab or "lymphoblastic_lymphoma" in (f.diagnosis, *b["derived_facts"].values()), case
                    else:
                        assert (ra["plan"], case.request) == ("cvs_caremark", "continuation"), case
        moved = {plan: p["moved"] for plan, p in report["plans"].items() if p["moved"]}
        assert moved == expect, example.name
        assert report["compared"] == len(example.read_text().splitlines())
    # the bundled examples of the three readings, one by one
    assert moved_of(tmp_path, "v2_readings") == {
        "ohsu": {"denied -> approved": 2, "denied -> case_review": 1, "denied -> needs_info": 1},
        "cvs_caremark": {"approved -> denied": 2, "approved -> needs_info": 1}}


def moved_of(folder: Path, stem: str) -> dict:
    got = run("report", "--compare", str(folder / f"{stem}.old.jsonl"), str(folder / f"{stem}.new.jsonl"),
              "--format", "json")
    return {plan: p["moved"] for plan, p in json.loads(got.stdout)["plans"].items() if p["moved"]}


# ------------------------------------------------------------------ the readings at their boundaries

def listed_cvs_indication(setting, ph, regimen) -> bool:
    """CASE.md version 2, read here by hand: frontline (induction or consolidation), Ph-negative,
    mini-hyper-CVD with or without blinatumomab; or relapsed/refractory, Ph known, single agent or
    mini-hyper-CVD(+blinatumomab), or a TKI with Ph-positive."""
    if setting in ("frontline_induction", "frontline_consolidation"):
        return ph == "negative" and regimen in ("mini_hyper_cvd", "mini_hyper_cvd_blinatumomab")
    if setting == "relapsed_refractory":
        return ph is not None and (regimen in ("single_agent", "mini_hyper_cvd", "mini_hyper_cvd_blinatumomab")
                                   or (regimen == "tki_combination" and ph == "positive"))
    return False


SETTINGS = ["frontline_induction", "frontline_consolidation", "relapsed_refractory"]
REGIMENS = ["single_agent", "mini_hyper_cvd", "mini_hyper_cvd_blinatumomab", "tki_combination", "other_combination"]


@pytest.mark.parametrize("cd22", [True, False, None])
def test_cvs_continuation_with_each_indication(cd22):
    base = {"diagnosis": "all", "b_cell_precursor": True, "unacceptable_toxicity": False,
            "disease_progression": False, "cycles_received": 2}
    for setting, ph, regimen in itertools.product(SETTINGS, ["positive", "negative"], REGIMENS):
        facts = {**base, "cd22_positive": cd22, "disease_setting": setting, "ph_status": ph, "regimen": regimen}
        r = decide(TODAY, "cvs_caremark", facts, "continuation")
        listed = listed_cvs_indication(setting, ph, regimen)
        want = ("denied" if not listed or cd22 is False else "approved" if cd22 else "needs_info")
        assert r["decision"] == want, facts
        if want == "needs_info":          # CD22 unknown is asked for, and only CD22
            assert [[f["fact"] for f in m["facts"]] for m in r["missing"]] == [["cd22_positive"]]
        if want == "approved":
            assert r["authorization"] == {"months": 12, "max_cycles": 4, "max_units_per_21_days": None}


@pytest.mark.parametrize("age", [17.9, 18, 64, 64.9, 65, 70, 90])
def test_ohsu_rituximab_never_denies_and_notes_from_65_or_with_comorbidities(age):
    for rtx, comorbid in itertools.product([True, False, None], [True, False, None]):
        facts = {**OHSU_OK, "diagnosis": "all", "age_years": age, "disease_setting": "frontline_consolidation",
                 "regimen": "mini_hyper_cvd", "ph_status": "negative",
                 "with_rituximab": rtx, "substantial_comorbidities": comorbid}
        r = decide(TODAY, "ohsu", facts)
        plain = decide(TODAY, "ohsu", {**facts, "with_rituximab": None, "substantial_comorbidities": None})
        assert r["decision"] == plain["decision"] == ("approved" if age >= 18 else "denied"), facts
        noted = rtx is True and (age >= 65 or comorbid is True)
        assert (r["note"] is not None) == noted, facts
        if noted:
            assert r["note"].startswith("The rituximab add-on is not supported by the policy")


@pytest.mark.parametrize("code", ["C83.50", "C83.59"])
@pytest.mark.parametrize("lineage", [True, False, None])
def test_ohsu_lymphoblastic_lymphoma_code_with_and_without_b_cell_lineage(code, lineage):
    for age, setting, regimen, ph in [(40, "relapsed_refractory", "single_agent", None),
                                      (40, "relapsed_refractory", "tki_combination", "positive"),
                                      (70, "frontline_consolidation", "mini_hyper_cvd", "negative"),
                                      (6, "relapsed_refractory", "single_agent", None)]:
        facts = {**OHSU_OK, "b_cell_precursor": lineage, "icd10_codes": [code], "age_years": age,
                 "disease_setting": setting, "regimen": regimen, "ph_status": ph}
        r = decide(TODAY, "ohsu", facts)
        want = {True: "case_review", False: "denied", None: "needs_info"}[lineage]
        assert r["decision"] == want, facts
        if want == "case_review":
            pw = next(p for p in r["pathways"] if p["id"] == r["pathway"])
            assert r["pathway"].startswith("ohsu_lbl_") and pw["outcome"] == "case_review"
            # the reason names both passages: the criteria's ALL headings and Appendix 1's codes
            lbl = next(c for c in pw["criteria"] if c["id"] == "ohsu_app1_lbl")
            assert "Appendix 1" in lbl["source"] and "headings name B-Cell Precursor ALL only" in lbl["source"]
            assert "C83.50" in lbl["text"] and "the criteria name ALL only" in pw["title"]
            assert r["authorization"] is None
        if want == "needs_info":
            assert {tuple(f["fact"] for f in m["facts"]) for m in r["missing"]} == {("b_cell_precursor",)}
            assert {m["outcome"] for m in r["missing"]} == {"case_review"}
        # the same case with ALL is approved: lymphoma is judged by every other criterion alike
        if lineage:
            assert decide(TODAY, "ohsu", {**facts, "icd10_codes": None, "diagnosis": "all"})["decision"] == "approved"
    # a lymphoma that breaks another criterion stays denied
    broken = {**OHSU_OK, "b_cell_precursor": lineage, "icd10_codes": [code], "age_years": 40, "planned_cycles": 8,
              "disease_setting": "relapsed_refractory", "regimen": "single_agent"}
    assert decide(TODAY, "ohsu", broken)["decision"] == "denied"


# ------------------------------------------------------------------ coverage and the page show them

def test_coverage_shows_the_new_readings_and_the_note():
    js = json.loads(run("coverage", "ohsu", "--json").stdout)
    (p,) = js["plans"]
    by_text = {s["text"]: s for s in p["sentences"]}
    note = by_text["Note: May be used with rituximab for adults <65 years of age without substantial comorbidities."]
    assert note["criteria"] == ["ohsu_iii_a3_note"] and note["set_aside"] is None
    assert by_text["C83.50 Lymphoblastic (diffuse) lymphoma, unspecified site"]["criteria"] == ["ohsu_app1_lbl"]
    assert [n["id"] for n in p["notes"]] == ["ohsu_iii_a3_note"]
    readings = {r["reading"]: r["by"] for r in p["readings"]}
    assert any(t.startswith("B-lymphoblastic lymphoma") and by == ["ohsu_app1_lbl"] for t, by in readings.items())
    assert any(t.startswith("The rituximab note") and by == ["ohsu_iii_a3_note"] for t, by in readings.items())
    table = run("coverage", "ohsu").stdout
    assert "ohsu_iii_a3_note (note)" in table and "readings of CASE.md these rules encode:" in table
    cvs = json.loads(run("coverage", "cvs_caremark", "--json").stdout)["plans"][0]
    assert any("cvs_ct_1b" in r["by"] and "cd22_positive true" in r["reading"] for r in cvs["readings"])


def test_the_what_if_page_shows_the_note_and_the_case_review_reason():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=60)
    at.run()
    cases = {json.loads(line)["case_id"]: line.encode() for line in EXAMPLES[0].read_text().splitlines()}
    at.file_uploader[0].set_value(("rtx.json", cases["v2-ohsu-rituximab-70"], "application/json")).run()
    assert not at.exception, at.exception
    shown = "\n".join(m.value for m in at.markdown)
    assert "APPROVED" in shown and "**Note:** The rituximab add-on is not supported by the policy" in shown
    at.file_uploader[0].set_value(("lbl.json", cases["v2-ohsu-lbl-c83.50"], "application/json")).run()
    shown = "\n".join(m.value for m in at.markdown)
    assert "CASE REVIEW" in shown and "`ohsu_lbl_adult_rr_single` — B-lymphoblastic lymphoma (Appendix 1" in shown
    assert "**Note:**" not in shown
    at.session_state["card:ohsu"] = True
    at.run()
    shown = "\n".join(m.value for m in at.markdown)
    assert "`ohsu_app1_lbl`" in shown and "Appendix 1 lists C83.50-C83.59" in shown      # its reading, on the card
