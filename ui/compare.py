"""The Compare plans page: where two plans (or one plan and another version of
its rules) part ways, profile by profile.

    pa-solver ui                 (or: streamlit run ui/app.py), then "Compare plans"

Everything comes from `solver.diff`: every subset-minimal profile (some facts
known, with values or ranges; every other fact unknown) under which the two
decide differently.  The page groups the profiles by pair of decisions
("CVS Caremark approves, OHSU Health Services denies"), smallest first, says
each fact in the what-if page's words, and, for each profile, decides one case
inside it (each fact at its first listed value, or a value in its range as the
what-if page's Fill picks it) to list per plan the criteria that hold it back
on its closest pathway (solver/case/blocking.py).  "Open in What-if" hands that case
to the what-if page (session state "pending_case"; ui/whatif.py loads it).
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
# the page's own modules; in a source checkout, the repository (for `solver`)
for _p in (str(HERE), str(HERE.parent)) if (HERE.parent / "solver").is_dir() else (str(HERE),):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import streamlit as st  # noqa: E402
from streamlit.errors import StreamlitAPIException  # noqa: E402

import caseform as cf  # noqa: E402
import present as pr  # noqa: E402
from solver.analysis import diff as sd  # noqa: E402
from solver.case.blocking import blocking  # noqa: E402
from solver.rules.loading import RuleBaseError
from solver.engine.solver import Solver
from solver.rules.files import rules_version  # noqa: E402
from solver.case.models import CaseError, parse_case  # noqa: E402
from solver.text.words import condition  # noqa: E402

DECISION_ORDER = sd.DECISION_ORDER
VERB = {"approved": "approves", "case_review": "sends it to case review", "needs_info": "needs information",
        "denied": "denies", "no_policy": "has no policy"}
MODES = ("Two plans", "A plan and a rule-base version")
SHOWN = 3                    # criteria listed per plan and status (the rest counted)
WIDGETS = ("cmp:mode", "cmp:a", "cmp:b", "cmp:plan", "cmp:folder", "cmp:drug", "cmp:request")


class Engine:
    """One Solver for this page per server process; a clingo Control is not
    thread-safe, so every solve and diff takes `lock` (each takes milliseconds)."""

    def __init__(self) -> None:
        self.solver = Solver()
        self.lock = threading.Lock()


@st.cache_resource(show_spinner=False)
def get_engine() -> Engine:
    return Engine()


@st.cache_resource(show_spinner=False, max_entries=4)
def against_for(plan: str, folder: str, version: str, _engine: Engine):
    """Today's rules with the folder's version of `plan` beside them
    (solver.diff.Against, as `pa-solver diff PLAN --against DIR` uses it),
    keyed by the folder's files' hash: an edit there loads it again."""
    with _engine.lock:
        return sd.Against(_engine.solver, plan, folder)


# ------------------------------------------------------------------ words

def fact_words(f: dict) -> str:
    """A profile's fact as the what-if page labels it: `Diagnosis (diagnosis) = all`,
    `18 ≤ Age, years (age_years) < 65`, `Weight, kg (weight_kg) documented (any value)`."""
    spec = cf.FACTS.get(f["fact"])
    return condition(f["fact"], f.get("values"), f.get("range"), show=cf.show,
                     name=f"**{spec.label if spec else f['fact']}**", symbols=("≥", "≤", "documented (any value)"))


def plan_name(plan: str, names: dict) -> str:
    """A plan's name; `plan@label` (another rule-base version) as "Name (label)"."""
    base, _, label = plan.partition("@")
    name = names.get(base, base)
    return f"{name} ({label})" if label else name


def pair_words(decisions: dict, plans: list, names: dict) -> str:
    a, b = plans
    return (f"{plan_name(a, names)} {VERB.get(decisions[a], decisions[a])}, "
            f"{plan_name(b, names)} {VERB.get(decisions[b], decisions[b])}")


def groups_of(got: dict) -> list[tuple[tuple, list]]:
    """[((dA, dB), [difference, ...])]: by pair of decisions, the pair whose
    smallest profile is smallest first (then the decision order); within a
    pair, diff()'s order (smallest profiles first)."""
    a, b = got["plans"]
    groups: dict[tuple, list] = {}
    for d in got["differences"]:
        groups.setdefault((d["decisions"][a], d["decisions"][b]), []).append(d)
    rank = {d: i for i, d in enumerate(DECISION_ORDER)}
    return sorted(groups.items(), key=lambda kv: (len(kv[1][0]["facts"]), rank.get(kv[0][0], len(rank)),
                                                  rank.get(kv[0][1], len(rank)), kv[0]))


