"""A fact's domain as the grounding holds it (declared values, or number intervals), and how a set of
its values is said: in the contract's words (">= 18 and < 65") and in JSON (`values` or one `range`);
`boxes` covers value combinations exactly by disjoint boxes (the changes of explain)."""

from __future__ import annotations

import bisect
from typing import Iterable, Optional

import clingo
from clingo import SymbolType

from solver.rules.loading import RuleBaseError


def bound(sym: clingo.Symbol) -> Optional[int]:
    return sym.number if sym.type == SymbolType.Number else None


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
            self.values.sort(key=lambda s: (bound(s.arguments[0]) is not None, bound(s.arguments[0]) or 0))
            self.cuts = [bound(s.arguments[0]) for s in self.values[1:]]
            # each interval's bounds as Python numbers: reading a symbol is a call into clingo
            self._lo = [bound(s.arguments[0]) for s in self.values]
            self._hi = [bound(s.arguments[1]) for s in self.values]
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
        for run in runs(self, idx):
            lo, hi = bound(self.values[run[0]].arguments[0]), bound(self.values[run[-1]].arguments[1])
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


def runs(fd: FactDomain, values) -> list[list[int]]:
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


def boxes(domains: list[FactDomain], combos: set[tuple]) -> list[tuple]:
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
        for run in runs(domains[0], firsts):
            for tail in boxes(domains[1:], set(tails)):
                out.append((run, *tail))
    return out
