"""`pa-solver why`: per plan at most 15 lines, decision <- pathway <- criterion <- fact = value,
the sentence a reviewer reads, and the facts that did not matter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli
from solver.rules import declared

ROOT = Path(__file__).resolve().parents[2]
DENIED_8 = {"case_id": "d8", "facts": {"planned_cycles": 8, "age_years": 70, "diagnosis": "all",
                                       "b_cell_precursor": True, "cd22_positive": True,
                                       "disease_setting": "relapsed_refractory", "regimen": "single_agent"}}


def why(*args, stdin: str | None = None, columns: str | None = "10000") -> subprocess.CompletedProcess:
    """`pa-solver why`, piped; `columns`: COLUMNS (10000 by default: each line whole, as the tests of
    what the lines say read them; None: unset, as in a pipe from a script)."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns is not None:
        env["COLUMNS"] = columns
    return run_cli("why", *args, stdin=stdin, timeout=120, env=env)


def blocks(text: str) -> dict[str, list[str]]:
    out = {}
    for block in text.split("\n\n")[1:]:
        lines = block.splitlines()
        out[lines[0].split(":", 1)[0]] = lines
    return out


def test_a_denial_says_the_fact_the_policy_and_where_in_one_sentence():
    got = why("-", "--plan", "ohsu", stdin=json.dumps(DENIED_8))
    assert got.returncode == 0, got.stderr
    (lines,) = blocks(got.stdout).values()
    assert lines[0] == f"ohsu: DENIED \u2014 rests on 1 of {len(declared.of().case_facts)} facts"
    assert any(line.endswith("ohsu_i_1: planned_cycles is 8; the policy allows at most 6 \u2014 "
                             "I. Length of Authorization (maximum of 6 cycles)") for line in lines)
    assert lines[-1] == ("  did not matter: age_years, b_cell_precursor, cd22_positive, diagnosis, "
                         "disease_setting, regimen")


@pytest.mark.parametrize("example", sorted(p.name for p in (ROOT / "examples").glob("*.json")))
def test_every_plan_in_at_most_15_lines_and_the_rest_named(example, tmp_path):
    got = why(str(ROOT / "examples" / example))
    assert got.returncode == 0, got.stderr
    decided = json.loads(subprocess.run([sys.executable, "-m", "solver.cli", "decide", str(ROOT / "examples" / example),
                                         "--json", "--why"], capture_output=True, text=True, cwd=ROOT,
                                        timeout=120).stdout)
    by_plan = blocks(got.stdout)
    assert set(by_plan) == {r["plan"] for r in decided["results"]}
    for r in decided["results"]:
        lines = by_plan[r["plan"]]
        assert len(lines) <= 15
        assert r["decision"].replace("_", " ").upper() in lines[0]
        if r["decision"] != "no_policy":
            rested = {f["fact"] for f in r["rests_on"]}
            said = lines[-1].split("did not matter: ", 1)[1]
            named = set() if said == "none" else set(said.split(", "))
            assert not named & rested                           # what it rests on is never "did not matter"


@pytest.mark.parametrize("example", sorted(p.name for p in (ROOT / "examples").glob("*.json")))
def test_lines_fit_80_columns_in_a_pipe_and_columns_when_set(example):
    """Piped (no terminal, no COLUMNS): no line over 80 characters; COLUMNS=60: none over 60.  A long
    line goes on, indented deeper, and only the line breaks differ: the words are the same."""
    whole = why(str(ROOT / "examples" / example))
    piped = why(str(ROOT / "examples" / example), columns=None)
    narrow = why(str(ROOT / "examples" / example), columns="60")
    assert whole.returncode == piped.returncode == narrow.returncode == 0, piped.stderr
    assert max(len(line) for line in whole.stdout.splitlines()) > 80          # there was something to wrap
    for got, width in ((piped, 80), (narrow, 60)):
        lines = got.stdout.splitlines()
        assert max(len(line) for line in lines) <= width, [line for line in lines if len(line) > width]
        assert got.stdout.split() == whole.stdout.split()
        assert len(got.stdout.split("\n\n")) == len(whole.stdout.split("\n\n"))      # one block per plan still
        for block in got.stdout.split("\n\n")[1:]:
            start = 0
            for i, line in enumerate(block.splitlines()):
                indent = len(line) - len(line.lstrip(" "))
                if i == 0 or line.lstrip().startswith(("\u2190", "did not matter", "\u2026")):
                    start = indent
                else:                                   # a continuation hangs 4 deeper than its line
                    assert indent == start + 4, block


def test_bad_input_is_one_line():
    got = why("-", stdin="{\"facts\": {\"age_years\": 500}}")
    assert got.returncode == 2 and got.stderr.count("\n") == 1 and "facts.age_years" in got.stderr


def test_the_same_sentence_in_the_table_the_pas_response_and_the_crd_card():
    import datetime as dt

    from solver.engine.solver import Solver
    from solver.fhir.pas import pas_bundle
    from solver.fhir.inputs import case_from
    from solver.fhir.crd import reason
    from solver.render.table import render

    solver = Solver()
    case, _ = case_from({**DENIED_8, "plans": ["ohsu"]})
    result = solver.solve(case)
    words = "planned_cycles is 8; the policy allows at most 6"
    table = " ".join(render(result, width=400).split())
    assert f"ohsu_i_1: {words} \u2014 I. Length of Authorization (maximum of 6 cycles)" in table
    pas = pas_bundle(result, solver.rules.plans, dt.date(2025, 1, 1))
    notes = [n["text"] for e in pas["entry"] for n in e["resource"]["processNote"]]
    assert any(n.startswith("Not met (") and "ohsu_i_1" in n and n.endswith(words) for n in notes)
    assert f"\u201d: {words}" in reason(result["results"][0])
