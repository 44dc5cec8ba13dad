"""The what-if page: the decisions beside the case, kept in view while facts change.

    pa-solver ui                 (or: streamlit run ui/app.py)

On a wide screen the facts and the decisions each scroll in a pane of the
window's height, side by side, so neither scrolls the other away; on a narrow
one (a phone) the decisions come first and a strip of badges stays at the top
while the facts below change.  Each plan is one line (name, badge, what
decides it or holds it back) with its card collapsed under it; a card's
contents are computed only while it is open.

The page is thin: decisions, statuses, citations, missing sets and changes all
come from `solver`; `caseform` turns the widgets into a case and back and
`present` puts a result into words.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# the page's own modules; in a source checkout, the repository (for `solver`)
for _p in (str(HERE), str(HERE.parent)) if (HERE.parent / "solver").is_dir() else (str(HERE),):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import streamlit as st  # noqa: E402

import caseform as cf  # noqa: E402
import present as pr  # noqa: E402
from solver.engine.solver import SharedSolver  # noqa: E402
from solver.fhir.dtr import questionnaire  # noqa: E402
from solver.fhir.pas import pas_bundle  # noqa: E402
from solver.case.models import CaseError, parse_case  # noqa: E402

from solver.base.paths import EXAMPLES  # noqa: E402
DEFAULT_EXAMPLE = "ohsu_adult_rr.json"
MAX_CHANGES = 2
ASK_TOP = 5                  # questions listed under "Ask next"

badge = pr.badge
LABEL = pr.LABEL
SHORT = cf.SHORT             # plan_label/2: a plan's short name
PLANS = cf.PLANS

# Wide screens: facts and decisions in panes of the window's height, each
# scrolling on its own.  Narrow screens (Streamlit stacks columns below 640 px):
# the decisions column first, and a strip of badges stuck to the top.
CSS = """<style>
@media (min-width: 641px) {
  div[data-testid="stMainBlockContainer"] { padding-top: 4rem; padding-bottom: 0.5rem; }
  .st-key-facts-pane, .st-key-decisions-pane {
    max-height: calc(100vh - 10.5rem); overflow-y: auto; overflow-x: hidden; padding-right: 0.6rem; }
  div[data-testid="stLayoutWrapper"]:has(> .st-key-strip) { display: none; }
}
@media (max-width: 640px) {
  div[data-testid="stColumn"]:has(.st-key-decisions-pane) { order: -1; }
  div[data-testid="stLayoutWrapper"]:has(> .st-key-strip) {
    position: sticky; top: 3.75rem; z-index: 100; background: var(--background-color, #fff);
    padding: 0.25rem 0; border-bottom: 1px solid rgba(49, 51, 63, 0.2); }
}
/* The facts: a label breaks between words, never inside the fact's name (its column is one
   wide enough for the longest name when the pane is narrow); a radio's options stay on one line. */
.st-key-facts-pane { container-type: inline-size; }
@container (max-width: 560px) {
  .st-key-facts-pane div[data-testid="stHorizontalBlock"] { flex-direction: column; gap: 1rem; }
  .st-key-facts-pane div[data-testid="stColumn"] { width: 100% !important; flex: 1 1 auto !important; }
}
.st-key-facts-pane [data-testid="stWidgetLabel"] p { word-break: normal; overflow-wrap: normal; }
.st-key-facts-pane [role="radiogroup"] label p { white-space: nowrap; }
[data-testid="stAppDeployButton"] { display: none; }
.st-key-stale { opacity: 0.45; filter: grayscale(1); }
.st-key-case-plans [data-tag], .st-key-case-plans span[data-baseweb="tag"] {
  background-color: rgba(49, 51, 63, 0.1) !important; color: rgb(49, 51, 63) !important; }
.st-key-case-plans [data-tag] svg, .st-key-case-plans span[data-baseweb="tag"] svg { fill: currentColor; }
</style>"""


@st.cache_resource
def get_solver() -> SharedSolver:
    """One grounded solver per server process, shared by every session (one
    solve at a time: Streamlit runs sessions in threads)."""
    return SharedSolver()


def example_names() -> list[str]:
    return sorted(p.name for p in EXAMPLES.glob("*.json"))


# ------------------------------------------------------------------ session state

def set_case(case: dict, loaded: str, fhir: cf.FhirState | None = None) -> None:
    """Put a case on the page; `fhir`: the bundle it came from (its sources
    are shown beside the facts), None for a plain case.  The request date
    for the PAS response starts empty for a plain case (never the clock)."""
    for key, value in cf.state_from_case(case).items():
        st.session_state[key] = value
    st.session_state["loaded"] = loaded
    st.session_state["loaded_case"] = cf.case_from_state(cf.state_from_case(case))
    st.session_state["fhir"] = fhir
    st.session_state["case:request_date"] = None


def current_state() -> dict:
    keys = [s.key for s in cf.FACTS.values()] + ["case:id", "case:drug", "case:request", "case:plans"]
    return {k: st.session_state.get(k) for k in keys}


def upload_key() -> str:
    return f"src:upload:{st.session_state.get('upload_n', 0)}"


def clear_upload() -> None:
    """A new uploader (a new key): it no longer shows a file that is not loaded."""
    st.session_state["upload_n"] = st.session_state.get("upload_n", 0) + 1


def cb_load_example() -> None:
    name = st.session_state.get("src:example")
    if not name:
        return
    set_case(json.loads((EXAMPLES / name).read_text()), f"the bundled example `{name}`")
    st.session_state["upload_error"] = None
    clear_upload()


def cb_blank() -> None:
    set_case({}, "a blank case (every fact unknown)")
    st.session_state["upload_error"] = None
    st.session_state["src:example"] = None
    clear_upload()


def cb_upload() -> None:
    upload = st.session_state.get(upload_key())
    if upload is None:
        return
    try:
        case, fhir = cf.load_input(upload.getvalue())
    except CaseError as err:                   # a FhirError is one too: it names the resource and element
        st.session_state["upload_error"] = f"{upload.name} was not loaded: {err}. The case on the page is unchanged."
        return
    except Exception as err:  # noqa: BLE001 - whatever the bytes, never a traceback on the page
        st.session_state["upload_error"] = (f"{upload.name} was not loaded: {type(err).__name__}: {err}. "
                                            "The case on the page is unchanged.")
        return
    if fhir is not None:
        set_case(case, f"the FHIR bundle `{upload.name}` (request of {fhir.request_date.isoformat()})", fhir)
    else:
        set_case(case, f"the upload `{upload.name}`")
    st.session_state["upload_error"] = None
    st.session_state["src:example"] = None


def cb_fill(values: dict) -> None:
    for key, value in cf.apply_values(current_state(), values).items():
        st.session_state[key] = value


def cb_pin() -> None:
    st.session_state["baseline"] = cf.case_from_state(current_state())


def cb_reset() -> None:
    base = st.session_state.get("baseline")
    if base is not None:
        for key, value in cf.state_from_case(base).items():
            st.session_state[key] = value


def cb_unpin() -> None:
    st.session_state["baseline"] = None


if "ready" not in st.session_state:
    set_case(json.loads((EXAMPLES / DEFAULT_EXAMPLE).read_text()), f"the bundled example `{DEFAULT_EXAMPLE}`")
    st.session_state["src:example"] = DEFAULT_EXAMPLE
    st.session_state["baseline"] = None
    st.session_state["upload_error"] = None
    st.session_state["last_good"] = None
    st.session_state["ready"] = True
    st.session_state["fhir"] = None

# A profile handed over by the Compare plans page (ui/compare.py): loaded once,
# here, before any widget is drawn (the widgets' keys were dropped while that
# page was shown), then forgotten.
if st.session_state.get("pending_case") is not None:
    _pending = st.session_state.pop("pending_case")
    set_case(_pending["case"], _pending["loaded"])
    st.session_state["src:example"] = None
    st.session_state["upload_error"] = None
    clear_upload()

solver = get_solver()
PLAN_NAMES = solver.rules.plans

# ------------------------------------------------------------------ decisions

def missing_sets(r: dict, stale: bool) -> None:
    plan = r["plan"]
    st.markdown("**Missing facts** — any one of these sets would complete a pathway (those that approve first):")
    for i, m in enumerate(pr.order_missing(r["missing"])):
        c1, c2 = st.columns([4, 1], vertical_alignment="center")
        c1.markdown(f"{i + 1}. " + ", ".join(pr.fmt_need(f) for f in m["facts"])
                    + f" → `{m['pathway']}` ({m['outcome'].replace('_', ' ')})")
        c2.button("Fill", key=f"fill:{plan}:{i}", on_click=cb_fill, args=(cf.fill_values(m["facts"]),),
                  help="set these facts to a value that meets them", disabled=stale)


@st.dialog("Policy document", width="large")
def policy_document(plan: str, c: dict) -> None:
    """The plan's document as shipped, the criterion's sentence (each piece)
    marked and scrolled into view (solver/analysis/coverage.py finds it)."""
    from solver.analysis.coverage import document_path, document_text, locate

    st.markdown(f"`{c['id']}` — **{c['source']}**")
    text, spans = document_text(plan), locate(plan, c["id"])
    where = f"{len(spans)} place{'s' * (len(spans) != 1)} marked" if spans else "its words were not found"
    st.caption(f"{PLAN_NAMES.get(plan, plan)} · policies/{Path(document_path(plan)).name} · {where}")
    st.html(pr.document_html(text, spans, f"pa-mark-{plan}-{c['id']}"), unsafe_allow_javascript=True)


def card(r: dict, case_shown: dict, stale: bool) -> None:
    """The card's contents (drawn only while its expander is open)."""
    plan, dec = r["plan"], r["decision"]
    pol = r["policy"]
    st.caption(f"{pol['document']} · {pol['id']} · {pol['date'] or 'undated'}"
               + (f" · {r['note']}" if r.get("note") else ""))
    if dec in ("approved", "case_review"):
        pw = next(p for p in r["pathways"] if p["id"] == r["pathway"])
        line = f"**Decided by** {pw['title']} (`{pw['id']}`)"
        if r.get("authorization"):
            line += " — authorization: " + pr.authorization(r)
        st.markdown(line)
    elif dec == "no_policy":
        st.markdown(f"This plan's document has no criteria for {case_shown['drug']}.")
    elif dec == "denied":
        st.markdown("**Why not** — every pathway has a criterion the known facts break:\n\n"
                    + "\n".join(pr.why_not(r)))
    if dec == "needs_info":
        missing_sets(r, stale)
    changes = r.get("changes") or []
    head = f"**What would change this** ({len(changes)})"
    if dec == "no_policy":
        st.markdown(f"{head}: no fact changes this, only another drug would.")
    elif not changes:
        st.markdown(f"{head}: no change of at most {MAX_CHANGES} facts gives another decision.")
    else:
        st.markdown(f"{head} — click a change to try it on the case:")
    for i, ch in enumerate(changes):
        facts = ", ".join(f"{pr.fmt_need(f)} (now {cf.show(f['from'])})" for f in ch["facts"])
        st.button(f"{badge(ch['decision'])} if {facts}", key=f"try:{plan}:{i}", type="tertiary",
                  on_click=cb_fill, args=(cf.fill_values(ch["facts"]),), help="apply this change to the case",
                  disabled=stale)
    # Each criterion's :material/article: button opens the plan's document at its sentence.
    readings = pr.card_readings(r)
    st.markdown(f"**Criteria by pathway** ({len(r['pathways'])}) — :material/article: opens the policy "
                "document at the criterion's sentence")
    for pw in r["pathways"]:
        st.markdown(pr.pathway_line(pw))
        for c in pw["criteria"]:
            left, right = st.columns([14, 1], vertical_alignment="center", gap="small")
            left.markdown(pr.criterion_line(c, readings))
            if right.button(":material/article:", key=f"doc:{plan}:{pw['id']}:{c['id']}", type="tertiary",
                            help=f"Open the policy document at {c['source']}"):
                policy_document(plan, c)
    if readings:
        st.markdown("\n".join(pr.readings_lines(readings)))


def decisions(res: dict, case_shown: dict, base_res: dict | None, stale: bool) -> None:
    base_by_plan = {r["plan"]: r for r in base_res["results"]} if base_res else {}
    for name, value in sorted(res["derived_facts"].items()):
        st.caption(f"{name} = {value}, derived from the ICD-10 codes (no {name} given).")
    for r in res["results"]:
        plan, dec = r["plan"], r["decision"]
        with st.container(key=f"decision-{plan}", border=True):
            head = f"**{PLAN_NAMES.get(plan, plan)}** &nbsp; {badge(dec)}"
            b = base_by_plan.get(plan)
            if b is not None and b["decision"] != dec:
                head += f" &nbsp; :violet-badge[changed — baseline {LABEL[b['decision']]}]"
            st.markdown(f"{head}  \n{pr.reason(r)}")
            rests = pr.rests_line(r)
            if rests:
                st.caption(f":material/push_pin: {rests}")
            note = pr.case_note(r, get_solver().rules.notes.get(plan))
            if note:
                st.markdown(f":material/info: **Note:** {note.replace('*', chr(92) + '*')}")
            # A fixed label (the state of an expander follows its label) and
            # lazy: a closed card costs nothing on a re-decision.
            with st.expander("Card: criteria, missing facts, changes", key=f"card:{plan}",
                             on_change="rerun") as box:
                if box.open:
                    card(r, case_shown, stale)


def baseline_table(res: dict, base_res: dict | None, baseline: dict, case: dict) -> None:
    st.markdown("##### Against the baseline")
    base_by_plan = {r["plan"]: r for r in base_res["results"]} if base_res else {}
    rows = []
    for r in res["results"]:
        b = base_by_plan.get(r["plan"])
        was = b["decision"] if b else None
        mark = " **← changed**" if was != r["decision"] else ""
        rows.append(f"| {PLAN_NAMES.get(r['plan'], r['plan'])} | {badge(was) if was else '—'} | "
                    f"{badge(r['decision'])}{mark} |")
    diff = cf.diff_facts(baseline, case)
    body = "| plan | baseline | now |\n|---|---|---|\n" + "\n".join(rows)
    if diff:
        body += (f"\n\n**Facts that differ** ({len(diff)}):\n\n| fact | baseline | now |\n|---|---|---|\n"
                 + "\n".join(f"| {name} | {cf.show(a)} | **{cf.show(b)}** |" for name, a, b in diff))
    else:
        body += "\n\n**Facts that differ:** none — this is the baseline."
    st.markdown(body)


def mark_facts(shown: dict | None) -> None:
    """The control that marks the facts one plan's decision rests on (a bar beside each), and the
    legend that names them.  The other facts are muted: whatever their values (unknown included),
    that plan decides alike."""
    if shown is None:
        return
    by_plan = {r["plan"]: r for r in shown["results"]}
    chosen = st.session_state.get("mark", "")
    if chosen == "" or (chosen is not None and chosen not in by_plan):
        # at first, or when the plan chosen is no longer asked: the first with criteria for the drug
        # (None is a reviewer's choice: nothing marked)
        st.session_state["mark"] = next((p for p, r in by_plan.items() if r["decision"] != "no_policy"), None)
    st.segmented_control("Mark what a decision rests on", list(by_plan), key="mark",
                         format_func=lambda p: SHORT.get(p, p),
                         help="The facts the chosen plan's decision rests on are marked; the others are muted: "
                              "no value of a muted fact, nor leaving it unknown, changes that plan's decision.")
    plan = st.session_state.get("mark")
    r = by_plan.get(plan)
    if r is None or "rests_on" not in r:
        return
    name = SHORT.get(plan, plan)
    marked = pr.rested_facts(r, shown["derived_facts"])
    if r["rests_on"]:
        # Named here, once, rather than under each fact: an element under a widget would move
        # every element after it whenever the marks change (measured: slower clicks in chromium).
        # Counted and listed alike: the facts it rests on (of facts_count).  A widget marked besides
        # them (the ICD-10 codes a diagnosis was derived from) is named after, not counted as one.
        rested = sorted(f["fact"] for f in r["rests_on"])
        extra = sorted(marked - set(rested))
        listed = ", ".join(f"`{n}`" for n in rested)
        also = (f" {' and '.join(f'`{n}`' for n in extra)} {'is' if len(extra) == 1 else 'are'} marked too: "
                f"the diagnosis was derived from {'it' if len(extra) == 1 else 'them'}." if extra else "")
        st.caption(f":material/push_pin: **{name}: {LABEL[r['decision']].lower()}** rests on the "
                   f"{len(rested)} marked fact{'s' * (len(rested) != 1)} of {r['facts_count']} "
                   f"({listed}).{also} The muted ones cannot change {name}'s decision, whatever you set them to.")
    else:
        st.caption(f":material/push_pin: **{name}: {LABEL[r['decision']].lower()}** rests on none of the facts: "
                   f"no fact below can change it.")
    muted = [n for n in cf.FACTS if n not in marked]
    rules = [f".st-key-fact-{n} {{ opacity: 0.42; }}" for n in muted]
    rules += [f".st-key-fact-{n} {{ border-left: 3px solid #7c3aed; padding-left: 0.45rem; }}" for n in sorted(marked)]
    st.html("<style>" + "\n".join(rules) + "</style>")


def facts_form(notes: dict[str, str], conflicts: list[str], shown: dict | None = None) -> None:
    """Every fact's widget; under a fact from a loaded bundle, its source in
    small text (`notes`); the bundle's conflicts above; the facts a plan's
    decision rests on marked, the others muted (`shown`: the result shown)."""
    st.markdown("#### Facts")
    mark_facts(shown)
    for line in conflicts:
        st.warning(line, icon=":material/call_split:")
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
                                     format="%d" if spec.kind == "integer" else "%g",
                                     placeholder="unknown", help=spec.help or None)
                if name in notes:
                    col.caption(notes[name])


