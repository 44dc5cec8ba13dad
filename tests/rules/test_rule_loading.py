"""Loading a rule base: what clingo reads is what the version covers (#include
followed), and a rule folder that is bad in any way -- RULES.md's list, a missing
file, a grounding that never ends, a file too big, an include of a FIFO -- is
refused in one line with exit 2 by every command, within its limits; SIGTERM
or Ctrl-C while clingo grounds ends the command cleanly (solver/rules/loading.py)."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clingo import ast

from solver.rules.loading import RuleBaseError
from solver.engine.solver import Solver
from solver.rules.files import rule_files, rules_version
from solver.fhir.inputs import case_from
from solver.text.jsontext import loads
from conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]
LOGIC = ROOT / "logic"
CASE = ROOT / "examples" / "ohsu_adult_rr.json"
BATCH = ROOT / "examples" / "batch.jsonl"
ENDLESS = "\nn(0). n(X+1) :- n(X).\n"


def copy(tmp_path: Path, name: str = "logic") -> Path:
    folder = tmp_path / name
    shutil.copytree(LOGIC, folder)
    return folder


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def run(*args, env: dict | None = None, cwd: Path = ROOT, timeout: float = 300):
    return run_cli(*args, env={**os.environ, **(env or {})}, cwd=cwd, timeout=timeout)


def refused(res, *said: str) -> None:
    """Exit 2, one line on stderr saying `said`, no traceback, no clingo panic."""
    assert res.returncode == 2, (res.returncode, res.stderr[-3000:])
    assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1, res.stderr[-3000:]
    assert "Traceback" not in res.stderr and "PANIC" not in res.stderr
    for s in said:
        assert s in res.stderr, res.stderr


def ohsu_decision(folder: Path) -> str:
    case, _ = case_from(loads(CASE.read_bytes()))
    return next(r["decision"] for r in Solver(folder).solve(case)["results"] if r["plan"] == "ohsu")


# ------------------------------------------------------------------ item 4: the version covers #include

def test_the_version_of_a_folder_without_includes_is_as_it_was():
    """Every recorded decision carries rules_version: for logic/ it stays the hash of its files by name."""
    h = hashlib.sha256()
    for path in sorted(LOGIC.glob("*.lp")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    assert rules_version(LOGIC) == h.hexdigest()[:16]


def test_a_change_in_an_included_file_changes_the_version(tmp_path):
    """ohsu.lp moved out of the folder and #include-d: a change there that flips the example
    from approved to denied changes rules_version too (it did not)."""
    folder = copy(tmp_path)
    (folder / "ohsu.lp").rename(tmp_path / "ohsu.lp")
    append(folder / "facts.lp", '\n#include "../ohsu.lp".\n')
    before = rules_version(folder)
    assert ohsu_decision(folder) == "approved"
    text = (tmp_path / "ohsu.lp").read_text()
    (tmp_path / "ohsu.lp").write_text(text.replace("at_most(ohsu_ii_1, units_per_21_days, 63).",
                                                   "at_most(ohsu_ii_1, units_per_21_days, 1)."))
    assert ohsu_decision(folder) == "denied"
    after = rules_version(folder)
    assert after != before
    assert Solver(folder).rules.version == after


def test_includes_are_followed_as_clingo_follows_them(tmp_path):
    """Directives in comments and strings are not followed (nor by clingo: the files they name do
    not exist, and the folder loads); an include inside an include is found beside its own file;
    a file included twice, or in a cycle, is read once.  The files listed are exactly the files
    clingo's parser reports statements from."""
    folder = copy(tmp_path)
    sub = folder / "sub"
    sub.mkdir()
    (sub / "a.lp").write_text('a_included.\n#include "c.lp".\n')
    (sub / "c.lp").write_text('c_included.\n#include "a.lp".   % a cycle\n')
    (sub / "b.lp").write_text("b_included.\n")
    append(folder / "facts.lp", "\n".join([
        '% #include "missing1.lp".',
        '%* a block #include "missing2.lp". %* nested *% still inside #include "missing3.lp". *%',
        '%* a line comment inside a block hides its end: % *%',
        '   #include "missing4.lp". *%',
        '#! #include "missing5.lp".',
        'quoted("#include \\"missing6.lp\\".").',
        '#include "sub/a.lp".',
        '#include',
        '  % a comment between the keyword and its file',
        '  "sub/b.lp".',
        ""]))
    append(folder / "ohsu.lp", '\n#include "sub/b.lp".\n')
    got = rule_files(folder)
    listed = [Path(p).resolve() for p, _, _ in got]
    assert len(listed) == len(set(listed))
    assert [p for p in listed if p.parent == sub] == [sub / "a.lp", sub / "c.lp", sub / "b.lp"]
    read_by_clingo: set = set()
    for path, _, own in got:
        if own:
            ast.parse_files([path], lambda s: read_by_clingo.add(Path(s.location.begin.filename).resolve()))
    assert read_by_clingo == set(listed)
    rb = Solver(folder).rules
    assert {str(a.symbol) for a in rb.ctl.symbolic_atoms if a.symbol.name.endswith("_included")} \
        == {"a_included", "b_included", "c_included"}
    before = rules_version(folder)
    (sub / "c.lp").write_text((sub / "c.lp").read_text() + "\n% a comment is a byte clingo reads\n")
    assert rules_version(folder) != before


