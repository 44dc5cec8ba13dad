"""Recorded decisions: what the service (`pa-solver serve`) answered EHRs and payer systems, read
from its record (the `--store` file or database), for reviewers.

    pa-solver ui --store decisions.sqlite        (or PA_SOLVER_STORE=... streamlit run ui/app.py)

The record is chosen by whoever starts the pages, never typed on the page (a page must not open
files its reader names).  Each `$submit` and CRD call is listed with the decision per plan; one
opened shows its request and answer as they were sent, says whether today's rules decide the
same, and a `$submit`'s case opens in What-if.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from solver.rules import declared  # noqa: E402
from solver.service.records import DamagedRecord, StoreError, is_url, shown  # noqa: E402
from solver.service.store import open_store  # noqa: E402

PLANS = tuple(declared.of().plans)
SHORT = dict(declared.of().plan_labels)          # plan_label/2: the column headings


KINDS = {"submit": "PAS $submit", "crd": "CRD hook"}

st.title("Recorded decisions")
spec = os.environ.get("PA_SOLVER_STORE", "")
if not spec:
    st.info("No record to read. Start the pages with the record the service writes: "
            "`pa-solver ui --store decisions.sqlite` (the file of `pa-solver serve --store`), "
            "or a PostgreSQL URL.")
    st.stop()
if not is_url(spec) and not os.path.isfile(spec):
    st.error(f"No record at {shown(spec)}: start the service with `--store {shown(spec)}` first.")
    st.stop()


@st.cache_resource(show_spinner=False)
def opened(spec: str):
    """The record, opened once for the pages' server (a Store is safe across sessions' threads)."""
    return open_store(spec)


def read(what: str, *args, **kwargs):
    """A read of the record, or the page says why it failed (one line) and stops; the next
    rerun opens the record afresh (a database that went away and came back)."""
    try:
        return getattr(opened(spec), what)(*args, **kwargs)
    except DamagedRecord as err:
        # said, never shown: its bytes do not match their digests, or the database cannot read them
        st.error(f"#{err.seq if err.seq is not None else '?'} is damaged: {err.reason}. Its request and answer "
                 f"are not shown; `pa-solver audit --store` lists every damaged record.")
        st.stop()
    except StoreError as err:
        opened.clear()
        st.error(str(err))
        st.stop()


kind_col, plan_col, since_col, until_col = st.columns(4)
kind = kind_col.selectbox("Kind", ["all", *KINDS], format_func=lambda k: KINDS.get(k, "all kinds"), key="rec:kind")
plan = plan_col.selectbox("Plan", ["all", *PLANS], key="rec:plan")
since = since_col.date_input("Since (UTC)", value=None, key="rec:since")
until = until_col.date_input("Until (UTC)", value=None, key="rec:until")
SHOWN = 500                                      # the newest, read as such: a large record costs a page
chosen = {"since": since.isoformat() if isinstance(since, dt.date) else None,
          "before": (until + dt.timedelta(days=1)).isoformat() if isinstance(until, dt.date) else None,
          "plan": None if plan == "all" else plan, "kind": None if kind == "all" else kind}
total = read("count", **chosen)
rows = read("list", **chosen, limit=SHOWN)
rows.reverse()                                   # newest first
st.caption(f"{total:,} decision{'s' * (total != 1)} in {shown(spec)}")
if not rows:
    st.stop()


def submission(r: dict) -> str:
    """A submission's identifier value; a CRD call's hookInstance."""
    return (r["submission"] or "").split("|", 1)[-1]


# The decisions first, headed by the plans' short names and as wide as their longest word, so that a
# phone shows them without scrolling sideways; when and what after them, and last the submission (a
# CRD hookInstance is a UUID): what a 1366 px screen cuts, if anything, is its end.
st.dataframe([{"#": r["seq"], **{p: r["decisions"].get(p, "") for p in PLANS},
               "decided (UTC)": r["decided_at"][:19].replace("T", " "),
               "kind": KINDS.get(r["kind"], r["kind"]), "rules": r["rules_version"],
               "submission": submission(r)} for r in rows],
             hide_index=True, width="stretch",
             column_config={"#": st.column_config.NumberColumn(width=40),
                            **{p: st.column_config.TextColumn(SHORT.get(p, p), help=p, width=86) for p in PLANS},
                            "decided (UTC)": st.column_config.TextColumn(width=136),
                            "kind": st.column_config.TextColumn(width=90),
                            "rules": st.column_config.TextColumn(width=128)})
if total > len(rows):
    st.caption(f"The newest {len(rows):,} are listed; set Until to see older ones.")

labels = {r["seq"]: f"#{r['seq']} {KINDS.get(r['kind'], r['kind'])} {submission(r)}" for r in rows}
seq = st.selectbox("Open", list(labels), key="rec:open", format_func=labels.get)
entry = read("entry", seq)
if entry is None:
    st.error(f"#{seq} is no longer in the record.")
    st.stop()

st.subheader(f"#{entry['seq']}: {KINDS.get(entry['kind'], entry['kind'])} {submission(entry)}")
st.write(f"Decided {entry['decided_at'][:19].replace('T', ' ')} UTC under rules {entry['rules_version']}; "
         f"request SHA-256 {entry['request_sha256'][:16]}…"
         + ("" if entry["integrity"] == "ok" else "; recorded before answers' digests were kept, so unverified"))


@st.cache_resource
def solver():
    from solver.engine.solver import SharedSolver

    return SharedSolver()


def again(entry: dict):
    """Today's rules on the recorded request: (case dict, decisions) for a $submit, else None."""
    if entry["kind"] != "submit":
        return None
    from solver.base.contract import CaseError
    from solver.fhir.inputs import case_from
    from solver.text.jsontext import loads

    try:
        case, fhir = case_from(loads(entry["request"]))
    except CaseError as err:
        st.warning(f"The recorded request cannot be read as a case today: {err}")
        return None
    if fhir is None:                    # the service records PAS bundles only: this record was written otherwise
        st.warning("The recorded request is not a FHIR bundle, so it is not decided again here.")
        return None
    result = solver().solve(case)
    return fhir.case, {r["plan"]: r["decision"] for r in result["results"]}


now = again(entry)
if now is not None:
    case, decisions = now
    # the plans recorded (a server started with --plans decided only those)
    changed = {p: (was, decisions.get(p)) for p, was in entry["decisions"].items() if decisions.get(p) != was}
    if changed:
        st.warning("Today's rules decide otherwise: " + "; ".join(
            f"{p} {was} → {now or 'not decided'}" for p, (was, now) in sorted(changed.items())))
    else:
        st.success("Today's rules decide the same for every plan recorded.")
    if st.button("Open this case in What-if", key="rec:whatif"):
        st.session_state["pending_case"] = {"case": case, "loaded": f"recorded decision #{entry['seq']} "
                                                                    f"({submission(entry)})"}
        st.switch_page("whatif.py")


def as_json(raw: bytes):
    try:
        return json.loads(raw)
    except ValueError:
        return None


for title, raw in (("Request, as received", entry["request"]),
                   (f"Answer, as sent ({entry['media_type']})", entry["answer"])):
    with st.expander(title):
        got = as_json(raw)
        if got is not None:
            st.json(got, expanded=2)
        else:
            st.code(raw.decode("utf-8", "replace"))
