"""The readable answer on a terminal (`pa-solver decide` / `explain` without --json).

By default what a reviewer needs: a table of every plan's decision with the
deciding pathway or what blocks it, then per plan the missing sets (the ones
that approve first), the broken criteria of the pathway closest to approval
with their citation and policy sentence, and the changes that would change
the decision (explain).  `verbose=True` adds every pathway and criterion.

Drawn with rich (tables that fit the terminal's width, colour only on a
terminal).  Nothing from the case is read as markup, and every string from the
case passes `text.safe`, so a case id cannot forge lines or drive the terminal.
"""

from __future__ import annotations

import io
import shutil
from typing import Optional

from rich import box
from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from solver.case.outcome import closest
from solver.text.words import condition, number, safe

LABEL = {"approved": "APPROVED", "case_review": "CASE REVIEW", "needs_info": "NEEDS INFO", "denied": "DENIED",
         "no_policy": "NO POLICY"}
STYLE = {"approved": "bold green", "case_review": "bold blue", "needs_info": "bold yellow", "denied": "bold red",
         "no_policy": "dim"}
MARK = {"met": ("✔ met", "green"), "not_met": ("✘ not met", "red"), "unknown": ("? unknown", "yellow")}
PATHWAY = {"met": "met", "open": "open: some criteria unknown", "not_met": "not met"}
OUTCOME = {"approved": "approves", "case_review": "case review"}


def missing_order(sets: list[dict]) -> list[dict]:
    """Missing sets that reach approval first, then fewest facts (stable)."""
    return sorted(sets, key=lambda m: (m["outcome"] != "approved", len(m["facts"])))


def authorization(a: Optional[dict]) -> str:
    if not a:
        return ""
    parts = [f"{a['months']} months" if a.get("months") else "no duration stated"]
    if a.get("max_cycles"):
        parts.append(f"max {a['max_cycles']} cycles")
    if a.get("max_units_per_21_days"):
        parts.append(f"max {a['max_units_per_21_days']} units/21 days")
    return ", ".join(parts)


def _fact(f: dict) -> str:
    return condition(f["fact"], f.get("values"), f.get("range"))


def _change(f: dict) -> str:
    now = "unknown" if f.get("from") is None else number(f["from"])
    return f"{_fact(f)} (now {now})"


def _why(r: dict) -> str:
    """One line: the deciding pathway, or what blocks."""
    dec = r["decision"]
    by = {pw["id"]: pw for pw in r["pathways"]}
    if dec in ("approved", "case_review") and r.get("pathway"):
        return f"{r['pathway']}: {by[r['pathway']]['title']}" if r["pathway"] in by else r["pathway"]
    if dec == "needs_info" and r["missing"]:
        m = missing_order(r["missing"])[0]
        more = f" (or {len(r['missing']) - 1} other set{'s' * (len(r['missing']) > 2)})" if len(r["missing"]) > 1 else ""
        return f"needs {'; '.join(_fact(f) for f in m['facts'])} -> {m['pathway']}{more}"
    if dec == "denied":
        from solver.case.outcome import broken as broken_words

        for pw in closest(r["pathways"]):
            broken = [c for c in pw.get("criteria", []) if c["status"] == "not_met"]
            if broken:
                c = broken[0]
                words = "; ".join(broken_words(c)) or f"not met: {c['text']}"
                more = f" (+{len(broken) - 1} more)" if len(broken) > 1 else ""
                return f"{pw['id']}: {c['id']}: {words} \u2014 {c['source']}{more}"
    if dec == "no_policy":
        return r.get("note") or "the document has no criteria for this drug"
    return ""


def render(result: dict, verbose: bool = False, width: Optional[int] = None, color: bool = False) -> str:
    """The readable answer for a result dict (the shape of `--json`)."""
    buf = io.StringIO()
    console = Console(file=buf, width=width or max(80, min(160, shutil.get_terminal_size((100, 24)).columns)),
                      force_terminal=color, no_color=not color, highlight=False, emoji=False,
                      color_system="standard" if color else None, soft_wrap=False)
    head = Text(f"case {safe(result.get('case_id') or '(no id)')}", style="bold")
    head.append(f"   rules {result['rules_version']}", style="dim")
    console.print(head)
    for k, v in sorted(result.get("derived_facts", {}).items()):
        console.print(Text(f"derived: {k} = {safe(v)} (from ICD-10 codes)", style="dim"))

    if result.get("fhir"):
        _fhir(console, result["fhir"])

    summary = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=False)
    summary.add_column("plan", no_wrap=True)
    summary.add_column("decision", no_wrap=True)
    summary.add_column("deciding pathway, or what blocks", overflow="fold")
    summary.add_column("authorization", max_width=26)
    for r in result["results"]:
        summary.add_row(r["plan"], Text(LABEL[r["decision"]], style=STYLE[r["decision"]]), Text(_why(r)),
                        authorization(r.get("authorization")))
    console.print(summary)

    for r in result["results"]:
        _plan(console, r, verbose)
    return "\n".join(line.rstrip() for line in buf.getvalue().rstrip("\n").split("\n"))


