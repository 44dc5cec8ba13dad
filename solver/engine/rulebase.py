"""One grounding of the rule base and its static data, read once from the ground program's facts:
plans, documents, pathways, criteria (citations, texts, readings), authorizations, fact domains and
each criterion's tests (`because`).  A `RuleBase` grounds `base` and one show part of logic/show.lp:
`decide`, `explain`, `rests` or `rests_check`.  Reading a model is one lookup per shown atom
(`shown_handles`, `shown`)."""

from __future__ import annotations

import os
from typing import Optional, Sequence

import clingo
from clingo import SymbolType

from solver.base.paths import in_use
from solver.engine.domains import FactDomain
from solver.rules.files import REQUIRED_FILES, rule_files, version_of
from solver.rules.loading import RuleBaseError      # defined there: the command line catches it without importing clingo

# Solver options.  domRec with the `#heuristic missing(..) [1,false]` statement
# enumerates the subset-minimal missing sets; --forget-on-step resets the
# solver's learnt state between solve calls, so the answer for a case does not
# depend on the cases solved before it (byte-identical output).
CLINGO_ARGS = [
    "--heuristic=Domain",
    "--enum-mode=domRec",
    "--models=0",
    "--forget-on-step=varScores,signs,lemmaScores,lemmas",
    "--warn=none",
]


# The most fact changes one explain may combine: vocabulary.lp grounds limit(1..4).
MAX_CHANGES = 4


class Interrupted(RuntimeError):
    """A solve was stopped before it finished (Control.interrupt from another thread: the
    service's time limit); nothing of it is answered."""


def solved(res: clingo.SolveResult) -> clingo.SolveResult:
    """A finished solve's result, or Interrupted."""
    if res.interrupted:
        raise Interrupted("the solve was stopped before it finished")
    return res


def symbol_text(sym: clingo.Symbol) -> Optional[str]:
    if sym.type == SymbolType.String:
        return sym.string
    if sym.type == SymbolType.Number:
        return str(sym.number)
    if sym.type == SymbolType.Function and sym.name == "none" and not sym.arguments:
        return None
    return str(sym)


# Plain classes, not dataclasses: `dataclasses` imports `inspect`, which a
# one-shot command would pay for (about 6 ms) and nothing here needs.
class Pathway:
    def __init__(self, id: str, plan: str, outcome: str):
        self.id, self.plan, self.outcome = id, plan, outcome
        self.title = ""
        self.drugs: set = set()
        self.requests: set = set()
        self.authorization: dict = {}
        self.criteria: list = []
        self.authorization_data: dict = {}      # JSON form, all three keys
        self.left: dict = {}                    # key -> fact: the approval is the limit less the case's fact


class Criterion:
    def __init__(self, id: str):
        self.id = id
        self.source = ""
        self.text = ""
        self.reading: Optional[str] = None
        self.data: dict = {}                    # JSON form: id, source, text, reading


