"""What a rule base declares: its plans, drugs and facts (shared/spec/RULES.md).

The rule base is the one source: the case models (solver/case/models.py and the
fast path, solver/case/fastcase.py), the what-if form, the DTR questionnaire, FHIR
reading, the OpenAPI document, the command line's choices and the pages'
labels are all built from a `Declared`, and no Python names a plan, a drug or
a fact.

    d = declared.of(logic_dir)          # cached per folder and content (rules_version)
    d = Declared.read(ctl)              # from a grounded clingo Control (the engine's own)
    d.facts["age_years"].range          # (0, 130): inclusive, None for no bound
    d.plans, d.plan_labels, d.drugs, d.drug_codes, d.payer_ids

Reading needs no more than the `base` program grounded: the engine's rule
base already is, so a command that decides pays nothing more; `of()` grounds
the files' `base` alone (about 30 ms) for whoever has no engine at hand.
"""

from __future__ import annotations

import os
import time
from typing import Optional

import clingo
from clingo import SymbolType

# drug_code/3's system names -> the FHIR code systems (shared/spec/FHIR.md)
CODE_SYSTEMS = {
    "hcpcs": "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
    "rxnorm": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "ndc": "http://hl7.org/fhir/sid/ndc",
}
OTHER_GROUP = "Other facts"


def _text(sym: clingo.Symbol) -> str:
    if sym.type == SymbolType.String:
        return sym.string
    if sym.type == SymbolType.Number:
        return str(sym.number)
    return str(sym)


def _bound(sym: clingo.Symbol) -> Optional[int]:
    """A range/3 bound: a whole number, or None for #sup / #inf (no bound)."""
    return sym.number if sym.type == SymbolType.Number else None


class FactDecl:
    """One declared fact: its kind, the values or range a case may hold, and a person's words."""

    __slots__ = ("name", "kind", "values", "low", "high", "low_open", "label", "question", "help", "group",
                 "always_known", "default")

    def __init__(self, name: str, kind: str):
        self.name, self.kind = name, kind
        self.values: tuple[str, ...] = ()          # enum values, in declaration order; bool: ("true", "false")
        self.low: Optional[int] = None             # range/3, inclusive unless low_open
        self.high: Optional[int] = None            # None: no upper bound (#sup)
        self.low_open = False
        self.label = name.replace("_", " ").capitalize()
        self.question: Optional[str] = None
        self.help = ""
        self.group = OTHER_GROUP
        self.always_known = False                  # drug, request: the case's own fields, never missing
        self.default: Optional[str] = None

    @property
    def asked(self) -> str:
        """The DTR question: question/2, else the label."""
        return self.question or self.label

    def __repr__(self) -> str:
        return f"FactDecl({self.name!r}, {self.kind!r})"


