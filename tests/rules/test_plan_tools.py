"""`pa-solver plan new` and `pa-solver plan check`, walked as docs/adding-a-plan.md walks them: a policy
document (tests/rules_cascade/pa_test_cascade.txt, a fictional plan) becomes a plan file whose every sentence is
still to do; `plan check` says so, one line per problem, exit 1; once the criteria are written (the
lines of tests/rules_cascade/criteria.lp, two new facts among them) it finds nothing, and the plan is
decided like any other."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

HERE = Path(__file__).resolve().parents[1] / "rules_cascade"
SENTENCES = 12


@pytest.fixture
def rules(tmp_path) -> Path:
    folder = tmp_path / "logic"
    shutil.copytree(ROOT / "logic", folder)
    return folder


def run(*args, stdin=None):
    r = run_cli(*args, stdin=stdin, timeout=300)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def problems(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("problem: ")]


def test_plan_new_starts_a_file_whose_every_sentence_is_to_do(rules):
    r = run("plan", "new", "pa_test_cascade", "--document", str(HERE / "pa_test_cascade.txt"), "--rules", str(rules))
    assert r.returncode == 0, r.stderr
    lp = (rules / "pa_test_cascade.lp").read_text()
    assert (rules / "policies" / "pa_test_cascade.txt").read_bytes() == (HERE / "pa_test_cascade.txt").read_bytes()
    assert 'plan(pa_test_cascade, "Cascade Health Alliance").' in lp and 'covers(pa_test_cascade, "inotuzumab_ozogamicin").' in lp
    assert lp.count('"TODO: not yet encoded").') == SENTENCES

    cov = json.loads(run("coverage", "pa_test_cascade", "--json", "--rules", str(rules)).stdout)["plans"][0]["counts"]
    assert cov["unaccounted"] == 0 and cov["encoded"] == 0 and cov["set_aside"] == SENTENCES

    check = run("plan", "check", "pa_test_cascade", "--rules", str(rules))
    assert check.returncode == 1
    found = problems(check.stdout)
    assert check.stdout.splitlines()[-1] == f"{len(found)} problems"
    assert any("pa_test_cascade: no pathway yet" in p for p in found)
    assert any(f"{SENTENCES} sentence(s) still marked 'TODO: not yet encoded'" in p for p in found)
    assert all("pa_test_cascade.lp" in p for p in found)                  # each names the file


def test_plan_new_refuses_to_write_over_a_plan_or_a_bad_id(rules):
    doc = str(HERE / "pa_test_cascade.txt")
    assert run("plan", "new", "pa_test_cascade", "--document", doc, "--rules", str(rules)).returncode == 0
    again = run("plan", "new", "pa_test_cascade", "--document", doc, "--rules", str(rules))
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1 and "--force" in again.stderr
    assert run("plan", "new", "pa_test_cascade", "--document", doc, "--rules", str(rules), "--force").returncode == 0
    for bad in ("Cascade", "9lives", "a-b"):
        r = run("plan", "new", bad, "--document", doc, "--rules", str(rules))
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (bad, r.stderr)
    none = run("plan", "new", "other", "--document", str(rules / "no-such.txt"), "--rules", str(rules))
    assert none.returncode == 2 and "no-such.txt" in none.stderr


def _written(rules: Path) -> Path:
    """The walk's end: what plan new wrote, the criteria added, each encoded sentence's line gone and
    each other sentence given its reason."""
    assert run("plan", "new", "pa_test_cascade", "--document", str(HERE / "pa_test_cascade.txt"), "--rules", str(rules)).returncode == 0
    path = rules / "pa_test_cascade.lp"
    text = path.read_text()
    criteria = (HERE / "criteria.lp").read_text()
    encoded = [line for line in criteria.splitlines() if line.startswith("text(")]
    for line in encoded:
        sentence = line.split(", ", 1)[1][:-2]                   # text(C, "..."). -> "..."
        text = text.replace(f'not_a_criterion(pa_test_cascade, {sentence}, "TODO: not yet encoded").\n', "")
    text = text.replace('"TODO: not yet encoded"', '"a heading, the title or a sentence no case can test"')
    path.write_text(text + "\n" + criteria)
    return path


def test_once_the_criteria_are_written_plan_check_finds_nothing(rules):
    _written(rules)
    check = run("plan", "check", "pa_test_cascade", "--rules", str(rules))
    assert check.returncode == 0, check.stdout
    assert check.stdout.splitlines() == [
        "pa_test_cascade: 1 pathway(s), 5 criteria; 12 sentences: 5 encoded, 7 set aside, 0 to do, 0 unaccounted",
        "0 problems"]
    case = {"case_id": "c1", "plans": ["pa_test_cascade"], "facts": {
        "age_years": 44, "diagnosis": "all", "b_cell_precursor": True, "disease_setting": "relapsed_refractory",
        "cd22_positive": True, "ptc_lvef_percent": 40, "ptc_hepatic_vod_history": False}}
    got = json.loads(run("decide", "-", "--json", "--rules", str(rules), stdin=json.dumps(case)).stdout)
    r = got["results"][0]
    assert (r["plan"], r["decision"]) == ("pa_test_cascade", "denied")
    assert [c["id"] for pw in r["pathways"] for c in pw["criteria"] if c["status"] == "not_met"] == ["pa_test_cascade_i4"]
    bad = run("decide", "-", "--rules", str(rules), stdin=json.dumps({**case, "facts": {"ptc_lvef_percent": 101}}))
    assert bad.returncode == 2 and bad.stderr.strip() == \
        "error: invalid case: facts.ptc_lvef_percent: Input should be less than or equal to 100"


def test_plan_check_names_a_criterion_whose_text_is_not_in_the_document(rules):
    path = _written(rules)
    path.write_text(path.read_text().replace('text(pa_test_cascade_i3, "The leukemic blasts are CD22-positive.").',
                                             'text(pa_test_cascade_i3, "The blasts are CD22-positive.").'))
    check = run("plan", "check", "pa_test_cascade", "--rules", str(rules))
    assert check.returncode == 1
    found = problems(check.stdout)
    assert any("pa_test_cascade_i3: its text is not found word for word" in p for p in found), found


def test_plan_check_names_a_declared_fact_no_criterion_tests(rules):
    path = _written(rules)
    path.write_text(path.read_text() + '\nfact(nyha_class, integer).\nrange(nyha_class, 1, 4).\n'
                                       'label(nyha_class, "NYHA class").\n')
    check = run("plan", "check", "--rules", str(rules))
    assert check.returncode == 1
    assert any("nyha_class" in p for p in problems(check.stdout)), check.stdout
