"""`pa-solver report` on a small hand-made batch: counts checked by hand,
the same report from cases and from `pa-solver batch` output, CSV and Parquet
read back with pandas, byte ranges that cut lines anywhere."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from solver.analysis import report, report_out, report_shape, report_tally
from conftest import run_cli as cli

ROOT = Path(__file__).resolve().parents[2]
ADULT = json.loads((ROOT / "examples/ohsu_adult_rr.json").read_text())


def batch_out(*args) -> str:
    """`pa-solver batch` output; the batch has a bad line, so the exit status may say so (0 or 1)."""
    done = cli("batch", *args)
    assert done.returncode in (0, 1) and done.stdout, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Path:
    """Five lines for OHSU: approved, denied (CD22 negative), nothing known
    (needs_info), Blincyto (no policy), and one line that is not JSON."""
    approved = {**ADULT, "case_id": "a", "plans": ["ohsu"]}
    denied = {**approved, "case_id": "d", "facts": {**ADULT["facts"], "cd22_positive": False}}
    blank = {"case_id": "n", "plans": ["ohsu"]}
    blincyto = {"case_id": "b", "drug": "blinatumomab", "plans": ["ohsu"], "facts": {"age_years": 30}}
    path = tmp_path_factory.mktemp("report") / "cases.jsonl"
    path.write_text("\n".join(json.dumps(c) for c in (approved, denied, blank, blincyto)) + "\n{oops\n\n")
    return path


def test_counts_on_a_hand_made_batch(batch):
    t = report.tally(str(batch), workers=1)
    assert t.cases == 5 and t.explained == 4
    assert dict(t.errors) == {"(line)": 1}
    assert t.decisions == {"ohsu": {"approved": 1, "denied": 1, "needs_info": 1, "no_policy": 1}}
    # CD22 (OHSU III.2) is broken by the denied case alone, and unknown in the blank one.
    assert t.not_met["ohsu"]["ohsu_iii_2"] == 1
    assert t.unknown["ohsu"]["ohsu_iii_2"] == 1
    # Counted once per case although every initial pathway carries it.
    from solver import decide

    (r,) = decide({**ADULT, "plans": ["ohsu"]}).results
    assert sum(c.id == "ohsu_iii_2" for pw in r.pathways for c in pw.criteria) > 1
    # Blocking criteria count only where the plan did not approve, on the pathways closest to
    # approval: the other pathways' regimen criteria (not met in the approved case, and in the
    # denied one beside CD22) block nothing, so CD22 is the only criterion not met.
    assert t.not_met == {"ohsu": {"ohsu_iii_2": 1}}
    # The blank case: every pathway is open; the closest are the two single-agent pathways
    # (nine unknown criteria each, the others ten or eleven), counted together, once.
    assert {"ohsu_iii_a2a", "ohsu_iii_p3", "ohsu_iii_p1"} <= set(t.unknown["ohsu"])
    assert not {"ohsu_iii_a2b", "ohsu_iii_a2c", "ohsu_iii_a3"} & set(t.unknown["ohsu"])
    assert set(t.unknown["ohsu"].values()) == {1}
    # CD22 flips both ways: negative denies the approved case and the blank one (every
    # OHSU pathway needs it), positive approves the denied one.
    assert t.flips["ohsu"][("cd22_positive", "denied", "values", False)] == 2
    assert t.flips["ohsu"][("cd22_positive", "approved", "values", True)] == 1
    # The blank case: the adult and the pediatric single-agent pathways, eleven facts each, and
    # their B-lymphoblastic lymphoma twins (case review, CASE.md version 2), with the same facts.
    assert len(t.missing["ohsu"]) == 4
    assert {k[0] for k in t.missing["ohsu"]} == {"ohsu_adult_rr_single", "ohsu_pediatric_rr_single",
                                                 "ohsu_lbl_adult_rr_single", "ohsu_lbl_pediatric_rr_single"}
    assert all(len(k[1]) == 11 and n == 1 for k, n in t.missing["ohsu"].items())


def test_results_from_batch_give_the_same_report_as_cases(batch, tmp_path):
    decided = batch_out(str(batch), "--max-changes", "1", "--workers", "1")
    results = tmp_path / "results.jsonl"
    results.write_text(decided)
    from_cases = cli("report", str(batch), "--format", "json", check=True).stdout
    from_results = cli("report", str(results), "--format", "json", check=True).stdout
    assert from_cases == from_results
    assert json.loads(from_cases)["plans"]["ohsu"]["decisions"] == {"approved": 1, "denied": 1, "needs_info": 1,
                                                                   "no_policy": 1}


def test_lean_results_give_the_same_report(batch, tmp_path):
    full = tmp_path / "full.jsonl"
    lean = tmp_path / "lean.jsonl"
    full.write_text(batch_out(str(batch), "--max-changes", "1", "--workers", "1"))
    lean.write_text(batch_out(str(batch), "--max-changes", "1", "--workers", "1", "--lean"))
    assert lean.stat().st_size < full.stat().st_size / 3
    first = json.loads(lean.read_text().splitlines()[0])["results"][0]
    assert "policy" not in first and "not_met" not in first and "criteria" not in first["pathways"][0]
    # Per pathway its status; per plan that did not approve, the blocking criteria by the rule, as the
    # full line gives them.
    from solver.case.blocking import blocking

    for lean_line, full_line in zip(lean.read_text().splitlines(), full.read_text().splitlines()):
        if '"error"' in lean_line:                  # the batch's line that is not JSON
            continue
        for lr, fr in zip(json.loads(lean_line)["results"], json.loads(full_line)["results"]):
            assert lr["pathways"] == [{"id": pw["id"], "status": pw["status"]} for pw in fr["pathways"]]
            if fr["decision"] == "approved":
                assert "blocking" not in lr
            else:
                nm, un = blocking((pw["outcome"], [c["id"] for c in pw["criteria"] if c["status"] == "not_met"],
                                   [c["id"] for c in pw["criteria"] if c["status"] == "unknown"])
                                  for pw in fr["pathways"])
                assert lr["blocking"] == {"not_met": nm, "unknown": un}
    assert any(r.get("blocking", {}).get("not_met") for line in lean.read_text().splitlines()
               for r in json.loads(line)["results"])
    assert report_out.as_json(report.tally(str(lean), workers=1)) == report_out.as_json(report.tally(str(full), workers=1))


def test_decided_results_without_changes_count_no_flips(batch, tmp_path):
    results = tmp_path / "plain.jsonl"
    results.write_text(batch_out(str(batch), "--workers", "1"))
    t = report.tally(str(results), workers=1)
    assert t.cases == 5 and t.explained == 0 and not t.flips
    assert t.decisions["ohsu"]["denied"] == 1


def test_csv_and_parquet_read_back_with_pandas(batch, tmp_path):
    csv = tmp_path / "r.csv"
    pq = tmp_path / "r.parquet"
    cli("report", str(batch), "--format", "csv", "--output", str(csv), check=True)
    cli("report", str(batch), "--format", "parquet", "--output", str(pq), check=True)
    a = pd.read_csv(csv, keep_default_na=False)
    b = pd.read_parquet(pq)
    assert list(a.columns) == list(b.columns) == ["section", "plan", "item", "decision", "detail", "count"]
    assert a["count"].tolist() == b["count"].tolist()
    decisions = b[b.section == "decision"].set_index("item")["count"].to_dict()
    assert decisions == {"approved": 1, "denied": 1, "needs_info": 1, "no_policy": 1}
    flips = b[(b.section == "flip") & (b.item == "cd22_positive")]
    assert sorted(flips.decision) == ["approved", "denied"]
    assert b[b.section == "error"]["count"].sum() == 1


def test_parquet_needs_a_path_and_missing_files_are_named(batch):
    bad = cli("report", str(batch), "--format", "parquet")
    assert bad.returncode == 2 and "--output" in bad.stderr
    gone = cli("report", "no/such.jsonl")
    assert gone.returncode == 2 and "no/such.jsonl" in gone.stderr


def test_stdin_and_the_table(batch):
    out = cli("report", "-", input=batch.read_text(), check=True).stdout
    assert "ohsu: " in out and "cd22_positive = false -> denied" in out
    assert "error (line): 1" in out


def test_the_table_fits_80_columns_in_a_pipe_and_columns_when_set(tmp_path):
    """The table of examples/batch.jsonl piped (no terminal, no COLUMNS), to a file, and with
    COLUMNS=60: no line over the width; only the line breaks differ from the whole lines."""
    import os

    def report_table(columns, *extra):
        env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
        if columns:
            env["COLUMNS"] = columns
        done = cli("report", "examples/batch.jsonl", "--workers", "2", "--no-progress", *extra, env=env, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout

    whole = report_table("10000")
    assert max(len(line) for line in whole.splitlines()) > 80                # there was something to wrap
    report_table(None, "--output", str(tmp_path / "r.txt"))
    for got, width in ((report_table(None), 80), ((tmp_path / "r.txt").read_text(), 80), (report_table("60"), 60)):
        lines = got.splitlines()
        assert max(len(line) for line in lines) <= width, [line for line in lines if len(line) > width]
        assert got.split() == whole.split()
        heads = lambda text: [line.split(":")[0] for line in text.splitlines() if line and not line.startswith(" ")]
        assert heads(got) == heads(whole)                       # a wrapped line goes on indented, never at 0


def test_the_compare_table_fits_80_columns_in_a_pipe(batch, tmp_path):
    import os

    results = tmp_path / "results.jsonl"
    results.write_text(batch_out(str(batch)))
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    piped = cli("report", "--compare", str(results), str(results), env=env, timeout=300)
    whole = cli("report", "--compare", str(results), str(results), env={**env, "COLUMNS": "10000"}, timeout=300)
    assert piped.returncode == whole.returncode == 0, piped.stderr
    assert max(len(line) for line in whole.stdout.splitlines()) > 80
    assert max(len(line) for line in piped.stdout.splitlines()) <= 80 and piped.stdout.split() == whole.stdout.split()


def test_byte_ranges_count_every_line_once(tmp_path):
    """Pieces of any size, cutting lines anywhere, count each line once."""
    lines = [json.dumps({"case_id": str(i), "plans": ["bcbsnc"], "facts": {"diagnosis": "non_cancer"}})
             for i in range(40)]
    path = tmp_path / "many.jsonl"
    path.write_text("\n".join(lines) + "\n")
    whole = report.count_segment((str(path), 0, path.stat().st_size), 0)
    for size in (1, 7, 50, 333, 10_000):
        parts = report_tally.Tally()
        for seg in report.segments(str(path), size):
            parts.merge(report.count_segment(seg, 0))
        assert parts.cases == whole.cases == 40, size
        assert parts.decisions == whole.decisions


# ------------------------------------------------------------------ the blocking rule

def test_the_blocking_rule_is_stated_in_the_json_and_the_table(batch):
    t = report.tally(str(batch), workers=1)
    assert report_out.as_json(t)["blocking_rule"] == report_out.BLOCKING_RULE
    assert "closest to approval" in report_out.BLOCKING_RULE
    assert f"criteria that block most ({report_out.BLOCKING_RULE}):" in report_out.render(t)
    assert "closest" in (report.__doc__ or "")


def _result(decision: str, pathways: list, plan: str = "ohsu") -> dict:
    return {"results": [{"plan": plan, "decision": decision, "pathways": pathways, "missing": []}]}


def _pw(outcome: str, not_met=(), unknown=()) -> dict:
    """A pathway of a full result line with these criteria not met and unknown (and one met)."""
    return {"id": "p", "outcome": outcome, "status": "x",
            "criteria": [{"id": "m", "status": "met"}] + [{"id": c, "status": "not_met"} for c in not_met]
            + [{"id": c, "status": "unknown"} for c in unknown]}


def test_closest_pathways_fewest_not_met_then_unknown_approved_before_case_review():
    t = report_tally.Tally()
    t.add_many([
        # approved: nothing blocks
        _result("approved", [_pw("approved", ["a"]), _pw("approved")]),
        # denied: the approved pathway with one criterion not met, not the one with two
        _result("denied", [_pw("approved", ["b", "c"]), _pw("approved", ["d"], ["u1", "u2"]),
                           _pw("case_review", [], [])]),
        # tie on not met (1): fewer unknown wins
        _result("denied", [_pw("approved", ["e"], ["u3"]), _pw("approved", ["f"], [])]),
        # a full tie: both pathways count, a criterion once
        _result("needs_info", [_pw("approved", [], ["g", "h"]), _pw("approved", [], ["g", "i"])]),
        # no approved pathway: the case_review ones
        _result("case_review", [_pw("case_review", ["j"]), _pw("case_review", ["k", "l"])]),
    ])
    assert dict(t.not_met["ohsu"]) == {"d": 1, "f": 1, "j": 1}
    assert dict(t.unknown["ohsu"]) == {"u1": 1, "u2": 1, "g": 1, "h": 1, "i": 1}


# ------------------------------------------------------------------ lines of the wrong shape

@pytest.fixture(scope="module")
def good_lines(batch) -> dict:
    """A lean and a full result line (explained) for each case of the batch."""
    from solver.analysis.batch import stream_encoded

    cases = [line for line in batch.read_text().splitlines() if line.startswith("{\"")]
    return {kind: [item[1] for item in stream_encoded(cases, workers=1, max_changes=1, lean=kind == "lean")
                   if item[0] == "ok"] for kind in ("lean", "full")}


BAD_LINES = {
    '{"results":"nope"}': "results",
    '{"results":{"plan":"ohsu"}}': "results",
    '{"results":[{"plan":"ohsu"}]}': "results[0].decision",
    '{"results":[1]}': "results[0]",
    '{"results":[{"plan":"zzz","decision":"denied","pathways":[],"missing":[]}]}': "results[0].plan",
    '{"results":[{"plan":"ohsu","decision":"zzz","pathways":[],"missing":[]}]}': "results[0].decision",
    '{"results":[{"plan":"ohsu","decision":"denied","missing":[]}]}': "results[0].pathways",
    '{"results":[{"plan":"ohsu","decision":"denied","pathways":"x","missing":[]}]}': "results[0].pathways",
    '{"results":[{"plan":"ohsu","decision":"denied","pathways":[{"outcome":"approved"}],"missing":[]}]}':
        "results[0].pathways[0].criteria",
    '{"results":[{"plan":"ohsu","decision":"denied","pathways":[{"outcome":"approved","criteria":'
    '[{"id":"c","status":"maybe"}]}],"missing":[]}]}': "results[0].pathways[0].criteria[0].status",
    '{"results":[{"plan":"ohsu","decision":"denied","pathways":[],"blocking":{"not_met":[1],'
    '"unknown":[]},"missing":[]}]}': "results[0].blocking.not_met[0]",
    '{"results":[{"plan":"ohsu","decision":"denied","pathways":[],"blocking":{"not_met":[]},'
    '"missing":[]}]}': "results[0].blocking.unknown",
    '{"results":[{"plan":"ohsu","decision":"denied","pathways":[],"blocking":[],"missing":[]}]}':
        "results[0].blocking",
    '{"results":[{"plan":"ohsu","decision":"denied","pathways":[{"outcome":"sometimes","criteria":[]}],'
    '"missing":[]}]}': "results[0].pathways[0].outcome",
    '{"results":[{"plan":"ohsu","decision":"denied","pathways":[]}]}': "results[0].missing",
    '{"results":[{"plan":"ohsu","decision":"needs_info","pathways":[],"missing":[{"pathway":"p","facts":"x"}]}]}':
        "results[0].missing[0].facts",
    '{"results":[{"plan":"ohsu","decision":"needs_info","pathways":[],"missing":[{"pathway":"p","facts":[{}]}]}]}':
        "results[0].missing[0].facts[0].fact",
    '{"results":[{"plan":"ohsu","decision":"denied","pathways":[],"missing":[],"changes":{}}]}':
        "results[0].changes",
    '{"results":[{"plan":"ohsu","decision":"denied","pathways":[],"missing":[],"changes":[{"decision":"approved",'
    '"facts":[{"fact":"age_years","values":"abc"}]}]}]}': "results[0].changes[0].facts[0].values",
    '{"results":[{"plan":"ohsu","decision":"denied","pathways":[],"missing":[],"changes":[{"decision":"approved",'
    '"facts":[{"fact":"age_years","values":[[1]]}]}]}]}': "results[0].changes[0].facts[0].values[0]",
    '{"results":[{"plan":"ohsu","decision":"denied","pathways":[],"missing":[],"changes":[{"decision":"approved",'
    '"facts":[{"fact":"age_years","range":[1,2,3]}]}]}]}': "results[0].changes[0].facts[0].range",
    '{"results":[{"plan":"ohsu","decision":"denied","pathways":[],"missing":[],"changes":[{"decision":"zzz",'
    '"facts":[{"fact":"age_years","values":[1]}]}]}]}': "results[0].changes[0].decision",
    '{"results":[{"plan":"ohsu","decision":"denied","pathways":[],"missing":[],"changes":[{"decision":"approved",'
    '"facts":[{"fact":7,"values":[1]}]}]}]}': "results[0].changes[0].facts[0].fact",
}


def test_result_lines_of_the_wrong_shape_are_errors_by_field(good_lines):
    """Each bad line is one error named by its field, between good lines of the
    same bulk, which still count: the same tally as the good lines alone."""
    good = good_lines["lean"]
    mixed, expected = [], {}
    for i, (bad, kind) in enumerate(BAD_LINES.items()):
        mixed += [good[i % len(good)], bad]
        expected[kind] = expected.get(kind, 0) + 1
    t = report.tally(mixed, workers=1)
    only_good = report.tally([good[i % len(good)] for i in range(len(BAD_LINES))], workers=1)
    assert dict(t.errors) == expected
    assert t.cases == only_good.cases + len(BAD_LINES)
    for kind in report_tally.Tally.KINDS:
        assert getattr(t, kind) == getattr(only_good, kind), kind
    for bad, kind in BAD_LINES.items():
        assert report_shape.fault(json.loads(bad)).split(":")[0] == kind


def _mutations(value, path=()):
    """(path, replacement) for every field of a parsed line: other types, and deletion."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _mutations(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value[:2]):
            yield from _mutations(v, path + (i,))
    if path:
        for other in (None, "zzz", 7, True, [], {}, [[1]], [None, None]):
            yield path, other
        yield path, KeyError                      # deleted


