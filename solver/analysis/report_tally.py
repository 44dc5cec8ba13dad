"""Counting result lines: a `Tally` per plan of decisions, blocking criteria
(`BLOCKING_RULE`, solver/analysis/report_out.py), single-fact flips and
smallest missing sets, and the errors by kind; `merge` adds another tally.
Lines of the wrong shape are errors named by `fault`
(solver/analysis/report_shape.py)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Iterator

from solver.analysis.report_shape import BOUND, DECISION, fault, known_plans
from solver.case.blocking import blocking

KIND_LIMIT = 120             # characters of an error kind (the field at fault)
_BAD = (KeyError, TypeError, ValueError, AttributeError, IndexError)   # a line of the wrong shape


@dataclass
class Tally:
    """Counts over results, per plan; `merge` adds another tally.

    decisions[plan][decision], not_met[plan][criterion], unknown[plan][criterion]
    (blocking criteria, see report_out.BLOCKING_RULE),
    flips[plan][(fact, decision, "values" | "range", *values or (low, high))],
    missing[plan][(pathway, facts)]: numbers of cases."""

    cases: int = 0
    explained: int = 0                                    # results that carried `changes`
    errors: Counter = field(default_factory=Counter)      # message kind (the field) -> cases
    decisions: dict = field(default_factory=dict)
    not_met: dict = field(default_factory=dict)
    unknown: dict = field(default_factory=dict)
    flips: dict = field(default_factory=dict)
    missing: dict = field(default_factory=dict)

    KINDS: ClassVar[tuple] = ("decisions", "not_met", "unknown", "flips", "missing")

    def add_many(self, results: Iterable[dict]) -> None:
        """Count result lines (parsed, each a dict with `results`).  The hot
        loop of a report counts them together; if one has the wrong shape,
        they are counted again one by one and that one is an error named by
        its field, so a bad line never loses the others."""
        if not isinstance(results, (list, tuple)):
            results = list(results)
        lists: dict = {}
        try:
            cases, explained = _gather(results, lists)
        except _BAD:
            for result in results:
                one: dict = {}
                try:
                    cases, explained = _gather((result,), one)
                except _BAD:
                    self.error(fault(result) or "results: not a result line the report can read")
                    continue
                self._add(one, cases, explained)
            return
        self._add(lists, cases, explained)

    def _add(self, lists: dict, cases: int, explained: int) -> None:
        self.cases += cases
        self.explained += explained
        for plan, mine in lists.items():
            for kind, keys in zip(self.KINDS, mine):
                if not keys:
                    continue
                counter = getattr(self, kind).get(plan)
                if counter is None:
                    counter = getattr(self, kind)[plan] = Counter()
                counter.update(keys)

    def error(self, message: str) -> None:
        """Count a case that could not be read, by the kind of its message
        (the text before the first colon: the field at fault)."""
        self.cases += 1
        self.errors[_kind(message)] += 1

    def merge(self, other: "Tally") -> "Tally":
        self.cases += other.cases
        self.explained += other.explained
        self.errors.update(other.errors)
        for kind in self.KINDS:
            mine = getattr(self, kind)
            for plan, counter in getattr(other, kind).items():
                mine.setdefault(plan, Counter()).update(counter)
        return self


def _kind(message: Any) -> str:
    kind = str(message).split(":", 1)[0].strip() or "(case)"
    if len(kind) > KIND_LIMIT:
        kind = kind[:KIND_LIMIT - 1] + "…"
    try:
        kind.encode("utf-8")
    except UnicodeEncodeError:                  # a lone surrogate: shown escaped, never written raw
        kind = kind.encode("utf-8", "backslashreplace").decode("utf-8")
    return kind


# ------------------------------------------------------------------ result lines

def _by_status(pws: list) -> Iterator[tuple]:
    """(outcome, not met ids, unknown ids) per pathway of a full result line."""
    for pw in pws:
        crits = pw["criteria"]
        if type(crits) is not list:
            raise TypeError("criteria")
        nm, un = [], []
        for c in crits:
            status = c["status"]
            if status == "not_met":
                nm.append(c["id"])
            elif status == "unknown":
                un.append(c["id"])
            elif status != "met":
                raise ValueError("status")
        yield pw["outcome"], nm, un


def _gather(results: Iterable[dict], lists: dict) -> tuple[int, int]:
    """Append the keys of `results` to lists[plan] = (decisions, not met,
    unknown, flips, missing sets); (cases, explained).  Raises one of `_BAD`
    on a line of the wrong shape, with part of it appended: the caller drops
    `lists`.  Only what is counted is read, and checked: `fault`'s checks
    (solver/analysis/report_shape.py) read the same fields (a line is
    counted if and only if `fault` finds nothing)."""
    cases = explained = 0
    for result in results:
        rs = result["results"]
        if type(rs) is not list:
            raise TypeError("results")
        cases += 1
        was_explained = False
        for r in rs:
            plan = r["plan"]
            mine = lists.get(plan)
            if mine is None:
                if plan not in known_plans():
                    raise ValueError("plan")
                mine = lists[plan] = ([], [], [], [], [])
            dec = r["decision"]
            if dec not in DECISION:
                raise ValueError("decision")
            mine[0].append(dec)
            pws = r["pathways"]
            if type(pws) is not list:
                raise TypeError("pathways")
            if dec != "approved":
                b = r.get("blocking")
                if b is not None:                    # a lean line: the blocking criteria, found by batch
                    bnm, bun = b["not_met"], b["unknown"]
                    if type(bnm) is not list or type(bun) is not list:
                        raise TypeError("blocking")
                elif pws:                            # a full line: criteria with their status
                    bnm, bun = blocking(_by_status(pws))
                else:
                    bnm = bun = ()
                if bnm:
                    "".join(bnm)                     # every id a string, or TypeError
                    mine[1].extend(set(bnm))
                if bun:
                    "".join(bun)
                    mine[2].extend(set(bun))
            ms = r["missing"]
            if type(ms) is not list:
                raise TypeError("missing")
            if len(ms) == 1:
                m = ms[0]
                fs, pathway = m["facts"], m["pathway"]
                if type(fs) is not list or not fs or type(pathway) is not str:
                    raise TypeError("missing")
                names = tuple([f["fact"] for f in fs])
                "".join(names)
                mine[4].append((pathway, names))
            elif ms:
                smallest = None
                for m in ms:
                    fs = m["facts"]
                    if type(fs) is not list or not fs:
                        raise TypeError("facts")
                    if smallest is None or len(fs) < smallest:
                        smallest = len(fs)
                keys = {(m["pathway"], tuple([f["fact"] for f in m["facts"]])) for m in ms
                        if len(m["facts"]) == smallest}
                for pathway, names in keys:
                    if type(pathway) is not str:
                        raise TypeError("pathway")
                    "".join(names)
                mine[4].extend(keys)
            changes = r.get("changes")
            if changes is not None:
                if type(changes) is not list:
                    raise TypeError("changes")
                was_explained = True
                _gather_flips(changes, mine[3])
        explained += was_explained
    for mine in lists.values():
        if mine[3]:
            for key in set(mine[3]):                 # values that are lists or objects: TypeError
                if not _flip_ok(key):
                    raise ValueError("flip")
    return cases, explained


def _gather_flips(changes: list, flips: list) -> None:
    """Append to `flips` the key of each single-fact change of one result:
    one (fact, decision, values/range) per single-fact entry, distinct within
    a result.  Read without checks; the distinct keys of the bulk are checked
    by `_gather` (`_flip_ok`)."""
    for c in changes:
        fs = c["facts"]
        if len(fs) == 1:
            f = fs[0]
            v = f.get("values")
            if v is not None:
                if type(v) is not list:
                    raise TypeError("values")
                flips.append((f["fact"], c["decision"], "values", *v))
            else:
                rg = f["range"]          # bounds checked here: a set would take true for 1
                if type(rg) is not list or len(rg) != 2 or type(rg[0]) not in BOUND \
                        or type(rg[1]) not in BOUND:
                    raise TypeError("range")
                flips.append((f["fact"], c["decision"], "range", *rg))
        elif type(fs) is not list or not fs:
            raise TypeError("facts")


def _flip_ok(key: tuple) -> bool:
    """A flip key (fact, decision, "values", *values) or (fact, decision,
    "range", low, high) as a result line must give it."""
    if type(key[0]) is not str or key[1] not in DECISION:
        return False
    return len(key) > 3 if key[2] == "values" else len(key) == 5