# ------------------------------------------------------------------ a case inside a profile

def candidates(diff_result: dict, difference: dict, plans: list) -> list[dict]:
    """Cases inside a profile: each fact at its first listed value, or a value
    in its range (first as the what-if page's Fill picks it, then the middle
    or just inside the other end)."""
    first: dict = {}
    other: dict = {}
    for f in difference["facts"]:
        spec = cf.FACTS.get(f["fact"])
        if f.get("values") is not None:
            first[f["fact"]] = other[f["fact"]] = f["values"][0]
            continue
        lo, hi = f.get("range") or (None, None)
        first[f["fact"]] = cf.value_in_range(spec, lo, hi) if spec else (lo if lo is not None else 0)
        if lo is not None and hi is not None:
            mid = (lo + hi) / 2
            other[f["fact"]] = int(mid) if spec and spec.kind == "integer" else mid
        elif hi is not None:
            other[f["fact"]] = hi - 1 if spec and spec.kind == "integer" else hi - 0.5
        else:
            other[f["fact"]] = first[f["fact"]]
    out = []
    for facts in (first, other):
        case = {"drug": diff_result["drug"], "request": diff_result["request"], "plans": plans, "facts": facts}
        if case not in out:
            out.append(case)
    return out


def summary(r: dict, shown=lambda name: name) -> dict:
    """What one plan's result says of the profile: its decision and, where it
    did not approve, the criteria not met / unknown on its closest pathways
    (ids through `shown`: another version's as its user wrote them)."""
    out = {"decision": r["decision"], "pathway": shown(r["pathway"]) if r.get("pathway") else None,
           "not_met": [], "unknown": []}
    if r["decision"] in ("approved", "no_policy"):
        return out
    crit = {c["id"]: c for pw in r["pathways"] for c in pw["criteria"]}
    try:
        nm, un = blocking((pw["outcome"], [c["id"] for c in pw["criteria"] if c["status"] == "not_met"],
                           [c["id"] for c in pw["criteria"] if c["status"] == "unknown"]) for pw in r["pathways"])
    except KeyError:                               # an outcome blocking.py does not rank: say nothing, never fail
        return out
    for key, ids in (("not_met", nm), ("unknown", un)):
        out[key] = [{"id": shown(i), "source": crit[i].get("source", ""), "text": crit[i].get("text", "")}
                    for i in ids]
    return out


def enrich(got: dict, plans: list, decide) -> list[dict]:
    """Per difference: the case handed to the what-if page (asking `plans`),
    whether it gives the pair, and per plan the summary of its result.
    `decide(case dict)`: {plan as `got` names it: summary} (under the lock)."""
    out = []
    for d in got["differences"]:
        best = None
        for case in candidates(got, d, plans):
            try:
                per = decide(case)
            except CaseError as err:
                best = best or {"case": case, "ok": False, "error": str(err), "plans": {}}
                continue
            ok = bool(per) and all(per[p]["decision"] == d["decisions"][p] for p in per)
            entry = {"case": case, "ok": ok, "error": None, "plans": per}
            if ok:
                best = entry
                break
            if best is None or best.get("error"):
                best = entry
        out.append(best)
    return out


@st.cache_data(show_spinner=False, max_entries=64)
def compare_plans(a: str, b: str, drug: str, request: str, rules: str, _engine: Engine) -> dict:
    """diff() of two plans and each profile's case and criteria (cached per
    plans, drug, request and rule-base version)."""
    solver = _engine.solver
    with _engine.lock:
        got = sd.diff(solver, a, b, drug=drug, request=request)

    def decide(case: dict) -> dict:
        parsed = parse_case(case)
        with _engine.lock:
            res = solver.solve(parsed)
        return {r["plan"]: summary(r) for r in res["results"] if r["plan"] in got["plans"]}

    return {"diff": got, "profiles": enrich(got, list(got["plans"]), decide)}


@st.cache_data(show_spinner=False, max_entries=32)
def compare_version(plan: str, folder: str, other: str, drug: str, request: str, rules: str,
                    _engine: Engine) -> dict:
    """A plan against its rules in another folder (`diff_against`'s shape:
    plans [plan, plan@label]) and each profile's case and criteria, decided
    by today's rules and the other version in one program, as the command
    line does (cached per plan, folder and both versions)."""
    solver = _engine.solver
    ag = against_for(plan, folder, other, _engine)
    with _engine.lock:
        got = ag.diff(solver, drug, request)

    def decide(case: dict) -> dict:
        parsed = parse_case({k: v for k, v in case.items() if k != "plans"})   # its ids are not the contract's
        with _engine.lock:
            res = ag.solver.solve(parsed)
        return {ag.display(r["plan"]): summary(r, ag.display) for r in res["results"]
                if ag.display(r["plan"]) in got["plans"]}

    return {"diff": got, "profiles": enrich(got, [plan], decide)}