def _mutate(obj, path, new):
    import copy

    obj = copy.deepcopy(obj)
    parent = obj
    for step in path[:-1]:
        parent = parent[step]
    if new is KeyError:
        if isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
    else:
        parent[path[-1]] = new
    return obj


def test_no_mutation_of_a_result_line_raises_and_fault_agrees_with_counting(good_lines):
    """Every field of a lean and a full line replaced by each JSON type, or
    deleted: never an exception; the line is counted exactly when `fault`
    finds nothing, alone or in a bulk with good lines."""
    for kind in ("lean", "full"):
        for line in good_lines[kind][:3]:
            obj = json.loads(line)
            for path, new in _mutations(obj):
                bad = _mutate(obj, path, new)
                alone = report_tally.Tally()
                alone.add_many([bad])
                why = report_shape.fault(bad)
                assert alone.cases == 1, path
                assert (sum(alone.errors.values()) == 1) == (why is not None), (kind, path, new, why)
                if why is not None:
                    assert list(alone.errors) == [why.split(":")[0]]
                bulk = report_tally.Tally()
                bulk.add_many([obj, bad, obj])
                assert bulk.cases == 3 and bulk.errors == alone.errors, (kind, path, new)
                report_out.rows(bulk), report_out.render(bulk), report_out.as_json(bulk)   # presentable


