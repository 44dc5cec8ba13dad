"""Engines: the local process pool and Dask give the same bytes, in order,
bad lines included; Dask runs here on its local in-process cluster."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from solver.analysis import report, report_out
from solver.analysis.batch import stream_encoded
from solver.analysis.workers import EngineError

distributed = pytest.importorskip("distributed", reason="Dask is not installed (pip install 'pa-solver[dask]')")

ROOT = Path(__file__).resolve().parents[2]
from bench import cases  # noqa: E402

LINES = [json.dumps(c) for c in cases(150, seed=7)] + ["{not json", json.dumps({"facts": {"age_years": -1}})]


@pytest.fixture(scope="module")
def client():
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as c:
        yield c


def test_dask_in_process_cluster_gives_the_local_bytes_in_order(client):
    local = list(stream_encoded(LINES, workers=2, chunk=16, max_changes=1))
    on_dask = list(stream_encoded(LINES, chunk=16, max_changes=1, engine="dask", scheduler=client))
    assert on_dask == local
    assert [x[0] for x in local[-2:]] == ["error", "error"]
    assert len(local) == len(LINES)


def test_dask_report_equals_the_local_report(client, tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_text("\n".join(LINES) + "\n")
    local = report_out.as_json(report.tally(str(path), workers=2))
    on_dask = report_out.as_json(report.tally(str(path), engine="dask", scheduler=client))
    assert on_dask == local
    assert local["cases"] == len(LINES)


def test_an_unreachable_scheduler_is_a_clear_error():
    with pytest.raises(EngineError, match="unknown engine"):
        list(stream_encoded(LINES[:2], engine="spark"))
    out = subprocess.run([sys.executable, "-m", "solver.cli", "batch", "-", "--engine", "dask", "--scheduler",
                          "tcp://127.0.0.1:9"], input=LINES[0], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2 and "cannot reach a Dask scheduler" in out.stderr
