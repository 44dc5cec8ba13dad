"""The Recorded decisions page under AppTest: it lists what the service recorded (a real $submit
and a real CRD call, made by the service's own worker code), says whether today's rules decide
the same, opens a $submit's case in What-if with the recorded decisions, and answers a missing or
absent record in words, never creating a file or showing a traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from solver.service import work
from solver.service.records import Record
from solver.service.store import open_store
from conftest import CASE_MD_PLANS

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "ui" / "app.py")
PAS = ROOT / "examples" / "fhir" / "pas_request_besponsa.json"
CRD = ROOT / "examples" / "crd" / "order_sign_besponsa.json"
import caseform as cf  # noqa: E402


def record(store, op: str, body: bytes, params: dict) -> dict:
    """Answer a request as the service's worker does, and record it as the service does."""
    a = work.handle(op, body, {"base_url": "http://test/", **params})
    assert a.status == 200 and a.record is not None
    store.record(Record(kind=a.record["kind"], request=body, answer=a.body, media_type=a.media,
                        rules_version=a.record["rules_version"], decisions=a.record["decisions"],
                        submission=a.record.get("submission")))
    return a.record


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    path = tmp_path_factory.mktemp("rec") / "decisions.sqlite"
    store = open_store(str(path))
    bundle = json.loads(PAS.read_text())
    bundle["entry"][0]["resource"]["identifier"] = [{"system": "urn:test", "value": "page-1"}]
    sub = record(store, "submit", json.dumps(bundle).encode(), {})
    crd = record(store, "crd", CRD.read_bytes(), {"hook_instance": json.loads(CRD.read_text())["hookInstance"]})
    store.close()
    return path, sub, crd


def page(monkeypatch, spec: str | None) -> AppTest:
    if spec is None:
        monkeypatch.delenv("PA_SOLVER_STORE", raising=False)
    else:
        monkeypatch.setenv("PA_SOLVER_STORE", spec)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("recorded.py").run()
    assert not at.exception, at.exception
    return at


def test_no_record_is_said_in_words(monkeypatch, tmp_path):
    at = page(monkeypatch, None)
    assert any("pa-solver ui --store" in i.value for i in at.info)
    missing = tmp_path / "nope.sqlite"
    at = page(monkeypatch, str(missing))
    assert any("No record at" in e.value for e in at.error)
    assert not missing.exists()                    # read only: the page never makes a record


def test_the_page_lists_what_the_service_recorded(monkeypatch, recorded):
    path, sub, crd = recorded
    at = page(monkeypatch, str(path))
    table = at.dataframe[0].value
    assert list(table["#"]) == [2, 1]                                  # newest first
    assert list(table["kind"]) == ["CRD hook", "PAS $submit"]
    assert list(table["submission"]) == [crd["submission"], "page-1"]
    for plan, dec in sub["decisions"].items():
        assert table[plan][1] == dec
    assert any(c.value.startswith("2 decisions in") for c in at.caption)
    # the filters: only the $submit; only a plan the CRD call did not decide
    at.selectbox(key="rec:kind").set_value("submit").run()
    assert list(at.dataframe[0].value["#"]) == [1]
    at.selectbox(key="rec:kind").set_value("all").run()
    other = next(p for p in sub["decisions"] if p not in crd["decisions"])
    at.selectbox(key="rec:plan").set_value(other).run()
    assert list(at.dataframe[0].value["#"]) == [1]


def test_a_submit_is_decided_again_and_opens_in_whatif(monkeypatch, recorded):
    path, sub, _ = recorded
    at = page(monkeypatch, str(path))
    at.selectbox(key="rec:open").set_value(1).run()
    assert not at.exception, at.exception
    assert any("decide the same for every plan recorded" in s.value for s in at.success)
    labels = [e.label for e in at.expander]
    assert "Request, as received" in labels and "Answer, as sent (application/fhir+json)" in labels
    at.button(key="rec:whatif").click().run()
    assert not at.exception, at.exception
    state = {spec.key: at.session_state[spec.key] for spec in cf.FACTS.values()}
    state.update({k: at.session_state[k] for k in ("case:id", "case:drug", "case:request", "case:plans")})
    from solver.engine.solver import Solver
    from solver.case.models import parse_case

    got = Solver().solve(parse_case(cf.case_from_state(state)))
    assert {r["plan"]: r["decision"] for r in got["results"]} == sub["decisions"]
    assert "recorded decision #1" in at.session_state["loaded"]


def test_a_record_decided_under_other_rules_says_what_changed(monkeypatch, tmp_path):
    path = tmp_path / "d.sqlite"
    store = open_store(str(path))
    bundle = json.loads(PAS.read_text())
    bundle["entry"][0]["resource"]["identifier"] = [{"system": "urn:test", "value": "page-2"}]
    body = json.dumps(bundle).encode()
    a = work.handle("submit", body, {"base_url": "http://test/"})
    decisions = dict(a.record["decisions"])
    plan = sorted(decisions)[0]
    decisions[plan] = "denied" if decisions[plan] != "denied" else "approved"      # as older rules might have
    store.record(Record(kind="submit", request=body, answer=a.body, media_type=a.media, rules_version="older",
                        decisions=decisions, submission=a.record["submission"]))
    store.close()
    at = page(monkeypatch, str(path))
    (warning,) = [w.value for w in at.warning]
    assert warning.startswith("Today's rules decide otherwise:") and plan in warning
    assert re.search(rf"{plan} {decisions[plan]} → {a.record['decisions'][plan]}", warning)


