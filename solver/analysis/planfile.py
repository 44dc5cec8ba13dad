"""Tools for whoever writes a plan (`pa-solver plan new`, `pa-solver plan check`).

    new_plan("mn_medicaid", "mn.txt", rules_dir)   # writes mn_medicaid.lp: header, declarations, every
                                                   # sentence of the document as a not_a_criterion to do
    check(["mn_medicaid"], rules_dir)              # a Report: per plan its counts, and every problem

A plan is its `.lp` file and its document (shared/spec/RULES.md).  `plan new`
starts the file so that `coverage` is complete from the first minute: each
sentence is set aside with the reason `TODO`, and each one turned into
criteria leaves that list.  `plan check` then says what is not yet right, one
line per problem, and exits 1 until nothing is:

- the rule base loads and passes its own checks (vocabulary.lp's error/2);
- every criterion's text is found, word for word, in the plan's document;
- every criterion can be met, broken and left unknown by some case, and every
  pathway can decide its plan (clingo searches every case for each); a
  criterion the document means to be unbreakable says why with
  `check_waived(C, broken, Why)` (met, unknown alike);
- every declared fact is tested by some criterion, or declared `unused_fact/1`;
- every sentence of the document is encoded or set aside, and none is still `TODO`.
"""

from __future__ import annotations

import filecmp
import glob
import os
import re
import shutil
from typing import Iterable, Optional

import clingo

from solver.base.paths import POLICIES_DIR, find_document, in_use

TODO = "TODO: not yet encoded"
ID = re.compile(r"^[a-z][a-z0-9_]*$")

# What `plan check` adds to the rule base: any case (each fact one value, or none: unknown), every
# plan asked.  The vocabulary's derived atoms (c_holds, c_fails, decided_by) then say what some case can reach.
_ANY_CASE = """
{ val(F, D) : domain(F, D) } 1 :- fact(F, _).
:- always_known(F), not known(F).
asked(Pl) :- plan(Pl, _).
"""


class PlanError(ValueError):
    """A plan that cannot be written or checked, in one line."""