@pytest.fixture
def include_folders(tmp_path):
    """Rule folders whose facts.lp includes something that is not a rule file, with what the refusal says."""
    def made(name: str, directive: str, setup=None) -> Path:
        folder = copy(tmp_path, name)
        if setup:
            setup(folder)
        append(folder / "facts.lp", f"\n{directive}\n")
        return folder

    marker = tmp_path / "ran"
    return [
        (made("missing", '#include "nowhere.lp".'), ("facts.lp:", '#include "nowhere.lp"', "no such file")),
        (made("fifo", '#include "pipe.lp".', lambda f: os.mkfifo(f / "pipe.lp")), ("facts.lp:", "pipe.lp is a FIFO")),
        (made("directory", '#include "sub".', lambda f: (f / "sub").mkdir()), ("facts.lp:", "sub is a directory")),
        (made("device", '#include "/dev/null".'), ("facts.lp:", "/dev/null is a device")),
        (made("library", "#include <incmode>."), ("facts.lp:", "a library include")),
        (made("script", '#include "code.lp".', lambda f: (f / "code.lp").write_text(
            f'#script (python)\nopen({str(marker)!r}, "w").write("x")\n#end.\n')), ("code.lp has a #script",)),
    ], marker


def test_an_include_that_is_no_rule_file_is_refused_in_one_line(include_folders):
    """Refused before clingo opens it: a FIFO would hold clingo's read (and decide) for good, an
    included #script would run code."""
    folders, marker = include_folders
    for folder, said in folders:
        with pytest.raises(RuleBaseError):
            rules_version(folder)
        res = run("decide", str(CASE), env={"PA_SOLVER_LOGIC": str(folder)}, timeout=120)
        refused(res, *said)
    res = run("batch", str(BATCH), "--rules", str(folders[1][0]), timeout=120)
    refused(res, "--rules", "is a FIFO")
    assert not marker.exists()


