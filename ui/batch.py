"""The Batch page: a JSONL of cases (or of results from `pa-solver batch` /
`explain --json`) in, the report as charts and a downloadable table out.

Everything is `solver.report`'s: the page uploads, charts and offers the table.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
for _p in (str(HERE), str(HERE.parent)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import altair as alt  # noqa: E402
import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from solver import report  # noqa: E402
from solver.text import condition  # noqa: E402

EXAMPLE = HERE.parent / "examples" / "batch.jsonl"
TOP = 15


def ranked_bars(labels: pd.Series, counts: pd.Series, colour: str) -> None:
    """Horizontal bars, largest first, with whole labels."""
    data = pd.DataFrame({"what": labels.values, "cases": counts.values})
    chart = alt.Chart(data).mark_bar(color=colour).encode(
        x=alt.X("cases:Q", title="cases"),
        y=alt.Y("what:N", sort="-x", title=None, axis=alt.Axis(labelLimit=420)),
        tooltip=["what", "cases"],
    )
    st.altair_chart(chart, use_container_width=True)


def _fmt_detail(fact: str, detail: str) -> str:
    """A flip's fact and {"values": [...]} / {"range": [lo, hi]} in words."""
    d = json.loads(detail)
    return condition(fact, d.get("values"), d.get("range"))


@st.cache_data(show_spinner="Deciding and counting…", max_entries=8)
def run_report(data: bytes, max_changes: int) -> tuple[list[dict], dict, float]:
    """The report's rows and JSON for an uploaded batch (cached by content)."""
    t = time.perf_counter()
    lines = data.splitlines()
    # Small batches in the server process; large ones over every core.
    tally = report.tally(lines, max_changes=max_changes, workers=1 if len(lines) <= 2000 else None)
    return report.rows(tally), report.as_json(tally), time.perf_counter() - t


st.title("Batch: what holds requests back")
st.caption("Upload cases (one JSON object per line, as `pa-solver batch` reads) or results (as `pa-solver batch` "
           "or `pa-solver explain --json` print them). The same report as `pa-solver report`.")

c1, c2 = st.columns([3, 2])
upload = c1.file_uploader("Cases or results (JSONL)", type=["jsonl", "ndjson", "txt", "json"], key="batch:upload")
use_example = c2.toggle(f"Use the bundled example ({EXAMPLE.name}, 200 cases)", key="batch:example",
                        value=upload is None)
max_changes = c2.radio("Cases are explained with changes of", [1, 0], key="batch:max_changes", horizontal=True,
                       format_func=lambda n: "one fact (flips counted)" if n else "none (faster)")

if upload is not None:
    data, name = upload.getvalue(), upload.name
elif use_example:
    data, name = EXAMPLE.read_bytes(), EXAMPLE.name
else:
    st.info("Upload a JSONL file, or use the bundled example.")
    st.stop()

rows, summary, seconds = run_report(data, max_changes)
df = pd.DataFrame(rows, columns=["section", "plan", "item", "decision", "detail", "count"])

m1, m2, m3, m4 = st.columns(4)
m1.metric("Cases", summary["cases"])
m2.metric("Could not be read", sum(summary["errors"].values()))
m3.metric("With changes searched", summary["explained"])
m4.metric("Seconds", f"{seconds:.2f}")
if summary["errors"]:
    st.warning("Lines that could not be read, by field: " + ", ".join(f"{k}: {v}" for k, v in
                                                                      summary["errors"].items()))

st.subheader("Decisions per plan")
dec = df[df.section == "decision"].pivot_table(index="plan", columns="item", values="count", fill_value=0).astype(int)
order = [d for d in ("approved", "case_review", "needs_info", "denied", "no_policy") if d in dec.columns]
dec = dec[order]
st.bar_chart(dec, color=[{"approved": "#2e9e44", "case_review": "#1c6fd1", "needs_info": "#e8a317",
                          "denied": "#d33c3c", "no_policy": "#9a9a9a"}[d] for d in order], horizontal=True)
st.dataframe(dec, key="batch:decisions")

def top(section: str) -> pd.DataFrame:
    """The TOP rows of a report section with the most cases."""
    return df[df.section == section].nlargest(TOP, "count", keep="all").head(TOP)


left, right = st.columns(2)
with left:
    st.subheader("Criteria that block most")
    blocking = top("criterion_not_met")
    if blocking.empty:
        st.write("No criterion is broken by a known fact in this batch.")
    else:
        ranked_bars(blocking.plan + " · " + blocking.item, blocking["count"], "#d33c3c")
    unknown = top("criterion_unknown")
    with st.expander("Criteria most often unknown"):
        st.dataframe(unknown[["plan", "item", "count"]].rename(columns={"item": "criterion"}), hide_index=True,
                     key="batch:unknown")
with right:
    st.subheader("Facts that flip most")
    flips = top("flip")
    if flips.empty:
        st.write("No single-fact changes were searched (or none flips a decision).")
    else:
        label = flips.plan + " · " + pd.Series(map(_fmt_detail, flips.item, flips.detail), index=flips.index) \
            + " → " + flips.decision
        ranked_bars(label, flips["count"], "#7b52c4")
    with st.expander("Most common smallest missing sets"):
        missing = top("smallest_missing_set")
        st.dataframe(missing[["plan", "item", "detail", "count"]].rename(
            columns={"item": "pathway", "detail": "facts"}), hide_index=True, key="batch:missing")

st.subheader("The whole report")
st.dataframe(df, hide_index=True, key="batch:table")
d1, d2 = st.columns(2)
d1.download_button("Download the table (CSV)", df.to_csv(index=False, lineterminator="\n"),
                   file_name=f"{Path(name).stem}.report.csv", mime="text/csv", key="batch:csv")
d2.download_button("Download the report (JSON)", json.dumps(summary, indent=2, ensure_ascii=False),
                   file_name=f"{Path(name).stem}.report.json", mime="application/json", key="batch:json")
