"""Every sentence of every policy accounted for (`pa-solver coverage`).

Each plan's document (`policy_document/5`'s file, shipped in `policies/`) is
cut into *units*; every unit is either encoded by criteria (their `text/2`
quotes it) or set aside by a `not_a_criterion(Plan, Text, Reason)` fact of the
plan file, with the reason.  A unit that is neither is *unaccounted*.

    coverage()                      # {"plans": [{"plan", "document", "title", "counts", "sentences": [...], "notes", "readings"}]}
    coverage(["ohsu"])
    locate("ohsu", "ohsu_iii_2")    # [(start, end)]: where the criterion's words are in document_text("ohsu")
    document_text("ohsu")           # the document as shipped

The documents, their markup and their units are
solver/analysis/coverage_doc.py (`Document`).

**Encoded, set aside.**  A criterion's text (`text/2`; an option's too, if
it has one) is its policy sentence, quoted; where it joins several places of
the document they are joined by " ... " (`PIECE`).  Its first piece is found,
markup dropped, at its first occurrence in the document, or, with
`text_after(C, A)`, at its first occurrence after criterion A's text (where
the same words stand in several places: CVS's two pathways share four
sentences, OHSU's adult and pediatric lists three); each further piece after
the one before.  A unit is encoded by the criteria with a piece inside it (or
overlapping it).  A `not_a_criterion(Plan, Text, Reason)` text is one or more
whole units in a row: it sets aside every place where it stands as whole
units (the same words inside a longer unit set nothing aside).
"""

from __future__ import annotations

import os
from typing import Iterable, Optional

from solver.analysis.coverage_doc import Document
from solver.base.paths import find_document, in_use, logic_dir

LOGIC_DIR = logic_dir()
PIECE = " ... "                 # joins the pieces of one criterion's text


# ------------------------------------------------------------------ the rule base's side

class _Plans:
    """What coverage reads from the rule base: per plan its document file and
    title, its criteria's texts (and options' texts, if any) with their
    anchors, its set-aside passages."""

    def __init__(self, logic_dir=None):
        from solver.engine.rulebase import RuleBase, symbol_text

        rb = RuleBase(logic_dir)
        self.plans = sorted(rb.plans)
        self.file = {p: d["source"] for p, d in rb.documents.items()}
        self.title = {p: d["document"] for p, d in rb.documents.items()}
        plan_of = {c: rb.pathways[p.name].plan for c, p in
                   ((c.name, p) for c, p in rb.facts_of("criterion", 2))}
        self.notes: dict[str, str] = {}                 # note id -> what the result says
        for n, p, says in rb.facts_of("note", 3):       # a note quotes its document as a criterion does
            plan_of[n.name] = rb.pathways[p.name].plan
            self.notes[n.name] = symbol_text(says)
        for c, o in rb.facts_of("any_of", 2):
            plan_of.setdefault(o.name, plan_of.get(c.name))
        for c, a, b in rb.facts_of("when_then", 3):
            plan_of.setdefault(a.name, plan_of.get(c.name))
            plan_of.setdefault(b.name, plan_of.get(c.name))
        self.texts: dict[str, dict[str, str]] = {p: {} for p in self.plans}
        for c, t in rb.facts_of("text", 2):
            if plan_of.get(c.name) in self.texts:
                self.texts[plan_of[c.name]][c.name] = symbol_text(t)
        self.after = {c.name: a.name for c, a in rb.facts_of("text_after", 2)}
        self.set_aside: dict[str, dict[str, str]] = {p: {} for p in self.plans}
        for p, t, r in rb.facts_of("not_a_criterion", 3):
            if p.name in self.set_aside:
                self.set_aside[p.name][symbol_text(t)] = symbol_text(r)
        self.readings = {c.name: symbol_text(t) for c, t in rb.facts_of("reading", 2)}
        self.plan_of = plan_of


_CACHE: dict = {}


def plans_of(logic_dir=None) -> _Plans:
    logic_dir = in_use(logic_dir)
    key = os.path.abspath(logic_dir)
    if key not in _CACHE:
        _CACHE[key] = _Plans(logic_dir)
    return _CACHE[key]


def _documents() -> dict:
    return _CACHE.setdefault("documents", {})


