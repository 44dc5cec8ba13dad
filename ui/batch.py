"""The Batch page: a JSONL of cases or FHIR Bundles (or of results from
`pa-solver batch` / `explain --json`) in, the report as charts and a
downloadable table out.

Everything is `solver.report`'s: the page uploads, charts and offers the table.
The page says which data it shows (an upload, or the bundled example), names
criteria by their policy sentence as well as their id, and shows the facts
that flip most towards a decision the reader chooses.  Whatever the bytes of
an upload, the page shows a report: lines that cannot be read are counted by
the field at fault (shown as a table, never as markdown).  A line that is a
FHIR Bundle is read by the report as the case it gives; one that gives none
is counted by its reason.
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
# the page's own modules; in a source checkout, the repository (for `solver`)
for _p in (str(HERE), str(HERE.parent)) if (HERE.parent / "solver").is_dir() else (str(HERE),):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import altair as alt  # noqa: E402
import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from solver.rules import declared
from solver.analysis import report, report_out  # noqa: E402
from solver.text.words import condition  # noqa: E402

from solver.base.paths import EXAMPLES  # noqa: E402

EXAMPLE = EXAMPLES / "batch.jsonl"
TOP = 15
COLUMNS = ["section", "plan", "item", "decision", "detail", "count"]
DECISION_COLOURS = {"approved": "#2e9e44", "case_review": "#1c6fd1", "needs_info": "#e8a317", "denied": "#d33c3c",
                    "no_policy": "#9a9a9a"}
TARGETS = ("approved", "case_review", "needs_info", "denied")
TARGET_LABEL = {"approved": "approved", "case_review": "case review", "needs_info": "needs info",
                "denied": "denied"}
SHORT = dict(declared.of().plan_labels)      # plan_label/2: a plan's short name
WRAP = 46                    # characters per line of a bar's label
LABEL_LINES = 3              # lines of a label at most (the whole text is in the tooltip)
LINE_PX = 13                 # pixels per label line


@st.cache_resource(show_spinner=False)
def rule_texts() -> tuple[dict, dict]:
    """Criterion id -> (policy sentence, where in the policy); pathway id ->
    title: read once from the rule base."""
    from solver.engine.solver import Solver

    rules = Solver().rules
    criteria = {cid: (c.text, c.source) for cid, c in rules.criteria.items()}
    pathways = {pid: pw.title for pid, pw in rules.pathways.items()}
    return criteria, pathways


def wrap(text: str, width: int = WRAP, lines: int = LABEL_LINES) -> str:
    """A label in at most `lines` lines of `width` characters (cut with an ellipsis)."""
    parts = textwrap.wrap(" ".join(str(text).split()), width) or [""]
    if len(parts) > lines:
        parts = parts[:lines]
        parts[-1] = parts[-1][:width - 1].rstrip() + "…"
    return "\n".join(parts)


def ranked_bars(data: pd.DataFrame, colour: str, key: str) -> None:
    """Horizontal bars, largest first: `label` (wrapped, on the left, up to
    three lines), `cases` (a whole number, also written at the bar's end),
    `tooltip` (the whole text).  Fixed bar thickness; the height follows the
    number of bars."""
    data = data.reset_index(drop=True).copy()
    data["order"] = range(len(data))
    seen: dict = {}
    labels = []
    for label in data["label"]:                 # one bar per row, even if two cut labels read the same
        seen[label] = seen.get(label, 0) + 1
        labels.append(label + "\u200b" * (seen[label] - 1))
    data["label"] = labels
    lines = max(1, int(data["label"].str.count("\n").max()) + 1)
    step = max(24, lines * LINE_PX + 10)
    top = max(1, int(data["cases"].max()))
    y = alt.Y("label:N", sort=alt.SortField("order"), title=None,
              axis=alt.Axis(labelExpr="split(datum.label, '\\n')", labelLimit=320, labelFontSize=11,
                            labelLineHeight=LINE_PX, labelPadding=6))
    x = alt.X("cases:Q", title="cases", scale=alt.Scale(domain=[0, top * 1.15], nice=False),
              axis=alt.Axis(format="d", tickMinStep=1, tickCount=min(top, 6), grid=True))
    base = alt.Chart(data).encode(y=y, x=x, tooltip=[alt.Tooltip("tooltip:N", title="what"),
                                                      alt.Tooltip("cases:Q", title="cases", format="d")])
    bars = base.mark_bar(color=colour, size=16)
    counts = base.mark_text(align="left", dx=3, fontSize=11).encode(text=alt.Text("cases:Q", format="d"))
    chart = (bars + counts).properties(height=alt.Step(step))
    st.altair_chart(chart, width="stretch", key=key)


def _fmt_detail(fact: str, detail: str) -> str:
    """A flip's fact and {"values": [...]} / {"range": [lo, hi]} in words."""
    d = json.loads(detail)
    return condition(fact, d.get("values"), d.get("range"))


def count_bundles(lines: list[bytes]) -> int:
    """How many lines are FHIR resources (`solver.report` reads each as the
    case it gives, or counts it as an error by its reason)."""
    from solver.fhir.reader import is_fhir
    from solver.text.jsontext import NotJSON, loads

    n = 0
    for line in lines:
        if b'"resourceType"' not in line:               # cheap: only a FHIR resource names its type
            continue
        try:
            n += is_fhir(loads(line))
        except NotJSON:                                 # not readable JSON: the report says why
            pass
    return n


@st.cache_data(show_spinner="Deciding and counting…", max_entries=8)
def run_report(data: bytes, max_changes: int) -> tuple[list[dict], dict, float, int]:
    """The report's rows and JSON for an uploaded batch (cached by content),
    the seconds it took and the FHIR Bundles read.  Lines of any bytes are
    counted (errors by field); nothing here raises on what the file holds."""
    t = time.perf_counter()
    lines = data.splitlines()
    bundles = count_bundles(lines)
    # Small batches in the server process; large ones over every core.
    tally = report.tally(lines, max_changes=max_changes, workers=1 if len(lines) <= 2000 else None)
    return report_out.rows(tally), report_out.as_json(tally), time.perf_counter() - t, bundles


def criterion_label(plan: str, cid: str, texts: dict) -> str:
    text = texts.get(cid, ("", ""))[0]
    return f"{SHORT.get(plan, plan)} · {cid}: {text}" if text else f"{SHORT.get(plan, plan)} · {cid}"


def criteria_table(rows: pd.DataFrame, texts: dict) -> pd.DataFrame:
    """plan, criterion, policy sentence, where in the policy, cases."""
    return pd.DataFrame({
        "plan": rows["plan"].values,
        "criterion": rows["item"].values,
        "policy sentence": [texts.get(c, ("", ""))[0] for c in rows["item"]],
        "where": [texts.get(c, ("", ""))[1] for c in rows["item"]],
        "cases": rows["count"].values,
    })


def choose_input() -> tuple[bytes, str, int]:
    """The upload, or the bundled example while there is none: (its bytes, its name, the changes
    asked); stops the page when there is neither."""
    c1, c2 = st.columns([3, 2])
    upload = c1.file_uploader("Cases, FHIR Bundles or results (JSONL)", type=["jsonl", "ndjson", "txt", "json"], key="batch:upload")
    # The toggle never claims the example while an upload is shown: off and disabled then.
    if upload is not None:
        st.session_state["batch:example"] = False
    elif "batch:example" not in st.session_state:
        st.session_state["batch:example"] = True
    use_example = c2.toggle(f"Use the bundled example ({EXAMPLE.name}, 200 cases)", key="batch:example",
                            disabled=upload is not None,
                            help="Shown when no file is uploaded; remove the upload to see the example.")
    max_changes = c2.radio("Cases are explained with changes of", [1, 0], key="batch:max_changes", horizontal=True,
                           format_func=lambda n: "one fact (flips counted)" if n else "none (faster)")

    if upload is not None:
        data, name = upload.getvalue(), upload.name
        st.info(f"Showing your upload: {name} ({len(data):,} bytes). The bundled example is not shown.",
                icon=":material/upload_file:")
    elif use_example:
        data, name = EXAMPLE.read_bytes(), EXAMPLE.name
        st.info(f"Showing the bundled example: {EXAMPLE.name}. Upload a file to see yours instead.",
                icon=":material/dataset:")
    else:
        st.info("Nothing shown: upload a JSONL file, or turn on the bundled example.")
        st.stop()
    return data, name, max_changes


def counts(summary: dict, seconds: float) -> None:
    """The four figures, and the lines that could not be read."""
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Cases", summary["cases"])
    m2.metric("Could not be read", sum(summary["errors"].values()))
    m3.metric("With changes searched", summary["explained"])
    m4.metric("Seconds", f"{seconds:.2f}")
    if summary["errors"]:
        n = sum(summary["errors"].values())
        st.warning(f"{n} line{'s' if n != 1 else ''} could not be read; counted by the field at fault below, "
                   "the other lines are reported.")
        errors = pd.DataFrame({"field at fault": list(summary["errors"]), "lines": list(summary["errors"].values())})
        st.dataframe(errors, hide_index=True, key="batch:errors", width="stretch")


def decisions_chart(df: pd.DataFrame) -> None:
    """Per plan, how many cases got each decision."""
    st.subheader("Decisions per plan")
    decisions = df[df.section == "decision"]
    if decisions.empty:
        st.write("No case could be decided or read in this file.")
    else:
        dec = decisions.pivot_table(index="plan", columns="item", values="count", fill_value=0).astype(int)
        order = [d for d in DECISION_COLOURS if d in dec.columns]
        dec = dec[order]
        st.bar_chart(dec, color=[DECISION_COLOURS[d] for d in order], horizontal=True, width="stretch")
        st.dataframe(dec, key="batch:decisions", width="stretch")


def top(df: pd.DataFrame, section: str, decision: Optional[str] = None) -> pd.DataFrame:
    """The TOP rows of a report section with the most cases (of one decision)."""
    part = df[df.section == section]
    if decision is not None:
        part = part[part.decision == decision]
    return part.nlargest(TOP, "count", keep="all").head(TOP)


def blocking_criteria(df: pd.DataFrame, texts: dict) -> None:
    """The criteria that block most cases, with their policy sentences; those most often unknown."""
    st.subheader("Criteria that block most")
    st.caption(f"Counted by this rule: {report_out.BLOCKING_RULE}.")
    blocking = top(df, "criterion_not_met")
    if blocking.empty:
        st.write("No criterion is broken by a known fact where a plan did not approve.")
    else:
        ranked_bars(pd.DataFrame({
            "label": [wrap(criterion_label(p, c, texts)) for p, c in zip(blocking.plan, blocking.item)],
            "cases": blocking["count"].values,
            "tooltip": [f"{p} · {c} ({texts.get(c, ('', ''))[1]}): {texts.get(c, ('', ''))[0]}"
                        for p, c in zip(blocking.plan, blocking.item)],
        }), "#d33c3c", key="batch:blocking_chart")
        with st.expander("Criteria that block most, with their policy sentence"):
            st.dataframe(criteria_table(blocking, texts), hide_index=True, key="batch:blocking", width="stretch")
    unknown = top(df, "criterion_unknown")
    with st.expander("Criteria most often unknown"):
        st.dataframe(criteria_table(unknown, texts), hide_index=True, key="batch:unknown", width="stretch")


def flipping_facts(df: pd.DataFrame, titles: dict) -> None:
    """The single-fact changes that flip most decisions towards one, and the smallest missing sets."""
    st.subheader("Facts that flip most")
    target = st.segmented_control("Towards", TARGETS, default="approved", key="batch:target",
                                  format_func=TARGET_LABEL.get, required=True,
                                  help="The single-fact changes that would turn most decisions into this one.")
    target = target or "approved"
    st.caption(f"What would make most decisions {TARGET_LABEL[target]}: one fact changed.")
    flips = top(df, "flip", target)
    if flips.empty:
        if df[df.section == "flip"].empty:
            st.write("No single-fact changes were searched (or none flips a decision).")
        else:
            st.write(f"No single fact changes a decision to {TARGET_LABEL[target]} in this batch.")
    else:
        words = [_fmt_detail(f, d) for f, d in zip(flips.item, flips.detail)]
        ranked_bars(pd.DataFrame({
            "label": [wrap(f"{SHORT.get(p, p)} · {w}") for p, w in zip(flips.plan, words)],
            "cases": flips["count"].values,
            "tooltip": [f"{p} · {w} → {target}" for p, w in zip(flips.plan, words)],
        }), "#7b52c4", key="batch:flip_chart")
    with st.expander("Most common smallest missing sets"):
        missing = top(df, "smallest_missing_set")
        st.dataframe(pd.DataFrame({
            "plan": missing["plan"].values,
            "pathway": missing["item"].values,
            "pathway title": [titles.get(p, "") for p in missing["item"]],
            "facts": missing["detail"].values,
            "cases": missing["count"].values,
        }), hide_index=True, key="batch:missing", width="stretch")


def whole_report(df: pd.DataFrame, summary: dict, texts: dict, name: str) -> None:
    """Every count, with its policy sentence, and the downloads."""
    st.subheader("The whole report")
    table = df.copy()
    table["policy sentence"] = [texts.get(i, ("", ""))[0] if s.startswith("criterion") else ""
                                for s, i in zip(table.section, table.item)]
    st.dataframe(table, hide_index=True, key="batch:table", width="stretch")
    d1, d2 = st.columns(2)
    d1.download_button("Download the table (CSV)", df.to_csv(index=False, lineterminator="\n"),
                       file_name=f"{Path(name).stem}.report.csv", mime="text/csv", key="batch:csv")
    d2.download_button("Download the report (JSON)", json.dumps(summary, indent=2, ensure_ascii=False),
                       file_name=f"{Path(name).stem}.report.json", mime="application/json", key="batch:json")


def page() -> None:
    """The page, run by Streamlit on every interaction."""
    st.title("Batch: what holds requests back")
    st.caption("Upload cases or FHIR Bundles (one JSON object per line, as `pa-solver batch` reads) or results "
               "(as `pa-solver batch` or `pa-solver explain --json` print them). The same report as "
               "`pa-solver report`.")
    data, name, max_changes = choose_input()
    rows, summary, seconds, bundles = run_report(data, max_changes)
    if bundles:
        st.caption(f"{bundles:,} line{'s' if bundles != 1 else ''} read as FHIR Bundle{'s' if bundles != 1 else ''}: "
                   "each counted as the case it gives (a bundle that gives none is counted by its reason).")
    df = pd.DataFrame(rows, columns=COLUMNS)
    texts, titles = rule_texts()
    counts(summary, seconds)
    decisions_chart(df)
    left, right = st.columns(2)
    with left:
        blocking_criteria(df, texts)
    with right:
        flipping_facts(df, titles)
    whole_report(df, summary, texts, name)


# A worker process started from the page (forkserver, spawn) imports this file
# again as __mp_main__: no page there, only the imports the work needs.
if __name__ != "__mp_main__":
    page()