class RuleBase:
    """The grounded rule base and its static data."""

    def __init__(self, logic_dir=None, part: str = "decide", extra: Sequence = ()):
        """Ground `base` and one show part of logic/show.lp: `decide` or `explain`.
        `extra`: parsed statements added beside the files (solver/analysis/against.py:
        another version of one plan, renamed); its plans need not be the
        contract's."""
        self.logic_dir = in_use(logic_dir)
        self.extra = bool(extra)
        self.part = part
        if not os.path.isdir(self.logic_dir):
            raise RuleBaseError(f"{self.logic_dir}: not a folder")
        read = rule_files(self.logic_dir)      # reads and checks every file (no #script, UTF-8, size)
        self.version = version_of(read)
        files = [path for path, _, own in read if own]
        if not files:
            raise RuleBaseError(f"no .lp files in {self.logic_dir}")
        for name, holds in REQUIRED_FILES:
            if not os.path.isfile(os.path.join(self.logic_dir, name)):
                raise RuleBaseError(f"{self.logic_dir} has no {name}: every rule base holds one ({holds})")
        messages: list[str] = []               # clingo's own messages, kept for the error instead of printed
        self.ctl = clingo.Control(CLINGO_ARGS, logger=lambda code, msg: messages.append(msg.strip()),
                                  message_limit=5)
        from solver.rules.loading import loading

        try:
            with loading(self.logic_dir):      # the command line's time and memory limits, a clean stop
                for path in files:
                    self.ctl.load(str(path))
                if extra:
                    from clingo import ast

                    with ast.ProgramBuilder(self.ctl) as builder:
                        for stmt in extra:
                            builder.add(stmt)
                self.ctl.ground([("base", []), (part, [])])
        except RuntimeError as err:
            said = " | ".join(m.replace("\n", " ") for m in messages) or str(err)
            raise RuleBaseError(f"the rule base in {self.logic_dir} does not load: {said}") from None
        self._read_static()

    def facts_of(self, name: str, arity: int):
        """The arguments of every fact name/arity of the grounding."""
        for atom in self.ctl.symbolic_atoms.by_signature(name, arity):
            if atom.is_fact:
                yield atom.symbol.arguments

    def _read_static(self) -> None:
        from solver.rules.declared import Declared, check

        check(self.ctl, self.logic_dir)     # declarations, error/2 (each with its files), every plan's document
        self.declared = Declared.read(self.ctl)     # plans, drugs, facts: what the case models are built from
        self.plans = {p.name: symbol_text(n) for p, n in self.facts_of("plan", 2)}
        self.documents = {
            p.name: {"document": symbol_text(t), "id": symbol_text(i), "date": symbol_text(d), "source": symbol_text(s)}
            for p, t, i, d, s in self.facts_of("policy_document", 5)
        }
        self.notes = {p.name: symbol_text(t) for p, t in self.facts_of("plan_note", 2)}
        self._note_facts = list(self.facts_of("note", 3))        # (id, pathway, words): placed below
        self.covers = {(p.name, d.string) for p, d in self.facts_of("covers", 2)}
        self.pathways: dict[str, Pathway] = {}
        for p, pl, o in self.facts_of("pathway", 3):
            self.pathways[p.name] = Pathway(p.name, pl.name, o.name)
        for p, t in self.facts_of("pathway_title", 2):
            self.pathways[p.name].title = symbol_text(t)
        for p, d in self.facts_of("for_drug", 2):
            self.pathways[p.name].drugs.add(d.string)
        for p, r in self.facts_of("for_request", 2):
            self.pathways[p.name].requests.add(r.string)
        for p, k, n in self.facts_of("authorization", 3):
            self.pathways[p.name].authorization[k.name] = n.number
        for p, k, f in self.facts_of("authorization_left", 3):
            self.pathways[p.name].left[k.name] = f.name
        self.criteria: dict[str, Criterion] = {}
        for c, p in self.facts_of("criterion", 2):
            self.criteria.setdefault(c.name, Criterion(c.name))
            self.pathways[p.name].criteria.append(c.name)
        for pw in self.pathways.values():
            pw.criteria.sort()
        # Notes a case may carry (note/3): id -> (plan, words in the result, citation)
        self.case_notes: dict[str, tuple[str, str, str]] = {}
        sources = {c.name: symbol_text(t) for c, t in self.facts_of("source", 2)}
        for n, p, says in self._note_facts:
            self.case_notes[n.name] = (self.pathways[p.name].plan, symbol_text(says), sources.get(n.name, ""))
        for c, t in sources.items():
            if c in self.criteria:
                self.criteria[c].source = t
        for c, t in self.facts_of("text", 2):
            if c.name in self.criteria:
                self.criteria[c.name].text = symbol_text(t)
        for c, t in self.facts_of("reading", 2):
            if c.name in self.criteria:
                self.criteria[c.name].reading = symbol_text(t)
        self.icd10 = sorted((p.string, d.string) for p, d in self.facts_of("icd10_prefix", 2))

        self._read_domains()
        self._read_part()
        self._read_tests()
        for c in self.criteria.values():
            c.data = {"id": c.id, "source": c.source, "text": c.text}
            if c.reading is not None:
                c.data["reading"] = c.reading
        for pw in self.pathways.values():
            pw.authorization_data = {k: pw.authorization.get(k) for k in ("months", "max_cycles", "max_units_per_21_days")}
        self.plan_pathways = {pl: sorted((pw for pw in self.pathways.values() if pw.plan == pl), key=lambda p: p.id)
                              for pl in self.plans}
        self.shown = shown_table_for(self.ctl)
        # need(F, D) and new(F, D): the value as its position in F's domain.
        for sym, (kind, f, d) in self.shown.items():
            if kind in ("need", "new", "dset"):
                self.shown[sym] = (kind, f, self.facts[f].values.index(d))
        self.shown_by_handle = {sym._rep: v for sym, v in self.shown.items()}
        if not self.plans:
            raise RuleBaseError(f"the rule base in {self.logic_dir} declares no plan (plan/2)")
        # Externals start false; release them so that assumptions decide them.  These are all
        # of vocabulary.lp's #external declarations (val/2, asked/1, search_off, limit/1);
        # tests/engine/test_solver_core.py checks that no other atom is external.
        for lit in self.external_literals():
            self.ctl.assign_external(lit, None)

    def _read_domains(self) -> None:
        """Each fact's domain (domain/2), the literals of its values, and the plans' asked/1 literals."""
        self.facts: dict[str, FactDomain] = {f.name: FactDomain(f.name, k.name) for f, k in self.facts_of("fact", 2)}
        for f, d in self.facts_of("domain", 2):
            self.facts[f.name].values.append(d)
        for fd in self.facts.values():
            fd.finish()
            fd.literals = [self._literal(clingo.Function("val", [clingo.Function(fd.name), d])) for d in fd.values]
        always = {f.name for (f,) in self.facts_of("always_known", 1)}
        self.case_facts = sorted(f for f in self.facts if f not in always)     # all but drug and request
        self.asked = {pl: self._literal(clingo.Function("asked", [clingo.Function(pl)]))
                      for pl in self.plans}

    def _read_part(self) -> None:
        """What the show part grounded here needs beyond the static data: its configuration and the
        literals it assumes."""
        if self.part == "decide":
            self.search_off = self._literal(clingo.Function("search_off"))
        elif self.part == "rests":
            # the optimum of its #minimize (one model, proved optimal)
            self.ctl.configuration.solve.models = "0"
            self.ctl.configuration.solve.enum_mode = "auto"
            self.ctl.configuration.solve.opt_mode = "opt"
            self.kept_by_handle = {a.symbol._rep: (name, a.symbol.arguments[0].name, a.symbol.arguments[1].name)
                                   for name in ("keep", "decision", "decided_by")
                                   for a in self.ctl.symbolic_atoms.by_signature(name, 2)}
        elif self.part == "rests_check":
            # every dropped fact once: projected enumeration, no domain heuristic
            self.ctl.configuration.solve.models = "0"
            self.ctl.configuration.solve.enum_mode = "auto"
            self.ctl.configuration.solve.project = "project"
            self.keep = {(a.symbol.arguments[0].name, a.symbol.arguments[1].name): a.literal
                         for a in self.ctl.symbolic_atoms.by_signature("keep", 2)}
            self.check = {a.symbol.arguments[0].name: a.literal
                          for a in self.ctl.symbolic_atoms.by_signature("check", 1)}
            self.verify = self._literal(clingo.Function("verify"))
            self.checked = {}
            for name, arity in (("drop", 2), ("whole", 1), ("fv", 3)):
                for a in self.ctl.symbolic_atoms.by_signature(name, arity):
                    self.checked[a.symbol._rep] = (name, *(symbol_arg(x) for x in a.symbol.arguments))
        elif self.part == "explain":
            self.limits = {a.symbol.arguments[0].number: a.literal
                           for a in self.ctl.symbolic_atoms.by_signature("limit", 1)}
            if sorted(self.limits) != list(range(1, MAX_CHANGES + 1)):
                raise RuleBaseError(f"the rule base in {self.logic_dir}: limit/1 externals {sorted(self.limits)} "
                                    f"differ from 1..{MAX_CHANGES} (vocabulary.lp)")

    def _literal(self, atom: clingo.Symbol) -> int:
        """The program literal of an atom the engine assumes (an #external of vocabulary.lp)."""
        got = self.ctl.symbolic_atoms[atom]
        if got is None:
            raise RuleBaseError(f"the rule base in {self.logic_dir} has no atom {atom}: vocabulary.lp declares it "
                                f"#external (is it the project's?)")
        return got.literal

    def _read_tests(self) -> None:
        """What `because` reads: each criterion's options (branch/2), each option's tests (test/2)
        and the domain values each test allows (allow/3), all ground facts of the rule base, and
        each test in words (`test_words`)."""
        pos = {name: {sym: i for i, sym in enumerate(fd.values)} for name, fd in self.facts.items()}
        self.branches: dict[str, list] = {}
        for c, n in self.facts_of("branch", 2):
            if c.name in self.criteria:
                self.branches.setdefault(c.name, []).append(n)
        for c in self.branches:
            self.branches[c].sort(key=str)
        self.node_tests: dict = {}
        for n, f in self.facts_of("test", 2):
            self.node_tests.setdefault(n, []).append(f.name)
        for n in self.node_tests:
            self.node_tests[n].sort()
        allowed: dict = {}
        # Every allow/3 atom, not only facts: a when_then's negated condition (allow(neg(A), F, D):
        # not allow(A, F, D)) is no fact to the grounder, but its atoms exist exactly for the values
        # it allows, since allow/3 depends on the rule base alone.
        for atom in self.ctl.symbolic_atoms.by_signature("allow", 3):
            n, f, d = atom.symbol.arguments
            if f.name in pos and d in pos[f.name]:
                allowed.setdefault((n, f.name), set()).add(pos[f.name][d])
        self.allowed = {k: frozenset(v) for k, v in allowed.items()}
        self.test_words = {k: self.facts[k[1]].words(v) for k, v in self.allowed.items()}
        # per criterion, its options in order, each a tuple of (fact, values allowed, words)
        self.options = {c: [tuple((f, self.allowed.get((n, f), frozenset()), self.test_words.get((n, f), ""))
                                  for f in self.node_tests.get(n, ())) for n in ns]
                        for c, ns in self.branches.items()}
        # per criterion, the facts its options test (DTR's questions, rests_on's facts of a plan)
        self.criterion_facts = {c: sorted({f for option in options for f, _, _ in option})
                                for c, options in self.options.items()}

    def because(self, criterion: str, status: str, known: dict) -> list[dict]:
        """The tests a criterion's status rests on, on the option that decided it: met, an option
        whose every test holds; not met, the option that came closest (the fewest tests broken,
        then the most held: every option has one broken); unknown, an option no known fact
        breaks.  `known`: fact -> (value, domain index)."""
        best, best_key = None, None
        for tests in self.options.get(criterion, ()):
            row, broken, held = [], 0, 0
            for f, allowed, words in tests:
                k = known.get(f)
                if k is None:
                    row.append({"fact": f, "value": None, "test": words, "holds": None})
                else:
                    h = k[1] in allowed
                    row.append({"fact": f, "value": k[0], "test": words, "holds": h})
                    held += h
                    broken += not h
            if status == "not_met":
                key = (broken, -held)
                if best_key is None or key < best_key:
                    best, best_key = row, key
            elif broken == 0 and (status != "met" or held == len(tests)):
                return row
        return best or []

    def external_literals(self) -> list[int]:
        lits = [lit for fd in self.facts.values() for lit in fd.literals] + list(self.asked.values())
        if self.part == "decide":
            lits.append(self.search_off)
        elif self.part == "explain":
            lits += list(self.limits.values())
        elif self.part == "rests_check":
            lits += list(self.keep.values()) + list(self.check.values()) + [self.verify]
        return lits


