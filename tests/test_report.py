"""`pa-solver report` on a small hand-made batch: counts checked by hand,
the same report from cases and from `pa-solver batch` output, CSV and Parquet
read back with pandas, byte ranges that cut lines anywhere."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from solver import report

ROOT = Path(__file__).resolve().parent.parent
ADULT = json.loads((ROOT / "examples/ohsu_adult_rr.json").read_text())


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "solver.cli", *args], capture_output=True, text=True, cwd=ROOT, **kw)


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
    # The other pathways' regimen criteria are broken in both single-agent cases.
    assert t.not_met["ohsu"]["ohsu_iii_a2b"] == 2
    # CD22 flips both ways: negative denies the approved case and the blank one (every
    # OHSU pathway needs it), positive approves the denied one.
    assert t.flips["ohsu"][("cd22_positive", "denied", "values", False)] == 2
    assert t.flips["ohsu"][("cd22_positive", "approved", "values", True)] == 1
    # The blank case: the adult and the pediatric single-agent pathways, eleven facts each.
    assert len(t.missing["ohsu"]) == 2
    assert {k[0] for k in t.missing["ohsu"]} == {"ohsu_adult_rr_single", "ohsu_pediatric_rr_single"}
    assert all(len(k[1]) == 11 and n == 1 for k, n in t.missing["ohsu"].items())


def test_results_from_batch_give_the_same_report_as_cases(batch, tmp_path):
    decided = cli("batch", str(batch), "--max-changes", "1", "--workers", "1", check=True).stdout
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
    full.write_text(cli("batch", str(batch), "--max-changes", "1", "--workers", "1", check=True).stdout)
    lean.write_text(cli("batch", str(batch), "--max-changes", "1", "--workers", "1", "--lean", check=True).stdout)
    assert lean.stat().st_size < full.stat().st_size / 3
    first = json.loads(lean.read_text().splitlines()[0])["results"][0]
    assert "policy" not in first and first["not_met"] and "criteria" not in first["pathways"][0]
    assert report.as_json(report.tally(str(lean), workers=1)) == report.as_json(report.tally(str(full), workers=1))


def test_decided_results_without_changes_count_no_flips(batch, tmp_path):
    results = tmp_path / "plain.jsonl"
    results.write_text(cli("batch", str(batch), "--workers", "1", check=True).stdout)
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


def test_byte_ranges_count_every_line_once(tmp_path):
    """Pieces of any size, cutting lines anywhere, count each line once."""
    lines = [json.dumps({"case_id": str(i), "plans": ["bcbsnc"], "facts": {"diagnosis": "non_cancer"}})
             for i in range(40)]
    path = tmp_path / "many.jsonl"
    path.write_text("\n".join(lines) + "\n")
    whole = report.count_segment((str(path), 0, path.stat().st_size), 0)
    for size in (1, 7, 50, 333, 10_000):
        parts = report.Tally()
        for seg in report._segments(str(path), size):
            parts.merge(report.count_segment(seg, 0))
        assert parts.cases == whole.cases == 40, size
        assert parts.decisions == whole.decisions