class Declared:
    """A rule base's declarations, in declaration order where order shows (facts, drugs, groups)."""

    def __init__(self):
        self.facts: dict[str, FactDecl] = {}
        self.plans: dict[str, str] = {}             # id -> name, ids sorted
        self.plan_labels: dict[str, str] = {}       # id -> short name (default: the name)
        self.documents: dict[str, str] = {}         # id -> the document's file name
        self.covers: dict[str, tuple[str, ...]] = {}    # plan -> drugs
        self.drugs: dict[str, str] = {}             # id -> name
        self.drug_codes: dict[tuple[str, str], str] = {}    # (FHIR system, code) -> drug
        self.payer_ids: dict[tuple[str, str], str] = {}     # (system, value) -> plan
        self.icd10: list[tuple[str, str]] = []      # (code prefix, diagnosis value)
        self.observations: dict[str, tuple[str, dict[str, float]]] = {}   # fact -> (LOINC, {UCUM unit: factor})
        self.groups: list[str] = []                 # the form's headings, in order

    # ------------------------------------------------------------ reading
    @classmethod
    def read(cls, ctl: clingo.Control) -> "Declared":
        """From a Control whose `base` program is grounded."""

        def facts(name: str, arity: int):
            for atom in ctl.symbolic_atoms.by_signature(name, arity):
                if atom.is_fact:
                    yield atom.symbol.arguments

        d = cls()
        for f, k in facts("fact", 2):
            d.facts.setdefault(f.name, FactDecl(f.name, k.name))
        for f, v in facts("value", 2):
            if f.name in d.facts:
                d.facts[f.name].values += (_text(v),)
        for f, lo, hi in facts("range", 3):
            if f.name in d.facts:
                d.facts[f.name].low, d.facts[f.name].high = _bound(lo), _bound(hi)
        for (f,) in facts("range_open_low", 1):
            if f.name in d.facts:
                d.facts[f.name].low_open = True
        for attr, pred in (("label", "label"), ("question", "question"), ("help", "help"), ("group", "group"),
                           ("default", "default")):
            for f, t in facts(pred, 2):
                if f.name in d.facts:
                    setattr(d.facts[f.name], attr, _text(t))
        for (f,) in facts("always_known", 1):
            if f.name in d.facts:
                d.facts[f.name].always_known = True
        for fd in d.facts.values():
            if fd.group not in d.groups and not fd.always_known:
                d.groups.append(fd.group)
        d.plans = dict(sorted((p.name, _text(n)) for p, n in facts("plan", 2)))
        d.plan_labels = {p: n for p, n in d.plans.items()}
        d.plan_labels.update((p.name, _text(s)) for p, s in facts("plan_label", 2) if p.name in d.plans)
        d.documents = {p.name: _text(f) for p, _t, _i, _d, f in facts("policy_document", 5)}
        covers: dict[str, list[str]] = {}
        for p, dr in facts("covers", 2):
            covers.setdefault(p.name, []).append(_text(dr))
        d.covers = {p: tuple(sorted(v)) for p, v in sorted(covers.items())}
        d.drugs = {_text(i): _text(n) for i, n in facts("drug", 2)}
        for dr, system, code in facts("drug_code", 3):
            d.drug_codes[(CODE_SYSTEMS.get(_text(system), _text(system)), _text(code))] = _text(dr)
        for p, system, value in facts("payer_id", 3):
            d.payer_ids[(_text(system), _text(value))] = p.name
        d.icd10 = sorted((_text(p), _text(v)) for p, v in facts("icd10_prefix", 2))
        loinc = {f.name: _text(c) for f, c in facts("loinc", 2)}
        for f, u, factor in facts("unit", 3):
            if f.name in loinc:
                d.observations.setdefault(f.name, (loinc[f.name], {}))[1][_text(u)] = float(_text(factor))
        return d

    # ------------------------------------------------------------ what the rest reads
    @property
    def case_facts(self) -> list[str]:
        """The facts a case's `facts` object may carry, in declaration order (drug and request aside)."""
        return [f for f, fd in self.facts.items() if not fd.always_known]

    @property
    def requests(self) -> tuple[str, ...]:
        return self.facts["request"].values if "request" in self.facts else ()

    @property
    def default_drug(self) -> str:
        fd = self.facts.get("drug")
        return (fd.default if fd is not None and fd.default else None) or next(iter(self.drugs), "")

    @property
    def default_request(self) -> str:
        fd = self.facts.get("request")
        return (fd.default if fd is not None and fd.default else None) or (self.requests[0] if self.requests else "")

    def plan_label(self, plan: str) -> str:
        return self.plan_labels.get(plan, plan)

    def key(self) -> tuple:
        """What the types built from these declarations depend on (solver/case/models.py caches by it);
        computed once (a Declared is not changed after it is read)."""
        got = self.__dict__.get("_key")
        if got is None:
            got = self.__dict__["_key"] = self._make_key()
        return got

    def _make_key(self) -> tuple:
        return tuple((f.name, f.kind, f.values, f.low, f.high, f.low_open, f.default, f.always_known)
                     for f in self.facts.values()) + (tuple(self.plans), tuple(self.drugs))


class Choices:
    """argparse `choices` read from the rule base in use (plans, drugs or requests), when first
    asked for: a command that takes no such option never grounds the rule base for it, and a plan
    added as a file is a choice with no code changed (shared/spec/RULES.md)."""

    def __init__(self, what: str):
        self.what = what
        self._values: Optional[tuple] = None

    def values(self) -> tuple:
        if self._values is None:
            d = of()
            self._values = {"plans": tuple(d.plans), "drugs": tuple(d.drugs), "requests": d.requests}[self.what]
        return self._values

    def __contains__(self, value) -> bool:
        return value in self.values()

    def __iter__(self):
        return iter(self.values())

    def __len__(self) -> int:
        return len(self.values())


