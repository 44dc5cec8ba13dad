"""The what-if page: a case on the left, every plan's answer on the right.

    pa-solver ui                 (or: streamlit run ui/app.py)

The page is thin: decisions, statuses, citations, missing sets and changes all
come from `solver`; `caseform` turns the widgets into a case and back.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

_t0 = time.perf_counter()

HERE = Path(__file__).resolve().parent
for _p in (str(HERE), str(HERE.parent)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import streamlit as st  # noqa: E402

import caseform as cf  # noqa: E402
from solver.engine import SharedSolver  # noqa: E402
from solver.models import PLANS, CaseError, parse_case  # noqa: E402
from solver.text import condition  # noqa: E402

EXAMPLES = HERE.parent / "examples"
DEFAULT_EXAMPLE = "ohsu_adult_rr.json"
MAX_CHANGES = 2

BADGE = {"approved": "green", "case_review": "blue", "needs_info": "orange", "denied": "red", "no_policy": "gray"}
LABEL = {"approved": "APPROVED", "case_review": "CASE REVIEW", "needs_info": "NEEDS INFO", "denied": "DENIED",
         "no_policy": "NO POLICY"}
MARK = {"met": ":green[✔ met]", "not_met": ":red[✘ not met]", "unknown": ":orange[? unknown]"}
PATHWAY_MARK = {"met": ":green[met]", "open": ":orange[open]", "not_met": ":red[not met]"}


# A shape as well as a colour, so the decision reads without colour too.
ICON = {"approved": "check_circle", "case_review": "gavel", "needs_info": "help", "denied": "cancel",
        "no_policy": "block"}


def badge(decision: str) -> str:
    return f":{BADGE[decision]}-badge[:material/{ICON[decision]}: {LABEL[decision]}]"


@st.cache_resource
def get_solver() -> SharedSolver:
    """One grounded solver per server process, shared by every session (one
    solve at a time: Streamlit runs sessions in threads)."""
    return SharedSolver()


def example_names() -> list[str]:
    return sorted(p.name for p in EXAMPLES.glob("*.json"))


# ------------------------------------------------------------------ session state

def set_case(case: dict) -> None:
    for key, value in cf.state_from_case(case).items():
        st.session_state[key] = value


def current_state() -> dict:
    keys = [s.key for s in cf.FACTS.values()] + ["case:id", "case:drug", "case:request", "case:plans"]
    return {k: st.session_state.get(k) for k in keys}


def cb_load_example() -> None:
    name = st.session_state["src:example"]
    set_case(json.loads((EXAMPLES / name).read_text()))
    st.session_state["upload_error"] = None


def cb_blank() -> None:
    set_case({})
    st.session_state["upload_error"] = None


def cb_upload() -> None:
    upload = st.session_state.get("src:upload")
    if upload is None:
        return
    try:
        case = cf.load_case_json(upload.getvalue())
    except CaseError as err:
        st.session_state["upload_error"] = f"{upload.name} was not loaded: {err}"
        return
    set_case(case)
    st.session_state["upload_error"] = None


def cb_fill(values: dict) -> None:
    for key, value in cf.apply_values(current_state(), values).items():
        st.session_state[key] = value


def cb_pin() -> None:
    st.session_state["baseline"] = cf.case_from_state(current_state())


def cb_reset() -> None:
    base = st.session_state.get("baseline")
    if base is not None:
        set_case(base)


def cb_unpin() -> None:
    st.session_state["baseline"] = None


if "ready" not in st.session_state:
    set_case(json.loads((EXAMPLES / DEFAULT_EXAMPLE).read_text()))
    st.session_state["src:example"] = DEFAULT_EXAMPLE
    st.session_state["baseline"] = None
    st.session_state["upload_error"] = None
    st.session_state["ready"] = True

solver = get_solver()
PLAN_NAMES = solver.rules.plans

# ------------------------------------------------------------------ page



with st.sidebar:
    st.header("Case")
    st.selectbox("Bundled example", example_names(), key="src:example")
    c1, c2 = st.columns(2)
    c1.button("Load example", key="btn:load", on_click=cb_load_example, use_container_width=True)
    c2.button("Start blank", key="btn:blank", on_click=cb_blank, use_container_width=True)
    st.file_uploader("Upload a case (JSON)", type=["json"], key="src:upload", on_change=cb_upload)
    if st.session_state.get("upload_error"):
        st.error(st.session_state["upload_error"])
    st.divider()
    st.text_input("Case id", key="case:id")
    st.selectbox("Drug", cf.DRUGS, key="case:drug")
    st.selectbox("Request", cf.REQUESTS, key="case:request")
    st.multiselect("Plans", PLANS, key="case:plans", format_func=lambda p: PLAN_NAMES.get(p, p))
    st.divider()
    st.header("What-if")
    st.button("Pin this case as the baseline", key="btn:pin", on_click=cb_pin, use_container_width=True)
    if st.session_state.get("baseline") is not None:
        st.button("Reset to the baseline", key="btn:reset", on_click=cb_reset, use_container_width=True)
        st.button("Forget the baseline", key="btn:unpin", on_click=cb_unpin, use_container_width=True)

st.title("Prior authorization: what if?")
st.caption("Besponsa (inotuzumab ozogamicin) and Blincyto (blinatumomab) against five plans' written criteria, "
           "decided by ASP rules (clingo). An empty or 'unknown' field is unknown, never false.")

left, right = st.columns([1, 1], gap="large")

with left:
    st.subheader("Facts")
    for group, names in cf.GROUPS.items():
        with st.expander(group, expanded=True):
            cols = st.columns(2)
            for i, name in enumerate(names):
                spec = cf.FACTS[name]
                col = cols[i % 2]
                if spec.kind == "bool":
                    col.radio(spec.label, [cf.UNKNOWN, cf.YES, cf.NO], key=spec.key, horizontal=True,
                              help=spec.help or None)
                elif spec.kind == "enum":
                    col.selectbox(spec.label, [cf.UNKNOWN, *spec.choices], key=spec.key, help=spec.help or None)
                elif spec.kind == "list":
                    col.text_input(spec.label, key=spec.key, placeholder="unknown — e.g. C91.00, C83.50",
                                   help="comma-separated ICD-10 codes")
                else:
                    cast = int if spec.kind == "integer" else float
                    col.number_input(spec.label, key=spec.key, value=None,
                                     min_value=cast(spec.min_value) if spec.min_value is not None else None,
                                     max_value=cast(spec.max_value) if spec.max_value is not None else None,
                                     step=cast(1 if spec.kind == "integer" else 0.5),
                                     format="%d" if spec.kind == "integer" else "%.1f",
                                     placeholder="unknown", help=spec.help or None)

case = cf.case_from_state(current_state())
try:
    parsed = parse_case(case)
except CaseError as err:
    parsed = None
    case_error = str(err)

_t1 = time.perf_counter()
result = solver.solve(parsed, MAX_CHANGES) if parsed is not None else None
decide_ms = (time.perf_counter() - _t1) * 1e3

baseline = st.session_state.get("baseline")
base_result = None
if baseline is not None:
    try:
        base_result = solver.solve(parse_case(baseline))
    except CaseError:
        base_result = None


with st.sidebar:
    st.divider()
    st.header("Take it away")
    st.download_button("Download the case (JSON)", cf.case_json(case),
                       file_name=f"{case.get('case_id') or 'case'}.json", mime="application/json",
                       key="dl:case", use_container_width=True)
    if result is not None:
        st.download_button("Download the result (JSON)", cf.result_json(result),
                           file_name=f"{case.get('case_id') or 'case'}.result.json", mime="application/json",
                           key="dl:result", use_container_width=True)
    st.caption("Re-run either with `pa-solver decide CASE.json --json`.")


def fmt_need(f: dict) -> str:
    """A missing or changed fact and what it must be."""
    return condition(f["fact"], f.get("values"), f.get("range"), show=cf.show, name=f"**{f['fact']}**")


def why_not(r: dict) -> list[str]:
    """Each pathway's broken criteria: why a plan does not approve."""
    lines = []
    for pw in r["pathways"]:
        broken = [c for c in pw["criteria"] if c["status"] == "not_met"]
        if broken:
            names = "; ".join(f"`{c['id']}` {c['text']}" for c in broken[:3])
            more = f" (+{len(broken) - 3} more)" if len(broken) > 3 else ""
            lines.append(f"- *{pw['title']}*: {names}{more}")
    return lines


