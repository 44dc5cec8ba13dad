"""pa-solver diff PLAN --against DIR: today's plan against the same plan in
another rule-base folder, judged on one guessed profile in one program (the
other version renamed through clingo's AST, solver/analysis/against.py)."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import pytest

from solver.rules.declared import of as _declared
from solver.analysis.diff import Against
from solver.rules.loading import RuleBaseError
from solver.engine.solver import Solver
from solver.fhir.inputs import case_from
from conftest import run_cli as run

PLANS = tuple(_declared().plans)

ROOT = Path(__file__).resolve().parents[2]
TODAY = Solver()


def older_copy(tmp_path_factory, name: str, edit=None) -> Path:
    folder = tmp_path_factory.mktemp(name) / "logic"
    shutil.copytree(ROOT / "logic", folder)
    if edit:
        edit(folder)
    return folder


def ohsu_45(folder: Path) -> None:
    text = (folder / "ohsu.lp").read_text()
    assert "at_most(ohsu_ii_1, units_per_21_days, 63)." in text
    (folder / "ohsu.lp").write_text(text.replace("at_most(ohsu_ii_1, units_per_21_days, 63).",
                                                 "at_most(ohsu_ii_1, units_per_21_days, 45)."))


@pytest.fixture(scope="module")
def older(tmp_path_factory) -> Path:
    """logic/ as it might have been: OHSU's unit limit 45 instead of 63."""
    return older_copy(tmp_path_factory, "old", ohsu_45)


@pytest.fixture(scope="module")
def same(tmp_path_factory) -> Path:
    return older_copy(tmp_path_factory, "same")


def inside(fd, f: dict) -> list:
    """Case values inside a listed fact: every listed value, or a range's two ends."""
    if "values" in f:
        return list(f["values"])
    lo, hi = f["range"]
    step = 1 if fd.kind == "integer" else 0.5
    out = [lo if lo is not None else (hi - step if hi is not None else 1)]
    if hi is not None:
        out.append(hi - step)
    return out


def test_an_unchanged_copy_differs_nowhere(same):
    for plan in PLANS:
        got = Against(TODAY, plan, same).diff(TODAY)
        assert got["plans"] == [plan, f"{plan}@logic"] and got["differences"] == [], plan


def test_the_older_unit_limit_gives_exactly_the_units_between_the_limits(older):
    against = Against(TODAY, "ohsu", older)
    got = against.diff(TODAY)
    assert got["against"]["file"] == "ohsu.lp" and got["against"]["rules_version"] != got["rules_version"]
    diffs = got["differences"]
    assert diffs
    old_solver = Solver(older)
    seen_pairs = set()
    for d in diffs:
        units = [f for f in d["facts"] if f["fact"] == "units_per_21_days"]
        # only the change is where the versions part: 45 < units <= 63
        assert units == [{"fact": "units_per_21_days", "range": [46, 64]}], d
        pair = (d["decisions"]["ohsu"], d["decisions"]["ohsu@logic"])
        seen_pairs.add(pair)
        # (case review: a B-lymphoblastic lymphoma that meets a pathway but for its diagnosis)
        assert pair[1] == "denied" and pair[0] in ("approved", "needs_info", "case_review")
        # every combination of the listed values gives the pair: today's rules and the old folder's
        fds = [against.diff_rules.facts[f["fact"]] for f in d["facts"]]
        for combo in itertools.product(*(inside(fd, f) for fd, f in zip(fds, d["facts"]))):
            facts = {f["fact"]: v for f, v in zip(d["facts"], combo)}
            case, _ = case_from({"plans": ["ohsu"], "request": "initial", "facts": facts})
            assert (TODAY.solve(case)["results"][0]["decision"],
                    old_solver.solve(case)["results"][0]["decision"]) == pair, facts
        # minimal: dropping any one fact loses the pair
        rep = {f["fact"]: inside(fd, f)[0] for fd, f in zip(fds, d["facts"])}
        for drop in rep:
            rest = {k: v for k, v in rep.items() if k != drop}
            case, _ = case_from({"plans": ["ohsu"], "request": "initial", "facts": rest})
            assert (TODAY.solve(case)["results"][0]["decision"],
                    old_solver.solve(case)["results"][0]["decision"]) != pair, (d, drop)
    assert seen_pairs == {("approved", "denied"), ("needs_info", "denied"), ("case_review", "denied")}
    # the smallest: only the units known
    assert diffs[0]["facts"] == [{"fact": "units_per_21_days", "range": [46, 64]}]


def test_single_fact_profiles_are_complete(older):
    """Brute force: every one-fact profile where the versions part lies inside a listed difference."""
    against = Against(TODAY, "ohsu", older)
    diffs = against.diff(TODAY)["differences"]
    old_solver = Solver(older)
    listed = {(d["facts"][0]["fact"], json.dumps(d["facts"][0], sort_keys=True)) for d in diffs if len(d["facts"]) == 1}
    for name, fd in against.diff_rules.facts.items():
        if name in ("drug", "request"):
            continue
        for i in range(len(fd.values)):
            sym = fd.values[i]
            if fd.kind in ("bool", "enum"):
                value = (sym.string == "true") if fd.kind == "bool" else sym.string
            else:
                lo, hi = (a.number if a.type.name == "Number" else None for a in sym.arguments)
                value = lo if lo is not None else (hi - 1 if hi is not None else 1)
            try:
                case, _ = case_from({"plans": ["ohsu"], "facts": {name: value}})
            except ValueError:
                continue                                     # outside the case contract's range
            a = TODAY.solve(case)["results"][0]["decision"]
            b = old_solver.solve(case)["results"][0]["decision"]
            if a != b:
                assert any(n == name for n, _ in listed), (name, value, a, b)


