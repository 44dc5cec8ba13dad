"""The fast path for a case that is valid: msgspec instead of pydantic.

A one-shot `pa-solver decide` spent more time importing pydantic (about 120
ms, see bench/bench_startup.py) than reading, grounding and solving together.
msgspec imports in a few milliseconds.  The structs, built from the rule
base's declarations as the pydantic models are, mirror `models.Facts` and
`models.Case` field for field (a test compares them), and
are *narrower*: whatever they accept, pydantic accepts, with the same values
(a property test checks that on random cases).  Whatever they refuse, or
anything they are unsure of (a code not already in upper case, a duplicate
plan, a number that is not finite), goes to pydantic, which decides and names
the field.  So the fast path changes how fast a valid case is read, never
what is accepted, refused, or said.

    fast = fastcase.parse(obj)          # a FastCase, or None: use models.parse_case(obj)
    fast = fastcase.parse(obj, fastcase.types(declared))     # another rule base's
"""

from __future__ import annotations

import math
from typing import Annotated, Literal, Optional

import msgspec
from msgspec import Meta

from solver.base.contract import ICD10_AFTER, ICD10_CODES, icd10
from solver.text.jsontext import not_text_at


def _one_of(values: tuple):
    return Literal[values] if values else Literal[""]


def fact_type(fd):
    """The msgspec type of one declared fact: models.fact_type's, constraint for constraint."""
    if fd.kind == "bool":
        return Optional[bool]
    if fd.kind == "enum":
        return Optional[_one_of(fd.values)]
    bounds: dict = {}
    if fd.low is not None:
        bounds["gt" if fd.low_open else "ge"] = fd.low
    if fd.high is not None:
        bounds["le"] = fd.high
    inner = int if fd.kind == "integer" else float
    return Optional[Annotated[inner, Meta(**bounds)]] if bounds else Optional[inner]


class FastTypes:
    """The msgspec structs of one rule base's case, field for field its pydantic models
    (solver/case/models.py; a test compares them), built once per rule base."""

    def __init__(self, d):
        fields = []
        for name in d.case_facts:
            fields.append((name, fact_type(d.facts[name]), None))
            if name == ICD10_AFTER:
                fields.append((ICD10_CODES, Optional[list[str]], None))
        if all(f[0] != ICD10_CODES for f in fields):
            fields.append((ICD10_CODES, Optional[list[str]], None))
        self.FastFacts = msgspec.defstruct("FastFacts", fields, forbid_unknown_fields=True, frozen=True,
                                           module=__name__)
        self.FastCase = msgspec.defstruct("FastCase", [
            ("case_id", Optional[str], None),
            ("drug", _one_of(tuple(d.drugs)), d.default_drug),
            ("request", _one_of(d.requests), d.default_request),
            ("plans", Optional[list[_one_of(tuple(d.plans))]], None),
            ("facts", self.FastFacts, msgspec.field(default_factory=self.FastFacts)),
        ], forbid_unknown_fields=True, frozen=True, module=__name__)
        self.floats = tuple(n for n in d.case_facts if d.facts[n].kind == "number")


_TYPES: dict = {}


def types(d=None) -> FastTypes:
    """The fast path's structs for the rule base `d` declares (default: the rule base in use)."""
    if d is None:
        from solver.rules import declared

        d = declared.of()
    key = d.key()
    t = _TYPES.get(key)
    if t is None:
        t = _TYPES[key] = FastTypes(d)
    return t


def __getattr__(name: str):
    """`fastcase.FastCase` and `fastcase.FastFacts`: the rule base in use's."""
    if name in ("FastCase", "FastFacts"):
        return getattr(types(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def parse(obj, fast_types: Optional[FastTypes] = None):
    """The case in a decoded JSON object when it is plainly valid, with the
    values pydantic would give it; None when pydantic must decide.
    `fast_types`: the rule base's structs (default: the rule base in use)."""
    if type(obj) is not dict:
        return None
    t = fast_types or types()
    try:
        case = msgspec.convert(obj, t.FastCase, strict=True)
    except (msgspec.ValidationError, TypeError, ValueError, RecursionError):
        return None
    if case.case_id is not None and not_text_at(case.case_id) is not None:
        return None                        # a lone surrogate is no text: pydantic names it
    facts = case.facts
    for name in t.floats:                   # pydantic refuses infinity and NaN everywhere
        v = getattr(facts, name)
        if v is not None and not math.isfinite(v):
            return None
    changes: dict = {}
    given = getattr(facts, ICD10_CODES)
    if given is not None:
        codes = []
        for code in given:
            norm = icd10(code)
            if norm is None:
                return None
            codes.append(norm)
        changes["facts"] = msgspec.structs.replace(facts, **{ICD10_CODES: codes})
    if case.plans is not None:
        if len(set(case.plans)) != len(case.plans):
            return None
        changes["plans"] = sorted(case.plans)
    return msgspec.structs.replace(case, **changes) if changes else case
