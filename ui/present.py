"""Words for the what-if page: a result (as `Solver.solve` returns it) put into
the sentences and lists the page shows (no Streamlit here, tested on its own).

    order_missing(r["missing"])     # the sets that reach approval first
    reason(r)                       # one line: what decides a plan or holds it back
    clip_sentences(text, 160)       # whole sentences only, never cut mid-sentence
    card_readings(r)                # each CASE.md reading once per card, numbered
    source_note(name, fhir, case)   # "from Observation/obs1 valueQuantity" while the bundle's value stands
    conflict_lines(fhir, case)      # a line per fact the bundle's sources disagree on
    ask_next(questionnaire, 5)      # the adaptive questions, most-needed first
    document_html(text, spans, id)  # a policy document with a criterion's sentence in <mark>
"""

from __future__ import annotations

import html
import json
import re

import caseform as cf
from solver.text.words import condition
from solver.case.outcome import broken as broken_words
from solver.case.outcome import shown as shown_value

LABEL = {"approved": "APPROVED", "case_review": "CASE REVIEW", "needs_info": "NEEDS INFO", "denied": "DENIED",
         "no_policy": "NO POLICY"}
COLOUR = {"approved": "green", "case_review": "blue", "needs_info": "orange", "denied": "red", "no_policy": "gray"}
# A shape as well as a colour, so the decision reads without colour too.
ICON = {"approved": "check_circle", "case_review": "gavel", "needs_info": "help", "denied": "cancel",
        "no_policy": "block"}
MARK = {"met": ":green[✔ met]", "not_met": ":red[✘ not met]", "unknown": ":orange[? unknown]"}
PATHWAY_MARK = {"met": ":green[met]", "open": ":orange[open]", "not_met": ":red[not met]"}
# The outcomes a reviewer wants first: approval, then case review.
OUTCOME_RANK = {"approved": 0, "case_review": 1}


def badge(decision: str) -> str:
    return f":{COLOUR[decision]}-badge[:material/{ICON[decision]}: {LABEL[decision]}]"


def fmt_need(f: dict) -> str:
    """A missing or changed fact and what it must be (the fact's name, as the
    widgets' labels show it)."""
    return condition(f["fact"], f.get("values"), f.get("range"), show=cf.show, name=f"**{f['fact']}**")


def order_missing(missing: list[dict]) -> list[dict]:
    """A plan's missing sets, those that reach approval first (then case
    review), fewest facts first within an outcome; the solver's order otherwise."""
    return sorted(missing, key=lambda m: (OUTCOME_RANK.get(m["outcome"], 2), len(m["facts"])))