def test_pa_solver_ui_store_hands_the_record_to_the_pages(monkeypatch):
    import os

    from solver import cli

    seen = {}

    def execv(path, argv):
        seen["argv"], seen["store"] = argv, os.environ.get("PA_SOLVER_STORE")
        raise SystemExit(0)

    monkeypatch.setattr(os, "execv", execv)
    monkeypatch.setenv("PA_SOLVER_STORE", "")         # so that the variable the command sets is undone after
    with pytest.raises(SystemExit):
        cli.main(["ui", "--store", "decisions.sqlite", "--server.port", "8600"])
    assert seen["store"] == "decisions.sqlite"
    assert seen["argv"][-2:] == ["--server.port", "8600"] and "--store" not in seen["argv"]


def test_a_large_record_lists_the_newest_and_until_reaches_older_ones(monkeypatch, tmp_path):
    import datetime as dt

    path = tmp_path / "big.sqlite"
    store = open_store(str(path))
    for i in range(520):
        store.record(Record("crd", b"{}", b"{}", "application/json", "v1", {"ohsu": "needs_info"}, submission=f"h-{i}"))
    store.close()
    at = page(monkeypatch, str(path))
    table = at.dataframe[0].value
    assert len(table) == 500 and table["#"][0] == 520 and table["#"][499] == 21
    assert any(c.value.startswith("520 decisions in") for c in at.caption)
    assert any("The newest 500 are listed; set Until" in c.value for c in at.caption)
    # every record was written today (UTC): Until yesterday lists none, Until today all of them again
    today = dt.datetime.now(dt.timezone.utc).date()
    at.date_input(key="rec:until").set_value(today - dt.timedelta(days=1)).run()
    assert any(c.value.startswith("0 decisions in") for c in at.caption) and not at.dataframe
    at.date_input(key="rec:until").set_value(today).run()
    assert any(c.value.startswith("520 decisions in") for c in at.caption)


def test_a_submit_record_that_is_no_bundle_is_not_decided_again(monkeypatch, tmp_path):
    path = tmp_path / "odd.sqlite"
    store = open_store(str(path))
    store.record(Record("submit", b'{"facts": {}}', b"{}", "application/fhir+json", "v1", {"ohsu": "approved"},
                        submission="urn:x|odd"))
    store.close()
    at = page(monkeypatch, str(path))
    assert any("not a FHIR bundle" in w.value for w in at.warning)
    assert not at.success and not [b for b in at.button if b.key == "rec:whatif"]


def test_a_damaged_record_is_said_damaged_and_its_bytes_not_shown(monkeypatch, tmp_path):
    import sqlite3

    path = tmp_path / "d.sqlite"
    store = open_store(str(path))
    bundle = json.loads(PAS.read_text())
    bundle["entry"][0]["resource"]["identifier"] = [{"system": "urn:test", "value": "page-3"}]
    record(store, "submit", json.dumps(bundle).encode(), {})
    record(store, "crd", CRD.read_bytes(), {"hook_instance": json.loads(CRD.read_text())["hookInstance"]})
    store.close()
    db = sqlite3.connect(path)
    db.execute("UPDATE decisions SET answer = CAST('{\"resourceType\": \"Bundle\", \"made\": \"up\"}' AS BLOB) "
               "WHERE seq = 1")
    db.commit()
    db.close()
    at = page(monkeypatch, str(path))
    assert list(at.dataframe[0].value["#"]) == [2, 1]                 # still listed
    at.selectbox(key="rec:open").set_value(1).run()
    assert not at.exception, at.exception
    (error,) = [e.value for e in at.error]
    assert error.startswith("#1 is damaged: its answer does not match the SHA-256 recorded with it.")
    assert not at.expander and not at.success and not at.warning          # neither its bytes nor a decision again
    assert not any("made" in m.value for m in at.markdown)
    at.selectbox(key="rec:open").set_value(2).run()                  # the sound one opens as before
    assert not at.error and "Answer, as sent (application/json)" in [e.label for e in at.expander]


def test_the_decisions_are_the_first_columns_and_the_columns_fit_the_screens(monkeypatch, recorded):
    """Issue 26: the plan column `ohsu` was cut at 1366 px and a phone showed no decision without
    scrolling sideways.  The plans come right after "#", headed by their short names; the widths
    set fit: "#" and two plans in a 390 px phone's table (358 px), every column but the submission
    (last, free width) in a 1366 px screen's (about 900 px beside the sidebar)."""
    at = page(monkeypatch, str(recorded[0]))
    frame = at.dataframe[0]
    columns = list(frame.value.columns)
    plans = list(cf.PLANS)
    assert columns[:1 + len(plans)] == ["#", *plans] and columns[-1] == "submission", columns
    config = json.loads(frame.proto.columns)
    assert [config[p]["label"] for p in plans] == [cf.SHORT[p] for p in plans]
    widths = {c: config[c]["width"] for c in columns if c != "submission"}
    assert widths["#"] + sum(widths[p] for p in plans[:2]) <= 358, widths
    # the five plans CASE.md describes and the other columns fit; a rule base of more plans scrolls
    # sideways past the fifth (the decisions still come first)
    fixed = sum(w for c, w in widths.items() if c not in plans)
    assert fixed + sum(widths[p] for p in CASE_MD_PLANS if p in plans) <= 880, widths
    longest = max(len(d) for d in ("approved", "denied", "needs_info", "no_policy"))
    assert all(widths[p] >= 8 * longest for p in plans), widths         # a decision is not cut