# ------------------------------------------------------------------ the page

def folder_problem(text: str) -> tuple[str | None, str | None]:
    """(the folder as a path, None) or (None, why it cannot be a rule base)."""
    try:
        path = os.path.abspath(os.path.expanduser(text.strip()))
        if not os.path.exists(path):
            return None, "it does not exist"
        if not os.path.isdir(path):
            return None, "it is not a folder (give the folder that holds the .lp files, e.g. logic/)"
        names = os.listdir(path)
        if not any(n.endswith(".lp") for n in names):
            return None, "it has no .lp files (give the folder that holds them, e.g. an older checkout's logic/)"
    except (OSError, ValueError) as err:
        return None, f"it cannot be read: {err}"
    return path, None


def criteria_lines(per: dict, plans: list, names: dict) -> list[str]:
    lines = []
    for p in plans:
        s = per.get(p)
        if s is None:
            continue
        name = f"**{plan_name(p, names)}** {pr.badge(s['decision'])}"
        if s["decision"] in ("approved", "case_review") and s.get("pathway"):
            lines.append(f"- {name} via `{s['pathway']}`")
            continue
        if s["decision"] == "no_policy":
            lines.append(f"- {name} no criteria for this drug")
            continue
        parts = []
        nm, un = s["not_met"], s["unknown"]
        if nm:          # the broken criteria in the policy's words; the unknown ones by id
            parts.append("not met: " + "; ".join(f"`{c['id']}` {pr.clip_sentences(c['text'], 140)}"
                                                 for c in nm[:SHOWN])
                         + (f" (+{len(nm) - SHOWN} more)" if len(nm) > SHOWN else ""))
        if un:
            parts.append("unknown: " + ", ".join(f"`{c['id']}`" for c in un[:2 * SHOWN])
                         + (f" (+{len(un) - 2 * SHOWN} more)" if len(un) > 2 * SHOWN else ""))
        lines.append(f"- {name} " + (" — ".join(parts) if parts else ""))
    return lines


def open_in_whatif(entry: dict, words: str, note: str = "") -> None:
    """Hand the profile's case to the what-if page and go there."""
    st.session_state["pending_case"] = {"case": entry["case"],
                                        "loaded": f"a profile from Compare plans ({words}){note}"}
    try:
        st.switch_page("whatif.py")
    except StreamlitAPIException:
        st.error("The What-if page is not part of this app: open the app (ui/app.py, or `pa-solver ui`) "
                 "to load this profile there.")


def show_differences(res: dict, names: dict, version_note: str = "") -> None:
    got, profiles = res["diff"], res["profiles"]
    plans = got["plans"]
    index = {id(d): i for i, d in enumerate(got["differences"])}
    groups = groups_of(got)
    st.caption(f"Rules {got['rules_version']} · {got['drug']} · {got['request']} request.")
    if not groups:
        st.success(f"These two plans decide alike on every profile: for {got['drug']} ({got['request']}), no "
                   f"combination of known facts gives {plan_name(plans[0], names)} and "
                   f"{plan_name(plans[1], names)} different decisions.")
        return
    n = len(got["differences"])
    st.markdown(f"**{n} profile{'s' * (n != 1)}** in **{len(groups)} pair{'s' * (len(groups) != 1)} of "
                f"decisions**:\n\n| decisions | profiles |\n|---|---|\n"
                + "\n".join(f"| {pair_words(ds[0]['decisions'], plans, names)} | {len(ds)} |" for _, ds in groups))
    st.caption("A profile is a set of facts, each with the values or range listed, every other fact unknown: "
               "any case inside it gets this pair of decisions, and dropping any one of its facts loses the "
               "pair. Under each profile, per plan, the criteria that hold it back on its closest pathway, "
               "for one case inside the profile (the one *Open in What-if* loads).")
    for gi, ((da, db), diffs) in enumerate(groups):
        words = pair_words(diffs[0]["decisions"], plans, names)
        with st.expander(f"{words} — {len(diffs)} profile{'s' * (len(diffs) != 1)}", expanded=gi == 0):
            for d in diffs:
                i = index[id(d)]
                entry = profiles[i]
                with st.container(border=True, key=f"cmp-profile-{i}"):
                    facts = d["facts"]
                    st.markdown("\n".join(f"- {fact_words(f)}" for f in facts) if facts
                                else "- *(no fact known: the drug and the request alone)*")
                    lines = criteria_lines(entry["plans"], plans, names)
                    if lines:
                        st.markdown("\n".join(lines))
                    if not entry["ok"]:
                        st.warning("The case this page would load for this profile does not give this pair "
                                   "of decisions" + (f": {entry['error']}" if entry.get("error") else "")
                                   + ". It opens anyway, to be looked at.")
                    if st.button("Open in What-if", key=f"open:{i}",
                                 help="load a case inside this profile (each fact at its first listed value, "
                                      "or a value in its range) on the What-if page" + version_note):
                        open_in_whatif(entry, words, version_note)


