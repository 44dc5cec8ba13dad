"""No string from input reaches an output unchecked, and no hostile line loses a batch.

Issue 16's hostile run: a lone UTF-16 surrogate in a case id crashed `batch` and `explain` in
the writer (every later line lost); a FHIR value that breaks CASE.md vanished into a conflict;
a leap-second or year-only Claim.created said "no Claim.created"; a transaction-response Bundle
was accepted; `report --compare` on a file of cases compared nothing and exited 0; a weight
written as the string "78" was accepted.  Each now has one clear line, and a batch that holds
all of them gives one output line per input line, in order, with one worker or two.

Surrogates are fed to every command and output format: in a case id (high, low, in a line that
is not JSON), in a FHIR Bundle's id, and in file and folder names (bytes that are not UTF-8
reach Python as surrogate escapes).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from solver import decide, decide_many
from solver.base.contract import CaseError
from solver.text.words import safe, utf8
from conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]
PAS = json.loads((ROOT / "examples" / "fhir" / "pas_request_besponsa.json").read_text())


def bundle(edit) -> bytes:
    b = copy.deepcopy(PAS)
    edit(b)
    return json.dumps(b).encode()


def _qr_item(b: dict, item: dict) -> None:
    (qr,) = [e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "QuestionnaireResponse"]
    qr["item"].append(item)


def _resource(b: dict, rtype: str, rid: str | None = None) -> dict:
    return next(e["resource"] for e in b["entry"]
                if e["resource"]["resourceType"] == rtype and (rid is None or e["resource"]["id"] == rid))


# (line, what its output line must say): an error's words, or "decided"
HOSTILE = [
    (b'{"case_id": "a\\ud800b", "facts": {}}', "lone UTF-16 surrogate"),
    (b'{"case_id": "ok-1", "facts": {"age_years": 40}}', "decided"),
    (b'{"case_id": "\\udc00", "facts": {"age_years": 5}}', "lone UTF-16 surrogate"),
    (b'{"case_id": "a\\ud800b", "facts": {', "not valid JSON"),
    (b'{"case_id": "\\udfff" "facts"}', "not valid JSON"),
    (bundle(lambda b: _qr_item(b, {"linkId": "age_years", "answer": [{"valueDecimal": 200}]})),
     "QuestionnaireResponse/qr1 item[linkId=age_years]: facts.age_years: Input should be less than or equal to 130"),
    (bundle(lambda b: _resource(b, "Claim").update(created="2016-12-31T23:59:60Z")), "decided"),
    (bundle(lambda b: _resource(b, "Claim").update(created="2025")),
     "Claim/claim1 created: '2025' is not a full date"),
    (bundle(lambda b: b.update(type="transaction-response")), "Bundle.type transaction-response: a response bundle"),
    (bundle(lambda b: b.update(type="batch-response")), "Bundle.type batch-response: a response bundle"),
    (bundle(lambda b: _resource(b, "Observation", "obs-weight-kg")["valueQuantity"].update(value="78")),
     "valueQuantity.value: '78' is not a JSON number"),
    (bundle(lambda b: _qr_item(b, {"linkId": "cd22_positive", "answer": [{"valueBoolean": "true"}]})),
     "valueBoolean: 'true' is not a JSON boolean"),
    (b'{"case_id": "w-78", "facts": {"weight_kg": "78"}}', "facts.weight_kg: Input should be a valid number"),
    (b'{"case_id": "big", "facts": {"age_years": 1e400}}', "facts.age_years"),
    (b"[" * 10000, "nested more than 64 deep"),
    (b'{"case_id": "\xff\xfe"}', "not UTF-8"),
    (b'{"case_id": "ok-2", "request": "continuation", "plans": ["cvs_caremark"]}', "decided"),
]


def cli(*args, stdin: bytes | None = None, cwd=ROOT) -> subprocess.CompletedProcess:
    return run_cli(*args, stdin=stdin, cwd=cwd, text=False)


def assert_clean(p: subprocess.CompletedProcess) -> None:
    """Exit 0, 1 or 2; no traceback; both streams UTF-8; an error is one line on stderr."""
    assert p.returncode in (0, 1, 2), p
    assert b"Traceback" not in p.stderr and b"Traceback" not in p.stdout, p.stderr.decode(errors="replace")
    p.stdout.decode("utf-8")
    err = p.stderr.decode("utf-8")
    if p.returncode == 2:
        assert err.startswith("error: ") and err.count("\n") == 1, err


@pytest.fixture(scope="module")
def hostile_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("hostile") / "hostile.jsonl"
    path.write_bytes(b"\n".join(line for line, _ in HOSTILE) + b"\n")
    return path


@pytest.mark.parametrize("command", ["batch", "explain", "batch --why"])
@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_batch_of_every_hostile_line_gives_one_line_per_input_line(hostile_file, command, workers):
    name, *extra = command.split()
    p = cli(name, str(hostile_file), "--workers", workers, *extra)
    assert_clean(p)
    assert p.returncode == 1                          # some lines are errors, all are written
    out = [json.loads(line) for line in p.stdout.decode("utf-8").splitlines()]
    assert len(out) == len(HOSTILE)
    for n, (got, (_, want)) in enumerate(zip(out, HOSTILE), 1):
        if want == "decided":
            assert "results" in got, (n, got)
        else:
            assert got["line"] == n and want in got["error"], (n, got)
            assert got["case_id"] is None or got["case_id"].encode("utf-8")      # an id echoed is text
    assert [o.get("case_id") for o in out if "results" in o] == ["ok-1", "example-pas-besponsa", "ok-2"]


def test_the_leap_second_claim_gives_its_date(hostile_file):
    p = cli("batch", str(hostile_file), "--workers", "1")
    (leap,) = [json.loads(line) for line in p.stdout.decode().splitlines()
               if '"request_date"' in line and "results" in line]
    assert leap["fhir"]["request_date"] == "2016-12-31"


# ------------------------------------------------------------------ every command, every format

@pytest.fixture(scope="module")
def place(tmp_path_factory) -> Path:
    """Files with surrogates inside and in their names (bytes that are not UTF-8)."""
    d = tmp_path_factory.mktemp("surrogates")
    (d / "one.json").write_bytes(HOSTILE[0][0])
    (d / "notjson.json").write_bytes(HOSTILE[3][0])
    (d / "lines.jsonl").write_bytes(b"\n".join(line for line, _ in HOSTILE[:5]) + b"\n")
    (d / "bundle.json").write_bytes(bundle(lambda b: b.update(id="b\\ud800".encode().decode("unicode_escape"))))
    raw = os.fsencode(d)
    shutil.copy(ROOT / "examples" / "ohsu_adult_rr.json", raw + b"/case\xff.json")
    os.mkdir(raw + b"/rules\xff")
    for f in (ROOT / "logic").glob("*.lp"):
        shutil.copy(f, raw + b"/rules\xff/" + f.name.encode())
    results = cli("batch", str(d / "lines.jsonl"), "--workers", "1")
    (d / "results.jsonl").write_bytes(results.stdout)
    return d


def _runs(d: Path):
    raw = os.fsencode(d)
    single = [str(d / "one.json"), str(d / "notjson.json"), str(d / "bundle.json"), raw + b"/case\xff.json",
              raw + b"/missing\xff.json"]
    for f in single:
        for fmt in ([], ["--json"], ["--format", "pas", "--as-of", "2025-01-01"], ["--verbose"]):
            yield ("decide", f, *fmt)
        yield ("why", f)
        yield ("explain", f)
        yield ("explain", f, "--json")
        yield ("questionnaire", f)
    for fmt in ([], ["--json"], ["--format", "pas", "--as-of", "2025-01-01"]):
        yield ("decide", "-", *fmt)                     # standard input: one.json's bytes
    for w in ("1", "2"):
        yield ("batch", str(d / "lines.jsonl"), "--workers", w)
        yield ("batch", str(d / "lines.jsonl"), "--workers", w, "--lean")
        yield ("batch", str(d / "lines.jsonl"), "--workers", w, "--why")
        yield ("explain", str(d / "lines.jsonl"), "--workers", w, "--json")
    yield ("batch", str(d / "lines.jsonl"), "--rules", raw + b"/rules\xff")
    yield ("diff", "ohsu", "--against", raw + b"/rules\xff")
    yield ("diff", "ohsu", "--against", raw + b"/rules\xff", "--json")
    yield ("coverage", b"oh\xffsu")
    for fmt in ("table", "json", "csv"):
        yield ("report", str(d / "lines.jsonl"), "--format", fmt, "--workers", "1")
        yield ("report", str(d / "results.jsonl"), "--format", fmt, "--workers", "1")
    yield ("report", str(d / "lines.jsonl"), "--format", "json", "--output", raw + b"/report\xff.json")
    yield ("report", "--compare", str(d / "results.jsonl"), str(d / "results.jsonl"))
    yield ("report", "--compare", str(d / "results.jsonl"), str(d / "results.jsonl"), "--format", "json")


def test_surrogates_reach_every_command_and_format_and_none_gives_a_traceback(place):
    ran = 0
    for args in _runs(place):
        p = cli(*args, stdin=HOSTILE[0][0] if "-" in args else None, cwd=place)
        assert_clean(p)
        ran += 1
        if "one.json" in str(args[1]) or args[1] == "-":
            assert b"lone UTF-16 surrogate" in p.stderr
    assert ran >= 57
    # the folder and file names that are not UTF-8: read where Python can, refused in one line where clingo cannot
    assert cli("decide", os.fsencode(place) + b"/case\xff.json", cwd=place).returncode == 0
    against = cli("diff", "ohsu", "--against", os.fsencode(place) + b"/rules\xff", cwd=place)
    assert against.returncode == 2 and b"is not UTF-8 text" in against.stderr


def test_report_compare_on_a_file_of_cases_says_so(place):
    p = cli("report", "--compare", str(place / "lines.jsonl"), str(place / "results.jsonl"))
    assert_clean(p)
    assert p.returncode == 2 and b"holds no results to compare" in p.stderr
    cases = cli("report", "--compare", str(ROOT / "examples" / "batch.jsonl"), str(place / "results.jsonl"))
    assert cases.returncode == 2 and b"(200 cases or bundles, not results): decide them first" in cases.stderr


# ------------------------------------------------------------------ the Python API and the writers

def test_the_python_api_refuses_a_case_id_that_is_not_text():
    with pytest.raises(CaseError, match="case_id: .*not text: a lone UTF-16 surrogate at 1") as err:
        decide({"case_id": "a\ud800", "facts": {}})
    assert err.value.case_id is None                  # an error cannot echo what is not text
    got = list(decide_many([{"case_id": "x\udc00"}, {"case_id": "fine"}], workers=1))
    assert isinstance(got[0], CaseError) and got[1].case_id == "fine"


def test_every_writer_writes_a_stray_surrogate_as_its_escape():
    assert utf8("a\ud800b\udfff") == b"a\\ud800b\\udfff"
    assert json.loads(utf8(json.dumps({"id": "a\ud800"}, ensure_ascii=False))) == {"id": "a\ud800"}   # JSON's escape
    assert safe("x\udcff\n") == "x\\udcff\\x0a"