def check_declarations(ctl: clingo.Control, folder: str) -> None:
    """RULES.md's bad rule bases the ground program shows and error/2 cannot: a fact declared
    twice differently, two plans with one id (two names or two documents), and the facts every
    case carries (drug, request) undeclared.  Each named with the files that declare it."""
    from solver.rules.loading import RuleBaseError

    def facts(name: str, arity: int):
        for atom in ctl.symbolic_atoms.by_signature(name, arity):
            if atom.is_fact:
                yield atom.symbol.arguments

    kinds: dict[str, set] = {}
    for f, k in facts("fact", 2):
        kinds.setdefault(f.name if f.type == SymbolType.Function else str(f), set()).add(str(k))
    for name in ("drug", "request"):
        if name not in kinds:
            raise RuleBaseError(f"the rule base in {folder} does not declare the fact {name} "
                                f"(fact({name}, enum), in facts.lp)")
    for name, got in sorted(kinds.items()):
        if len(got) > 1:
            raise RuleBaseError(f"the rule base in {folder}: fact {name} is declared twice differently "
                                f"({', '.join(sorted(got))}): " + _declared_in(folder, "fact", 2, name))
    for pred, arity in (("plan", 2), ("policy_document", 5)):
        seen: dict[str, int] = {}
        for args in facts(pred, arity):
            seen[str(args[0])] = seen.get(str(args[0]), 0) + 1
        for plan, n in sorted(seen.items()):
            if n > 1:
                raise RuleBaseError(f"the rule base in {folder}: two plans with the id {plan} "
                                    f"({pred}/{arity} twice): " + _declared_in(folder, pred, arity, plan))


def _declared_in(folder: str, pred: str, arity: int, first: str) -> str:
    """Where `pred(first, ...)` is declared: each rule file grounded alone (an error's path,
    so its cost does not matter), as `file: atom` joined by '; '."""
    from solver.rules.files import lp_files
    from solver.rules.loading import loading

    out = []
    for path in lp_files(folder):
        ctl = clingo.Control(["--warn=none"], logger=lambda code, msg: None)
        try:
            with loading(folder):
                ctl.load(path)
                ctl.ground([("base", [])])
        except RuntimeError:
            continue
        for atom in ctl.symbolic_atoms.by_signature(pred, arity):
            if str(atom.symbol.arguments[0]) == first:
                out.append(f"{os.path.basename(path)}: {atom.symbol}")
    return "; ".join(out) or "(in rules, not as facts)"


def check(ctl: clingo.Control, folder: str) -> None:
    """RuleBaseError, in one line, when the grounded rule base's declarations are bad
    (check_declarations), it breaks one of its own checks (vocabulary.lp's error/2: each named
    with the files that mention it) or a plan's document is not found beside the rules or among
    the installed ones (RULES.md)."""
    from solver.rules.loading import RuleBaseError
    from solver.rules.files import lp_files
    from solver.base.paths import POLICIES_DIR, find_document

    check_declarations(ctl, folder)
    found = sorted((_text(m), n) for m, n in (a.symbol.arguments for a in ctl.symbolic_atoms.by_signature("error", 2)
                                            if a.is_fact))
    errors = [f"{m}: {n}{_files(str(n), folder, lp_files)}" for m, n in found]
    for atom in ctl.symbolic_atoms.by_signature("policy_document", 5):
        plan, name = atom.symbol.arguments[0], _text(atom.symbol.arguments[4])
        if atom.is_fact and not os.path.isfile(find_document(name, folder)):
            errors.append(f"the document of plan {plan} ({name}) is not in {os.path.join(folder, 'policies')}, "
                          f"{folder} or {POLICIES_DIR}{_files(str(plan), folder, lp_files)}")
    if errors:
        from solver.rules.files import SAY_ERRORS

        more = f" (and {len(errors) - SAY_ERRORS} more)" if len(errors) > SAY_ERRORS else ""
        raise RuleBaseError(f"the rule base in {folder} fails its checks: " + "; ".join(errors[:SAY_ERRORS]) + more)


