"""Where two plans part ways: every subset-minimal profile under which they
decide differently (the `diff` part of logic/vocabulary.lp).

    diff(solver, "bcbs_fep", "cvs_caremark", drug="inotuzumab_ozogamicin", request="initial")

A profile is a set of known facts, each with values or a range (every
combination of the listed values gives the pair of decisions); every other
fact is unknown.  One enumerating solve finds them all: clingo guesses the
profile and the pair, the rules judge both plans on it, and the domain
heuristic with domRec makes every model subset-minimal, so dropping any fact
of a listed profile loses its pair of decisions.  Python groups the models and
writes boxes of values; it does not loop over facts and values.
"""

from __future__ import annotations

import os
import re
from typing import Optional

import clingo

from solver.engine.rulebase import RuleBase, shown_handles, solved
from solver.rules.loading import RuleBaseError
from solver.engine.solver import Solver
from solver.engine.domains import boxes
from solver.fhir.inputs import case_from

DECISION_ORDER = ("approved", "case_review", "needs_info", "denied", "no_policy")


def diff_base(solver) -> RuleBase:
    """The rule base grounded with the `diff` part (one per solver, built on first use)."""
    rb = solver.differ
    if rb is None:
        rb = solver.differ = RuleBase(solver.logic_dir, part="diff")
    return rb


def _differences(solver, rb: RuleBase, a: str, b: str, drug: str, request: str) -> list[dict]:
    """Every minimal profile under which plans a < b (ids in `rb`) decide differently."""
    for p in (a, b):
        if p not in rb.plans:
            raise ValueError(f"unknown plan {p!r}")
    # the profile starts as a case of only the drug and the request, asked of the two plans
    empty, _ = case_from({"drug": drug, "request": request}, declared=solver)
    asked = {a, b}
    own = set(rb.asked.values())
    lits = [lit for lit in solver.assumptions(empty, {}, rb) if abs(lit) not in own]
    lits += [lit if pl in asked else -lit for pl, lit in rb.asked.items()]
    table = rb.shown_by_handle
    found: dict[tuple, set] = {}                  # (dA, dB, facts) -> value combinations

    def on_model(m: clingo.Model) -> None:
        pair, sets = None, []
        for h in shown_handles(m):
            kind, x, y = table[h]
            if kind == "dpair":
                pair = (x, y)
            elif kind == "dset":
                sets.append((x, y))
        sets.sort()
        found.setdefault((*pair, tuple(f for f, _ in sets)), set()).add(tuple(d for _, d in sets))

    solved(rb.ctl.solve(assumptions=lits, on_model=on_model))
    entries = []
    for (da, db, facts), combos in found.items():
        fds = [rb.facts[f] for f in facts]
        for box in boxes(fds, combos):
            entry = {"decisions": {a: da, b: db},
                     "facts": [{"fact": fd.name, **fd.present(vals)} for fd, vals in zip(fds, box)]}
            key = (len(facts), DECISION_ORDER.index(da), DECISION_ORDER.index(db), facts,
                   tuple(min(v) for v in box))
            entries.append((key, entry))
    entries.sort(key=lambda ke: ke[0])
    return [e for _, e in entries]


def diff(solver, plan_a: str, plan_b: str, drug: Optional[str] = None, request: Optional[str] = None) -> dict:
    """The differences of two plans, in the shape of `pa-solver diff --json` (drug and request:
    default, the rule base's defaults)."""
    drug = drug or solver.rules.declared.default_drug
    request = request or solver.rules.declared.default_request
    a, b = sorted((plan_a, plan_b))
    if a == b:
        raise ValueError("diff needs two different plans")
    rb = diff_base(solver)
    return {"plans": [a, b], "drug": drug, "request": request, "rules_version": rb.version,
            "differences": _differences(solver, rb, a, b, drug, request)}


class Against:
    """Today's rules with another version of one plan beside them (solver/analysis/against.py):
    the `diff` grounding, and a solver that decides a case by both versions."""

    def __init__(self, solver, plan: str, other_dir, label: Optional[str] = None):
        from solver.analysis.against import OtherVersion

        if plan not in solver.rules.plans:
            raise ValueError(f"unknown plan {plan!r}")
        self.plan = plan
        self.other = OtherVersion(solver.logic_dir, plan, other_dir, label)
        try:
            self.diff_rules = RuleBase(solver.logic_dir, part="diff", extra=self.other.statements)
        except RuleBaseError as err:            # its ids as the user wrote them
            raise RuleBaseError(re.sub(r"\b(\w+)__against\b", rf"\1@{self.other.label}", str(err))) from None
        self._solver: Optional[Solver] = None

    @property
    def solver(self) -> Solver:
        """Decides a case by today's plans and the other version (plan id `<plan>__against`)."""
        if self._solver is None:
            self._solver = Solver(self.diff_rules.logic_dir,
                                  rules=RuleBase(self.diff_rules.logic_dir, extra=self.other.statements))
        return self._solver

    def diff(self, solver, drug: Optional[str] = None, request: Optional[str] = None) -> dict:
        """The differences of today's plan and its other version, in the shape of `diff`:
        the other version is named `<plan>@<label>` (label: the folder's name)."""
        drug = drug or solver.rules.declared.default_drug
        request = request or solver.rules.declared.default_request
        old, shown = self.other.plan, self.other.display
        diffs = _differences(solver, self.diff_rules, self.plan, old, drug, request)
        for d in diffs:
            d["decisions"] = {self.plan: d["decisions"][self.plan], shown: d["decisions"][old]}
        return {"plans": [self.plan, shown], "drug": drug, "request": request,
                "rules_version": self.diff_rules.version,
                "against": {"folder": self.other.other_dir, "file": os.path.basename(self.other.path),
                            "rules_version": self.other.version},
                "differences": diffs}

    def display(self, name: str) -> str:
        """A plan or criterion id of the combined rules as the user knows it."""
        return self.other.original(name)


def diff_against(solver, plan: str, other_dir, drug: Optional[str] = None, request: Optional[str] = None,
                 label: Optional[str] = None) -> dict:
    """`pa-solver diff PLAN --against DIR`: today's PLAN against the same plan in DIR."""
    return Against(solver, plan, other_dir, label).diff(solver, drug, request)