def test_an_include_the_working_directory_would_answer_differently_is_refused(tmp_path):
    """clingo looks for an included name in the working directory before beside the including file:
    where both hold a different file, which one is read depends on where the command runs."""
    folder = copy(tmp_path)
    (folder / "extra.lp").write_text("extra_beside.\n")
    append(folder / "facts.lp", '\n#include "extra.lp".\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "extra.lp").write_text("extra_elsewhere.\n")
    res = run("decide", str(CASE), "--json", env={"PA_SOLVER_LOGIC": str(folder)}, cwd=elsewhere)
    refused(res, '#include "extra.lp" names two files')
    res = run("decide", str(CASE), "--json", env={"PA_SOLVER_LOGIC": str(folder)}, cwd=tmp_path)
    assert res.returncode == 0, res.stderr


# ------------------------------------------------------------------ item 5: bad folders, every command

def _drop(name):
    return lambda f: (f / name).unlink()


def _undeclared_fact(f):
    append(f / "ohsu.lp", "\ntest(ohsu_x_t, no_such_fact). branch(ohsu_i_1, ohsu_x_t).\n")


def _enum_value(f):
    append(f / "ohsu.lp", '\nin_set(ohsu_x_t, ph_status, "maybe"). test(ohsu_x_t, ph_status). '
                          'branch(ohsu_i_1, ohsu_x_t).\n')


def _no_document(f):
    text = (f / "ohsu.lp").read_text()
    start = text.index("policy_document(ohsu,")
    (f / "ohsu.lp").write_text(text[:start] + text[text.index(").", start) + 2:])


def _two_plans(f):
    append(f / "bcbsnc.lp", '\nplan(ohsu, "Another plan under the same id").\n')


def _fact_twice(f):
    append(f / "ohsu.lp", "\nfact(age_years, integer).\n")


def _syntax(f):
    append(f / "ohsu.lp", "\nnot ASP(\n")


BAD = {
    "no_vocabulary": (_drop("vocabulary.lp"), "has no vocabulary.lp"),
    "no_show": (_drop("show.lp"), "has no show.lp"),
    "no_facts": (_drop("facts.lp"), "does not declare the fact drug"),
    "undeclared_fact": (_undeclared_fact, "test on an undeclared fact: ohsu_x_t"),
    "enum_value": (_enum_value, "value not in the fact's domain: ohsu_x_t"),
    "no_document": (_no_document, "plan without its policy_document: ohsu"),
    "two_plans": (_two_plans, "two plans with the id ohsu"),
    "fact_twice": (_fact_twice, "fact age_years is declared twice differently"),
    "syntax": (_syntax, "ohsu.lp:"),
}


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> dict:
    out = {}
    for name, (edit, said) in BAD.items():
        folder = copy(tmp_path_factory.mktemp(name))
        edit(folder)
        out[name] = (folder, said)
    return out


@pytest.mark.parametrize("name", sorted(BAD))
def test_each_bad_rule_base_is_refused_by_decide(bad, name):
    """RULES.md's bad rule bases and a missing required file, through PA_SOLVER_LOGIC (it was exit 70,
    "internal error", for every one of them; two plans with one id and a fact declared twice differently
    were decided)."""
    folder, said = bad[name]
    refused(run("decide", str(CASE), env={"PA_SOLVER_LOGIC": str(folder)}, timeout=120), str(folder), said)


def test_the_files_of_a_double_declaration_are_named(bad):
    with pytest.raises(RuleBaseError, match=r"facts.lp: fact\(age_years,number\); ohsu.lp: fact\(age_years,integer\)"):
        Solver(bad["fact_twice"][0])
    with pytest.raises(RuleBaseError, match=r"bcbsnc.lp: plan\(ohsu,.*; ohsu.lp: plan\(ohsu,"):
        Solver(bad["two_plans"][0])


@pytest.mark.parametrize("name", ["no_vocabulary", "two_plans", "syntax"])
def test_bad_rule_bases_are_refused_by_batch_diff_and_serve(bad, name, tmp_path):
    folder, said = bad[name]
    env = {"PA_SOLVER_LOGIC": str(folder)}
    refused(run("batch", str(BATCH), env=env, timeout=120), said)
    refused(run("batch", str(BATCH), "--rules", str(folder), timeout=120), "--rules", said)
    refused(run("diff", "ohsu", "bcbsnc", env=env, timeout=120), said)
    store = str(tmp_path / "decisions.sqlite")
    refused(run("serve", "--port", "0", "--store", store, env=env, timeout=120), said)
    refused(run("serve", "--port", "0", "--store", store, "--rules", str(folder), timeout=120), "--rules", said)


@pytest.fixture(scope="module")
def endless(tmp_path_factory) -> Path:
    folder = copy(tmp_path_factory.mktemp("endless"))
    append(folder / "facts.lp", ENDLESS)
    return folder


def test_a_grounding_that_never_ends_is_stopped_at_the_time_limit(endless, tmp_path):
    limit = {"PA_SOLVER_LOAD_SECONDS": "1"}
    refused(run("decide", str(CASE), env={**limit, "PA_SOLVER_LOGIC": str(endless)}),
            f"the rule base in {endless} did not load within 1 s", "PA_SOLVER_LOAD_SECONDS")
    refused(run("batch", str(BATCH), "--rules", str(endless), env=limit), "did not load within 1 s")
    refused(run("serve", "--port", "0", "--store", str(tmp_path / "d.sqlite"), "--rules", str(endless), env=limit),
            "did not load within 1 s")
    other = copy(tmp_path, "other")
    append(other / "ohsu.lp", ENDLESS)
    refused(run("diff", "ohsu", "--against", str(other), env=limit), "did not load within 1 s")


def test_a_grounding_past_the_memory_limit_is_stopped(endless):
    res = run("decide", str(CASE), env={"PA_SOLVER_LOAD_SECONDS": "600", "PA_SOLVER_LOAD_MB": "64",
                                        "PA_SOLVER_LOGIC": str(endless)})
    refused(res, f"the rule base in {endless} took more than 64 MB of memory to load", "PA_SOLVER_LOAD_MB")


def test_a_file_past_the_size_limit_is_refused_before_clingo_parses_it(tmp_path):
    """A 50 MB rule file kept `serve` from being ready for 153 s; now its size refuses it at once."""
    folder = copy(tmp_path)
    with open(folder / "data.lp", "wb") as fh:         # sparse: nothing is written, the size says it all
        fh.truncate(50 << 20)
    env = {"PA_SOLVER_LOGIC": str(folder)}
    refused(run("decide", str(CASE), env=env, timeout=60), "data.lp: 50.0 MB, past the 4 MB", "PA_SOLVER_RULES_MB")
    refused(run("diff", "ohsu", "--against", str(folder), timeout=60), "data.lp: 50.0 MB")
    refused(run("serve", "--port", "0", "--store", str(tmp_path / "d.sqlite"), env=env, timeout=60), "50.0 MB")
    refused(run("decide", str(CASE), env={"PA_SOLVER_RULES_MB": "many"}), "PA_SOLVER_RULES_MB='many'")


def _rss_mb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the grounding's memory from /proc")
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_grounding_ends_the_command_cleanly(endless, sig, code):
    """SIGTERM was ignored while clingo grounded (no Python handler runs inside C), and when it
    did run, inside clingo's logger callback, it printed a traceback and `PANIC: exception in
    nothrow scope`."""
    env = {**os.environ, "PA_SOLVER_LOGIC": str(endless), "PA_SOLVER_LOAD_SECONDS": "600",
           "PA_SOLVER_LOAD_MB": "100000"}
    proc = subprocess.Popen([sys.executable, "-m", "solver.cli", "decide", str(CASE)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        # grounding under way: the command alone holds about 30 MB, the endless grounding grows past it
        while _rss_mb(proc.pid) < 150:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code, (proc.returncode, err[-3000:])
    assert out == "" and "Traceback" not in err and "PANIC" not in err, err[-3000:]


def test_the_limits_are_in_the_help():
    for args in (["--help"], ["decide", "--help"], ["batch", "--help"], ["serve", "--help"]):
        got = " ".join(run(*args).stdout.split())
        for name in ("PA_SOLVER_LOAD_SECONDS", "PA_SOLVER_LOAD_MB", "PA_SOLVER_RULES_MB"):
            assert name in got, (args, got)