def remember_widgets(defaults: dict) -> None:
    """Streamlit drops the state of widgets not drawn in a run (another page):
    keep a copy, and give it back when this page is drawn again; the first
    time, the defaults (set here, not as the widgets' `index`, so that
    Streamlit never sees a widget with both)."""
    for k in WIDGETS:
        if k not in st.session_state:
            if f"_{k}" in st.session_state:
                st.session_state[k] = st.session_state[f"_{k}"]
            elif k in defaults:
                st.session_state[k] = defaults[k]


def keep_widgets() -> None:
    for k in WIDGETS:
        if k in st.session_state:
            st.session_state[f"_{k}"] = st.session_state[k]


engine = get_engine()
NAMES = engine.solver.rules.plans
PLAN_IDS = [p for p in cf.PLANS if p in NAMES]
remember_widgets({"cmp:a": "cvs_caremark" if "cvs_caremark" in PLAN_IDS else PLAN_IDS[0],
                  "cmp:b": "ohsu" if "ohsu" in PLAN_IDS else PLAN_IDS[-1]})

st.markdown("### Compare plans: where do they part ways?")
st.caption("Every smallest set of known facts under which two plans give different decisions, found by the "
           "rules themselves (clingo), grouped by the pair of decisions.")

mode = st.radio("Compare", MODES, key="cmp:mode", horizontal=True)
c1, c2, c3, c4 = st.columns(4)
fmt = lambda p: NAMES.get(p, p)  # noqa: E731
if mode == MODES[0]:
    a = c1.selectbox("Plan", PLAN_IDS, key="cmp:a", format_func=fmt)
    b = c2.selectbox("against plan", PLAN_IDS, key="cmp:b", format_func=fmt)
else:
    plan = c1.selectbox("Plan", PLAN_IDS, key="cmp:plan", format_func=fmt)
    folder = c2.text_input("against the rules in folder", key="cmp:folder",
                           placeholder="e.g. ../old-checkout/logic",
                           help="a folder of .lp files: another version of this rule base (on the server)")
drug = c3.selectbox("Drug", cf.DRUGS, key="cmp:drug")
request = c4.selectbox("Request", cf.REQUESTS, key="cmp:request")
keep_widgets()

if mode == MODES[0]:
    if a == b:
        st.warning(f"Pick two different plans: {fmt(a)} against itself decides alike on every case. "
                   "To compare a plan with another version of its rules, choose *A plan and a rule-base version*.")
    else:
        try:
            res = compare_plans(a, b, drug, request, engine.solver.rules.version, engine)
        except (RuleBaseError, ValueError, OSError) as err:
            st.error(f"The two plans could not be compared: {err}")
        except Exception as err:  # noqa: BLE001 - never a traceback on the page
            st.error(f"The two plans could not be compared: {type(err).__name__}: {err}")
        else:
            show_differences(res, NAMES)
else:
    if not (folder or "").strip():
        st.info("Give the folder of another version of the rule base (a folder of .lp files, e.g. an older "
                "checkout's logic/): the page lists every profile where this plan decides differently there.")
    else:
        path, why = folder_problem(folder)
        if why is not None:
            st.error(f"The folder `{folder.strip()}` cannot be compared: {why}.")
        else:
            try:
                other = rules_version(path)
                res = compare_version(plan, path, other, drug, request, engine.solver.rules.version, engine)
            except (RuleBaseError, ValueError, OSError) as err:
                st.error(f"The folder `{path}` cannot be compared: {err}")
            except Exception as err:  # noqa: BLE001 - never a traceback on the page
                st.error(f"The folder `{path}` cannot be compared: {type(err).__name__}: {err}")
            else:
                st.caption(f"{fmt(plan)} with this app's rules against its rules in `{path}`.")
                show_differences(res, NAMES, version_note=(
                    " (decided on the What-if page with this app's rules; the other version's decision is "
                    "the one listed here)"))