def ask_next(quest: dict | None) -> None:
    """The adaptive questions: what the plans that need information still need."""
    if quest is None:
        return
    st.markdown("##### Ask next")
    items = pr.ask_next(quest, ASK_TOP)
    if not items:
        st.caption("Nothing to ask: no plan needs information this case does not give.")
        return
    more = len(quest["item"]) - len(items)
    st.markdown("\n".join(f"{i}. {text} (`{fact}`)" for i, (text, fact) in enumerate(items, 1))
                + (f"\n\n*and {more} more in the Questionnaire below.*" if more > 0 else ""))
    st.caption("The unknown facts that the plans needing information still need, the one most plans need first "
               "(the adaptive Questionnaire, `pa-solver questionnaire CASE.json`).")


def take_away(case: dict, result: dict | None, quest: dict | None = None, pas: dict | None = None) -> None:
    st.markdown("##### Take it away")
    c1, c2 = st.columns(2)
    c1.download_button("Download the case (JSON)", cf.case_json(case),
                       file_name=f"{case.get('case_id') or 'case'}.json", mime="application/json",
                       key="dl:case", width="stretch")
    if result is not None:
        c2.download_button("Download the result (JSON)", cf.result_json(result),
                           file_name=f"{case.get('case_id') or 'case'}.result.json", mime="application/json",
                           key="dl:result", width="stretch")
        st.caption(f"The result is the page's: decisions, the changes of at most {MAX_CHANGES} facts and what "
                   f"each decision rests on, byte for byte what `pa-solver explain CASE.json --json --max-changes "
                   f"{MAX_CHANGES} --why` prints.")
    else:
        st.caption("No result to download: this case cannot be decided.")
        return
    name = case.get("case_id") or "case"
    c3, c4 = st.columns(2)
    c3.download_button("Download the PAS response (FHIR)", cf.fhir_json(pas) if pas is not None else "",
                       file_name=f"{name}.pas.json", mime="application/fhir+json", key="dl:pas", width="stretch",
                       disabled=pas is None)
    c4.download_button("Download the Questionnaire (FHIR)", cf.fhir_json(quest),
                       file_name=f"{name}.questionnaire.json", mime="application/fhir+json",
                       key="dl:questionnaire", width="stretch")
    if pas is None:
        st.caption("The PAS response needs a request date: a plain case has none, so set one under "
                   "*Request date* in the sidebar.")
    else:
        st.caption("The PAS response: a Bundle of one ClaimResponse per decided plan, dated "
                   f"{pas['timestamp'][:10]}; the Questionnaire asks what the plans still need. For a case, "
                   "byte for byte `pa-solver decide CASE.json --format pas --as-of DATE` and "
                   "`pa-solver questionnaire CASE.json`.")