def _lp_string(text: str) -> str:
    """`text` as an ASP string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


# ------------------------------------------------------------------ plan new

def new_plan(plan: str, document: str, logic_dir=None, drug: Optional[str] = None, name: Optional[str] = None,
             force: bool = False) -> tuple[str, Optional[str]]:
    """Write `<logic_dir>/<plan>.lp` for the policy document `document` and put the document where
    the rules find it (RULES.md): (the .lp file's path, the document's new path or None when it
    was there already)."""
    from solver.rules import declared
    from solver.analysis.coverage_doc import Document

    folder = in_use(logic_dir)
    if not ID.match(plan):
        raise PlanError(f"{plan!r}: a plan id is lower-case letters, digits and _, starting with a letter")
    target = os.path.join(folder, f"{plan}.lp")
    if os.path.exists(target) and not force:
        raise PlanError(f"{target} exists (--force writes over it)")
    d = _declared_without(folder, target) if force and os.path.exists(target) else declared.of(folder)
    if plan in d.plans:
        raise PlanError(f"{plan}: the rule base in {folder} already has this plan")
    drug = drug or d.default_drug
    if drug not in d.drugs:
        raise PlanError(f"--drug {drug}: not a drug of the rule base ({', '.join(d.drugs)}); declare it with "
                        f"drug/2 and drug_code/3 in the plan's file first")
    try:
        with open(document, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as err:
        raise PlanError(f"--document {document}: {getattr(err, 'strerror', None) or err}") from None
    base = os.path.basename(document)
    copied = None
    found = find_document(base, folder)
    if not os.path.isfile(found):
        # beside the rules: the installed logic/'s documents are the installed ones
        dest_dir = POLICIES_DIR if os.path.abspath(folder) == os.path.abspath(in_use(None)) and \
            os.path.isdir(POLICIES_DIR) and _is_installed_logic(folder) else os.path.join(folder, "policies")
        os.makedirs(dest_dir, exist_ok=True)
        copied = os.path.join(dest_dir, base)
        shutil.copyfile(document, copied)
    elif os.path.abspath(found) != os.path.abspath(document) and not filecmp.cmp(found, document, shallow=False):
        raise PlanError(f"another document named {base} is there already ({found}); rename yours")
    doc = Document(text)
    title = next((doc.unit_text(u) for u in doc.units if u[2] == "heading"), None) or \
        (doc.unit_text(doc.units[0]) if doc.units else plan)
    lines = [
        "%%% " + "=" * 75,
        f"%%% plan:      {plan}",
        f"%%% document:  {title}",
        f"%%% source:    {base}",
        "%%% " + "=" * 75,
        "%",
        "% Written by `pa-solver plan new`.  Every sentence of the document stands below as a",
        f"% not_a_criterion with the reason {TODO!r}: turn each into criteria (docs/adding-a-plan.md) and",
        "% delete its line, or give the reason it is no criterion.  `pa-solver plan check` says what is left.",
        "",
        f"plan({plan}, {_lp_string(name or title)}).",
        f"plan_label({plan}, {_lp_string(plan.replace('_', ' ').upper() if len(plan) <= 5 else plan)}).",
        f"policy_document({plan}, {_lp_string(title)},",
        f"                {_lp_string(plan.upper())}, \"\", {_lp_string(base)}).",
        f"covers({plan}, {_lp_string(drug)}).",
        "",
        "% pathway(P, Plan, approved | case_review).  pathway_title(P, Words).",
        "% for_drug(P, Drug).  for_request(P, initial | continuation).  authorization(P, months, N).",
        "% criterion(C, P).  source(C, \"section, item\").  text(C, \"the sentence, word for word\").",
        "% in_set(C, Fact, Value).  at_least(C, Fact, N).  below(C, Fact, N).  at_most(C, Fact, N).",
        "",
        "%# The document, sentence by sentence",
    ]
    for u in doc.units:
        lines.append(f"not_a_criterion({plan}, {_lp_string(doc.unit_text(u))}, {_lp_string(TODO)}).")
    with open(target, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return target, copied


def _declared_without(folder: str, target: str):
    """What the rule base in `folder` declares without the file `target` (`plan new --force` writes over
    it, so its plan is not one the rule base already has, and a broken draft does not stop it)."""
    import tempfile

    from solver.rules import declared

    with tempfile.TemporaryDirectory(prefix="pa-solver-plan-") as tmp:
        copy = os.path.join(tmp, os.path.basename(os.path.normpath(folder)))
        shutil.copytree(folder, copy, symlinks=True)
        os.remove(os.path.join(copy, os.path.basename(target)))
        return declared.of(copy)


def _is_installed_logic(folder: str) -> bool:
    from solver.base.paths import data_dir

    return os.path.abspath(folder) == os.path.abspath(data_dir("logic"))


# ------------------------------------------------------------------ plan check

class Report:
    def __init__(self):
        self.problems: list[str] = []
        self.summary: list[str] = []

    def problem(self, where: str, what: str) -> None:
        self.problems.append(f"{where}: {what}")


def _plan_files(folder: str, plans: Iterable[str]) -> dict[str, str]:
    """Each plan's .lp file (the one declaring plan/2), for messages that name the file."""
    out = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.lp"))):
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError):
            continue
        for p in plans:
            if re.search(rf"^\s*plan\(\s*{re.escape(p)}\s*,", text, re.M):
                out.setdefault(p, path)
    return out


