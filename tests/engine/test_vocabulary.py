"""The shared vocabulary (logic/vocabulary.lp) tested directly with clingo.

Each test grounds the real vocabulary and fact declarations with a tiny plan
written in that vocabulary, sets case facts through solve assumptions (as the
bridge does), and reads the three-valued status the vocabulary derives.
"""

from __future__ import annotations

from pathlib import Path

import clingo
import pytest

LOGIC = Path(__file__).resolve().parents[2] / "logic"

TOY_PLAN = """
plan(toy, "Toy").  covers(toy, "inotuzumab_ozogamicin").  policy_document(toy, "Toy", "toy", none, "toy.txt").
pathway(p, toy, approved).
for_drug(p, "inotuzumab_ozogamicin").  for_request(p, "initial").
criterion(c_set, p).   in_set(c_set, ph_status, "negative").
criterion(c_min, p).   at_least(c_min, age_years, 18).
criterion(c_max, p).   at_most(c_max, planned_cycles, 6).
criterion(c_below, p). below(c_below, months_since_initial_authorization, 6).
criterion(c_doc, p).   documented(c_doc, weight_kg).
criterion(c_any, p).   any_of(c_any, c_any_a).  in_set(c_any_a, regimen, "single_agent").
                       any_of(c_any, c_any_b).  in_set(c_any_b, regimen, "tki_combination").
                                                in_set(c_any_b, ph_status, "positive").
criterion(c_when, p).  when_then(c_when, c_if, c_then).
                       in_set(c_if, with_rituximab, "true").
                       below(c_then, age_years, 65).
"""
CRITERIA = ["c_set", "c_min", "c_max", "c_below", "c_doc", "c_any", "c_when"]
for _c in CRITERIA:
    TOY_PLAN += f'source({_c}, "toy").  text({_c}, "toy").\n'


class Toy:
    """One grounding of vocabulary + facts + the toy plan, reused per query."""

    def __init__(self) -> None:
        self.ctl = clingo.Control(["--heuristic=Domain", "--enum-mode=domRec", "0"])
        self.ctl.load(str(LOGIC / "facts.lp"))
        self.ctl.load(str(LOGIC / "vocabulary.lp"))
        self.ctl.add("base", [], TOY_PLAN + "#show criterion_status/2. #show pathway_status/2."
                     "#show decision/2. #show error/2. #show need/2.")
        self.ctl.ground([("base", []), ("decide", [])])
        self.externals = [a.symbol for a in self.ctl.symbolic_atoms if a.is_external]
        for sym in self.externals:
            self.ctl.assign_external(sym, None)
        self.domain = {}
        for atom in self.ctl.symbolic_atoms.by_signature("domain", 2):
            fact, value = atom.symbol.arguments
            self.domain.setdefault(fact.name, []).append(value)

    def value(self, fact: str, x) -> clingo.Symbol:
        """The domain value of `fact` holding x: a string, or the interval of a number."""
        for d in self.domain[fact]:
            if d.type == clingo.SymbolType.String:
                if d.string == x:
                    return d
            else:
                lo, hi = d.arguments
                if (lo.type == clingo.SymbolType.Infimum or lo.number <= x) and (
                    hi.type == clingo.SymbolType.Supremum or x < hi.number
                ):
                    return d
        raise AssertionError(f"{x!r} not in the domain of {fact}")

    def models(self, search: bool = True, **facts):
        facts = {"drug": "inotuzumab_ozogamicin", "request": "initial", **facts}
        chosen = {clingo.Function("val", [clingo.Function(f), self.value(f, x)]) for f, x in facts.items()}
        assumptions = []
        for sym in self.externals:
            if sym.name == "search_off":
                assumptions.append((sym, not search))
            else:
                assumptions.append((sym, sym.name == "asked" or sym in chosen))
        out = []
        with self.ctl.solve(assumptions=assumptions, yield_=True) as handle:
            for model in handle:
                out.append(set(model.symbols(shown=True)))
        return out

    def status(self, **facts) -> dict[str, str]:
        first = self.models(search=False, **facts)[0]
        return {s.arguments[0].name: s.arguments[1].name for s in first if s.name == "criterion_status"}


@pytest.fixture(scope="module")
def toy() -> Toy:
    return Toy()


def test_rule_base_checks_pass_on_the_toy_plan(toy):
    assert not [s for s in toy.models()[0] if s.name == "error"]


@pytest.mark.parametrize(
    "crit, met, not_met",
    [
        ("c_set", {"ph_status": "negative"}, {"ph_status": "positive"}),
        ("c_min", {"age_years": 18}, {"age_years": 17.99}),
        ("c_max", {"planned_cycles": 6}, {"planned_cycles": 7}),
        ("c_below", {"months_since_initial_authorization": 5.9}, {"months_since_initial_authorization": 6}),
        ("c_doc", {"weight_kg": 70.5}, None),
    ],
)
def test_each_simple_kind_is_met_not_met_and_unknown(toy, crit, met, not_met):
    assert toy.status(**met)[crit] == "met"
    if not_met is not None:
        assert toy.status(**not_met)[crit] == "not_met"
    assert toy.status()[crit] == "unknown"


@pytest.mark.parametrize(
    "facts, expected",
    [
        ({"regimen": "single_agent"}, "met"),                                   # one option met
        ({"regimen": "tki_combination", "ph_status": "positive"}, "met"),
        ({"regimen": "tki_combination", "ph_status": "negative"}, "not_met"),   # every option broken
        ({"regimen": "other_combination"}, "not_met"),
        ({"regimen": "tki_combination"}, "unknown"),                            # an option still open
        ({"ph_status": "negative"}, "unknown"),
        ({}, "unknown"),
    ],
)
def test_any_of_is_kleene_or(toy, facts, expected):
    assert toy.status(**facts)["c_any"] == expected


@pytest.mark.parametrize(
    "facts, expected",
    [
        ({"with_rituximab": "false"}, "met"),                          # condition false
        ({"with_rituximab": "true", "age_years": 64}, "met"),
        ({"with_rituximab": "true", "age_years": 65}, "not_met"),
        ({"with_rituximab": "true"}, "unknown"),
        ({"age_years": 70}, "unknown"),                                # A unknown, B not met
        ({"age_years": 40}, "met"),                                    # A unknown but B met
        ({}, "unknown"),
    ],
)
def test_when_then_is_kleene_implication(toy, facts, expected):
    assert toy.status(**facts)["c_when"] == expected


def test_a_broken_criterion_denies_and_an_open_pathway_needs_info(toy):
    def decision(facts):
        (model,) = toy.models(search=False, **facts)
        return {s.arguments[1].name for s in model if s.name == "decision"}

    assert decision({"ph_status": "positive"}) == {"denied"}
    assert decision({"ph_status": "negative"}) == {"needs_info"}


def test_an_open_pathway_with_contradicting_tests_has_no_completion(toy):
    # regimen tki needs ph positive (c_any), c_set needs ph negative: open, but
    # no value of ph_status completes it, so the search has no model.
    assert toy.status(regimen="tki_combination")["c_any"] == "unknown"
    assert toy.models(regimen="tki_combination") == []


def test_missing_values_come_from_the_tests(toy):
    # With everything else met, only ph_status is missing; it must be negative.
    facts = dict(age_years=30, planned_cycles=4, months_since_initial_authorization=1,
                 weight_kg=70, regimen="single_agent", with_rituximab="false")
    models = toy.models(**facts)
    needs = {(s.arguments[0].name, s.arguments[1].string) for m in models for s in m if s.name == "need"}
    assert needs == {("ph_status", "negative")}