class UnknownPlan(KeyError):
    """A plan id that the rule base does not have."""

    def __str__(self) -> str:
        return str(self.args[0])


def _check(plan: str, rules: _Plans) -> None:
    if plan not in rules.plans:
        raise UnknownPlan(f"unknown plan {plan!r}; one of {', '.join(rules.plans)}")


def document_path(plan: str, logic_dir=None) -> str:
    """Where the plan's document is (shared/spec/RULES.md): beside the rules in use
    (DIR/policies/<file>, then DIR/<file>), else among the installed documents."""
    rules = plans_of(logic_dir)
    _check(plan, rules)
    return find_document(rules.file[plan], in_use(logic_dir))


def document_text(plan: str, logic_dir=None) -> str:
    """The plan's document as shipped (policies/<file>), newlines as \\n."""
    return document(plan, logic_dir).text


def document(plan: str, logic_dir=None) -> Document:
    """The plan's document, read once (`Document`)."""
    path = document_path(plan, logic_dir)
    docs = _documents()
    if path not in docs:
        with open(path, encoding="utf-8") as fh:
            docs[path] = Document(fh.read())
    return docs[path]


def pieces(text: str) -> list[str]:
    """A criterion's text as its pieces (joined by " ... " in the text)."""
    return [p for p in (s.strip() for s in text.split(PIECE.strip())) if p]


def _spans(doc: Document, text: str, at: int = 0) -> list[Optional[tuple[int, int]]]:
    """Each piece's span in `doc.norm` (None: not found): the first piece at
    its first occurrence at or after `at`, every later piece after the one
    before it."""
    out = []
    for piece in pieces(text):
        span = doc.find(piece, at)
        out.append(span)
        if span is not None:
            at = span[1]
    return out


def criterion_spans(plan: str, logic_dir=None) -> dict[str, list[Optional[tuple[int, int]]]]:
    """Criterion (or option) id -> its pieces' spans in the markup-free text
    (None for a piece that is not in the document).  A criterion with
    `text_after(C, A)` is looked for after A's text (A's own place found the
    same way); a chain that loops finds nothing."""
    rules = plans_of(logic_dir)
    _check(plan, rules)
    doc = document(plan, logic_dir)
    texts = rules.texts[plan]
    out: dict[str, list] = {}

    def place(c: str, seen: tuple = ()) -> list:
        if c not in out:
            at: Optional[int] = 0
            anchor = rules.after.get(c)
            if anchor is not None:
                before = place(anchor, seen + (c,)) if anchor in texts and anchor not in seen + (c,) else [None]
                at = before[-1][1] if before and before[-1] is not None else None
            out[c] = _spans(doc, texts[c], at) if at is not None else [None for _ in pieces(texts[c])]
        return out[c]

    for c in sorted(texts):
        place(c)
    return out


def locate(plan: str, criterion_id: str, logic_dir=None) -> list[tuple[int, int]]:
    """The (start, end) character spans of `document_text(plan)` where the
    criterion's text (each piece) stands; [] for an id the plan does not have."""
    spans = criterion_spans(plan, logic_dir).get(criterion_id, [])
    doc = document(plan, logic_dir)
    return [doc.raw_span(s) for s in spans if s is not None]


def set_aside_units(doc: Document, words: str) -> list[int]:
    """The units a `not_a_criterion` text sets aside: wherever it stands as
    whole units (it starts where a unit starts and ends where one ends); the
    same words inside a longer unit set nothing aside."""
    starts = {u[0] for u in doc.units}
    ends = {u[1] for u in doc.units}
    out: list[int] = []
    for span in doc.find_all(words):
        if span[0] in starts and span[1] in ends:
            out.extend(doc.units_over(span))
    return out


