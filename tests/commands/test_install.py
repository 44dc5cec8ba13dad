"""The project as a user installs it: a wheel built from the repository's
files, installed (not editable) into a fresh virtual environment, used from a
folder that is not the repository.  The rule base, the pages and the examples
must come with it.

The fresh environment borrows the third-party dependencies of the test
environment (a path entry, not an install of ours) so the test needs no
download of Streamlit and its kin; `solver` itself comes only from the wheel.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest
from solver.rules import declared
from conftest import CASE_MD_PLANS

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("pyproject.toml", "README.md", "solver", "logic", "ui", "examples", "policies")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in SHIPPED:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(path, src / name)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp / "dist"),
                            str(src)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (tmp / "dist").glob("pa_solver-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    (Path(purelib) / "borrowed_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    inst = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
                           str(wheel)], capture_output=True, text=True, timeout=600)
    if inst.returncode != 0 and "no such option: --python" in inst.stderr:      # pip < 22.3
        inst = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--prefix", str(venv),
                               str(wheel)], capture_output=True, text=True, timeout=600)
    assert inst.returncode == 0, inst.stderr[-3000:]
    work = tmp / "elsewhere"
    work.mkdir()
    return {"python": py, "bin": venv / "bin", "work": work, "wheel": wheel}


def run(installed, *args, **kw):
    return subprocess.run([str(installed["bin"] / "pa-solver"), *args], capture_output=True, cwd=installed["work"],
                          timeout=300, **kw)


def test_the_wheel_carries_the_rule_base_the_pages_and_the_examples(installed):
    import zipfile

    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    for folder, pattern in (("logic", "*.lp"), ("ui", "*.py"), ("examples", "*.json*"), ("policies", "*.txt")):
        for path in (ROOT / folder).glob(pattern):
            assert f"solver/{folder}/{path.name}" in names
    assert "solver/examples/fhir/pas_request_besponsa.json" in names and "solver/fhir/reader.py" in names


def test_the_installed_command_decides_like_the_source_tree(installed):
    where = subprocess.run([str(installed["python"]), "-c", "import solver, solver.base.paths as p; "
                            "print(solver.__file__); print(p.LOGIC)"], capture_output=True, text=True,
                           cwd=installed["work"], check=True).stdout.split()
    assert all("site-packages" in w for w in where), where          # not the repository
    example = ROOT / "examples" / "ohsu_adult_rr.json"
    got = run(installed, "decide", str(example), "--json")
    assert got.returncode == 0, got.stderr
    here = subprocess.run([sys.executable, "-m", "solver.cli", "decide", str(example), "--json"],
                          capture_output=True, cwd=ROOT, timeout=120)
    assert got.stdout == here.stdout
    batch = run(installed, "batch", str(ROOT / "examples" / "batch.jsonl"), "--workers", "2")
    assert batch.returncode == 0 and len(batch.stdout.splitlines()) == 200


def test_the_installed_command_reads_fhir_and_answers_in_fhir(installed):
    from fhir_build import bundle_for

    path = installed["work"] / "bundle.json"
    path.write_text(json.dumps(bundle_for(json.loads((ROOT / "examples" / "ohsu_adult_rr.json").read_text()))))
    for args in (["decide", str(path), "--json"], ["decide", str(path), "--format", "pas"],
                 ["questionnaire", str(path)], ["diff", "ohsu", "bcbsnc", "--json"]):
        got = run(installed, *args)
        assert got.returncode == 0 and json.loads(got.stdout), (args, got.stderr[-2000:])


def test_the_installed_command_finds_the_policy_documents(installed):
    got = run(installed, "coverage", "--json")
    assert got.returncode == 0, got.stderr[-2000:]
    plans = json.loads(got.stdout)["plans"]
    assert len(plans) == len(declared.of().plans) and all(p["counts"]["units"] and not p["counts"]["unaccounted"]
                                                          for p in plans)
    assert all(p["counts"]["units"] > 20 for p in plans if p["plan"] in CASE_MD_PLANS)


def test_the_installed_pages_run(installed):
    script = textwrap.dedent("""
        from streamlit.testing.v1 import AppTest
        from solver.base.paths import UI
        for page in ("whatif.py", "batch.py", "compare.py"):
            at = AppTest.from_file(str(UI / page), default_timeout=120)
            at.run()
            assert not at.exception, (page, at.exception)
        print("ok", UI)
    """)
    res = subprocess.run([str(installed["python"]), "-c", script], capture_output=True, text=True,
                         cwd=installed["work"], timeout=600)
    assert res.returncode == 0 and res.stdout.startswith("ok") and "site-packages" in res.stdout, res.stderr[-3000:]
