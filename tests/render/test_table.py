"""The readable answer on a terminal: short by default, every pathway with
--verbose, policy sentences where a criterion blocks, nothing from the case
read as markup or control characters."""

from __future__ import annotations

import json
import re
from pathlib import Path

from solver.engine.solver import Solver
from solver.case.models import parse_case
from solver.render.table import closest, missing_order, render
from conftest import CASE_MD_PLANS, run_cli

ROOT = Path(__file__).resolve().parents[2]
SOLVER = Solver()


def result(case: dict, max_changes: int = 0) -> dict:
    return SOLVER.solve(parse_case(case), max_changes)


def example(name: str) -> dict:
    return json.loads((ROOT / "examples" / name).read_text())


def test_an_all_approved_case_is_short_and_names_each_decision_and_pathway():
    r = result(dict(example("ohsu_adult_rr.json"), plans=list(CASE_MD_PLANS)))    # the plans its facts are for
    text = render(r, width=120)
    assert len(text.splitlines()) < 50
    for p in r["results"]:
        assert f"{p['plan']}: APPROVED via {p['pathway']}" in text
    assert "not_met" not in text and "NOT MET" not in text          # nothing reads as a contradiction
    verbose = render(r, verbose=True, width=120)
    assert len(verbose.splitlines()) > 2 * len(text.splitlines())
    ids = {c["id"] for p in r["results"] for pw in p["pathways"] for c in pw["criteria"]}
    assert all(re.search(rf"\b{re.escape(i)}\b", verbose) for i in ids)
    assert "(approves) - not met" in verbose or "(approves) - open" in verbose


def test_a_denial_quotes_the_broken_criteria_of_the_closest_pathway():
    case = example("cvs_frontline_incomplete.json")
    case["facts"].update(prior_inotuzumab=True, planned_cycles=8)          # two criteria of every pathway broken
    r = result(case)
    (ohsu,) = [p for p in r["results"] if p["plan"] == "ohsu"]
    assert ohsu["decision"] == "denied"
    text = render(r, width=200)
    for pw in closest(ohsu["pathways"]):
        assert f"closest pathway {pw['id']}" in text
        for c in pw["criteria"]:
            if c["status"] == "not_met":
                assert f"\u201c{c['text']}\u201d" in text and c["source"] in text


def test_missing_sets_that_approve_come_first():
    r = result({"plans": ["masshealth"], "facts": {"new_to_plan_on_treatment": True}})
    (mh,) = r["results"]
    ordered = missing_order(mh["missing"])
    assert [m["outcome"] for m in ordered] == sorted((m["outcome"] for m in ordered), key=lambda o: o != "approved")
    text = render(r, width=200)
    first = next(line for line in text.splitlines() if line.strip().startswith("1. ->"))
    assert ordered[0]["pathway"] in first and "(approves)" in first


def test_a_case_id_is_neither_markup_nor_control_characters():
    r = result({"case_id": "[red]x[/red]\n\nohsu: APPROVED\x1b[31m", "plans": ["ohsu"]})
    text = render(r, color=True)
    assert "[red]x[/red]\\x0a\\x0aohsu: APPROVED\\x1b[31m" in text
    plain = render(r)
    assert "\x1b" not in plain
    assert [line for line in plain.splitlines() if line.startswith("ohsu:")] == ["ohsu: NEEDS_INFO"]


def test_the_command_line_table_and_verbose_and_no_colour_when_piped():
    run = lambda *a: run_cli(*a, timeout=120)
    short, long = run("decide", "examples/ohsu_adult_rr.json"), run("decide", "examples/ohsu_adult_rr.json", "-v")
    assert short.returncode == long.returncode == 0
    assert "\x1b" not in short.stdout and len(long.stdout) > 2 * len(short.stdout)
    explained = run("explain", "examples/ohsu_adult_rr.json", "--max-changes", "1")
    assert "would change to DENIED" in explained.stdout
