"""Typed models of the case contract (shared/spec/CASE.md), built from the rule base.

`Case` and `Facts` validate input: unknown keys, wrong types, out-of-range
numbers, NaN and unknown enum values are rejected, and `CaseError` names the
field.  Their fields are the facts the rule base declares (logic/facts.lp and
any plan file: kind, values, range; solver/rules/declared.py), so a fact added there
is a field here with no code changed.  `models.Case` is the rule base in use;
`models.types(declared)` gives another's.  The result models are what the
solver returns and what `--json` prints.
"""

from __future__ import annotations

import math
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from solver.base.contract import ICD10, ICD10_AFTER, ICD10_CODES, CaseError, icd10  # noqa: F401  (ICD10, CaseError: re-exported)
from solver.text.jsontext import not_text_at


# Integers and numbers are strict: a JSON `true` is not a number, `3.5` is not
# an integer, and NaN / infinity are refused.
_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)
Number = float


def _one_of(values: tuple):
    return Literal[values] if values else Literal[""]      # Literal[()] is no type; an empty domain takes nothing


class _FactsBase(BaseModel):
    """Every declared fact of the rule base, and the case's ICD-10 codes; absent or null means unknown."""

    model_config = _STRICT

    @classmethod
    def _whole(cls, v):
        # JSON has one kind of number: 4.0 is the integer 4 (JSON Schema says so too); 3.5 is refused
        if isinstance(v, float) and v.is_integer():
            return int(v)
        return v

    @field_validator(ICD10_CODES, check_fields=False)
    @classmethod
    def _codes(cls, codes):
        if codes is None:
            return None
        out = []
        for i, code in enumerate(codes):
            norm = icd10(code)
            if norm is None:
                raise ValueError(f"item {i}: {code!r} is not an ICD-10 code (e.g. C91.00)")
            out.append(norm)
        return out


class _CaseBase(BaseModel):
    model_config = _STRICT

    @field_validator("case_id", check_fields=False)
    @classmethod
    def _case_id(cls, case_id):
        # JSON input cannot carry a lone UTF-16 surrogate (solver/text/jsontext.py refuses it); a dict
        # given to the Python API can: it is no text, and no output could echo it.
        at = None if case_id is None else not_text_at(case_id)
        if at is not None:
            raise ValueError(f"not text: a lone UTF-16 surrogate at {at}")
        return case_id

    @field_validator("plans", check_fields=False)
    @classmethod
    def _plans(cls, plans):
        if plans is None:
            return None
        if len(set(plans)) != len(plans):
            raise ValueError("a plan is listed twice")
        return sorted(plans)


def fact_type(fd):
    """The pydantic annotation and Field of one declared fact (solver/rules/declared.py)."""
    if fd.kind == "bool":
        return Optional[bool], Field(None, description=fd.help or None)
    if fd.kind == "enum":
        return Optional[_one_of(fd.values)], Field(None, description=fd.help or None)
    bounds: dict = {}
    if fd.low is not None:
        bounds["gt" if fd.low_open else "ge"] = fd.low
    if fd.high is not None:
        bounds["le"] = fd.high
    inner = int if fd.kind == "integer" else Number
    return Optional[inner], Field(None, description=fd.help or None, **bounds)


class CaseTypes:
    """The pydantic models of one rule base's case (`Facts`, `Case`) and its lists of ids.

        t = models.types(declared)      # cached by what the declarations fix
        case = t.parse_case(obj)        # a Case, or CaseError naming the field
    """

    def __init__(self, d):
        self.declared = d
        self.plans: tuple[str, ...] = tuple(d.plans)
        self.drugs: tuple[str, ...] = tuple(d.drugs)
        self.requests: tuple[str, ...] = d.requests
        fields: dict = {}
        for name in d.case_facts:
            fields[name] = fact_type(d.facts[name])
            if name == ICD10_AFTER:
                fields[ICD10_CODES] = (Optional[list[str]], Field(None, description="ICD-10 diagnosis codes"))
        if ICD10_CODES not in fields:
            fields[ICD10_CODES] = (Optional[list[str]], Field(None, description="ICD-10 diagnosis codes"))
        self.integers = tuple(n for n in d.case_facts if d.facts[n].kind == "integer")
        self.numbers = tuple(n for n in d.case_facts if d.facts[n].kind == "number")
        validators = {}
        if self.integers:
            validators["_whole_numbers"] = field_validator(*self.integers, mode="before")(_FactsBase._whole.__func__)
        self.Facts = create_model("Facts", __base__=_FactsBase, __module__=__name__, __validators__=validators,
                                  **fields)
        self.Case = create_model(
            "Case", __base__=_CaseBase, __module__=__name__,
            case_id=(Optional[str], None),
            drug=(_one_of(self.drugs), d.default_drug),
            request=(_one_of(self.requests), d.default_request),
            plans=(Optional[list[_one_of(self.plans)]], None),
            facts=(self.Facts, self.Facts()),
        )

    def parse_case(self, data):
        return parse_case(data, self)


_TYPES: dict = {}


def types(d=None) -> CaseTypes:
    """The case models of the rule base `d` declares (default: the rule base in use)."""
    if d is None:
        from solver.rules import declared

        d = declared.of()
    key = d.key()
    t = _TYPES.get(key)
    if t is None:
        t = _TYPES[key] = CaseTypes(d)
    return t


def _loc(loc) -> str:
    parts = []
    for p in loc:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        else:
            parts.append(("." if parts else "") + str(p))
    return "".join(parts) or "(case)"


def format_validation_error(err: ValidationError) -> str:
    msgs = []
    for e in err.errors():
        loc = [p for p in e["loc"] if not (isinstance(p, str) and p.startswith(("literal[", "function-")))]
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown field"
        msgs.append(f"{_loc(loc)}: {msg}")
    return "; ".join(dict.fromkeys(msgs))


def parse_case(data, case_types: Optional[CaseTypes] = None):
    """Validate a decoded JSON object (dict) or a JSON text into a `Case` of the rule base
    `case_types` was built from (default: the rule base in use)."""
    Case = (case_types or types()).Case
    case_id = None
    try:
        if isinstance(data, (str, bytes, bytearray, memoryview)):
            from solver.text.jsontext import loads

            data = loads(data)
        if not isinstance(data, dict):
            raise CaseError(f"(case): expected a JSON object, got {type(data).__name__}")
        case_id = data.get("case_id") if isinstance(data.get("case_id"), str) else None
        if case_id is not None and not_text_at(case_id) is not None:
            case_id = None                 # no text: an error cannot echo it
        _reject_nan(data)
        return Case.model_validate(data)
    except ValidationError as err:
        raise CaseError(format_validation_error(err), case_id) from None
    except CaseError as err:
        if err.case_id is None:
            err.case_id = case_id
        raise
    except RecursionError:
        raise CaseError("(case): nested too deeply", case_id) from None


def _reject_nan(obj, path=""):
    if isinstance(obj, float) and not math.isfinite(obj):
        raise CaseError(f"{path or '(case)'}: must be a finite number")
    if isinstance(obj, dict):
        for k, v in obj.items():
            _reject_nan(v, f"{path}.{k}" if path else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _reject_nan(v, f"{path}[{i}]")


_DEFAULT = {"Facts": "Facts", "Case": "Case", "PLANS": "plans", "DRUGS": "drugs", "REQUESTS": "requests"}


def __getattr__(name: str):
    """The default rule base's models (`models.Case`, `models.Facts`, `models.PLANS`), built when first
    asked for."""
    if name in _DEFAULT:
        return getattr(types(), _DEFAULT[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
