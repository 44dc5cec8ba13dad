"""Every sentence of every policy accounted for (`pa-solver coverage`,
solver/analysis/coverage.py): each criterion quotes its document word for word, every
sentence, bullet, heading and table row of a document is encoded by a
criterion or set aside with a reason, the command's JSON, table and exit
codes, `locate`'s spans, the readings of CASE.md carried evenly, and the
page's citation that opens the document at the criterion's sentence."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from solver.analysis import coverage as cov
from solver.analysis import coverage_doc
from solver.rules.declared import of as _declared
from solver.engine.solver import Solver
from conftest import run_cli as run

PLANS = tuple(_declared().plans)

ROOT = Path(__file__).resolve().parents[2]
CASE_MD = ROOT.parent / "shared" / "spec" / "CASE.md"
SHARED_POLICIES = ROOT.parent / "shared" / "policies"
RULES = cov.plans_of()
SOLVER = Solver()


def doc(plan: str) -> coverage_doc.Document:
    return cov.document(plan)


# ------------------------------------------------------------------ the texts are the documents'

@pytest.mark.parametrize("plan", PLANS)
def test_every_criterion_text_is_verbatim_in_its_document(plan):
    """Each piece of each criterion's (and option's) text stands in the
    document, markup and whitespace aside, in order, where text_after says."""
    d = doc(plan)
    spans = cov.criterion_spans(plan)
    assert set(spans) >= {c for c, p in RULES.plan_of.items() if p == plan and c in SOLVER.rules.criteria}
    for c, text in RULES.texts[plan].items():
        assert text == text.strip() and "  " not in text, c
        # no markup in a criterion's text: it reads as the document reads, not as its source file
        assert coverage_doc.normalise(text) == " ".join(text.split()), (c, "markup in the text")
        # an ellipsis only joins pieces: " ... "
        assert text.count("...") == text.count(cov.PIECE), (c, "'...' that does not join two pieces")
        for piece, span in zip(cov.pieces(text), spans[c]):
            assert span is not None, f"{c}: not in {plan}'s document: {piece!r}"
            assert d.norm[span[0]:span[1]] == coverage_doc.normalise(piece)


@pytest.mark.parametrize("plan", PLANS)
def test_text_after_names_an_earlier_criterion_of_the_same_plan(plan):
    for c, anchor in RULES.after.items():
        if RULES.plan_of.get(c) != plan:
            continue
        assert RULES.plan_of.get(anchor) == plan, (c, anchor)
        spans = cov.criterion_spans(plan)
        assert spans[anchor][-1][1] <= spans[c][0][0], (c, "does not stand after", anchor)


@pytest.mark.parametrize("plan", PLANS)
def test_words_that_stand_twice_are_placed_apart_for_different_pathways(plan):
    """Where the same words stand in several places of a document, criteria of
    different pathways that quote them are not all put in the first place (a
    missing text_after would do that: CVS frontline and relapsed/refractory,
    OHSU adult and pediatric)."""
    d = doc(plan)
    spans = cov.criterion_spans(plan)
    pathways = {c: frozenset(p for p, pw in SOLVER.rules.pathways.items() if c in pw.criteria) for c in spans}
    seen: dict = {}
    for c in sorted(spans):
        for piece, span in zip(cov.pieces(RULES.texts[plan][c]), spans[c]):
            if len(d.find_all(piece)) < 2 or not pathways[c]:
                continue
            for other in seen.get(span, []):
                assert pathways[other] == pathways[c], \
                    f"{c} and {other} quote {piece!r} at the same place, for different pathways"
            seen.setdefault(span, []).append(c)


# ------------------------------------------------------------------ every sentence accounted for

@pytest.mark.parametrize("plan", PLANS)
def test_every_sentence_is_encoded_or_set_aside(plan):
    (got,) = cov.coverage([plan])["plans"]
    unaccounted = [s["text"] for s in got["sentences"] if not s["criteria"] and s["set_aside"] is None]
    assert not unaccounted, f"{plan}: neither encoded nor set aside (add a criterion or a not_a_criterion fact):\n" \
                            + "\n".join(unaccounted)
    assert got["counts"]["unaccounted"] == 0
    assert got["counts"]["encoded"] + got["counts"]["set_aside"] == got["counts"]["units"] == len(got["sentences"])


@pytest.mark.parametrize("plan", PLANS)
def test_no_sentence_is_both_encoded_and_set_aside(plan):
    (got,) = cov.coverage([plan])["plans"]
    both = [(s["text"], s["criteria"]) for s in got["sentences"] if s["criteria"] and s["set_aside"] is not None]
    assert not both


@pytest.mark.parametrize("plan", PLANS)
def test_every_set_aside_text_is_whole_sentences_of_its_document_with_a_reason(plan):
    d = doc(plan)
    for words, reason in RULES.set_aside[plan].items():
        assert reason and reason.strip() == reason, words
        assert d.find_all(words), f"{plan}: not in the document: {words!r}"
        assert cov.set_aside_units(d, words), f"{plan}: not whole sentences, bullets or rows: {words!r}"


def test_every_criterion_encodes_some_sentence():
    got = cov.coverage()
    encoding = {c for p in got["plans"] for s in p["sentences"] for c in s["criteria"]}
    assert set(SOLVER.rules.criteria) <= encoding


def test_the_units_follow_the_stated_rule():
    d = coverage_doc.Document("# Title\n\n**Bold** heading\n- a bullet. Two sentences.\n1. An item\n"
                     "Row\tcell\n\nOne sentence. U. S. Food stays. Another one (1).\nbroken  \nline\n---\n")
    assert [(d.unit_text(u), u[2]) for u in d.units] == [
        ("Title", "heading"), ("Bold heading", "sentence"), ("a bullet. Two sentences.", "bullet"),
        ("An item", "bullet"), ("Row cell", "table row"), ("One sentence.", "sentence"),
        ("U. S. Food stays.", "sentence"), ("Another one (1).", "sentence"), ("broken line", "sentence")]
    assert coverage_doc.normalise("- <b>x</b>  *y*\\_z") == "x y_z"


def test_the_shipped_documents_are_the_shared_ones():
    if not SHARED_POLICIES.is_dir():
        pytest.skip(f"{SHARED_POLICIES} is not here to compare with")
    for plan in PLANS:
        name = RULES.file[plan]
        assert (ROOT / "policies" / name).read_bytes() == (SHARED_POLICIES / name).read_bytes(), name


# ------------------------------------------------------------------ locate

@pytest.mark.parametrize("plan", PLANS)
def test_locate_points_at_the_criterion_text(plan):
    text = cov.document_text(plan)
    for c, t in RULES.texts[plan].items():
        spans = cov.locate(plan, c)
        assert len(spans) == len(cov.pieces(t))
        for (start, end), piece in zip(spans, cov.pieces(t)):
            assert 0 <= start < end <= len(text)
            assert coverage_doc.normalise(text[start:end]) == coverage_doc.normalise(piece)


def test_locate_finds_the_place_text_after_names():
    text = cov.document_text("ohsu")
    (adult,), (pediatric,) = cov.locate("ohsu", "ohsu_iii_a2"), cov.locate("ohsu", "ohsu_iii_p2")
    heading = text.index("Pediatric B-Cell Precursor Acute Lymphoblastic Leukemia")
    assert adult[0] < heading < pediatric[0]
    assert text[pediatric[0]:pediatric[1]] == "Patient has relapsed or refractory disease"
    cvs = cov.document_text("cvs_caremark")
    (rr,) = cov.locate("cvs_caremark", "cvs_rr_1")
    assert cvs.index("relapsed or refractory ALL/lymphoblastic lymphoma when") < rr[0]
    assert cov.locate("ohsu", "no_such_criterion") == []
    with pytest.raises(cov.UnknownPlan):
        cov.locate("nope", "ohsu_iii_1")


# ------------------------------------------------------------------ the command

def test_coverage_json_shape():
    got = run("coverage", "--json")
    assert got.returncode == 0, got.stderr
    data = json.loads(got.stdout)
    assert [p["plan"] for p in data["plans"]] == sorted(PLANS)
    for p in data["plans"]:
        assert set(p) == {"plan", "document", "title", "counts", "sentences", "notes", "readings"}
        assert all(set(r) == {"reading", "by"} and r["by"] for r in p["readings"])
        assert p["document"] == f"{p['plan']}.txt"
        assert set(p["counts"]) == {"units", "encoded", "set_aside", "unaccounted"}
        for s in p["sentences"]:
            assert set(s) == {"text", "kind", "criteria", "set_aside"}
            assert s["kind"] in ("sentence", "bullet", "heading", "table row")
            assert s["criteria"] == sorted(s["criteria"])
            assert s["set_aside"] is None or isinstance(s["set_aside"], str)
    one = json.loads(run("coverage", "cvs_caremark", "--json").stdout)
    assert [p["plan"] for p in one["plans"]] == ["cvs_caremark"]
    assert one["plans"][0] == data["plans"][[p["plan"] for p in data["plans"]].index("cvs_caremark")]


def test_coverage_table_shows_every_sentence_and_the_counts():
    got = run("coverage", "cvs_caremark")
    assert got.returncode == 0, got.stderr
    out = got.stdout
    assert "cvs_caremark: Specialty Guideline Management: Besponsa" in out
    assert "cvs_rr_4" in out and "set aside: reference" in out
    (p,) = cov.coverage(["cvs_caremark"])["plans"]
    c = p["counts"]
    assert f"{c['units']} units: {c['encoded']} encoded, {c['set_aside']} set aside, 0 unaccounted" in out
    assert re.search(rf"cvs_caremark\s+{c['units']}\s+{c['encoded']}\s+{c['set_aside']}\s+0", out)
    assert "\x1b[" not in out                                   # no colour off a terminal


def test_coverage_of_an_unknown_plan_is_one_line_and_exit_2():
    got = run("coverage", "no_such_plan")
    assert got.returncode == 2 and got.stdout == ""
    assert got.stderr.startswith("error: unknown plan 'no_such_plan'; one of bcbs_fep,")
    assert len(got.stderr.strip().splitlines()) == 1 and "Traceback" not in got.stderr


def test_an_unaccounted_sentence_exits_1_and_is_named(tmp_path):
    """A rule base whose plan file lost one set-aside sentence: the sentence is
    reported, the summary counts it, exit code 1."""
    logic = tmp_path / "logic"
    shutil.copytree(ROOT / "logic", logic)
    path = logic / "cvs_caremark.lp"
    line = 'not_a_criterion(cvs_caremark, "Coverage Criteria", "heading").\n'
    assert line in path.read_text()
    path.write_text(path.read_text().replace(line, ""))
    env = {**__import__("os").environ, "PA_SOLVER_LOGIC": str(logic)}
    got = run("coverage", "cvs_caremark", env=env)
    assert got.returncode == 1, got.stderr
    assert "UNACCOUNTED" in got.stdout and "1 unaccounted" in got.stdout
    data = json.loads(run("coverage", "cvs_caremark", "--json", env=env).stdout)
    assert [s["text"] for s in data["plans"][0]["sentences"] if s["set_aside"] is None and not s["criteria"]] \
        == ["Coverage Criteria"]


# ------------------------------------------------------------------ readings, attached evenly

SECTIONS = {"CVS Caremark": "cvs_caremark", "BCBS FEP": "bcbs_fep", "OHSU Health Services": "ohsu",
            "MassHealth": "masshealth", "BCBS North Carolina": "bcbsnc"}

# Criteria that test a fact named by one of their plan's CASE.md readings but
# carry no reading, each with the reason.  Empty today: every such criterion
# carries the reading it encodes.
NO_READING: dict[str, str] = {}


def case_md_readings() -> dict[str, list[str]]:
    """Plan -> the lines of CASE.md's "How the text is read", backticks and bold marks dropped."""
    if not CASE_MD.is_file():
        pytest.skip(f"{CASE_MD} is not here")
    text = CASE_MD.read_text(encoding="utf-8").split("## How the text is read", 1)[1]
    out: dict[str, list[str]] = {}
    plan = None
    for line in text.splitlines():
        if line.strip() in SECTIONS:
            plan = SECTIONS[line.strip()]
        elif line.startswith("- ") and plan:
            out.setdefault(plan, []).append(" ".join(line[2:].replace("`", "").replace("**", "").split()))
    assert set(out) == set(PLANS)
    return out


