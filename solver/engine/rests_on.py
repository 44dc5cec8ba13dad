"""What a decision rests on: per plan, a subset-minimal set of the case's facts on which its decision
rests (`rests_on`, `decide --why`), and the why line of a case (`why`, `batch --why`).  Two solves as a
rule (logic/vocabulary.lp, "What a decision rests on"): the `rests` part guesses every plan's set and
proves it sufficient by bounds; the `rests_check` part names, exactly, each fact of each set that is
needed.  Answers are kept per plan, keyed by the places of the plan's facts in their domains."""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Iterable, Optional

import clingo

from solver.engine.result import derive_diagnosis
from solver.engine.rulebase import RuleBase, shown_handles, solved
from solver.rules.loading import RuleBaseError

if TYPE_CHECKING:                     # a models.Case or a fastcase.FastCase
    from solver.case.models import Case

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



class RestsOn:
    """The part of `Solver` that finds what a decision rests on.  It reads the solver's decide
    grounding (`rules`), its folder (`logic_dir`), `assumptions`, `places`, `value` and
    `authorization`, and keeps its own two groundings, built on first use."""

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
        return {pl: [{"fact": f, "value": self.value(case, derived, f)} for f in kept]
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
            got = None if verify else self.rests_cache.get(keys[pl])
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
                    self.rests_cache.put(keys[pl], (s[pl], d[pl], p.get(pl)))
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
            needed, loose = self.needed(case, derived, pending, verify, known)
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
            rests = [{"fact": f, "value": self.value(case, derived, f)} for f in sets[plan]]
            results.append({
                "plan": plan, "drug": case.drug, "request": case.request, "decision": dec, "pathway": by,
                "authorization": (self.authorization(self.rules.pathways[by], case, derived)
                                  if dec == "approved" else None),
                "rests_on": rests, "rests_on_count": len(rests), "facts_count": every})
        return {"case_id": case.case_id, "rules_version": self.rules.version, "derived_facts": derived,
                "results": results}

    def needed(self, case: Case, derived: dict, sets: dict[str, list[str]], verify: bool = False,
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
                hit = self.needed_cache.get(k)
                if hit is not None:
                    needed[pl] = hit
        todo = {pl: kept for pl, kept in sets.items() if pl not in needed}
        loose: set = set()
        if todo:
            found, loose = self._check(case, derived, todo, verify)
            for pl, got in found.items():
                needed[pl] = frozenset(got)
                if not verify:
                    self.needed_cache.put(keys[pl], needed[pl])
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