def test_cli_table_json_and_bad_folders(older, tmp_path):
    res = run("diff", "ohsu", "--against", str(older), "--json")
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    assert got["plans"] == ["ohsu", "ohsu@logic"] and got["differences"]
    table = run("diff", "ohsu", "--against", str(older))
    assert table.returncode == 0 and "ohsu NEEDS INFO, ohsu@logic DENIED" in table.stdout
    assert "ohsu_ii_1@logic" in table.stdout             # the old version's broken criterion, by its label

    empty = tmp_path / "empty"
    empty.mkdir()
    for args, said in ((("--against", str(tmp_path / "nowhere")), "is not a folder"),
                       (("--against", str(empty)), "has no rule file for plan ohsu"),
                       ((), "one plan and --against DIR")):
        res = run("diff", "ohsu", *args)
        assert res.returncode == 2 and "Traceback" not in res.stderr and said in res.stderr, res.stderr
        assert res.stderr.count("\n") == 1


def test_an_old_file_the_vocabulary_cannot_judge_is_refused_naming_it(tmp_path_factory):
    def undeclared(folder: Path) -> None:
        text = (folder / "bcbs_fep.lp").read_text()
        (folder / "bcbs_fep.lp").write_text(text + "\ncriterion(fep_new, fep_x).\n")

    def broken(folder: Path) -> None:
        (folder / "bcbs_fep.lp").write_text((folder / "bcbs_fep.lp").read_text() + "\nnot ASP(\n")

    for edit, said in ((undeclared, "undeclared pathway: fep_new@undeclared"), (broken, "does not parse")):
        folder = older_copy(tmp_path_factory, edit.__name__, edit).rename(
            tmp_path_factory.mktemp("v") / edit.__name__)
        with pytest.raises(RuleBaseError, match=said):
            Against(TODAY, "bcbs_fep", folder)
        res = run("diff", "bcbs_fep", "--against", str(folder))
        assert res.returncode == 2 and "Traceback" not in res.stderr and res.stderr.startswith("error: --against")


def test_a_plan_file_under_another_name_is_found_by_its_plan_fact(tmp_path_factory):
    def rename(folder: Path) -> None:
        (folder / "ohsu.lp").rename(folder / "ohsu_2024.lp")
    folder = older_copy(tmp_path_factory, "renamed", rename)
    got = Against(TODAY, "ohsu", folder).diff(TODAY)
    assert got["against"]["file"] == "ohsu_2024.lp" and got["differences"] == []


def test_a_rule_file_with_a_script_is_refused_before_clingo_sees_it(tmp_path_factory, tmp_path):
    marker = tmp_path / "ran"

    def script(folder: Path) -> None:
        text = (folder / "ohsu.lp").read_text()
        (folder / "ohsu.lp").write_text(text + f'\n#script (python)\nopen({str(marker)!r}, "w").write("x")\n#end.\n')

    folder = older_copy(tmp_path_factory, "script", script)
    with pytest.raises(RuleBaseError, match="#script"):
        Against(TODAY, "ohsu", folder)
    with pytest.raises(RuleBaseError, match="#script"):
        Solver(folder)
    res = run("batch", str(ROOT / "examples" / "batch.jsonl"), "--rules", str(folder))
    assert res.returncode == 2 and "#script" in res.stderr and "Traceback" not in res.stderr
    assert not marker.exists()


def test_hostile_folders_are_refused_in_one_line(tmp_path):
    """Random bytes (clingo's logger would abort the process decoding them), a
    folder where the plan file should be, a plan file without its metadata."""
    import os

    garbage, dir_named, bare = (tmp_path / n for n in ("garbage", "dir_named", "bare"))
    for d in (garbage, dir_named, bare):
        d.mkdir()
    (garbage / "ohsu.lp").write_bytes(os.urandom(4000) + b"\xa4\xff")
    (dir_named / "ohsu.lp").mkdir()
    (bare / "ohsu.lp").write_text('plan(ohsu, "x").\n')
    for folder, said in ((garbage, "is not UTF-8 text"), (dir_named, "has no rule file for plan ohsu"),
                         (bare, "plan without its policy_document: ohsu@bare")):
        res = run("diff", "ohsu", "--against", str(folder))
        assert res.returncode == 2 and res.stderr.count("\n") == 1 and said in res.stderr, res.stderr[-2000:]
    res = run("batch", str(ROOT / "examples" / "batch.jsonl"), "--rules", str(garbage))
    assert res.returncode == 2 and "is not UTF-8 text" in res.stderr and "Traceback" not in res.stderr