def test_every_reading_quotes_case_md_for_its_plan():
    lines = case_md_readings()
    for c, reading in RULES.readings.items():
        plan = RULES.plan_of[c]
        assert any(" ".join(reading.split()) in line for line in lines[plan]), \
            f"{c}: its reading is not a quote of CASE.md's readings for {plan}: {reading!r}"


def words_tested(c: str) -> set[str]:
    """The names of the facts criterion c tests, and the enumerated values it
    tests them for (relapsed_refractory, single_agent, ...; not true/false)."""
    words = set(SOLVER.rules.criterion_facts.get(c, ())) - {"drug", "request"}
    nodes = {n for cc, n in SOLVER.rules.facts_of("branch", 2) if cc.name == c}
    for n, f, v in SOLVER.rules.facts_of("in_set", 3):
        if n in nodes and f.name not in ("drug", "request") and v.string not in ("true", "false"):
            words.add(v.string)
    return words


def test_every_criterion_whose_facts_a_reading_names_carries_a_reading():
    """Mechanical: a criterion that tests a fact (or a value of it) that one of
    its plan's CASE.md readings names carries a reading, unless NO_READING
    says why not; and, plainly, every criterion of a plan that has readings."""
    lines = case_md_readings()

    def names(text: str, words: set) -> set:
        return {w for w in words if re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text, re.IGNORECASE)}

    missing, beside = [], []
    for c in sorted(SOLVER.rules.criteria):
        plan, words = RULES.plan_of[c], words_tested(c)
        named = set().union(*(names(line, words) for line in lines[plan]))
        if (named or lines.get(plan)) and c not in NO_READING and c not in RULES.readings:
            missing.append(f"{c} ({plan}): tests {sorted(named or words)}, which CASE.md reads; no reading")
        if c in RULES.readings and words and not names(RULES.readings[c], words):
            beside.append(f"{c}: its reading names none of {sorted(words)}")
    assert not missing, "\n".join(missing)
    assert not beside, "\n".join(beside)                 # a reading is the one about the criterion's facts
    assert set(NO_READING) <= set(SOLVER.rules.criteria)