def _files(ident: str, folder: str, lp_files) -> str:
    """' (in a.lp, b.lp)': the rule files that name `ident` (a message's pointer; '' when none)."""
    import re

    if not re.fullmatch(r"[a-z_][A-Za-z0-9_]*", ident):
        return ""
    texts = {}
    for path in lp_files(folder):
        try:
            with open(path, encoding="utf-8") as fh:
                texts[os.path.basename(path)] = fh.read()
        except (OSError, UnicodeDecodeError):
            continue
    # the files that declare it (fact(F, ..), plan(P, ..), ...), else every file that names it
    declared_as = re.compile(rf"\b(?:fact|plan|drug|pathway|criterion|note)\(\s*\"?{re.escape(ident)}\"?\s*,")
    word = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(ident)}(?![A-Za-z0-9_])")
    names = [n for n, t in texts.items() if declared_as.search(t)] or [n for n, t in texts.items() if word.search(t)]
    return f" (in {', '.join(names)})" if names else ""


_CACHE: dict[tuple[str, str], Declared] = {}
_SEEN: dict[str, tuple] = {}          # folder -> (its stamp, the files read, its Declared, when looked at)
FRESH = 1.0                           # seconds of()'s answer for a folder stands without looking at its files


def of(logic_dir=None) -> Declared:
    """The declarations of the rule base in `logic_dir` (default: the one in use), read once per
    folder and content."""
    from solver.rules.files import REQUIRED_FILES, rule_files, version_of
    from solver.rules.loading import RuleBaseError
    from solver.rules.loading import loading
    from solver.base.paths import in_use

    folder = in_use(logic_dir)
    seen = _SEEN.get(folder)
    if seen is not None:
        now = time.monotonic()
        if now - seen[3] < FRESH:
            return seen[2]                # looked at less than FRESH seconds ago
        if seen[0] == _stamp(folder, seen[1]):
            _SEEN[folder] = seen[:3] + (now,)
            return seen[2]                # no file it read, and no file of the folder, changed since
    if not os.path.isdir(folder):
        raise RuleBaseError(f"{folder}: not a folder")
    read = rule_files(folder)             # every byte clingo reads, checked (no #script, UTF-8, size, includes)
    version = version_of(read)
    paths = [path for path, _, _ in read]
    hit = _CACHE.get((folder, version))
    if hit is not None:
        _SEEN[folder] = (_stamp(folder, paths), paths, hit, time.monotonic())
        return hit
    files = [path for path, _, own in read if own]
    if not files:
        raise RuleBaseError(f"no .lp files in {folder}")
    for name, holds in REQUIRED_FILES:
        if not os.path.isfile(os.path.join(folder, name)):
            raise RuleBaseError(f"{folder} has no {name}: every rule base holds one ({holds})")
    messages: list[str] = []
    ctl = clingo.Control(["--warn=none"], logger=lambda code, msg: messages.append(msg.strip()), message_limit=5)
    try:
        with loading(folder):             # the command line's time and memory limits, a clean stop
            for path in files:
                ctl.load(path)
            ctl.ground([("base", [])])
    except RuntimeError as err:
        said = " | ".join(m.replace("\n", " ") for m in messages) or str(err)
        raise RuleBaseError(f"the rule base in {folder} does not load: {said}") from None
    check(ctl, folder)
    d = Declared.read(ctl)
    _CACHE[(folder, version)] = d
    _SEEN[folder] = (_stamp(folder, paths), paths, d, time.monotonic())
    return d


def _stamp(folder: str, paths: list) -> Optional[tuple]:
    """What would show a change to a rule base without reading it: the folder's names and each
    file's size and modification time (a file rewritten within one clock tick with the same size
    is the one change it misses; a new process reads the files afresh)."""
    try:
        names = tuple(sorted(n for n in os.listdir(folder) if n.endswith(".lp")))
        return names, tuple((st.st_size, st.st_mtime_ns) for st in map(os.stat, paths))
    except OSError:
        return None