def reason(r: dict) -> str:
    """One line: what decides a plan, or what holds it back."""
    dec = r["decision"]
    if dec in ("approved", "case_review"):
        a = r.get("authorization") or {}
        months = f" · {a['months']} months" if a.get("months") else ""
        return f"via `{r['pathway']}`{months}"
    if dec == "no_policy":
        return f"no criteria for {r['drug']}"
    if dec == "needs_info":
        facts = r["missing"][0]["facts"]
        first = ", ".join(fmt_need(f) for f in facts[:3]) + (f" and {len(facts) - 3} more facts" if len(facts) > 3 else "")
        others = len(r["missing"]) - 1
        more = f" (or {others} other set{'s' if others > 1 else ''})" if others else ""
        return f"needs {first}{more}"
    # denied: the broken criteria of the pathway that comes closest (fewest
    # broken, then fewest unknown), and the smallest change that approves.
    pw = min(r["pathways"], key=lambda p: (sum(c["status"] == "not_met" for c in p["criteria"]),
                                           sum(c["status"] == "unknown" for c in p["criteria"]), p["id"]))
    broken = [c for c in pw["criteria"] if c["status"] == "not_met"]
    shown = "; ".join(f"`{c['id']}` {short(c['text'])}" for c in broken[:2])
    line = f"not met: {shown}" + (f" (+{len(broken) - 2})" if len(broken) > 2 else "")
    fix = next((ch for ch in r.get("changes") or [] if ch["decision"] in ("approved", "case_review")), None)
    if fix is not None:
        line += f" — {fix['decision'].replace('_', ' ')} if " + ", ".join(fmt_need(f) for f in fix["facts"])
    return line