def _fhir(console: Console, fhir: dict) -> None:
    """The facts a FHIR bundle gave, each with where it came from."""
    _say(console, f"from a FHIR bundle; request date {fhir.get('request_date')}", 0, style="bold")
    case, sources = fhir.get("case", {}), fhir.get("sources", {})
    rows = [("drug", case.get("drug")), ("request", case.get("request"))] + sorted(case.get("facts", {}).items())
    for fact, value in rows:
        where = "; ".join(f"{s['resource']} {s['element']}" for s in sources.get(fact, []))
        _say(console, f"{fact} = {safe(number(value))}  <- {safe(where)}", 2)
    for c in fhir.get("conflicts", []):
        said = "; ".join(f"{safe(number(v['value']))} ({safe(v['resource'])} {safe(v['element'])})" for v in c["values"])
        _say(console, f"{c['fact']}: sources disagree ({said}): unknown", 2, style="yellow")
    if fhir.get("unused"):
        _say(console, f"not used: {len(fhir['unused'])} resources or items (see --json)", 2, style="dim")


def _say(console: Console, text, indent: int = 2, style: str = "") -> None:
    """A line indented by `indent`; wrapped lines keep the indent."""
    if isinstance(text, str):
        text = Text(text, style=style)
    console.print(Padding(text, (0, 0, 0, indent)))


def _plan(console: Console, r: dict, verbose: bool) -> None:
    dec = r["decision"]
    head = Text(f"{r['plan']}: {LABEL[dec].replace(' ', '_')}", style=STYLE[dec])
    if r.get("pathway"):
        head.append(f" via {r['pathway']}")
    console.print()
    console.print(head)
    pol = r["policy"]
    _say(console, f"policy: {pol['document']} ({pol['id']}, {pol.get('date') or 'undated'})", style="dim")
    if r.get("note"):
        _say(console, f"note: {r['note']}")
    by = {pw["id"]: pw for pw in r["pathways"]}
    if dec in ("approved", "case_review") and r.get("pathway") in by:
        pw = by[r["pathway"]]
        _say(console, f"{pw['title']}")
        if authorization(r.get("authorization")):
            _say(console, f"authorized: {authorization(r['authorization'])}")
    if r["missing"]:
        _say(console, "missing: any one of these sets would decide it")
        for i, m in enumerate(missing_order(r["missing"]), 1):
            _say(console, f"{i}. -> {m['pathway']} ({OUTCOME[m['outcome']]}): "
                 + "; ".join(_fact(f) for f in m["facts"]), 4)
    readings: dict[str, int] = {}
    if dec == "denied" and not verbose:
        for pw in closest(r["pathways"]):
            _say(console, f"closest pathway {pw['id']} ({OUTCOME[pw['outcome']]}): {pw['title']}")
            for c in pw.get("criteria", []):
                if c["status"] == "not_met":
                    _criterion(console, c, 4, readings)
            unknown = [c["id"] for c in pw.get("criteria", []) if c["status"] == "unknown"]
            if unknown:
                _say(console, f"also unknown: {', '.join(unknown)}", 4, style="dim")
    changes = r.get("changes")
    if changes is not None:
        if dec == "no_policy":
            _say(console, "no fact changes this: the document has no criteria for this drug")
        elif not changes:
            _say(console, "no change of so few facts would change this decision")
        for c in changes:
            line = Text("would change to ")
            line.append(LABEL[c["decision"]], style=STYLE[c["decision"]])
            line.append(": " + "; ".join(_change(f) for f in c["facts"]))
            _say(console, line)
    if verbose:
        for pw in r["pathways"]:
            _say(console, f"pathway {pw['id']} ({OUTCOME[pw['outcome']]}) - {PATHWAY[pw['status']]}: {pw['title']}")
            for c in pw.get("criteria", []):
                _criterion(console, c, 4, readings)


