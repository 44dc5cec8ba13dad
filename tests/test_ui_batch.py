"""The Batch page under AppTest: the bundled example, an uploaded JSONL with a
bad line, counts that agree with `solver.report`."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from solver import report

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "ui" / "batch.py")
ADULT = json.loads((ROOT / "examples/ohsu_adult_rr.json").read_text())


def metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


def test_the_bundled_example_gives_the_report():
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, at.exception
    assert metrics(at)["Cases"] == "200"
    decisions = at.dataframe[0].value
    expected = report.as_json(report.tally(str(ROOT / "examples/batch.jsonl"), workers=1))
    for plan, counts in expected["plans"].items():
        assert decisions.loc[plan].to_dict() == {d: counts["decisions"].get(d, 0) for d in decisions.columns}
    table = at.dataframe[-1].value
    assert set(table.section) >= {"decision", "criterion_not_met", "flip", "smallest_missing_set"}


def test_an_uploaded_batch_with_a_bad_line():
    lines = [json.dumps({**ADULT, "plans": ["ohsu"]}),
             json.dumps({**ADULT, "plans": ["ohsu"], "facts": {**ADULT["facts"], "cd22_positive": False}}),
             json.dumps({"facts": {"age_years": 999}})]
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.file_uploader(key="batch:upload").set_value(("mine.jsonl", "\n".join(lines).encode(), "application/json"))
    at.run()
    assert not at.exception, at.exception
    m = metrics(at)
    assert m["Cases"] == "3" and m["Could not be read"] == "1"
    assert any("facts.age_years" in w.value for w in at.warning)
    decisions = at.dataframe[0].value
    assert decisions.loc["ohsu"].to_dict() == {"approved": 1, "denied": 1}
    table = at.dataframe[-1].value
    flips = table[(table.section == "flip") & (table.item == "cd22_positive")]
    assert sorted(flips.decision) == ["approved", "denied"]


def test_the_app_opens_on_the_what_if_page():
    at = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=120).run()
    assert not at.exception, at.exception
    assert any(m.value.startswith("#### OHSU Health Services") for m in at.markdown)


def test_a_large_upload_is_counted_over_every_core_from_the_threaded_server():
    """Over 2,000 lines the page counts in worker processes, started from
    Streamlit's threaded process (forkserver); the counts are the same."""
    from solver.batch import stream_encoded

    cases = [line for line in (ROOT / "examples/batch.jsonl").read_text().splitlines()][:100]
    results = [item[1] for item in stream_encoded(cases, workers=1, max_changes=1, lean=True)]
    data = "\n".join(results * 21) + "\n"                       # 2,100 lines
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.file_uploader(key="batch:upload").set_value(("big.jsonl", data.encode(), "application/json")).run()
    assert not at.exception, at.exception
    assert metrics(at)["Cases"] == "2100"
    one = report.as_json(report.tally(data.encode().splitlines(), workers=1))
    decisions = at.dataframe[0].value
    for plan, counts in one["plans"].items():
        assert decisions.loc[plan].to_dict() == {d: counts["decisions"].get(d, 0) for d in decisions.columns}