_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+(?=[A-Z(])")


def clip_sentences(text: str, limit: int = 160) -> str:
    """A policy sentence for a summary line: whole sentences up to `limit`
    characters; the first sentence is always kept whole, never cut inside (the
    words that matter are often at its end); '…' marks dropped sentences."""
    text = " ".join(text.split()).replace("|", "/")
    if len(text) <= limit:
        return text
    parts = _SENTENCE_END.split(text)
    out = parts[0]
    for part in parts[1:]:
        if len(out) + 1 + len(part) > limit:
            return out + " …"
        out += " " + part
    return out


def closest_pathway(r: dict) -> dict:
    """The pathway that comes closest: fewest broken criteria, then fewest unknown."""
    return min(r["pathways"], key=lambda p: (sum(c["status"] == "not_met" for c in p["criteria"]),
                                             sum(c["status"] == "unknown" for c in p["criteria"]), p["id"]))


def case_note(r: dict, plan_note: str | None) -> str | None:
    """The part of a result's note that this case earned (OHSU's rituximab note), without the
    note every result of the plan carries (FEP's), or None."""
    note = r.get("note")
    if not note:
        return None
    if plan_note and note.startswith(plan_note):
        note = note[len(plan_note):].strip()
    return note or None


def reason(r: dict) -> str:
    """One line: what decides a plan, or what holds it back."""
    dec = r["decision"]
    if dec in ("approved", "case_review"):
        a = r.get("authorization") or {}
        months = f" · {a['months']} months" if a.get("months") else ""
        if dec == "case_review":         # why a person decides: the pathway's title says it
            title = next((pw["title"] for pw in r.get("pathways", []) if pw["id"] == r["pathway"]), "")
            return f"via `{r['pathway']}`" + (f" — {title}" if title else "")
        return f"via `{r['pathway']}`{months}"
    if dec == "no_policy":
        return f"no criteria for {r['drug']}"
    if dec == "needs_info":
        sets = order_missing(r["missing"])
        facts = sets[0]["facts"]
        first = ", ".join(fmt_need(f) for f in facts[:3]) + (f" and {len(facts) - 3} more facts" if len(facts) > 3 else "")
        outcome = sets[0]["outcome"].replace("_", " ")
        others = len(sets) - 1
        more = f" (or {others} other set{'s' if others > 1 else ''})" if others else ""
        return f"needs {first} for {outcome}{more}"
    # denied: the broken criteria of the pathway that comes closest, whole
    # sentences, and the smallest change that approves.
    broken = [c for c in closest_pathway(r)["criteria"] if c["status"] == "not_met"]
    shown = "; ".join(denial_words(c) for c in broken[:2])
    line = f"not met: {shown}" + (f" (+{len(broken) - 2})" if len(broken) > 2 else "")
    fix = next((ch for ch in r.get("changes") or [] if ch["decision"] in ("approved", "case_review")), None)
    if fix is not None:
        line += f" — {fix['decision'].replace('_', ' ')} if " + ", ".join(fmt_need(f) for f in fix["facts"])
    return line


def denial_words(c: dict) -> str:
    """A broken criterion as `pa-solver why`, the decide table and a PAS denial say it, with its
    policy sentence: "`ohsu_i_1` planned_cycles is 8; the policy allows at most 6 — I. Length
    of Authorization: Coverage will be provided for 6 cycles ..." (whole sentences)."""
    words = "; ".join(broken_words(c))
    if not words:
        return f"`{c['id']}` {clip_sentences(c['text'])}"
    return f"`{c['id']}` {words} — {c['source']}: {clip_sentences(c['text'])}"


def rests_line(r: dict) -> str | None:
    """"Rests on 1 of 28 facts: planned_cycles = 8" (a result made with why=True), or None."""
    if "rests_on" not in r:
        return None
    facts = r["rests_on"]
    if not facts:
        return (f"Rests on none of the {r['facts_count']} facts: "
                + ("no fact changes it." if r["decision"] == "no_policy" else "the request alone decides it."))
    listed = ", ".join(f"**{f['fact']}** = {shown_value(f['value'])}" for f in facts)
    return f"Rests on {len(facts)} of {r['facts_count']} facts: {listed}"


def rested_facts(r: dict, derived: dict) -> set[str]:
    """The page's facts (widgets) a result rests on: its rests_on, and the ICD-10 codes when
    the diagnosis it rests on was derived from them."""
    names = {f["fact"] for f in r.get("rests_on", [])}
    if "diagnosis" in names and "diagnosis" in derived:
        names.add("icd10_codes")
    return names


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


def card_readings(r: dict) -> dict[str, int]:
    """Each distinct CASE.md reading of a plan's criteria, numbered 1.. in the
    order the card first shows it."""
    out: dict[str, int] = {}
    for pw in r["pathways"]:
        for c in pw["criteria"]:
            if c.get("reading") and c["reading"] not in out:
                out[c["reading"]] = len(out) + 1
    return out


def criteria_markdown(r: dict) -> str:
    """Every pathway's criteria with met / not met / unknown, id, citation and
    policy sentence, each reading once at the end (criteria point to it)."""
    readings = card_readings(r)
    lines = []
    for pw in r["pathways"]:
        lines.append(pathway_line(pw))
        for c in pw["criteria"]:
            lines.append("- " + criterion_line(c, readings))
        lines.append("")
    lines.extend(readings_lines(readings))
    return "\n".join(lines)


def pathway_line(pw: dict) -> str:
    """A pathway's title, id, outcome and status, as the card heads its criteria."""
    return (f"**{pw['title']}** (`{pw['id']}`, {pw['outcome'].replace('_', ' ')}) — "
            f"{PATHWAY_MARK[pw['status']]}")


def criterion_line(c: dict, readings: dict[str, int]) -> str:
    """A criterion: status, id, citation, policy sentence, and which reading it rests on."""
    text = f"{MARK[c['status']]} &nbsp; `{c['id']}` — {c['source']}: {c['text']}"
    if c.get("reading"):
        text += f" *(reading {readings[c['reading']]})*"
    return text


def readings_lines(readings: dict[str, int]) -> list[str]:
    """The card's readings, numbered, under their heading (none: no lines)."""
    if not readings:
        return []
    return ["**How the rules read the policy** (CASE.md):"] + [f"{n}. *{text}*" for text, n in readings.items()]


def document_html(text: str, spans: list[tuple[int, int]], mark_id: str) -> str:
    """A policy document as HTML for the page: every character escaped, the
    criterion's spans (character offsets into `text`) in <mark>, the first
    with `mark_id`, in a scrolling box that a one-line script scrolls to that
    mark when it is shown.  Nothing of the document is read as markup."""
    out, at = [], 0
    for i, (start, end) in enumerate(sorted(spans)):
        if start < at:                       # overlapping spans: mark the rest
            start = at
        if start >= end:
            continue
        out.append(html.escape(text[at:start]))
        attrs = f' id="{html.escape(mark_id)}"' if i == 0 else ""
        out.append(f'<mark{attrs} style="background-color:#ffe066;padding:0 1px">{html.escape(text[start:end])}</mark>')
        at = end
    out.append(html.escape(text[at:]))
    script = ("<script>setTimeout(function(){var m=document.getElementById(%s);"
              "if(m){m.scrollIntoView({block:'center'});}},80);</script>" % json.dumps(mark_id))
    return ('<div class="pa-policy-document" style="white-space:pre-wrap;max-height:62vh;overflow-y:auto;'
            'font-size:0.85rem;line-height:1.45;border:1px solid rgba(49,51,63,0.2);border-radius:0.4rem;'
            f'padding:0.6rem 0.8rem">{"".join(out).strip()}</div>' + (script if spans else ""))


def authorization(r: dict) -> str:
    a = r.get("authorization")
    if not a:
        return ""
    parts = [f"{a['months']} months" if a["months"] else "no duration stated"]
    if a["max_cycles"]:
        parts.append(f"at most {a['max_cycles']} cycles")
    if a["max_units_per_21_days"]:
        parts.append(f"at most {a['max_units_per_21_days']} units per 21 days")
    return ", ".join(parts)


# ------------------------------------------------------------------ FHIR on the page

def _where(sources: list) -> str:
    return "; ".join(f"{s['resource']} {s['element']}" for s in sources)


def _bundle_value(name: str, fhir_case: dict):
    return fhir_case.get(name) if name in ("drug", "request") else (fhir_case.get("facts") or {}).get(name)


def _case_value(name: str, case: dict):
    return case.get(name) if name in ("drug", "request") else (case.get("facts") or {}).get(name)


def source_note(name: str, fhir, case: dict) -> str | None:
    """Where a fact's value came from in the loaded bundle ("from
    Observation/obs1 valueQuantity"), while the page still shows the bundle's
    value; once the value is changed on the page, the note says so and no
    longer names the bundle's source.  None: nothing to say (no bundle, or a
    fact the bundle did not give)."""
    if fhir is None:
        return None
    sources = fhir.sources.get(name)
    if not sources:
        return None
    was = _bundle_value(name, fhir.case)
    now = _case_value(name, case)
    if now == was:
        return f"from {_where(sources)}"
    return f"changed on this page (the bundle's value: {cf.show(was)})"


def request_date_note(fhir) -> str:
    """Where the bundle's request date came from ("from Claim/claim1 created")."""
    return f"from {_where(fhir.sources.get('request_date') or [])}" if fhir.sources.get("request_date") \
        else "from the bundle"


def conflict_lines(fhir, case: dict) -> list[str]:
    """One line per fact the bundle's sources disagree on, naming the fact and
    every source with its value; the fact was left unknown (unless it has
    since been set on the page)."""
    if fhir is None:
        return []
    lines = []
    for c in fhir.conflicts:
        said = " but ".join(f"{cf.show(v['value'])} from {v['resource']} {v['element']}" for v in c["values"])
        now = _case_value(c["fact"], case)
        tail = "left unknown" if now is None else f"set on this page to {cf.show(now)}"
        lines.append(f"The bundle disagrees on **{c['fact']}**: {said} — {tail}.")
    return lines


def ask_next(questionnaire: dict, top: int = 5) -> list[tuple[str, str]]:
    """(question, fact) of the adaptive Questionnaire's first `top` items: the
    unknown facts the plans that need information still need, most-needed first."""
    return [(item["text"], item["linkId"]) for item in questionnaire.get("item", [])[:top]]
