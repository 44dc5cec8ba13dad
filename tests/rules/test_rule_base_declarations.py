"""What a rule base declares, and what a bad one gets (shared/spec/RULES.md).

The declarations in logic/ are what the project used to write in Python
(the case model's kinds and ranges, the form's labels and groups, DTR's
questions, the pages' short names): read back, they hold exactly that.  A bad
rule base is refused before any work, in one line naming the file and the
problem, by every command.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from solver.rules import declared
from solver.case import fastcase, models
from solver.engine.rulebase import RuleBase

ROOT = Path(__file__).resolve().parents[2]
LOGIC = ROOT / "logic"


def test_facts_are_read_in_the_order_facts_lp_declares_them():
    """The model's fields (and so its error messages' order) follow the fact/2 lines."""
    text = (LOGIC / "facts.lp").read_text()
    in_file = [m for m in re.findall(r"^fact\((\w+),", text, re.M) if m not in ("drug", "request")]
    assert [f for f in declared.of().case_facts if f in in_file] == in_file     # a plan's own facts come after


def test_the_models_are_built_from_the_declarations():
    d = declared.of()
    fields = models.Facts.model_fields
    fast = fastcase.FastFacts.__struct_fields__
    assert list(fields) == list(fast)                    # field for field, the ICD-10 codes after diagnosis
    assert list(fields).index("icd10_codes") == list(fields).index("diagnosis") + 1
    for name in d.case_facts:
        fd = d.facts[name]
        assert fd.label and (fd.kind != "enum" or fd.values)
        if fd.kind in ("integer", "number"):
            assert fd.low is not None, name               # range/3 is required


def _one_of(values) -> str:
    """pydantic's words for a Literal: 'a', 'b' or 'c'."""
    quoted = [f"'{v}'" for v in values]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def test_a_case_is_refused_by_the_declared_range_with_the_same_words():
    for bad, said in [({"facts": {"age_years": 131}}, "facts.age_years: Input should be less than or equal to 130"),
                      ({"facts": {"weight_kg": 0}}, "facts.weight_kg: Input should be greater than 0"),
                      ({"facts": {"planned_cycles": 3.5}}, "facts.planned_cycles: Input should be a valid integer"),
                      ({"plans": ["nowhere"]}, "plans[0]: Input should be " + _one_of(declared.of().plans))]:
        with pytest.raises(models.CaseError) as err:
            models.parse_case(bad)
        assert str(err.value) == said
        assert fastcase.parse(bad) is None               # the fast path leaves it to pydantic


def test_the_engine_and_a_light_read_agree():
    a, b = RuleBase().declared, declared.of()
    assert a.key() == b.key() and a.plan_labels == b.plan_labels and a.drug_codes == b.drug_codes


def _folder(tmp_path: Path, change) -> Path:
    folder = tmp_path / "logic"
    shutil.copytree(LOGIC, folder)
    change(folder)
    return folder


def _append(name: str, text: str):
    def change(folder: Path) -> None:
        with open(folder / name, "a") as fh:
            fh.write("\n" + text + "\n")
    return change


def _replace(name: str, old: str, new: str):
    def change(folder: Path) -> None:
        t = (folder / name).read_text()
        assert old in t
        (folder / name).write_text(t.replace(old, new))
    return change


BAD = [
    ("a criterion on an undeclared fact", _append("ohsu.lp", 'in_set(ohsu_i_1, zz_fact, "x").'),
     "test on an undeclared fact: ohsu_i_1 (in ohsu.lp)"),
    ("an enum value not declared", _append("ohsu.lp", 'in_set(ohsu_i_1, ph_status, "sideways").'),
     "value not in the fact's domain: ohsu_i_1 (in ohsu.lp)"),
    ("a plan with no document", _replace("bcbsnc.lp", "policy_document(bcbsnc,", "zz_document(bcbsnc,"),
     "plan without its policy_document: bcbsnc (in bcbsnc.lp)"),
    ("a document that cannot be found", _replace("ohsu.lp", '"ohsu.txt")', '"ohsu-gone.txt")'),
     "the document of plan ohsu (ohsu-gone.txt) is not in"),
    ("two plans with one id", _append("bcbsnc.lp", 'plan(ohsu, "Another OHSU").'),
     "two plans with the id ohsu (plan/2 twice): bcbsnc.lp: plan(ohsu,\"Another OHSU\"); ohsu.lp: plan(ohsu,"),
    ("a fact declared twice differently", _append("ohsu.lp", "fact(ph_status, bool)."),
     "fact ph_status is declared twice differently (bool, enum): facts.lp: fact(ph_status,enum); "
     "ohsu.lp: fact(ph_status,bool)"),
    ("a number without its range", _replace("facts.lp", "range(age_years, 0, 130).", ""),
     "a number or integer fact without its range/3: age_years"),
    ("a fact without its label", _replace("facts.lp", 'label(tki_failure, "TKI failure").', ""),
     "a fact without its label/2: tki_failure"),
    ("a syntax error", _append("ohsu.lp", "criterion(ohsu_x"), "ohsu.lp:"),
]


@pytest.mark.parametrize("what, change, said", BAD, ids=[b[0] for b in BAD])
def test_a_bad_rule_base_is_refused_in_one_line_naming_file_and_problem(tmp_path, what, change, said):
    folder = _folder(tmp_path, change)
    for args in (["decide", str(ROOT / "examples" / "ohsu_adult_rr.json")], ["diff", "ohsu", "bcbsnc"],
                 ["batch", str(ROOT / "examples" / "batch.jsonl")]):
        r = subprocess.run([sys.executable, "-m", "solver.cli", *args, "--rules", str(folder)], capture_output=True,
                           text=True, cwd=ROOT, timeout=120)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stdout == "" and "Traceback" not in r.stderr
        assert r.stderr.count("\n") == 1 and r.stderr.startswith(f"error: --rules {folder}: "), r.stderr
        assert said in r.stderr, r.stderr
