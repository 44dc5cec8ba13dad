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

import clingo

from .engine import RuleBase, _boxes, shown_handles
from .inputs import case_from

DECISION_ORDER = ("approved", "case_review", "needs_info", "denied", "no_policy")


def diff_base(solver) -> RuleBase:
    """The rule base grounded with the `diff` part (one per solver, built on first use)."""
    rb = getattr(solver, "_diff", None)
    if rb is None:
        rb = solver._diff = RuleBase(solver.logic_dir, part="diff")
    return rb


def diff(solver, plan_a: str, plan_b: str, drug: str = "inotuzumab_ozogamicin", request: str = "initial") -> dict:
    """The differences of two plans, in the shape of `pa-solver diff --json`."""
    a, b = sorted((plan_a, plan_b))
    if a == b:
        raise ValueError("diff needs two different plans")
    rb = diff_base(solver)
    for p in (a, b):
        if p not in rb.plans:
            raise ValueError(f"unknown plan {p!r}")
    # the profile starts as a case of only the drug and the request, asked of the two plans
    empty, _ = case_from({"drug": drug, "request": request, "plans": [a, b]})
    lits = solver.assumptions(empty, {}, rb)
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

    rb.ctl.solve(assumptions=lits, on_model=on_model)
    entries = []
    for (da, db, facts), combos in found.items():
        fds = [rb.facts[f] for f in facts]
        for box in _boxes(fds, combos):
            entry = {"decisions": {a: da, b: db},
                     "facts": [{"fact": fd.name, **fd.present(vals)} for fd, vals in zip(fds, box)]}
            key = (len(facts), DECISION_ORDER.index(da), DECISION_ORDER.index(db), facts,
                   tuple(min(v) for v in box))
            entries.append((key, entry))
    entries.sort(key=lambda ke: ke[0])
    return {"plans": [a, b], "drug": drug, "request": request, "rules_version": rb.version,
            "differences": [e for _, e in entries]}