def coverage(plans: Optional[Iterable[str]] = None, logic_dir=None) -> dict:
    """Per plan, every unit of its document with the criteria that encode it,
    or the reason it is set aside (null for neither: unaccounted)."""
    rules = plans_of(logic_dir)
    asked = list(rules.plans) if plans is None else list(plans)
    for plan in asked:
        _check(plan, rules)
    out = []
    for plan in asked:
        doc = document(plan, logic_dir)
        encoded: dict[int, set] = {}
        for c, spans in criterion_spans(plan, logic_dir).items():
            for span in spans:
                if span is not None:
                    for i in doc.units_over(span):
                        encoded.setdefault(i, set()).add(c)
        aside: dict[int, str] = {}
        for words, reason in sorted(rules.set_aside[plan].items()):
            for i in set_aside_units(doc, words):
                aside.setdefault(i, reason)
        sentences = [{"text": doc.unit_text(u), "kind": u[2], "criteria": sorted(encoded.get(i, ())),
                      "set_aside": aside.get(i)} for i, u in enumerate(doc.units)]
        counts = {"units": len(sentences),
                  "encoded": sum(1 for s in sentences if s["criteria"]),
                  "set_aside": sum(1 for s in sentences if not s["criteria"] and s["set_aside"] is not None),
                  "unaccounted": sum(1 for s in sentences if not s["criteria"] and s["set_aside"] is None)}
        readings: dict[str, list] = {}
        for c in sorted(rules.texts[plan]):
            if c in rules.readings:
                readings.setdefault(rules.readings[c], []).append(c)
        notes = [{"id": n, "says": rules.notes[n]} for n in sorted(rules.texts[plan]) if n in rules.notes]
        out.append({"plan": plan, "document": rules.file[plan], "title": rules.title[plan], "counts": counts,
                    "sentences": sentences, "notes": notes,
                    "readings": [{"reading": r, "by": ids} for r, ids in sorted(readings.items(), key=lambda x: x[1])]})
    return {"plans": out}


# ------------------------------------------------------------------ the terminal table

def render(got: dict, width: Optional[int] = None, color: bool = False) -> str:
    """Per plan, every unit with the criteria that encode it or the reason it
    is set aside (unaccounted units in red), then the counts per plan."""
    import io
    import shutil

    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from solver.text.words import safe

    buf = io.StringIO()
    console = Console(file=buf, width=width or max(80, min(160, shutil.get_terminal_size((100, 24)).columns)),
                      force_terminal=color, no_color=not color, highlight=False, emoji=False, markup=False,
                      color_system="standard" if color else None, soft_wrap=False)
    for p in got["plans"]:
        head = Text(f"{p['plan']}: {safe(p['title'])}", style="bold")
        head.append(f"   policies/{safe(p['document'])}", style="dim")
        console.print(head)
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=True)
        table.add_column("#", justify="right", no_wrap=True)
        table.add_column("sentence, bullet, heading or table row", ratio=3, overflow="fold")
        table.add_column("encoded by, or set aside because", ratio=2, overflow="fold")
        notes = {n["id"] for n in p.get("notes", [])}
        for i, s in enumerate(p["sentences"], 1):
            if s["criteria"]:
                why = Text(", ".join(c + (" (note)" if c in notes else "") for c in s["criteria"]), style="green")
            elif s["set_aside"] is not None:
                why = Text(f"set aside: {safe(s['set_aside'])}", style="dim")
            else:
                why = Text("UNACCOUNTED: no criterion, no reason", style="bold red")
            table.add_row(str(i), Text(safe(s["text"])), why)
        console.print(table)
        console.print(Text(_counts(p["counts"]), style="bold red" if p["counts"]["unaccounted"] else "bold"))
        for n in p.get("notes", []):
            console.print(Text(f"note {n['id']}: {safe(n['says'])}"))
        if p.get("readings"):
            console.print(Text("readings of CASE.md these rules encode:", style="bold"))
            for r in p["readings"]:
                line = Text("  - ")
                line.append(safe(r["reading"]))
                line.append(f"  [{', '.join(r['by'])}]", style="dim")
                console.print(line)
        console.print()
    summary = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title=None)
    for name in ("plan", "units", "encoded", "set aside", "unaccounted"):
        summary.add_column(name, justify="left" if name == "plan" else "right", no_wrap=True)
    for p in got["plans"]:
        c = p["counts"]
        summary.add_row(p["plan"], str(c["units"]), str(c["encoded"]), str(c["set_aside"]),
                        Text(str(c["unaccounted"]), style="bold red" if c["unaccounted"] else ""))
    console.print(summary)
    return "\n".join(line.rstrip() for line in buf.getvalue().rstrip("\n").split("\n"))


def _counts(c: dict) -> str:
    return (f"{c['units']} units: {c['encoded']} encoded, {c['set_aside']} set aside, "
            f"{c['unaccounted']} unaccounted")