# ------------------------------------------------------------------ bytes that are not a result

def test_hostile_bytes_are_errors_never_exceptions(good_lines, tmp_path):
    good = good_lines["lean"][0].encode()
    dup_result = good.replace(b'"results":', b'"results":"shadowed","results":', 1)
    dup_inner = good.replace(b'"decision":"', b'"decision":"approved","decision":"', 1)
    assert json.loads(dup_result) == json.loads(good)           # a reader taking the last key sees a good line
    nan = good.replace(b'"derived_facts":{', b'"derived_facts":{"x":NaN,', 1)
    assert nan != good
    lines = [
        b"\xef\xbb\xbf" + good,                                 # a BOM at the start of the file: read
        b"\xff\xfe not utf-8 \xc3\x28",
        b"[" * 10_000 + b"]" * 10_000,
        b'{"results":[],"n":' + b"7" * 5000 + b"}",
        b'{"case_id":"x","plans":["ohsu"],"facts":{"age_years":' + b"7" * 5000 + b"}}",
        dup_result,
        dup_inner,
        b'{"case_id":"d","case_id":"e","plans":["ohsu"]}',
        nan,
        b'{"results":["\\ud800"]}',
        good,
        b"   \n",
        b"\xef\xbb\xbf\n",
    ]
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    for t in (report.tally(str(path), workers=1), report.tally(path.read_bytes().splitlines(), workers=1),
              report.count_segment((str(path), 0, path.stat().st_size), 1)):
        assert t.cases == 11
        assert dict(t.errors) == {"(line)": 9}
        assert t.decisions == report.tally([good, good], workers=1).decisions
        report_out.render(t), report_out.write(t, "json", None), report_out.write(t, "csv", None)