def short(text: str, n: int = 60) -> str:
    """A policy sentence cut to fit a table cell."""
    text = " ".join(text.split()).replace("|", "/")
    return text if len(text) <= n else text[: n - 1].rsplit(" ", 1)[0] + "…"


def card(r: dict, base: dict | None) -> None:
    plan, dec = r["plan"], r["decision"]
    with st.container(border=True):
        head = f"#### {PLAN_NAMES.get(plan, plan)} &nbsp; {badge(dec)}"
        if base is not None and base["decision"] != dec:
            head += f" &nbsp; :violet-badge[changed — baseline {LABEL[base['decision']]}]"
        st.markdown(head)
        pol = r["policy"]
        st.caption(f"{pol['document']} · {pol['id']} · {pol['date'] or 'undated'}"
                   + (f" · {r['note']}" if r.get("note") else ""))
        if dec in ("approved", "case_review"):
            pw = next(p for p in r["pathways"] if p["id"] == r["pathway"])
            line = f"**Decided by** {pw['title']} (`{pw['id']}`)"
            a = r.get("authorization")
            if a:
                parts = [f"{a['months']} months" if a["months"] else "no duration stated"]
                if a["max_cycles"]:
                    parts.append(f"at most {a['max_cycles']} cycles")
                if a["max_units_per_21_days"]:
                    parts.append(f"at most {a['max_units_per_21_days']} units per 21 days")
                line += " — authorization: " + ", ".join(parts)
            st.markdown(line)
        elif dec == "no_policy":
            st.markdown(f"This plan's document has no criteria for {case['drug']}.")
        elif dec == "denied":
            st.markdown("**Why not** — every pathway has a criterion the known facts break:")
            st.markdown("\n".join(why_not(r)))
        if dec == "needs_info":
            st.markdown("**Missing facts** — any one of these sets would complete a pathway:")
            for i, m in enumerate(r["missing"]):
                c1, c2 = st.columns([4, 1])
                c1.markdown(f"{i + 1}. " + ", ".join(fmt_need(f) for f in m["facts"])
                            + f" → `{m['pathway']}` ({m['outcome'].replace('_', ' ')})")
                c2.button("Fill", key=f"fill:{plan}:{i}", on_click=cb_fill,
                          args=(cf.fill_values(m["facts"]),), help="set these facts to a value that meets them")
        with st.expander(f"Criteria by pathway ({len(r['pathways'])})"):
            # One markdown element per pathway: a re-decision redraws every
            # card, and each element costs server time.
            for pw in r["pathways"]:
                lines = [f"**{pw['title']}** (`{pw['id']}`, {pw['outcome'].replace('_', ' ')}) — "
                         f"{PATHWAY_MARK[pw['status']]}"]
                for c in pw["criteria"]:
                    text = f"- {MARK[c['status']]} &nbsp; `{c['id']}` — {c['source']}: {c['text']}"
                    if c.get("reading"):
                        text += f"  \n  *Reading: {c['reading']}*"
                    lines.append(text)
                st.markdown("\n".join(lines))
        changes = r.get("changes") or []
        with st.expander(f"What would change this ({len(changes)})"):
            if dec == "no_policy":
                st.markdown("No fact changes this: only another drug would.")
            elif not changes:
                st.markdown(f"No change of at most {MAX_CHANGES} facts gives another decision.")
            else:
                st.caption("Click a change to try it on the case.")
            for i, ch in enumerate(changes):
                facts = ", ".join(f"{fmt_need(f)} (now {cf.show(f['from'])})" for f in ch["facts"])
                st.button(f"{badge(ch['decision'])} if {facts}", key=f"try:{plan}:{i}", type="tertiary",
                          on_click=cb_fill, args=(cf.fill_values(ch["facts"]),), help="apply this change to the case")


