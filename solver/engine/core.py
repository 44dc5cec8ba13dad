"""The bridge between typed cases and the ASP rule base.

One `Solver` grounds `logic/` once.  Every case fact is an external atom
`val(F, D)`; a case becomes a list of solve assumptions (program literals,
built from the typed model through clingo's symbol API — never ASP text), and
one solve per case gives, for every asked plan, the decision, each pathway's
and criterion's status, and — one model per set — every subset-minimal set of
missing facts (domain heuristic, `--enum-mode=domRec`).

Python here validates, translates, runs clingo and formats.  It does not
evaluate criteria: statuses, decisions and missing sets are the rule base's.
Static data (citations, texts, readings, authorizations, fact domains) is read
once from the ground program's facts.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
import hashlib
import threading
import os
import re
import stat
from typing import TYPE_CHECKING, Iterable, Optional, Sequence

import clingo
from clingo import SymbolType

from solver.case.blocking import blocking
from solver.text.jsontext import dump_text, not_text_at
from solver.rules.loading import RuleBaseError      # defined there: the command line catches it without importing clingo
from solver.text.words import safe

if TYPE_CHECKING:                     # the engine takes a models.Case or a fastcase.FastCase
    from solver.case.models import Case
    from solver.case.results import CaseResult
from solver.base.paths import in_use, logic_dir

LOGIC_DIR = logic_dir()       # the folder at import; a default `None` below means the one in use when called

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


# The most error/2 findings one refusal lists (a rule base without facts.lp has 160).
SAY_ERRORS = 5

# The most fact changes one explain may combine: vocabulary.lp grounds limit(1..4).
MAX_CHANGES = 4


# Answers of rests_on kept per solver (each a few hundred bytes): Solver.rests_on.
REST_CACHE = 20000


class Bounded:
    """A dictionary of at most `size` entries that forgets the least recently used."""

    def __init__(self, size: int):
        self.size = size
        self.data: OrderedDict = OrderedDict()

    def get(self, key):
        value = self.data.get(key)
        if value is not None:
            self.data.move_to_end(key)
        return value

    def put(self, key, value) -> None:
        self.data[key] = value
        self.data.move_to_end(key)
        if len(self.data) > self.size:
            self.data.popitem(last=False)


# The files every rule base holds beside its plans (the engine reads what they define).
REQUIRED_FILES = (
    ("vocabulary.lp", "the predicates, checks and #external atoms the engine reads"),
    ("show.lp", "the parts decide, explain, diff, rests and rests_check"),
)


class Interrupted(RuntimeError):
    """A solve was stopped before it finished (Control.interrupt from another thread: the
    service's time limit); nothing of it is answered."""


def solved(res: clingo.SolveResult) -> clingo.SolveResult:
    """A finished solve's result, or Interrupted."""
    if res.interrupted:
        raise Interrupted("the solve was stopped before it finished")
    return res


def _lp_files(logic_dir) -> list[str]:
    """The .lp files of a rule-base folder, sorted by name (RuleBaseError for a path that is
    not UTF-8 text: clingo takes file names as UTF-8, and would fail on it with a traceback)."""
    folder = os.fspath(logic_dir)
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    paths = [os.path.join(folder, n) for n in sorted(names)
             if n.endswith(".lp") and os.path.isfile(os.path.join(folder, n))]
    for path in paths:
        if not_text_at(path) is not None:
            raise RuleBaseError(f"{safe(path)}: the path is not UTF-8 text; clingo reads only UTF-8 file names "
                                f"(rename the file or its folder)")
    return paths


def _rule_bytes(path: str, room: int) -> bytes:
    """A rule file's bytes, read once for the version hash and checked on the
    way: a rule file is data, so one with a #script (code clingo would run) is
    refused, and so is one that is not UTF-8 text (clingo's Python logger
    cannot decode a message quoting it, and aborts the process), one that is
    not a regular file (a FIFO would hold clingo's read for good) and one past
    the `room` left of the rule base's size limit (solver/loading.py)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        raise RuleBaseError(f"{path}: {err.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise RuleBaseError(f"{path}: {_kind(st.st_mode)}, not a regular file")
        if st.st_size > room:
            raise RuleBaseError(_too_big(path, st.st_size))
        try:
            text = fh.read(st.st_size + 1)          # (not room + 1: a buffer that large costs a decide 0.5 ms)
            if len(text) > st.st_size:              # it grew since: the rest, up to the limit
                text += fh.read(room + 1 - len(text))
        except OSError as err:
            raise RuleBaseError(f"{path}: {err.strerror}") from None
    if len(text) > room:
        raise RuleBaseError(_too_big(path, len(text)))
    if b"#script" in text:
        raise RuleBaseError(f"{path} has a #script: rule files are data, no code runs from them")
    try:
        text.decode("utf-8")
    except UnicodeDecodeError as err:
        raise RuleBaseError(f"{path} is not UTF-8 text (byte {err.start})") from None
    return text


def _too_big(path: str, size: int) -> str:
    from solver.rules import loading

    return (f"{path}: {size / (1 << 20):.1f} MB, past the {loading.LIMITS.rules_mb:g} MB a rule base's files may "
            f"hold together (PA_SOLVER_RULES_MB)")


def _kind(mode: int) -> str:
    return ("a FIFO" if stat.S_ISFIFO(mode) else "a directory" if stat.S_ISDIR(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "not a file")


# clingo's lexer (libgringo's nongroundlexer), as far as an #include directive goes: comments
# (`%` and `#!` to the end of the line, `%* .. *%` nested, a `%` inside one comments out the rest
# of its line), strings, and the #include keyword itself (`#includes` is another keyword).
_TOKEN = re.compile(rb'%\*|%[^\n]*|#![^\n]*|"(?:[^\\"\n]|\\"|\\\\|\\n)*"|#include(?![A-Za-z0-9_])')
_IN_BLOCK = re.compile(rb"%\*|\*%|%[^\n]*")
_GAP = re.compile(rb"[ \t\r\n]+|%\*|%[^\n]*|#![^\n]*")
_STRING = re.compile(rb'"((?:[^\\"\n]|\\"|\\\\|\\n)*)"')


def _after_block(text: bytes, pos: int) -> int:
    depth = 1
    while depth:
        m = _IN_BLOCK.search(text, pos)
        if m is None:
            return len(text)
        depth += {b"%*": 1, b"*%": -1}.get(m.group(), 0)
        pos = m.end()
    return pos


def _includes(text: bytes) -> list[tuple[int, Optional[str]]]:
    """(line, file name) of every #include directive clingo follows in a rule file's text;
    the name None for a library include (`#include <incmode>`)."""
    out: list[tuple[int, Optional[str]]] = []
    if b"#include" not in text:
        return out
    pos = 0
    while True:
        m = _TOKEN.search(text, pos)
        if m is None:
            return out
        pos = m.end()
        tok = m.group()
        if tok == b"%*":
            pos = _after_block(text, pos)
        elif tok == b"#include":
            line = text.count(b"\n", 0, m.start()) + 1
            while True:                               # what may stand between the keyword and its file
                gap = _GAP.match(text, pos)
                if gap is None:
                    break
                pos = _after_block(text, gap.end()) if gap.group() == b"%*" else gap.end()
            name = _STRING.match(text, pos)
            if name is not None:
                raw = re.sub(rb'\\(["\\n])', lambda e: b"\n" if e.group(1) == b"n" else e.group(1), name.group(1))
                out.append((line, raw.decode("utf-8")))
                pos = name.end()
            elif text.startswith(b"<", pos):
                out.append((line, None))


def _resolve(name: str, source: str, line: int) -> str:
    """The file clingo reads for `#include "name"` in `source`, found as clingo finds it: the name
    as written (from the working directory, or absolute), else beside the including file.  A name
    both find as two different files is refused (the author meant the one beside, clingo would read
    the other), as is one neither finds (clingo's CLINGOPATH is not followed) and one that is not a
    regular file."""
    at = f'{source}:{line}: #include "{name}"'
    found = []
    candidates = [name]
    if not os.path.isabs(name) and os.path.dirname(source):
        candidates.append(os.path.join(os.path.dirname(source), name))
    for path in candidates:
        try:
            found.append((path, os.stat(path)))
        except (OSError, ValueError):
            pass
    if not found:
        raise RuleBaseError(f"{at}: no such file (looked beside {os.path.basename(source)} and in the working "
                            f"directory)")
    path, st = found[0]
    if len(found) == 2 and os.path.realpath(path) != os.path.realpath(found[1][0]):
        raise RuleBaseError(f"{at} names two files: {os.path.abspath(path)} in the working directory, which clingo "
                            f"reads, and {found[1][0]} beside the including file; write the path to the one meant")
    if not stat.S_ISREG(st.st_mode):
        raise RuleBaseError(f"{at}: {path} is {_kind(st.st_mode)}, not a regular file")
    return path


def rule_files(logic_dir=None) -> list[tuple[str, bytes, bool]]:
    """Every file clingo reads for the rule base in a folder, read and checked once (_rule_bytes):
    (path, bytes, whether it is one of the folder's .lp files).  The folder's .lp files come
    first, by name; then the files their #include directives bring in, depth first in the order
    clingo reads them, each file once.  Together they may hold at most the size limit."""
    from solver.rules import loading

    room = loading.LIMITS.rules_bytes
    out: list[tuple[str, bytes, bool]] = []
    top = _lp_files(in_use(logic_dir))
    for path in top:
        out.append((path, _rule_bytes(path, room), True))
        room -= len(out[-1][1])
    if not any(b"#include" in text for _, text, _ in out):
        return out
    seen = {os.path.realpath(path) for path in top}

    def follow(source: str, text: bytes) -> None:
        nonlocal room
        for line, name in _includes(text):
            if name is None:
                raise RuleBaseError(f"{source}:{line}: #include <...>: a library include; a rule file includes "
                                    f"only files")
            path = _resolve(name, source, line)
            key = os.path.realpath(path)
            if key in seen:
                continue
            seen.add(key)
            out.append((path, _rule_bytes(path, room), False))
            room -= len(out[-1][1])
            follow(path, out[-1][1])

    for path, text, _ in out[:len(top)]:
        follow(path, text)
    return out


def version_of(files: list[tuple[str, bytes, bool]]) -> str:
    h = hashlib.sha256()
    for path, text, own in files:
        # a folder's own file by its name (the hash of a folder without includes is as it was);
        # an included file by its place in the list, its #include directive being in the bytes before
        h.update((os.path.basename(path).encode() if own else b"#include") + b"\0" + text + b"\0")
    return h.hexdigest()[:16]


lp_files = _lp_files        # public: solver/declared.py reads the same files


def rules_version(logic_dir=None) -> str:
    """The hash of every byte clingo reads for a rule-base folder: its .lp files and what they
    #include (RuleBaseError for a file that is not a rule file: see rule_files)."""
    return version_of(rule_files(logic_dir))


def _text(sym: clingo.Symbol) -> Optional[str]:
    if sym.type == SymbolType.String:
        return sym.string
    if sym.type == SymbolType.Number:
        return str(sym.number)
    if sym.type == SymbolType.Function and sym.name == "none" and not sym.arguments:
        return None
    return str(sym)


def _bound(sym: clingo.Symbol) -> Optional[int]:
    return sym.number if sym.type == SymbolType.Number else None


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


class FactDomain:
    """A fact's domain in the rule base: declared values, or number intervals."""

    def __init__(self, name: str, kind: str):
        self.name = name
        self.kind = kind                        # enum | bool | number | integer
        self.values: list = []                  # domain symbols, in order
        self.cuts: list = []                    # numbers: inner interval bounds, sorted
        self.literals: list = []                # program literal of val(F, D) per value

    def index(self, value) -> int:
        """Position in `values` of a case value (a number falls in its interval)."""
        if self.kind in ("number", "integer"):
            return bisect.bisect_right(self.cuts, value)
        key = ("true" if value else "false") if self.kind == "bool" else value
        return self._pos[key]

    def finish(self) -> None:
        if self.kind in ("number", "integer"):
            self.values.sort(key=lambda s: (_bound(s.arguments[0]) is not None, _bound(s.arguments[0]) or 0))
            self.cuts = [_bound(s.arguments[0]) for s in self.values[1:]]
            # each interval's bounds as Python numbers: reading a symbol is a call into clingo
            self._lo = [_bound(s.arguments[0]) for s in self.values]
            self._hi = [_bound(s.arguments[1]) for s in self.values]
        else:
            self._pos = {s.string: i for i, s in enumerate(self.values)}
            self._strings = [s.string for s in self.values]

    def words(self, indices) -> str:
        """A test in the contract's words, from the domain values it allows: "true", "in [all]",
        ">= 18", "<= 6" (an integer), "< 65", ">= 18 and < 65", "documented" (every value)."""
        idx = sorted(indices)
        if len(idx) == len(self.values):
            return "documented"
        if self.kind == "bool":
            return self.values[idx[0]].string if len(idx) == 1 else "documented"
        if self.kind not in ("number", "integer"):
            return "in [" + ", ".join(self.values[i].string for i in idx) + "]"
        out = []
        for run in _runs(self, idx):
            lo, hi = _bound(self.values[run[0]].arguments[0]), _bound(self.values[run[-1]].arguments[1])
            upper = None if hi is None else (f"<= {hi - 1}" if self.kind == "integer" else f"< {hi}")
            out.append(" and ".join(w for w in ((f">= {lo}" if lo is not None else None), upper) if w))
        return " or ".join(out)

    def present(self, indices: Iterable[int]) -> dict:
        """The JSON form of a set of domain values (by position in `values`):
        `values`, or for a number one `range` (the positions must be adjacent)."""
        idx = sorted(indices)
        if self.kind in ("number", "integer"):
            if idx != list(range(idx[0], idx[-1] + 1)):
                raise RuleBaseError(f"values of {self.name} are not one range: {[str(self.values[i]) for i in idx]}")
            return {"range": [self._lo[idx[0]], self._hi[idx[-1]]]}
        if self.kind == "bool":
            return {"values": [self._strings[i] == "true" for i in idx]}
        return {"values": [self._strings[i] for i in idx]}


class RuleBase:
    """The grounded rule base and its static data."""

    def __init__(self, logic_dir=None, part: str = "decide", extra: Sequence = ()):
        """Ground `base` and one show part of logic/show.lp: `decide` or `explain`.
        `extra`: parsed statements added beside the files (solver/against.py:
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

    def _facts(self, name: str, arity: int):
        for atom in self.ctl.symbolic_atoms.by_signature(name, arity):
            if atom.is_fact:
                yield atom.symbol.arguments

    def _read_static(self) -> None:
        from solver.rules.declared import Declared, check

        check(self.ctl, self.logic_dir)     # declarations, error/2 (each with its files), every plan's document
        self.declared = Declared.read(self.ctl)     # plans, drugs, facts: what the case models are built from
        self.plans = {p.name: _text(n) for p, n in self._facts("plan", 2)}
        self.documents = {
            p.name: {"document": _text(t), "id": _text(i), "date": _text(d), "source": _text(s)}
            for p, t, i, d, s in self._facts("policy_document", 5)
        }
        self.notes = {p.name: _text(t) for p, t in self._facts("plan_note", 2)}
        self._note_facts = list(self._facts("note", 3))        # (id, pathway, words): placed below
        self.covers = {(p.name, d.string) for p, d in self._facts("covers", 2)}
        self.pathways: dict[str, Pathway] = {}
        for p, pl, o in self._facts("pathway", 3):
            self.pathways[p.name] = Pathway(p.name, pl.name, o.name)
        for p, t in self._facts("pathway_title", 2):
            self.pathways[p.name].title = _text(t)
        for p, d in self._facts("for_drug", 2):
            self.pathways[p.name].drugs.add(d.string)
        for p, r in self._facts("for_request", 2):
            self.pathways[p.name].requests.add(r.string)
        for p, k, n in self._facts("authorization", 3):
            self.pathways[p.name].authorization[k.name] = n.number
        for p, k, f in self._facts("authorization_left", 3):
            self.pathways[p.name].left[k.name] = f.name
        self.criteria: dict[str, Criterion] = {}
        for c, p in self._facts("criterion", 2):
            self.criteria.setdefault(c.name, Criterion(c.name))
            self.pathways[p.name].criteria.append(c.name)
        for pw in self.pathways.values():
            pw.criteria.sort()
        # Notes a case may carry (note/3): id -> (plan, words in the result, citation)
        self.case_notes: dict[str, tuple[str, str, str]] = {}
        sources = {c.name: _text(t) for c, t in self._facts("source", 2)}
        for n, p, says in self._note_facts:
            self.case_notes[n.name] = (self.pathways[p.name].plan, _text(says), sources.get(n.name, ""))
        for c, t in sources.items():
            if c in self.criteria:
                self.criteria[c].source = t
        for c, t in self._facts("text", 2):
            if c.name in self.criteria:
                self.criteria[c.name].text = _text(t)
        for c, t in self._facts("reading", 2):
            if c.name in self.criteria:
                self.criteria[c.name].reading = _text(t)
        self.icd10 = sorted((p.string, d.string) for p, d in self._facts("icd10_prefix", 2))

        self.facts: dict[str, FactDomain] = {f.name: FactDomain(f.name, k.name) for f, k in self._facts("fact", 2)}
        for f, d in self._facts("domain", 2):
            self.facts[f.name].values.append(d)
        for fd in self.facts.values():
            fd.finish()
            fd.literals = [self._literal(clingo.Function("val", [clingo.Function(fd.name), d])) for d in fd.values]
        always = {f.name for (f,) in self._facts("always_known", 1)}
        self.case_facts = sorted(f for f in self.facts if f not in always)     # all but drug and request
        self.asked = {pl: self._literal(clingo.Function("asked", [clingo.Function(pl)]))
                      for pl in self.plans}
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
                    self.checked[a.symbol._rep] = (name, *(_arg(x) for x in a.symbol.arguments))
        elif self.part == "explain":
            self.limits = {a.symbol.arguments[0].number: a.literal
                           for a in self.ctl.symbolic_atoms.by_signature("limit", 1)}
            if sorted(self.limits) != list(range(1, MAX_CHANGES + 1)):
                raise RuleBaseError(f"the rule base in {self.logic_dir}: limit/1 externals {sorted(self.limits)} "
                                    f"differ from 1..{MAX_CHANGES} (vocabulary.lp)")
        self._read_tests()
        for c in self.criteria.values():
            c.data = {"id": c.id, "source": c.source, "text": c.text}
            if c.reading is not None:
                c.data["reading"] = c.reading
        for pw in self.pathways.values():
            pw.authorization_data = {k: pw.authorization.get(k) for k in ("months", "max_cycles", "max_units_per_21_days")}
        self.plan_pathways = {pl: sorted((pw for pw in self.pathways.values() if pw.plan == pl), key=lambda p: p.id)
                              for pl in self.plans}
        self.shown = _shown_table_for(self.ctl)
        # need(F, D) and new(F, D): the value as its position in F's domain.
        for sym, (kind, f, d) in self.shown.items():
            if kind in ("need", "new", "dset"):
                self.shown[sym] = (kind, f, self.facts[f].values.index(d))
        self.shown_by_handle = {sym._rep: v for sym, v in self.shown.items()}
        if not self.plans:
            raise RuleBaseError(f"the rule base in {self.logic_dir} declares no plan (plan/2)")
        # Externals start false; release them so that assumptions decide them.  These are all
        # of vocabulary.lp's #external declarations (val/2, asked/1, search_off, limit/1);
        # tests/test_solver_core.py checks that no other atom is external.
        for lit in self.external_literals():
            self.ctl.assign_external(lit, None)

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
        for c, n in self._facts("branch", 2):
            if c.name in self.criteria:
                self.branches.setdefault(c.name, []).append(n)
        for c in self.branches:
            self.branches[c].sort(key=str)
        self.node_tests: dict = {}
        for n, f in self._facts("test", 2):
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


def _minimal(sets: list[dict]) -> list[dict]:
    """Drop each set whose facts strictly contain another set's facts (same
    plan), then sort by size, pathway and content.  Within one (pathway,
    options) clingo's domRec already gave minimal sets; this compares sets
    completed by different pathways or options."""
    keyed = [(frozenset(f["fact"] for f in m["facts"]), m) for m in sets]
    kept = [m for s, m in keyed if not any(o < s for o, _ in keyed)]
    return sorted(kept, key=lambda m: (len(m["facts"]), m["pathway"], dump_json(m)))


def _arg(sym: clingo.Symbol):
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


def _shown_table_for(ctl: clingo.Control) -> dict:
    """Every atom show.lp can report, mapped once to (kind, a, b) Python values,
    so that reading a model is one dictionary lookup per atom."""
    table = {}
    for name, arity in (("decision", 2), ("decided_by", 2), ("pathway_status", 2), ("criterion_status", 2),
                        ("sel", 1), ("need", 2), ("meets", 2), ("target", 2), ("new", 2), ("dpair", 2),
                        ("dset", 2), ("note_holds", 1)):
        for atom in ctl.symbolic_atoms.by_signature(name, arity):
            args = [_arg(a) for a in atom.symbol.arguments]
            table[atom.symbol] = (name, args[0], args[1] if arity == 2 else None)
    return table


def derive_diagnosis(case: Case, icd10: list[tuple[str, str]]) -> Optional[str]:
    """CASE.md: where `diagnosis` is unknown, C91.0x gives all and C83.5x gives
    lymphoblastic_lymphoma.  Codes that point to two diagnoses derive none."""
    if case.facts.diagnosis is not None or not case.facts.icd10_codes:
        return None
    found = {dx for code in case.facts.icd10_codes for prefix, dx in icd10 if code.startswith(prefix)}
    return found.pop() if len(found) == 1 else None


class Solver:
    """Decides cases against one grounding of the rule base (reused per case)."""

    def __init__(self, logic_dir=None, rules: Optional[RuleBase] = None):
        """`rules`: a rule base grounded elsewhere (diff --against decides with
        today's plans and another version of one of them).  `logic_dir`: default, the
        rule base in use (`--rules`, PA_SOLVER_LOGIC, else logic/)."""
        self.logic_dir = rules.logic_dir if rules is not None and logic_dir is None else in_use(logic_dir)
        self.rules = rules or RuleBase(logic_dir)
        self._explainer: Optional[RuleBase] = None
        self._rester: Optional[RuleBase] = None
        self._rests_checker: Optional[RuleBase] = None
        self._rests_cache = Bounded(REST_CACHE)
        self._needed_cache = Bounded(REST_CACHE)
        self._plan_facts_of: dict[str, list[str]] = {}

    @property
    def rester(self) -> RuleBase:
        """The rule files grounded with the `rests` part (built on first use)."""
        if self._rester is None:
            self._rester = RuleBase(self.logic_dir, part="rests")
        return self._rester

    @property
    def rests_checker(self) -> RuleBase:
        """The rule files grounded with the `rests_check` part (built on first use)."""
        if self._rests_checker is None:
            self._rests_checker = RuleBase(self.logic_dir, part="rests_check")
        return self._rests_checker

    def rests_on(self, case: Case, derived: dict, plans: Iterable[str], verify: bool = False) -> dict[str, list[dict]]:
        """Per plan, a subset-minimal set of the case's facts on which its decision rests:
        [{"fact", "value"}] (value None: the fact is unknown in the case, and that it is unknown
        is what counts).  Two solves as a rule (logic/vocabulary.lp, "What a decision rests on"):
        the `rests` part guesses every plan's set and proves it sufficient by bounds; the
        `rests_check` part then names, exactly, each fact of each set that is needed.  A fact
        that is not needed is freed (the first by name) and the sets checked again, so what is
        answered is subset-minimal by clingo's exact check.  `verify` has that check prove each
        set sufficient as well (the bounds already do; the tests verify it)."""
        sets = self._rests(case, derived, sorted(plans), self.places(case, derived), verify)[0]
        return {pl: [{"fact": f, "value": self._value(case, derived, f)} for f in kept]
                for pl, kept in sets.items()}

    def _rests(self, case: Case, derived: dict, plans: list[str], known: dict,
               verify: bool = False) -> tuple[dict, dict, dict]:
        """(sets, decision, pathway) per plan.  A plan's depend on the case only through the places
        in their domains (what the solves see) of the facts the plan tests, the drug and the
        request: kept per plan by that key, and solved for the plans not kept."""
        keys = {pl: (pl, tuple((f, known[f][1] if f in known else -1) for f in self._plan_facts(pl)))
                for pl in plans}
        sets: dict = {}
        decision: dict = {}
        pathway: dict = {}
        todo = []
        for pl in plans:
            got = None if verify else self._rests_cache.get(keys[pl])
            if got is None:
                todo.append(pl)
            else:
                sets[pl], decision[pl], pathway[pl] = got
        if todo:
            lits = self.assumptions(case, derived, self.rester, asked=todo)
            s, d, p = self._rest_sets(case, derived, todo, lits, known, verify)
            for pl in todo:
                sets[pl], decision[pl], pathway[pl] = s[pl], d[pl], p.get(pl)
                if not verify:
                    self._rests_cache.put(keys[pl], (s[pl], d[pl], p.get(pl)))
        return sets, decision, pathway

    def _plan_facts(self, plan: str) -> list[str]:
        """The facts any criterion of the plan tests, and the drug and the request, in name order."""
        got = self._plan_facts_of.get(plan)
        if got is None:
            got = self._plan_facts_of[plan] = sorted(self._tested_by(plan) | {"drug", "request"})
        return got

    def _rest_sets(self, case: Case, derived: dict, plans: list[str], lits: list[int], known: dict,
                   verify: bool) -> tuple[dict, dict, dict]:
        """The rests part's optimum for the plans asked (`lits`), then the exact checks until
        every fact of every set is needed: (sets, decision, pathway) per plan."""
        rb = self.rester
        table = rb.kept_by_handle
        sets: dict[str, list[str]] = {pl: [] for pl in plans}
        decision: dict[str, str] = {}
        by: dict[str, list[str]] = {}
        best: list = []
        res = solved(rb.ctl.solve(assumptions=lits, on_model=lambda m: best.__setitem__(slice(None), shown_handles(m))))
        if not res.satisfiable:                    # cannot happen: keeping every fact is sufficient
            raise RuleBaseError("the rests part found no sufficient set")
        for h in best:
            kind, pl, x = table[h]
            if kind == "keep":
                if pl in sets:
                    sets[pl].append(x)
            elif kind == "decision":
                decision[pl] = x
            else:
                by.setdefault(pl, []).append(x)
        for kept in sets.values():
            kept.sort()
        pending = {pl: kept for pl, kept in sets.items() if kept}
        while pending:
            needed, loose = self._needed(case, derived, pending, verify, known)
            nxt = {}
            for pl, kept in pending.items():
                if pl in loose:                    # the bounds failed: start from every fact
                    kept = sorted(self._tested_by(pl))
                else:
                    spare = [f for f in kept if f not in needed[pl]]
                    if not spare:
                        continue
                    kept = [f for f in kept if f != spare[0]]
                sets[pl] = nxt[pl] = kept
            pending = {pl: kept for pl, kept in nxt.items() if kept}
        return sets, decision, {pl: min(ps) for pl, ps in by.items()}

    def why(self, case: Case) -> dict:
        """The why line of a case (batch --why): per plan asked, its decision, the pathway that
        decided it, the authorization, and rests_on; no criteria or missing sets (decide --why
        gives the whole result with rests_on).  Two solves as a rule (the rests part gives the
        decisions too), none for a plan whose facts fall in the same places of their domains as
        in a case already answered."""
        derived = {}
        dx = derive_diagnosis(case, self.rules.icd10)
        if dx is not None:
            derived["diagnosis"] = dx
        plans = sorted(case.plans or self.rules.plans)
        sets, decision, pathway = self._rests(case, derived, plans, self.places(case, derived))
        every = len(self.rules.case_facts)
        results = []
        for plan in plans:
            dec, by = decision[plan], pathway.get(plan)
            rests = [{"fact": f, "value": self._value(case, derived, f)} for f in sets[plan]]
            results.append({
                "plan": plan, "drug": case.drug, "request": case.request, "decision": dec, "pathway": by,
                "authorization": (self._authorization(self.rules.pathways[by], case, derived)
                                  if dec == "approved" else None),
                "rests_on": rests, "rests_on_count": len(rests), "facts_count": every})
        return {"case_id": case.case_id, "rules_version": self.rules.version, "derived_facts": derived,
                "results": results}

    def _needed(self, case: Case, derived: dict, sets: dict[str, list[str]], verify: bool = False,
                known: Optional[dict] = None) -> tuple[dict, set]:
        """Per plan, the facts of its set that are needed (freeing one alone lets a completion
        decide otherwise), and (with `verify`) the plans whose whole set has such a completion:
        one enumerating solve of the `rests_check` part.  What a plan's check finds depends only
        on the plan, the drug, the request and the set's facts' places in their domains: kept
        by that key (without `verify`)."""
        if known is None:
            known = self.places(case, derived)
        keys = {pl: (pl, known["drug"][1], known["request"][1], tuple((f, known[f][1] if f in known else -1)
                                                                      for f in kept))
                for pl, kept in sets.items()}
        needed: dict[str, set] = {}
        if not verify:
            for pl, k in keys.items():
                hit = self._needed_cache.get(k)
                if hit is not None:
                    needed[pl] = hit
        todo = {pl: kept for pl, kept in sets.items() if pl not in needed}
        loose: set = set()
        if todo:
            found, loose = self._check(case, derived, todo, verify)
            for pl, got in found.items():
                needed[pl] = frozenset(got)
                if not verify:
                    self._needed_cache.put(keys[pl], needed[pl])
        return needed, loose

    def _check(self, case: Case, derived: dict, sets: dict[str, list[str]], verify: bool) -> tuple[dict, set]:
        """One enumerating solve of the `rests_check` part over the given plans' sets."""
        rb = self.rests_checker
        lits = self.assumptions(case, derived, rb)
        for (pl, f), lit in rb.keep.items():
            lits.append(lit if pl in sets and f in sets[pl] else -lit)
        lits.extend(lit if pl in sets else -lit for pl, lit in rb.check.items())
        lits.append(rb.verify if verify else -rb.verify)
        needed: dict[str, set] = {pl: set() for pl in sets}
        loose: set = set()
        table = rb.checked

        def on_model(m: clingo.Model) -> None:
            for h in shown_handles(m):
                kind, *args = table[h]
                if kind == "drop":
                    needed[args[0]].add(args[1])
                elif kind == "whole":
                    loose.add(args[0])

        solved(rb.ctl.solve(assumptions=lits, on_model=on_model))
        return needed, loose

    def _tested_by(self, plan: str) -> set:
        """The facts any criterion of the plan tests (all its pathways, any drug or request)."""
        crit = {c for pw in self.rules.plan_pathways[plan] for c in pw.criteria}
        return {f for c in crit for f in self.rules.criterion_facts.get(c, ()) if f in self.rules.case_facts}

    @property
    def explainer(self) -> RuleBase:
        """The same rule files grounded with the `explain` show part (built on
        first use): the change search then reads only target/new atoms."""
        if self._explainer is None:
            self._explainer = RuleBase(self.logic_dir, part="explain")
        return self._explainer

    # -------------------------------------------------------------- input
    def assumptions(self, case: Case, derived: dict[str, str], rb: Optional[RuleBase] = None,
                    known: Optional[dict] = None, asked: Optional[Iterable[str]] = None) -> list[int]:
        """The solve assumptions of a case; `known`, when given, gets fact -> (value, domain index)
        of every known fact; `asked`: the plans asked, when not the case's."""
        rb = rb or self.rules
        places = self.places(case, derived, rb)
        if known is not None:
            known.update(places)
        lits: list[int] = []
        for name, fd in rb.facts.items():
            chosen = places[name][1] if name in places else -1
            lits.extend(lit if i == chosen else -lit for i, lit in enumerate(fd.literals))
        asked = set(case.plans or rb.plans) if asked is None else set(asked)
        lits.extend(lit if pl in asked else -lit for pl, lit in rb.asked.items())
        return lits

    def places(self, case: Case, derived: dict[str, str], rb: Optional[RuleBase] = None) -> dict:
        """fact -> (value, place in its domain in `rb`, by default the decide grounding) of every
        known fact."""
        facts = case.facts
        values = {"drug": case.drug, "request": case.request, **derived}
        known = {}
        for name, fd in (rb or self.rules).facts.items():
            value = values[name] if name in values else getattr(facts, name)
            if value is not None:
                known[name] = (value, fd.index(value))
        return known

    # -------------------------------------------------------------- solve
    def solve(self, case: Case, max_changes: int = 0, lean: bool = False, why: bool = False) -> dict:
        """Decide a validated case; the result as JSON-ready data (CASE.md shape).
        With max_changes > 0 every result also carries `changes`: the minimal
        sets of at most that many fact changes that give the plan another
        decision (a second solve, on the same grounding).  `lean` drops the
        citations, texts and criteria, and gives per plan that did not approve
        its `blocking` criteria (not met / unknown ids, solver/blocking.py):
        the line `batch --lean` writes for reports."""
        rb = self.rules
        if max_changes and not 1 <= max_changes <= MAX_CHANGES:
            raise ValueError(f"max_changes must be between 1 and {MAX_CHANGES}, not {max_changes}")
        derived = {}
        dx = derive_diagnosis(case, rb.icd10)
        if dx is not None:
            derived["diagnosis"] = dx
        known: dict = {}
        lits = self.assumptions(case, derived, known=known)
        table = rb.shown_by_handle
        models: list[list] = []
        on_model = lambda m: models.append([table[h] for h in shown_handles(m)])  # noqa: E731
        res = solved(rb.ctl.solve(assumptions=lits + [-rb.search_off], on_model=on_model))
        if res.unsatisfiable:
            # No open pathway of a needs_info plan has a completion: decide only.
            models.clear()
            solved(rb.ctl.solve(assumptions=lits + [rb.search_off], on_model=on_model))
        result = self._result(case, derived, models, lean, known)
        if why:
            rests = self.rests_on(case, derived, [r["plan"] for r in result["results"]])
            every = len(self.rules.case_facts)         # the contract's facts (drug and request aside)
            for r in result["results"]:
                r["rests_on"] = rests[r["plan"]]
                r["rests_on_count"] = len(rests[r["plan"]])
                r["facts_count"] = every
        if max_changes:
            changes = self._changes(case, derived, max_changes)
            for r in result["results"]:
                r["changes"] = changes.get(r["plan"], [])
        return result

    def _changes(self, case: Case, derived: dict, max_changes: int) -> dict[str, list[dict]]:
        """Per plan, the `changes` entries of CASE.md, from one enumerating solve."""
        rb = self.explainer
        lits = self.assumptions(case, derived, rb)
        table = rb.shown_by_handle
        found: dict[tuple, set] = {}          # (plan, decision, facts) -> value combinations

        def on_model(m: clingo.Model) -> None:
            target, new = None, []
            for h in shown_handles(m):
                kind, a, b = table[h]
                if kind == "target":
                    target = (a, b)
                elif kind == "new":
                    new.append((a, b))
            new.sort(key=lambda fv: fv[0])
            key = (*target, tuple(f for f, _ in new))
            found.setdefault(key, set()).add(tuple(d for _, d in new))

        limits = [lit if k == max_changes else -lit for k, lit in rb.limits.items()]
        solved(rb.ctl.solve(assumptions=lits + limits, on_model=on_model))

        # Minimal per CASE.md: no entry of the same plan and decision has a
        # strict subset of the facts.
        by_target: dict[tuple, list[frozenset]] = {}
        for plan, dec, facts in found:
            by_target.setdefault((plan, dec), []).append(frozenset(facts))
        kept = [k for k in found if not any(o < set(k[2]) for o in by_target[k[:2]] if len(o) < len(k[2]))]
        out: dict[str, list[tuple]] = {}
        for plan, dec, facts in kept:
            fds = [rb.facts[f] for f in facts]
            for box in _boxes(fds, found[(plan, dec, facts)]):
                entry = {"decision": dec, "facts": [
                    {"fact": fd.name, "from": self._value(case, derived, fd.name), **fd.present(vals)}
                    for fd, vals in zip(fds, box)]}
                # CASE.md order: size, decision, fact names; then the values' domain order.
                key = (len(facts), dec, facts, tuple(min(vals) for vals in box))
                out.setdefault(plan, []).append((key, entry))
        return {plan: [e for _, e in sorted(entries, key=lambda ke: ke[0])] for plan, entries in out.items()}

    def _authorization(self, pw: Pathway, case: Case, derived: dict) -> dict:
        """What an approval by `pw` grants: its limits, less what the case has used of an
        earlier authorization where the pathway says so (authorization_left/3: OHSU's
        renewal gives the rest of the initial 6 months and 6 cycles)."""
        if not pw.left:
            return pw.authorization_data
        out = dict(pw.authorization_data)
        for key, fact in pw.left.items():
            used = self._value(case, derived, fact)
            if used is not None and out.get(key) is not None:
                left = max(out[key] - used, 0)
                out[key] = int(left) if left == int(left) else round(left, 6)
        return out

    @staticmethod
    def _value(case: Case, derived: dict, name: str):
        if name in derived:
            return derived[name]
        return getattr(case.facts, name)

    def decide(self, case: Case, max_changes: int = 0) -> CaseResult:
        from solver.case.results import CaseResult

        return CaseResult.model_validate(self.solve(case, max_changes))

    def decide_json(self, case: Case, max_changes: int = 0, lean: bool = False) -> str:
        return dump_json(self.solve(case, max_changes, lean))

    # -------------------------------------------------------------- output
    def _result(self, case: Case, derived: dict, models: list, lean: bool = False,
                known: Optional[dict] = None) -> dict:
        rb = self.rules
        decision: dict[str, str] = {}
        decided_by: dict[str, list[str]] = {}
        pstatus: dict[str, str] = {}
        cstatus: dict[str, str] = {}
        notes: dict[str, list[tuple[str, str]]] = {}
        for kind, a, b in models[0]:
            if kind == "criterion_status":
                cstatus[a] = b
            elif kind == "pathway_status":
                pstatus[a] = b
            elif kind == "decision":
                decision[a] = b
            elif kind == "decided_by":
                decided_by.setdefault(a, []).append(b)
            elif kind == "note_holds":
                plan, says, source = rb.case_notes[a]
                notes.setdefault(plan, []).append((a, f"{says} ({source})"))

        missing: dict[str, list[dict]] = {}
        for model in models:
            sel = None
            need: dict[str, list] = {}
            meets: dict[str, list[str]] = {}
            for kind, a, b in model:
                if kind == "sel":
                    sel = a
                elif kind == "need":
                    need.setdefault(a, []).append(b)
                elif kind == "meets":
                    meets.setdefault(a, []).append(b)
            if sel is None:
                continue
            pw = rb.pathways[sel]
            facts = [{"fact": f, "criteria": sorted(meets[f]), **rb.facts[f].present(need[f])} for f in sorted(need)]
            missing.setdefault(pw.plan, []).append({"pathway": sel, "outcome": pw.outcome, "facts": facts})

        results = []
        for plan in sorted(decision):
            dec = decision[plan]
            by = sorted(decided_by.get(plan, []))
            out = {
                "plan": plan, "drug": case.drug, "request": case.request, "decision": dec,
                "pathway": by[0] if by else None,
                "authorization": self._authorization(rb.pathways[by[0]], case, derived) if dec == "approved" else None,
            }
            active = [pw for pw in rb.plan_pathways[plan] if pw.id in pstatus]
            if lean:
                # Lean lines (batch --lean): no citations or texts; each pathway's status and, where
                # the plan did not approve, the criteria that block it (solver/blocking.py: the rule
                # `report` counts by, applied here once instead of on every read).
                out["pathways"] = [{"id": pw.id, "status": pstatus[pw.id]} for pw in active]
                if dec != "approved":
                    nm, un = blocking((pw.outcome, [c for c in pw.criteria if cstatus[c] == "not_met"],
                                       [c for c in pw.criteria if cstatus[c] == "unknown"]) for pw in active)
                    out["blocking"] = {"not_met": nm, "unknown": un}
            else:
                out["policy"] = rb.documents[plan]
                said = ([rb.notes[plan]] if plan in rb.notes else []) + [t for _, t in sorted(notes.get(plan, []))]
                out["note"] = " ".join(said) if said else None
                # each criterion once: pathways share them (133 places, 58 criteria)
                judged: dict[str, dict] = {}
                for pw in active:
                    for c in pw.criteria:
                        if c not in judged:
                            judged[c] = {**rb.criteria[c].data, "status": cstatus[c],
                                         "because": rb.because(c, cstatus[c], known or {})}
                out["pathways"] = [
                    {"id": pw.id, "title": pw.title, "outcome": pw.outcome, "status": pstatus[pw.id],
                     "criteria": [judged[c] for c in pw.criteria]}
                    for pw in active]
            out["missing"] = _minimal(missing.get(plan, [])) if dec == "needs_info" else []
            results.append(out)
        return {"case_id": case.case_id, "rules_version": rb.version, "derived_facts": derived, "results": results}


def _runs(fd: FactDomain, values) -> list[list[int]]:
    """Domain positions of a fact split into what one `values` / `range` can
    say: enums and bools whole, numbers into runs of adjacent intervals."""
    order = sorted(values)
    if fd.kind not in ("number", "integer"):
        return [order]
    runs: list[list[int]] = []
    for v in order:
        if runs and runs[-1][-1] + 1 == v:
            runs[-1].append(v)
        else:
            runs.append([v])
    return runs


def _boxes(domains: list[FactDomain], combos: set[tuple]) -> list[tuple]:
    """Cover a set of value combinations exactly by disjoint boxes (one value
    list or range per fact), so that every combination a box lists is one
    clingo found.  Groups first-fact values with the same remainders."""
    if not domains:
        return [()]
    rest: dict = {}
    for combo in combos:
        rest.setdefault(combo[0], set()).add(combo[1:])
    groups: dict[frozenset, list] = {}
    for first, tails in rest.items():
        groups.setdefault(frozenset(tails), []).append(first)
    out = []
    for tails, firsts in groups.items():
        for run in _runs(domains[0], firsts):
            for tail in _boxes(domains[1:], set(tails)):
                out.append((run, *tail))
    return out


class SharedSolver:
    """One Solver for many threads (a web server's sessions): a clingo Control
    is not thread-safe, so solves take turns; a solve takes milliseconds."""

    def __init__(self, logic_dir=None):
        self.solver = Solver(logic_dir)
        self.rules = self.solver.rules
        self._lock = threading.Lock()

    def solve(self, case: Case, max_changes: int = 0, lean: bool = False, why: bool = False) -> dict:
        with self._lock:
            return self.solver.solve(case, max_changes, lean, why)


def dump_json(data: dict) -> str:
    """Canonical JSON: sorted keys, compact separators; byte-stable (solver/jsontext.py)."""
    return dump_text(data)