# ------------------------------------------------------------------ the page

def test_document_html_marks_the_spans_and_escapes_the_rest():
    import present as pr

    got = pr.document_html("<b>x</b> Patient & co <script>", [(9, 16)], "m1")
    assert got.count("<mark") == 1 and 'id="m1"' in got
    assert ">Patient</mark>" in got and "&lt;b&gt;x&lt;/b&gt;" in got and "&amp; co &lt;script&gt;" in got
    assert "scrollIntoView" in got
    assert "<mark" not in pr.document_html("text", [], "m2") and "<script>" not in pr.document_html("t", [], "m")


def test_the_page_opens_a_citation_in_its_document_with_the_sentence_marked():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=60)
    at.run()
    at.session_state["card:ohsu"] = True
    at.run()
    assert not at.exception, at.exception
    at.button(key="doc:ohsu:ohsu_pediatric_rr_single:ohsu_iii_p2").click().run()
    assert not at.exception, at.exception
    (body,) = [h.proto.body for h in at.get("html") if "pa-policy-document" in h.proto.body]
    marked = re.findall(r"<mark[^>]*>(.*?)</mark>", body)
    assert marked == ["Patient has relapsed or refractory disease"]
    # the mark is the pediatric item's, not the adult one's (same words, earlier in the document)
    assert body.index("<mark") > body.index("Pediatric B-Cell Precursor Acute Lymphoblastic Leukemia")
    assert 'id="pa-mark-ohsu-ohsu_iii_p2"' in body
    assert "Document Number: OHSU HEALTHSERVICES-0453" in body              # the whole document
    assert any("policies/ohsu.txt · 1 place marked" in c.value for c in at.caption)