def symbol_arg(sym: clingo.Symbol):
    return sym.name if sym.type == SymbolType.Function and not sym.arguments else sym


# Reading a model.  clingo interns symbols, so a symbol's handle (`_rep`, an
# integer) identifies it; reading the handles of the shown atoms straight from
# clingo's C API skips building a Python Symbol per atom and hashing it through
# two more C calls (measured: 1.9 of 5.2 s of a decide profile went to that).
# The public API is the fallback should the private names ever move.
try:
    from clingo._internal import _c_call, _ffi, _handle_error, _lib

    _SHOWN = _lib.clingo_show_type_shown

    def shown_handles(model: clingo.Model):
        size = _c_call("size_t", _lib.clingo_model_symbols_size, model._rep, _SHOWN)
        handles = _ffi.new("clingo_symbol_t[]", size)
        _handle_error(_lib.clingo_model_symbols(model._rep, _SHOWN, handles, size))
        return handles
except (ImportError, AttributeError):                     # pragma: no cover - other clingo versions
    def shown_handles(model: clingo.Model):
        return [s._rep for s in model.symbols(shown=True)]


def shown_table_for(ctl: clingo.Control) -> dict:
    """Every atom show.lp can report, mapped once to (kind, a, b) Python values,
    so that reading a model is one dictionary lookup per atom."""
    table = {}
    for name, arity in (("decision", 2), ("decided_by", 2), ("pathway_status", 2), ("criterion_status", 2),
                        ("sel", 1), ("need", 2), ("meets", 2), ("target", 2), ("new", 2), ("dpair", 2),
                        ("dset", 2), ("note_holds", 1)):
        for atom in ctl.symbolic_atoms.by_signature(name, arity):
            args = [symbol_arg(a) for a in atom.symbol.arguments]
            table[atom.symbol] = (name, args[0], args[1] if arity == 2 else None)
    return table
