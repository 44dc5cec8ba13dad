"""A policy change's impact on real requests: batch with another rule base
(--rules DIR) and report --compare OLD NEW, on a hand-made older version of
one plan file."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from solver.engine.solver import Solver
from solver.fhir.inputs import case_from
from conftest import run_cli as run

ROOT = Path(__file__).resolve().parents[2]
BATCH = ROOT / "examples" / "batch.jsonl"


@pytest.fixture(scope="module")
def older(tmp_path_factory) -> Path:
    """logic/ as it might have been: OHSU's unit limit 45 instead of 63."""
    old = tmp_path_factory.mktemp("old") / "logic"
    shutil.copytree(ROOT / "logic", old)
    text = (old / "ohsu.lp").read_text()
    assert "at_most(ohsu_ii_1, units_per_21_days, 63)." in text
    (old / "ohsu.lp").write_text(text.replace("at_most(ohsu_ii_1, units_per_21_days, 63).",
                                              "at_most(ohsu_ii_1, units_per_21_days, 45)."))
    return old


def test_batch_with_another_rule_base_and_the_impact_of_the_change(older, tmp_path):
    old_out, new_out = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
    a = run("batch", str(BATCH), "--rules", str(older), "--workers", "2")
    b = run("batch", str(BATCH), "--workers", "2")
    assert a.returncode == b.returncode == 0
    old_out.write_text(a.stdout)
    new_out.write_text(b.stdout)
    assert json.loads(a.stdout.splitlines()[0])["rules_version"] != json.loads(b.stdout.splitlines()[0])["rules_version"]
    got = json.loads(run("report", "--compare", str(old_out), str(new_out), "--format", "json").stdout)

    # the same, decided here with two solvers
    old_solver, new_solver = Solver(older), Solver()
    want: Counter = Counter()
    for line in BATCH.read_text().splitlines():
        case, _ = case_from(json.loads(line))
        before = {r["plan"]: r["decision"] for r in old_solver.solve(case)["results"]}
        after = {r["plan"]: r["decision"] for r in new_solver.solve(case)["results"]}
        for plan in before:
            if before[plan] != after[plan]:
                want[(plan, f"{before[plan]} -> {after[plan]}")] += 1
    moved = Counter({(plan, move): n for plan, p in got["plans"].items() for move, n in p["moved"].items()})
    assert moved == want and want and {plan for plan, _ in want} == {"ohsu"}
    assert got["compared"] == 200 and got["matched_by"] == "case_id"
    table = run("report", "--compare", str(old_out), str(new_out))
    assert "ohsu: " in table.stdout and "moved" in table.stdout


def test_a_rule_base_that_does_not_load_is_refused_before_the_work(tmp_path):
    broken = tmp_path / "logic"
    shutil.copytree(ROOT / "logic", broken)
    (broken / "ohsu.lp").write_text((broken / "ohsu.lp").read_text() + "\nthis is not ASP(\n")
    res = run("batch", str(BATCH), "--rules", str(broken))
    assert res.returncode == 2 and "Traceback" not in res.stderr and res.stderr.startswith("error: --rules")
    assert run("batch", str(BATCH), "--rules", str(tmp_path / "nowhere")).returncode == 2
    assert run("report", "--compare", str(BATCH), str(tmp_path / "missing.jsonl")).returncode == 2
