"""The changes that flip a decision (`explain`, CASE.md "changes"): per plan, every minimal set of at
most N fact changes that gives the plan another decision, from one enumerating solve of the `explain`
grounding, each set's values covered exactly by disjoint boxes (solver/engine/domains.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import clingo

from solver.engine.domains import boxes
from solver.engine.rulebase import shown_handles, solved

if TYPE_CHECKING:
    from solver.case.models import Case


class Changes:
    """The part of `Solver` that finds the changes.  It reads the solver's `explainer` grounding,
    `assumptions` and `value`."""

    def changes(self, case: Case, derived: dict, max_changes: int) -> dict[str, list[dict]]:
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
            for box in boxes(fds, found[(plan, dec, facts)]):
                entry = {"decision": dec, "facts": [
                    {"fact": fd.name, "from": self.value(case, derived, fd.name), **fd.present(vals)}
                    for fd, vals in zip(fds, box)]}
                # CASE.md order: size, decision, fact names; then the values' domain order.
                key = (len(facts), dec, facts, tuple(min(vals) for vals in box))
                out.setdefault(plan, []).append((key, entry))
        return {plan: [e for _, e in sorted(entries, key=lambda ke: ke[0])] for plan, entries in out.items()}