with right:
    timing = st.empty()
    if result is None:
        st.error(f"This case cannot be decided: {case_error}")
    else:
        if case.get("plans") == []:
            st.warning("No plan is chosen: an empty plan list is every plan, as `pa-solver decide` reads it.")
        base_by_plan = {r["plan"]: r for r in base_result["results"]} if base_result else {}
        if baseline is not None:
            st.subheader("Against the baseline")
            rows = []
            for r in result["results"]:
                b = base_by_plan.get(r["plan"])
                was = b["decision"] if b else None
                mark = " **← changed**" if was != r["decision"] else ""
                rows.append(f"| {PLAN_NAMES.get(r['plan'], r['plan'])} | {badge(was) if was else '—'} | "
                            f"{badge(r['decision'])}{mark} |")
            st.markdown("| plan | baseline | now |\n|---|---|---|\n" + "\n".join(rows))
            diff = cf.diff_facts(baseline, case)
            if diff:
                st.markdown(f"**Facts that differ** ({len(diff)}):\n\n| fact | baseline | now |\n|---|---|---|\n"
                            + "\n".join(f"| {name} | {cf.show(a)} | **{cf.show(b)}** |" for name, a, b in diff))
            else:
                st.markdown("**Facts that differ:** none — this is the baseline.")
        st.subheader("Decisions")
        for name, value in sorted(result["derived_facts"].items()):
            st.caption(f"{name} = {value}, derived from the ICD-10 codes (no {name} given).")
        st.markdown("| plan | decision | why |\n|---|---|---|\n" + "\n".join(
            f"| {PLAN_NAMES.get(r['plan'], r['plan'])} | {badge(r['decision'])} | {reason(r)} |"
            for r in result["results"]))
        for r in result["results"]:
            card(r, base_by_plan.get(r["plan"]) if baseline is not None else None)
    page_ms = (time.perf_counter() - _t0) * 1e3
    timing.caption(f"Decided in {decide_ms:.1f} ms (decision, missing sets and changes for every plan); "
                   f"page computed in {page_ms:.0f} ms on the server.")
    st.session_state["last_timing"] = {"decide_ms": decide_ms, "page_ms": page_ms}
