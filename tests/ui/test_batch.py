"""The Batch page under AppTest: the bundled example, an uploaded JSONL with a
bad line, counts that agree with `solver.report`; which data the page says it
shows; hostile uploads; readable charts naming criteria by their sentence; the
facts that flip most towards a chosen decision."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from solver.analysis import report, report_out

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "ui" / "batch.py")
ADULT = json.loads((ROOT / "examples/ohsu_adult_rr.json").read_text())


def metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


def frame(at, *columns):
    """The first table on the page with these columns."""
    for d in at.dataframe:
        if all(c in d.value.columns for c in columns):
            return d.value
    raise AssertionError(f"no table with {columns}")


def decisions(at):
    return frame(at, "approved")


def charts(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


def upload(at, name: str, data: bytes):
    at.file_uploader(key="batch:upload").set_value((name, data, "application/json"))
    return at.run()


def test_the_bundled_example_gives_the_report():
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, at.exception
    assert metrics(at)["Cases"] == "200"
    dec = decisions(at)
    expected = report_out.as_json(report.tally(str(ROOT / "examples/batch.jsonl"), workers=1))
    for plan, counts in expected["plans"].items():
        assert dec.loc[plan].to_dict() == {d: counts["decisions"].get(d, 0) for d in dec.columns}
    table = at.dataframe[-1].value
    assert set(table.section) >= {"decision", "criterion_not_met", "flip", "smallest_missing_set"}
    # The page says what it shows, and the toggle agrees.
    assert any("bundled example" in i.value for i in at.info)
    assert at.toggle(key="batch:example").value is True


def test_an_uploaded_batch_with_a_bad_line():
    lines = [json.dumps({**ADULT, "plans": ["ohsu"]}),
             json.dumps({**ADULT, "plans": ["ohsu"], "facts": {**ADULT["facts"], "cd22_positive": False}}),
             json.dumps({"facts": {"age_years": 999}})]
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    upload(at, "mine.jsonl", "\n".join(lines).encode())
    assert not at.exception, at.exception
    m = metrics(at)
    assert m["Cases"] == "3" and m["Could not be read"] == "1"
    errors = frame(at, "field at fault")
    assert errors.set_index("field at fault")["lines"].to_dict() == {"facts.age_years": 1}
    assert decisions(at).loc["ohsu"].to_dict() == {"approved": 1, "denied": 1}
    table = at.dataframe[-1].value
    flips = table[(table.section == "flip") & (table.item == "cd22_positive")]
    assert sorted(flips.decision) == ["approved", "denied"]


def test_the_page_says_which_data_it_shows_and_the_toggle_never_claims_the_example_for_an_upload():
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert at.toggle(key="batch:example").value is True
    upload(at, "mine.jsonl", json.dumps({**ADULT, "plans": ["ohsu"]}).encode())
    assert not at.exception, at.exception
    toggle = at.toggle(key="batch:example")
    assert toggle.value is False and toggle.disabled
    shown = [i.value for i in at.info]
    assert any("mine.jsonl" in s and "your upload" in s for s in shown), shown
    assert not any(s.startswith("Showing the bundled example") for s in shown)
    assert metrics(at)["Cases"] == "1"


def test_hostile_uploads_show_errors_by_field_never_a_traceback():
    good = json.dumps({**ADULT, "plans": ["ohsu"]}).encode()
    hostile = b"\n".join([
        b"\xef\xbb\xbf" + good,                              # a BOM: read
        b"\xff\xfe\x00 not text",                            # not UTF-8
        b"[" * 10_000 + b"]" * 10_000,                       # nested too deep
        b'{"case_id":"x","plans":["ohsu"],"facts":{"age_years":' + b"9" * 5000 + b"}}",
        b'{"results":"nope"}',
        b'{"results":[{"plan":"ohsu"}]}',
        b'{"results":[1]}',
        b'{"results":[{"plan":"ohsu","decision":"zzz","pathways":[],"missing":[]}]}',
        good,
    ])
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    upload(at, "hostile.jsonl", hostile)
    assert not at.exception, at.exception
    assert metrics(at)["Cases"] == "9" and metrics(at)["Could not be read"] == "7"
    errors = frame(at, "field at fault").set_index("field at fault")["lines"].to_dict()
    assert errors == {"(line)": 3, "results": 1, "results[0]": 1, "results[0].decision": 2}
    assert decisions(at).loc["ohsu"].to_dict() == {"approved": 2}
    # Nothing readable at all: still a page, no traceback.
    upload(at, "junk.jsonl", b"\xff\n{\n[[[\n")
    assert not at.exception, at.exception
    assert metrics(at)["Could not be read"] == "3"


def test_charts_are_readable_and_name_criteria_by_their_sentence():
    from solver.engine.solver import Solver

    criteria = Solver().rules.criteria
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    bars = [c for c in charts(at) if "layer" in c]
    assert len(bars) == 2
    for spec in bars:
        bar = spec["layer"][0]
        assert bar["mark"]["size"] <= 20                                  # a fixed, thin bar
        assert spec["height"]["step"] >= bar["mark"]["size"] + 8         # room for wrapped labels
        x, y = bar["encoding"]["x"], bar["encoding"]["y"]
        assert x["axis"]["format"] == "d" and x["axis"]["tickMinStep"] == 1
        assert x["scale"]["domain"][0] == 0 and x["scale"]["domain"][1] >= 1
        assert "split" in y["axis"]["labelExpr"] and y["axis"]["labelLimit"] >= 200
        assert spec["layer"][1]["mark"]["type"] == "text"                # the count at the bar's end
    blocking = frame(at, "criterion", "policy sentence", "where")
    assert not blocking.empty
    for cid, sentence in zip(blocking.criterion, blocking["policy sentence"]):
        assert sentence == criteria[cid].text
    # The chart's labels carry the id and the start of the sentence.
    chart = next(c for c in bars if c["layer"][0]["mark"]["color"] == "#d33c3c")
    (rows,) = [v for k, v in chart.get("datasets", {}).items()] or [None]
    if rows is None:                                  # Streamlit sends the data beside the spec
        labels = list(at.get("vega_lite_chart")[1].proto.datasets[0].data.data)
    else:
        labels = [r["label"] for r in rows]
    assert labels


def test_flips_towards_a_chosen_decision():
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    target = at.segmented_control(key="batch:target")
    assert target.value == "approved"
    assert any("What would make most decisions approved" in c.value for c in at.caption)
    table = at.dataframe[-1].value
    flips = table[table.section == "flip"]
    assert set(flips.decision) >= {"approved", "denied"}
    target.set_value("denied").run()
    assert not at.exception, at.exception
    assert any("What would make most decisions denied" in c.value for c in at.caption)


def test_the_page_uses_width_not_use_container_width():
    assert "use_container_width" not in Path(PAGE).read_text()


def test_the_app_opens_on_the_what_if_page():
    at = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=120).run()
    assert not at.exception, at.exception
    # The What-if page (its own tests check its content; the heading of a plan has changed form).
    assert any("OHSU" in m.value for m in at.markdown)
    assert not any("Batch: what holds requests back" in t.value for t in at.title)


def test_a_large_upload_is_counted_over_every_core_from_the_threaded_server():
    """Over 2,000 lines the page counts in worker processes, started from
    Streamlit's threaded process (forkserver); the counts are the same."""
    from solver.analysis.batch import stream_encoded

    cases = [line for line in (ROOT / "examples/batch.jsonl").read_text().splitlines()][:100]
    results = [item[1] for item in stream_encoded(cases, workers=1, max_changes=1, lean=True)]
    data = "\n".join(results * 21) + "\n"                       # 2,100 lines
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    upload(at, "big.jsonl", data.encode())
    assert not at.exception, at.exception
    assert metrics(at)["Cases"] == "2100"
    one = report_out.as_json(report.tally(data.encode().splitlines(), workers=1))
    dec = decisions(at)
    for plan, counts in one["plans"].items():
        assert dec.loc[plan].to_dict() == {d: counts["decisions"].get(d, 0) for d in dec.columns}