def _shown(path: str) -> str:
    """A path as a message shows it: relative to here when under here, else whole."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def check(plans: Optional[Iterable[str]] = None, logic_dir=None) -> Report:
    """Every check of the module's docstring, for `plans` (default: every plan)."""
    from solver.analysis.coverage import coverage, criterion_spans
    from solver.engine.rulebase import RuleBase
    from solver.rules.loading import RuleBaseError

    folder = in_use(logic_dir)
    rep = Report()
    try:
        rb = RuleBase(folder)
    except RuleBaseError as err:
        rep.problem(folder, str(err))
        return rep
    d = rb.declared
    asked = sorted(rb.plans) if plans is None else list(plans)
    for p in asked:
        if p not in rb.plans:
            rep.problem(folder, f"no plan {p!r} (plans: {', '.join(sorted(rb.plans))})")
    asked = [p for p in asked if p in rb.plans]
    files = _plan_files(folder, asked)
    reach = _Reach(folder)

    for plan in asked:
        where = _shown(files.get(plan, folder))
        doc_name = d.documents.get(plan, "")
        if not os.path.isfile(find_document(doc_name, folder)):
            rep.problem(where, f"{plan}: its document {doc_name!r} is not found (looked in {folder}/policies/, "
                               f"{folder}/ and {POLICIES_DIR}/)")
            continue
        pathways = rb.plan_pathways[plan]
        criteria = sorted({c for pw in pathways for c in pw.criteria})
        if not pathways:
            rep.problem(where, f"{plan}: no pathway yet")
        spans = criterion_spans(plan, folder)
        for c in criteria:
            missing = [i for i, s in enumerate(spans.get(c, [])) if s is None]
            if missing:
                rep.problem(where, f"{c}: its text is not found word for word in {doc_name} "
                                   f"(piece {missing[0] + 1}: {rb.criteria[c].text[:70]!r})")
            only_known = all(d.facts[f].always_known for f in rb.criterion_facts.get(c, ()) if f in d.facts)
            for state, words in (("met", "met"), ("broken", "broken"), ("unknown", "unknown")):
                if state == "unknown" and only_known:
                    continue                     # it tests only drug or request: never unknown, by nature
                if not reach.criterion(c, state) and (c, state) not in reach.waived:
                    rep.problem(where, f"{c}: no case leaves it {words} (if that is the document's meaning, "
                                       f"say why: check_waived({c}, {state}, \"...\"))")
        for pw in pathways:
            if not reach.decides(plan, pw.id):
                rep.problem(where, f"{pw.id}: no case is decided {pw.outcome} by this pathway")
        got = coverage([plan], folder)["plans"][0]
        counts = got["counts"]
        todo = sum(1 for s in got["sentences"] if not s["criteria"] and s["set_aside"] == TODO)
        if counts["unaccounted"]:
            first = next(s["text"] for s in got["sentences"] if not s["criteria"] and s["set_aside"] is None)
            rep.problem(where, f"{plan}: {counts['unaccounted']} sentence(s) of {doc_name} neither encoded nor set "
                               f"aside (`pa-solver coverage {plan}`), the first: {first[:70]!r}")
        if todo:
            rep.problem(where, f"{plan}: {todo} sentence(s) still marked {TODO!r}")
        rep.summary.append(f"{plan}: {len(pathways)} pathway(s), {len(criteria)} criteria; {counts['units']} "
                           f"sentences: {counts['encoded']} encoded, {counts['set_aside'] - todo} set aside, "
                           f"{todo} to do, {counts['unaccounted']} unaccounted")
    if plans is None:
        tested = set(reach.tested)
        unused = set(reach.unused)
        for f in d.case_facts:
            if f not in tested and f not in unused:
                rep.problem(_shown(os.path.join(folder, "facts.lp")),
                            f"{f}: declared, tested by no criterion (declare unused_fact({f}) if it stays)")
    return rep


class _Reach:
    """What some case can reach: the rule base grounded with any case (_ANY_CASE), asked by assumption."""

    def __init__(self, folder: str):
        from solver.engine.rulebase import CLINGO_ARGS
        from solver.rules.files import lp_files

        self.ctl = clingo.Control([a for a in CLINGO_ARGS if not a.startswith(("--heuristic", "--enum-mode",
                                                                                 "--models"))])
        for path in lp_files(folder):
            self.ctl.load(path)
        self.ctl.add("any_case", [], _ANY_CASE)
        self.ctl.ground([("base", []), ("any_case", [])])
        atoms = self.ctl.symbolic_atoms
        self.tested = sorted({a.symbol.arguments[1].name for a in atoms.by_signature("test", 2)}
                             | {a.symbol.arguments[2].name for a in atoms.by_signature("authorization_left", 3)})
        self.unused = sorted(a.symbol.arguments[0].name for a in atoms.by_signature("unused_fact", 1))
        self.waived = {(a.symbol.arguments[0].name, a.symbol.arguments[1].name)
                       for a in atoms.by_signature("check_waived", 3)}

    def _lit(self, name: str, *args) -> Optional[int]:
        atom = self.ctl.symbolic_atoms[clingo.Function(name, list(args))]
        return atom.literal if atom is not None else None

    def _sat(self, assumptions: list) -> bool:
        if any(a is None for a in assumptions):
            return False
        return bool(self.ctl.solve(assumptions=assumptions).satisfiable)

    def criterion(self, c: str, state: str) -> bool:
        now, cc = clingo.Function("now"), clingo.Function(c)
        holds, fails = self._lit("c_holds", now, cc), self._lit("c_fails", now, cc)
        if state == "met":
            return self._sat([holds])
        if state == "broken":
            return self._sat([fails])
        return self._sat([-x for x in (holds, fails) if x is not None])     # an atom never derived is false

    def decides(self, plan: str, pathway: str) -> bool:
        return self._sat([self._lit("decided_by", clingo.Function(plan), clingo.Function(pathway))])
