"""The Compare plans page under Streamlit's AppTest: the groups and counts are
`solver.diff.diff`'s, each profile reads in the what-if page's labels, its
case gives the pair, "Open in What-if" loads it there; the same plan twice,
two plans that never part ways and bad rule-base folders are answered in
words, never a traceback."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from solver.analysis import diff as sd
from solver.engine.solver import Solver
from solver.case.models import parse_case

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "ui" / "app.py")
import caseform as cf  # noqa: E402

SOLVER = Solver()
NAMES = SOLVER.rules.plans
VERB = {"approved": "approves", "case_review": "sends it to case review", "needs_info": "needs information",
        "denied": "denies", "no_policy": "has no policy"}
ORDER = sd.DECISION_ORDER
ROW = re.compile(r"^\*\*([^*]+)\*\* &nbsp; :\w+-badge\[:material/\w+: ([A-Z ]+)\]")


def compare_page(a: str | None = None, b: str | None = None, drug: str | None = None,
                 request: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("compare.py").run()
    assert not at.exception, at.exception
    for key, value in (("cmp:a", a), ("cmp:b", b), ("cmp:drug", drug), ("cmp:request", request)):
        if value is not None:
            at.selectbox(key=key).set_value(value)
    at.run()
    assert not at.exception, at.exception
    return at


def name(plan: str) -> str:
    base, _, label = plan.partition("@")
    return f"{NAMES[base]} ({label})" if label else NAMES[base]


def expected_groups(got: dict) -> list[tuple[str, int]]:
    """(expander label, count) per pair of decisions, the pair with the
    smallest profile first, as diff() lists them."""
    a, b = got["plans"]
    groups: dict = {}
    for d in got["differences"]:
        groups.setdefault((d["decisions"][a], d["decisions"][b]), []).append(d)
    order = sorted(groups.items(), key=lambda kv: (len(kv[1][0]["facts"]), ORDER.index(kv[0][0]),
                                                   ORDER.index(kv[0][1])))
    return [(f"{name(a)} {VERB[da]}, {name(b)} {VERB[db]} — {len(ds)} profile{'s' * (len(ds) != 1)}", len(ds))
            for (da, db), ds in order]


def fact_line(f: dict) -> str:
    label = f"**{cf.FACTS[f['fact']].label}**"
    if "values" in f:
        return f"- {label} = " + " or ".join(cf.show(v) for v in f["values"])
    lo, hi = f["range"]
    num = lambda x: str(int(x)) if float(x).is_integer() else str(x)  # noqa: E731
    if lo is None and hi is None:
        return f"- {label} documented (any value)"
    if hi is None:
        return f"- {label} ≥ {num(lo)}"
    if lo is None:
        return f"- {label} < {num(hi)}"
    return f"- {num(lo)} ≤ {label} < {num(hi)}"


def inside(f: dict, value) -> bool:
    if "values" in f:
        return value in f["values"]
    lo, hi = f["range"]
    return value is not None and (lo is None or value >= lo) and (hi is None or value < hi)


def decisions_of(case: dict, plans: list[str]) -> dict:
    res = SOLVER.solve(parse_case({**case, "plans": plans}))
    return {r["plan"]: r["decision"] for r in res["results"]}


def whatif_rows(at: AppTest) -> dict[str, str]:
    """Plan name -> the decision badge on its line, on the what-if page
    ("**CVS Caremark** &nbsp; :orange-badge[:material/help: NEEDS INFO]  ...")."""
    out = {}
    for m in at.markdown:
        hit = ROW.match(m.value)
        if hit:
            out[hit.group(1)] = hit.group(2)
    return out


def test_the_page_shows_diffs_groups_and_counts():
    at = compare_page("cvs_caremark", "ohsu")
    got = sd.diff(SOLVER, "cvs_caremark", "ohsu")
    assert got["differences"]
    assert [(e.label, len([b for b in e.button])) for e in at.expander] == expected_groups(got)
    n = len(got["differences"])
    assert any(m.value.startswith(f"**{n} profiles** in **{len(at.expander)} pairs of decisions**")
               for m in at.markdown)
    assert {b.key for b in at.button} == {f"open:{i}" for i in range(n)}
    # every profile's facts, in the what-if page's labels, ranges as "lo ≤ fact < hi"
    shown = {m.value for m in at.markdown}
    for d in got["differences"]:
        assert "\n".join(fact_line(f) for f in d["facts"]) in shown, d
    assert any("dropping any one of its facts loses the pair" in c.value for c in at.caption)
    # no profile's case fails to give its pair
    assert not at.warning


@pytest.mark.parametrize("a, b, drug, req", [
    ("masshealth", "ohsu", "inotuzumab_ozogamicin", "initial"),
    ("bcbs_fep", "masshealth", "blinatumomab", "initial"),
    ("bcbsnc", "cvs_caremark", "inotuzumab_ozogamicin", "continuation"),
])
def test_other_pairs_match_diff_and_every_case_gives_its_pair(a, b, drug, req):
    at = compare_page(a, b, drug, req)
    got = sd.diff(SOLVER, a, b, drug=drug, request=req)
    assert [(e.label, len(e.button)) for e in at.expander] == expected_groups(got)
    assert not at.warning                  # the page says so when a profile's case misses its pair


def test_criteria_that_hold_a_plan_back_are_listed():
    at = compare_page("cvs_caremark", "ohsu")
    body = "\n".join(m.value for m in at.markdown)
    # OHSU denies under 18 (its adult criterion), CVS's closest pathway lacks facts
    assert "**OHSU Health Services** :red-badge[" in body and "not met: `ohsu_" in body
    assert "**CVS Caremark** :orange-badge[" in body and "unknown: `cvs_" in body
    assert "**CVS Caremark** :green-badge[" in body and " via `cvs_" in body


def test_open_in_whatif_loads_the_profile_and_gives_the_pair():
    at = compare_page("cvs_caremark", "ohsu")
    got = sd.diff(SOLVER, "cvs_caremark", "ohsu")
    # a profile with a range and with values, to check both kinds of fact
    i, d = next((i, d) for i, d in enumerate(got["differences"])
                if any("range" in f for f in d["facts"]) and any("values" in f for f in d["facts"]))
    at.button(key=f"open:{i}").click().run()
    assert not at.exception, at.exception
    # now the what-if page: its widgets hold the profile, every other fact unknown
    assert at.number_input(key="fact:age_years") is not None
    state = {spec.key: at.session_state[spec.key] for spec in cf.FACTS.values()}
    state.update({k: at.session_state[k] for k in ("case:id", "case:drug", "case:request", "case:plans")})
    case = cf.case_from_state(state)
    assert case["drug"] == got["drug"] and case["request"] == got["request"]
    assert sorted(case["plans"]) == ["cvs_caremark", "ohsu"]
    assert set(case["facts"]) == {f["fact"] for f in d["facts"]}
    for f in d["facts"]:
        assert inside(f, case["facts"][f["fact"]]), (f, case["facts"])
    assert decisions_of(case, ["cvs_caremark", "ohsu"]) == d["decisions"]
    # and the page says so: the two plans' lines carry the pair's badges
    rows = whatif_rows(at)
    assert rows == {NAMES[p]: {"approved": "APPROVED", "case_review": "CASE REVIEW", "needs_info": "NEEDS INFO",
                               "denied": "DENIED", "no_policy": "NO POLICY"}[dec]
                    for p, dec in d["decisions"].items()}
    assert "Compare plans" in at.session_state["loaded"]
    assert "pending_case" not in at.session_state
    # back on the Compare page, its choices are still there
    at.switch_page("compare.py").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="cmp:a").value == "cvs_caremark" and at.selectbox(key="cmp:b").value == "ohsu"


def test_every_open_button_of_a_pair_gives_its_pair_on_the_whatif_page():
    got = sd.diff(SOLVER, "bcbs_fep", "cvs_caremark", request="continuation")
    at = compare_page("bcbs_fep", "cvs_caremark", request="continuation")
    for i, d in enumerate(got["differences"][:6]):
        at.switch_page("compare.py").run()
        at.button(key=f"open:{i}").click().run()
        assert not at.exception, at.exception
        assert whatif_rows(at) == {NAMES[p]: dec.replace("_", " ").upper() for p, dec in d["decisions"].items()}


def test_the_same_plan_twice_is_refused_politely():
    at = compare_page("ohsu", "ohsu")
    assert any("Pick two different plans" in w.value for w in at.warning)
    assert not at.expander and not at.error and not [b for b in at.button if b.key.startswith("open:")]


def test_two_plans_that_never_part_ways_say_so():
    at = compare_page("bcbs_fep", "bcbsnc", drug="blinatumomab")
    assert sd.diff(SOLVER, "bcbs_fep", "bcbsnc", drug="blinatumomab")["differences"] == []
    assert any("decide alike on every profile" in s.value for s in at.success)
    assert not at.expander


def version_page(plan: str, folder: str) -> AppTest:
    at = compare_page()
    at.radio(key="cmp:mode").set_value("A plan and a rule-base version").run()
    assert not at.exception, at.exception
    at.selectbox(key="cmp:plan").set_value(plan)
    at.text_input(key="cmp:folder").set_value(folder).run()
    assert not at.exception, at.exception
    return at




def test_a_bad_folder_is_refused_with_its_name_and_why(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    empty = tmp_path / "empty"
    empty.mkdir()
    broken = tmp_path / "broken"
    shutil.copytree(ROOT / "logic", broken)
    (broken / "ohsu.lp").write_text("this is not( ASP")
    no_ohsu = tmp_path / "no_ohsu"
    shutil.copytree(ROOT / "logic", no_ohsu)
    (no_ohsu / "ohsu.lp").unlink()
    for folder, why in ((tmp_path / "nowhere", "does not exist"), (tmp_path / "file.txt", "is not a folder"),
                        (empty, "has no .lp files"), (broken, "ohsu.lp"), (no_ohsu, "ohsu")):
        at = version_page("ohsu", str(folder))
        errors = [e.value for e in at.error]
        assert len(errors) == 1 and str(folder) in errors[0] and why in errors[0], (folder, errors)
        assert not at.expander


def test_a_plan_against_an_older_version_of_its_rules(tmp_path):
    older = tmp_path / "logic"
    shutil.copytree(ROOT / "logic", older)
    text = (older / "ohsu.lp").read_text()
    assert "at_most(ohsu_ii_1, units_per_21_days, 63)." in text
    (older / "ohsu.lp").write_text(text.replace("at_most(ohsu_ii_1, units_per_21_days, 63).",
                                                "at_most(ohsu_ii_1, units_per_21_days, 45)."))
    at = version_page("ohsu", str(older))
    got = sd.diff_against(SOLVER, "ohsu", str(older))
    assert got["plans"] == ["ohsu", "ohsu@logic"] and got["differences"]
    assert [(e.label, len(e.button)) for e in at.expander] == expected_groups(got)
    assert not at.warning and not at.error
    # every difference is about the units between the two limits
    assert all(any(f["fact"] == "units_per_21_days" for f in d["facts"]) for d in got["differences"])
    at.button(key="open:0").click().run()
    assert not at.exception, at.exception
    units = at.session_state["fact:units_per_21_days"]
    assert 45 < units <= 63
    assert at.session_state["case:plans"] == ["ohsu"]
    assert whatif_rows(at) == {NAMES["ohsu"]: got["differences"][0]["decisions"]["ohsu"].replace("_", " ").upper()}


def test_an_unchanged_copy_differs_nowhere(tmp_path):
    same = tmp_path / "logic"
    shutil.copytree(ROOT / "logic", same)
    at = version_page("masshealth", str(same))
    assert any("decide alike on every profile" in s.value for s in at.success)
