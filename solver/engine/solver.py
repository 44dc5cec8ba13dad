"""The bridge between typed cases and the ASP rule base.

One `Solver` grounds the rule base once.  Every case fact is an external atom `val(F, D)`; a case
becomes a list of solve assumptions (program literals, built from the typed model through clingo's
symbol API — never ASP text), and one solve per case gives, for every asked plan, the decision, each
pathway's and criterion's status, and — one model per set — every subset-minimal set of missing facts
(domain heuristic, `--enum-mode=domRec`).

Python here validates, translates, runs clingo and formats.  It does not evaluate criteria: statuses,
decisions and missing sets are the rule base's.  The parts of a `Solver`, one file each: the grounding
and its static data (rulebase.py), the result (result.py), the changes that flip a decision
(changes.py), what a decision rests on (rests_on.py).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Iterable, Optional

from solver.base.paths import in_use
from solver.engine.changes import Changes
from solver.engine.rests_on import REST_CACHE, Bounded, RestsOn
from solver.engine.result import Results, derive_diagnosis
from solver.engine.rulebase import MAX_CHANGES, RuleBase, shown_handles, solved
from solver.text.jsontext import dump_text

if TYPE_CHECKING:                     # the engine takes a models.Case or a fastcase.FastCase
    from solver.case.models import Case
    from solver.case.results import CaseResult


class Solver(RestsOn, Changes, Results):
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
        self.rests_cache = Bounded(REST_CACHE)
        self.needed_cache = Bounded(REST_CACHE)
        self._plan_facts_of: dict[str, list[str]] = {}
        self.differ: Optional[RuleBase] = None       # the `diff` part's grounding (solver/analysis/diff.py)

    @property
    def explainer(self) -> RuleBase:
        """The same rule files grounded with the `explain` show part (built on
        first use): the change search then reads only target/new atoms."""
        if self._explainer is None:
            self._explainer = RuleBase(self.logic_dir, part="explain")
        return self._explainer

    def groundings(self) -> list[RuleBase]:
        """The groundings built so far (the decide one, and explain's and rests_on's once used)."""
        return [rb for rb in (self.rules, self._explainer, self._rester, self._rests_checker, self.differ)
                if rb is not None]

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

    def solve(self, case: Case, max_changes: int = 0, lean: bool = False, why: bool = False) -> dict:
        """Decide a validated case; the result as JSON-ready data (CASE.md shape).
        With max_changes > 0 every result also carries `changes`: the minimal
        sets of at most that many fact changes that give the plan another
        decision (a second solve, on the same grounding).  `lean` drops the
        citations, texts and criteria, and gives per plan that did not approve
        its `blocking` criteria (not met / unknown ids, solver/case/blocking.py):
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
        result = self.result(case, derived, models, lean, known)
        if why:
            rests = self.rests_on(case, derived, [r["plan"] for r in result["results"]])
            every = len(self.rules.case_facts)         # the contract's facts (drug and request aside)
            for r in result["results"]:
                r["rests_on"] = rests[r["plan"]]
                r["rests_on_count"] = len(rests[r["plan"]])
                r["facts_count"] = every
        if max_changes:
            changes = self.changes(case, derived, max_changes)
            for r in result["results"]:
                r["changes"] = changes.get(r["plan"], [])
        return result

    def decide(self, case: Case, max_changes: int = 0) -> CaseResult:
        from solver.case.results import CaseResult

        return CaseResult.model_validate(self.solve(case, max_changes))

    def decide_json(self, case: Case, max_changes: int = 0, lean: bool = False) -> str:
        return dump_text(self.solve(case, max_changes, lean))


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