def test_duplicate_keys_are_found_however_the_line_is_written():
    """A line that is not orjson's own encoding (spaces, escapes) is checked by
    counting colons; a colon escaped as \\u003a cannot hide a duplicate."""
    base = {"results": [{"plan": "ohsu", "decision": "denied", "pathways": [], "missing": []}]}
    spaced = json.dumps(base, indent=1).encode()
    assert report.tally([spaced], workers=1).errors == {}
    dup = spaced.replace(b'"decision": "denied"', b'"decision": "approved", "decision": "denied"')
    assert report.tally([dup], workers=1).errors == {"(line)": 1}
    hidden = dup.replace(b'"missing": []', b'"missing": [], "note": "\\u003a"')
    assert report.tally([hidden], workers=1).errors == {"(line)": 1}
    escaped = spaced.replace(b'"missing": []', b'"missing": [], "note": "\\u003a\\\\u003a"')
    assert report.tally([escaped], workers=1).errors == {}


# ------------------------------------------------------------------ sources

def test_a_path_that_is_not_a_file_raises_and_lines_still_count(tmp_path, good_lines):
    with pytest.raises(FileNotFoundError):
        report.tally(str(tmp_path / "results.jsonl"), workers=1)
    with pytest.raises(FileNotFoundError):
        report.tally(tmp_path / "results.jsonl", workers=1)
    with pytest.raises(IsADirectoryError):
        report.tally(str(tmp_path), workers=1)
    with pytest.raises(TypeError):
        report.tally(b"{}\n", workers=1)
    lines = good_lines["lean"]
    assert report.tally(lines, workers=1).cases == len(lines)
    assert report.tally(iter(line.encode() for line in lines), workers=1).cases == len(lines)
    assert report.tally(io.StringIO("\n".join(lines)), workers=1).cases == len(lines)


def test_explained_counts_cases_not_plan_results():
    """Every plan of a case carries `changes`; the case counts once."""
    lines = (ROOT / "examples" / "batch.jsonl").read_bytes().splitlines()[:40]
    t = report.count_lines(lines, max_changes=1)
    assert t.cases == 40 and t.explained == 40 - sum(t.errors.values())
    assert sum(sum(c.values()) for c in t.decisions.values()) > t.cases      # several plans per case


def test_report_reads_fhir_bundles_like_their_cases(tmp_path):
    from fhir_build import bundle_for

    cases = [json.loads(line) for line in (ROOT / "examples" / "batch.jsonl").read_text().splitlines()[:20]]
    for c in cases:
        c.pop("plans", None)                      # a bundle names no plans
        if c.get("facts", {}).get("age_years") is not None:
            c["facts"]["age_years"] = float(int(c["facts"]["age_years"]))
    as_cases = report.count_lines([json.dumps(c) for c in cases])
    as_bundles = report.count_lines([json.dumps(bundle_for(c)) for c in cases])
    assert report_out.as_json(as_bundles) == report_out.as_json(as_cases) and not as_bundles.errors