# ------------------------------------------------------------------ page

with st.sidebar:
    st.header("Case")
    st.caption(f"Loaded: {st.session_state.get('loaded') or 'a case'}.")
    st.selectbox("Bundled example", example_names(), key="src:example", index=None,
                 placeholder="choose an example to load")
    c1, c2 = st.columns(2)
    c1.button("Load example", key="btn:load", on_click=cb_load_example, width="stretch")
    c2.button("Start blank", key="btn:blank", on_click=cb_blank, width="stretch")
    st.file_uploader("Upload a case (JSON) or a FHIR Bundle", type=["json"], key=upload_key(), on_change=cb_upload,
                     help="A case as `pa-solver decide` reads it, or a FHIR R4 Bundle (a PAS request or the "
                          "member's resources): its facts are shown with where each came from.")
    if st.session_state.get("upload_error"):
        st.error(st.session_state["upload_error"])
    st.divider()
    st.text_input("Case id", key="case:id")
    st.selectbox("Drug", cf.DRUGS, key="case:drug")
    st.selectbox("Request", cf.REQUESTS, key="case:request")
    st.multiselect("Plans", PLANS, key="case:plans", format_func=lambda p: PLAN_NAMES.get(p, p))
    _fhir = st.session_state.get("fhir")
    if _fhir is not None:
        _now = cf.case_from_state(current_state())
        for _name in ("drug", "request"):
            _note = pr.source_note(_name, _fhir, _now)
            if _note:
                st.caption(f"{_name.capitalize()}: {_note}")
        st.caption(f"Request date: {_fhir.request_date.isoformat()}, {pr.request_date_note(_fhir)}.")
    else:
        st.date_input("Request date", value=None, key="case:request_date", format="YYYY-MM-DD",
                      help="The date of the request, for the PAS response (a bundle gives its own; "
                           "the page never takes today's date).")
    st.divider()
    st.header("What-if")
    st.button("Pin this case as the baseline", key="btn:pin", on_click=cb_pin, width="stretch")
    if st.session_state.get("baseline") is not None:
        st.button("Reset to the baseline", key="btn:reset", on_click=cb_reset, width="stretch")
        st.button("Forget the baseline", key="btn:unpin", on_click=cb_unpin, width="stretch")