def _criterion(console: Console, c: dict, indent: int, readings: dict) -> None:
    """A criterion: status, id, citation; its policy sentence; its reading,
    once per plan (later criteria with the same reading point back to it)."""
    label, style = MARK[c["status"]]
    line = Text()
    line.append(f"{label:<10}", style=style)
    line.append(f" {c['id']}  ", style="bold")
    line.append(c["source"], style="dim")
    _say(console, line, indent)
    _say(console, f"\u201c{c['text']}\u201d", indent + 2)
    reading = c.get("reading")
    if reading:
        if reading not in readings:
            readings[reading] = len(readings) + 1
            _say(console, f"reading {readings[reading]}: {reading}", indent + 2, style="italic")
        else:
            _say(console, f"reading {readings[reading]}, as above", indent + 2, style="italic dim")


def profile_case(diff_result: dict, difference: dict, domains: dict) -> dict:
    """A case inside a difference's profile: each fact at its first listed
    value, or its range's low end (just below the high end where it has none)."""
    facts = {}
    for f in difference["facts"]:
        if "values" in f:
            facts[f["fact"]] = f["values"][0]
        else:
            lo, hi = f["range"]
            kind = domains[f["fact"]].kind
            facts[f["fact"]] = lo if lo is not None else (hi - 1 if kind == "integer" else hi - 0.5) \
                if hi is not None else 1
    return {"drug": diff_result["drug"], "request": diff_result["request"], "plans": diff_result["plans"],
            "facts": facts}


def render_diff(got: dict, solver, width: Optional[int] = None, color: bool = False, against=None) -> str:
    """The differences grouped by pair of decisions, smallest profiles first,
    with what causes each plan's side: a denial's broken criteria (id,
    citation, sentence), a case review's pathway, the fewest facts a pended
    plan still needs.
    `against` (solver/diff.Against): the second plan is another version of
    the first, decided by its combined solver and shown by its label."""
    from solver.fhir.inputs import case_from

    shown = against.display if against is not None else (lambda name: name)
    if against is not None:
        solver = against.solver

    buf = io.StringIO()
    console = Console(file=buf, width=width or max(80, min(160, shutil.get_terminal_size((100, 24)).columns)),
                      force_terminal=color, no_color=not color, highlight=False, emoji=False,
                      color_system="standard" if color else None, soft_wrap=False)
    a, b = got["plans"]
    console.print(Text(f"{a} vs {b}: {got['drug']}, {got['request']}   rules {got['rules_version']}", style="bold"))
    groups: dict[tuple, list] = {}
    for d in got["differences"]:
        groups.setdefault((d["decisions"][a], d["decisions"][b]), []).append(d)
    if not groups:
        console.print(Text("no profile of facts gives these plans different decisions"))
    for (da, db), diffs in sorted(groups.items(), key=lambda kv: (len(kv[1][0]["facts"]), kv[0])):
        console.print()
        head = Text(f"{a} ")
        head.append(LABEL[da], style=STYLE[da])
        head.append(f", {b} ")
        head.append(LABEL[db], style=STYLE[db])
        head.append(f": {len(diffs)} profile{'s' * (len(diffs) != 1)}")
        console.print(head)
        for d in diffs:
            _say(console, "; ".join(_fact(f) for f in d["facts"]) or "(no fact known)", 2)
            profile = profile_case(got, d, solver.rules.facts)
            if against is not None:
                del profile["plans"]                    # every plan of the combined rules; two are shown
            result = solver.solve(case_from(profile, declared=solver)[0])
            for r in result["results"]:
                name = shown(r["plan"])
                if name not in (a, b):
                    continue
                if r["decision"] == "denied":                 # what breaks its closest pathway
                    for pw in closest(r["pathways"])[:1]:
                        for c in pw["criteria"]:
                            if c["status"] == "not_met":
                                _say(console, f"{name} {shown(c['id'])} ({c['source']}): "
                                              f"\u201c{c['text']}\u201d", 6, style="dim")
                elif r["decision"] == "case_review":          # the pathway that sends it to review
                    for pw in r["pathways"]:
                        if pw["id"] == r["pathway"]:
                            ids = ", ".join(shown(c["id"]) for c in pw["criteria"])
                            _say(console, f"{name} case review: {shown(pw['id'])} ({ids}): {pw['title']}", 6,
                                 style="dim")
                elif r["decision"] == "needs_info" and r["missing"]:   # the fewest facts it still needs
                    m = missing_order(r["missing"])[0]
                    _say(console, f"{name} needs {', '.join(f['fact'] for f in m['facts'])} "
                                  f"(for {shown(m['pathway'])})", 6, style="dim")
    return "\n".join(line.rstrip() for line in buf.getvalue().rstrip("\n").split("\n"))