st.html(CSS)
st.markdown("### Prior authorization: what if?")
_NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
_PLAN_COUNT = len(PLANS)
st.caption(f"{' and '.join(cf.DECLARED.drugs.values())} against "
           f"{_NUMBERS[_PLAN_COUNT] if _PLAN_COUNT < len(_NUMBERS) else _PLAN_COUNT} plans' written criteria, "
           f"decided by ASP rules (clingo). An empty or 'unknown' field is unknown, never false.")


@st.fragment
def what_if() -> None:
    """Facts and decisions: a fact's widget reruns only this part of the page.
    Every widget has a key, so the case is known before any widget is drawn:
    the decisions go out to the browser first."""
    t0 = time.perf_counter()
    case = cf.case_from_state(current_state())
    case_error = None
    try:
        parsed = parse_case(case)
    except CaseError as err:
        parsed = None
        case_error = str(err)
    t1 = time.perf_counter()
    result = solver.solve(parsed, MAX_CHANGES, why=True) if parsed is not None else None
    decide_ms = (time.perf_counter() - t1) * 1e3
    if result is not None:
        st.session_state["last_good"] = {"case": case, "result": result}
    last = st.session_state.get("last_good")

    baseline = st.session_state.get("baseline")
    base_result = None
    if baseline is not None:
        try:
            base_result = solver.solve(parse_case(baseline))
        except CaseError:
            base_result = None

    # FHIR: the sources of the loaded bundle's facts, the adaptive
    # Questionnaire and the PAS response, each built once per run.
    fhir = st.session_state.get("fhir")
    notes = {name: note for name in cf.FACTS if (note := pr.source_note(name, fhir, case))}
    conflicts = pr.conflict_lines(fhir, case)
    quest = pas = None
    if result is not None:
        quest = questionnaire(solver, case["drug"], case["request"], case.get("plans"), result)
        created = fhir.request_date if fhir is not None else st.session_state.get("case:request_date")
        if created is not None:
            patient = {"reference": fhir.patient} if fhir is not None and fhir.patient else None
            pas = pas_bundle(result, PLAN_NAMES, created, fhir.claim if fhir is not None else None, patient)

    shown = result if result is not None else (last or {}).get("result")
    if shown is not None:
        # One element per plan, each kept on one line: a narrow screen wraps between plans, never
        # between a plan's name and its badge.
        with st.container(key="strip", horizontal=True, gap="small"):
            for r in shown["results"]:
                st.markdown(f"**{SHORT.get(r['plan'], r['plan'])}** {badge(r['decision'])}", width="content",
                            wrap=False)
            if result is None:
                st.markdown("*(stale)*", width="content")

    left, right = st.columns([1, 1], gap="large")
    with right, st.container(key="decisions-pane"):
        st.markdown("#### Decisions")
        timing = st.empty()
        if case != st.session_state.get("loaded_case"):
            st.caption(f"Loaded: {st.session_state.get('loaded') or 'a case'}, with changes made on this page.")
        if result is None:
            st.error(f"This case cannot be decided: {case_error}. Correct that fact (or set it to unknown) "
                     "and the page decides again.")
            if last is not None:
                st.markdown("**Stale** — the decisions below are those of the last valid case, not of this one:")
                with st.container(key="stale"):
                    decisions(last["result"], last["case"], None, stale=True)
        else:
            if case.get("plans") == []:
                st.warning("No plan is chosen: an empty plan list is every plan, as `pa-solver decide` reads it.")
            if baseline is not None:
                baseline_table(result, base_result, baseline, case)
            decisions(result, case, base_result if baseline is not None else None, stale=False)
            ask_next(quest)
        take_away(case, result, quest, pas)
    with left, st.container(key="facts-pane"):
        facts_form(notes, conflicts, result)

    page_ms = (time.perf_counter() - t0) * 1e3
    if result is not None:
        timing.caption(f"Decided in {decide_ms:.1f} ms (decision, missing sets, changes and what it rests on for "
                       f"every plan); "
                       f"page computed in {page_ms:.0f} ms on the server.")
    else:
        timing.caption(f"Not decided: the case is invalid. Page computed in {page_ms:.0f} ms on the server.")
    st.session_state["last_timing"] = {"decide_ms": decide_ms, "page_ms": page_ms}


what_if()
