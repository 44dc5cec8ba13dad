"""Widget state <-> case, for the what-if page (no Streamlit here).

Every fact the rule base declares gets one widget whose value is never a
guess: bool and enum widgets start on "unknown", number widgets start empty
(None), the ICD-10 box starts blank.  `case_from_state` leaves an unknown fact
out of the case, so an untouched widget stays unknown in the solver.

    spec = FACTS[name]                 # kind, choices, bounds, group, label: the fact's declaration
    state = state_from_case(case)      # {"fact:age_years": 52.0, "fact:cd22_positive": "yes", ...}
    case = case_from_state(state)      # the case dict again (known facts only)
    fill_values(missing_set["facts"])  # {fact: a value that meets it}
    diff_facts(baseline, case)         # [(fact, before, after)]
    case, fhir = load_input(data)      # an uploaded case JSON or FHIR Bundle (fhir: a FhirState or None)
"""

from __future__ import annotations

import json
import math
import typing
from dataclasses import dataclass
from typing import Any, Optional

from solver.rules import declared
from solver.text import jsontext
from solver.base.contract import ICD10_AFTER, ICD10_CODES
from solver.case.models import CaseError, Facts, parse_case
from solver.fhir.reader import is_fhir

UNKNOWN = "unknown"
YES, NO = "yes", "no"

# Everything below is read from the rule base in use (logic/facts.lp and the plan files; shared/
# spec/RULES.md): a fact declared there is a widget here, in its group, with its label and range.
DECLARED = declared.of()
PLANS: tuple[str, ...] = tuple(DECLARED.plans)
DRUGS: tuple[str, ...] = tuple(DECLARED.drugs)
REQUESTS: tuple[str, ...] = DECLARED.requests
SHORT: dict[str, str] = dict(DECLARED.plan_labels)      # badges, column headings
ICD10_WORDS = "ICD-10 codes"


@dataclass(frozen=True)
class FactSpec:
    name: str
    kind: str                 # bool | enum | integer | number | list
    group: str
    choices: tuple = ()       # enum values
    low: Optional[float] = None     # inclusive lower bound of a valid value
    high: Optional[float] = None    # inclusive upper bound of a valid value
    help: str = ""
    # The number widget's bounds: the model's bounds themselves (a widget bound
    # is inclusive, so for `> 0` this is 0 and the case check refuses 0 by
    # name).  Never tighter than the model: Streamlit resets a value outside
    # its widget's bounds to the default, which here would be unknown.
    min_value: Optional[float] = None
    max_value: Optional[float] = None
    words: str = ""           # a reviewer's words: label/2

    @property
    def key(self) -> str:
        return f"fact:{self.name}"

    @property
    def label(self) -> str:
        """What the widget is called: a reviewer's words and the fact's name,
        the one the reasons, missing sets and changes use."""
        return f"{self.words} ({self.name})"


def _spec(name: str) -> FactSpec:
    """A fact's widget, from its declaration (kind, values, range, label, group)."""
    if name == ICD10_CODES:
        field = Facts.model_fields[name]
        return FactSpec(name, "list", DECLARED.facts[ICD10_AFTER].group if ICD10_AFTER in DECLARED.facts
                        else "Other facts", help=field.description or "", words=ICD10_WORDS)
    fd = DECLARED.facts[name]
    low = high = min_value = max_value = None
    if fd.low is not None:
        # a widget bound is inclusive: for `> 0` it is 0 and the case check refuses 0 by name
        min_value = fd.low
        low = fd.low + (1 if fd.kind == "integer" else 0.1) if fd.low_open else fd.low
    if fd.high is not None:
        high = max_value = fd.high
    return FactSpec(name, fd.kind, fd.group, fd.values if fd.kind == "enum" else (), low, high, fd.help,
                    min_value, max_value, fd.label)


def _order() -> list[str]:
    """The form's facts: by group in the order groups are first declared, then in declaration order."""
    names = list(Facts.model_fields)         # declaration order, the ICD-10 codes after their fact
    groups = {n: _spec(n).group for n in names}
    heads = list(dict.fromkeys(groups.values()))
    return sorted(names, key=lambda n: heads.index(groups[n]))


FACTS: dict[str, FactSpec] = {n: _spec(n) for n in _order()}
GROUPS: dict[str, tuple[str, ...]] = {}
for _name, _s in FACTS.items():
    GROUPS[_s.group] = GROUPS.get(_s.group, ()) + (_name,)


# ------------------------------------------------------------------ widget <-> case

def widget_value(spec: FactSpec, value: Any) -> Any:
    """The widget's value for a fact's case value (None = unknown)."""
    if spec.kind == "bool":
        return UNKNOWN if value is None else (YES if value else NO)
    if spec.kind == "enum":
        return UNKNOWN if value is None else value
    if spec.kind == "list":
        return "" if not value else ", ".join(value)
    return None if value is None else value


def case_value(spec: FactSpec, widget: Any) -> Any:
    """The case value of a widget's value (None = unknown: left out of the case)."""
    if spec.kind == "bool":
        return None if widget in (None, UNKNOWN) else widget == YES
    if spec.kind == "enum":
        return None if widget in (None, UNKNOWN) else widget
    if spec.kind == "list":
        codes = [c.strip() for c in (widget or "").replace(";", ",").split(",") if c.strip()]
        return codes or None
    if widget is None:
        return None
    if spec.kind == "integer":
        return int(widget)
    value = float(widget)
    # A whole number reads as one (age 52, not 52.0); the case model reads both alike.
    return int(value) if value.is_integer() and abs(value) < 2 ** 53 else value


def state_from_case(case: dict) -> dict:
    """Every widget's value for a case dict (facts it lacks are unknown)."""
    facts = case.get("facts") or {}
    state = {spec.key: widget_value(spec, facts.get(name)) for name, spec in FACTS.items()}
    state["case:id"] = case.get("case_id") or ""
    state["case:drug"] = case.get("drug") or DRUGS[0]
    state["case:request"] = case.get("request") or REQUESTS[0]
    state["case:plans"] = list(case.get("plans") or PLANS)
    return state


def case_from_state(state: dict) -> dict:
    """The case dict the widgets describe: known facts only, keys in fact order."""
    facts = {}
    for name, spec in FACTS.items():
        value = case_value(spec, state.get(spec.key))
        if value is not None:
            facts[name] = value
    case: dict = {}
    if state.get("case:id"):
        case["case_id"] = state["case:id"]
    case["drug"] = state.get("case:drug") or DRUGS[0]
    case["request"] = state.get("case:request") or REQUESTS[0]
    plans = state.get("case:plans")
    if plans is not None and sorted(plans) != sorted(PLANS):
        case["plans"] = sorted(plans)
    case["facts"] = facts
    return case


def load_case_json(data: bytes | str) -> dict:
    """An uploaded case: validated (CaseError naming the field otherwise) and
    returned as the plain dict the widgets show."""
    # solver.jsontext refuses what json.loads would choke on or read wrongly:
    # bytes that are not UTF-8, deep nesting, integers too long to convert,
    # a key given twice; a UTF-8 byte-order mark is accepted.
    try:
        raw = jsontext.loads(data)
    except CaseError as err:
        raise CaseError(f"(file): {err}") from None
    try:
        case = parse_case(raw)
    except CaseError:
        raise
    except (ValueError, TypeError, RecursionError) as err:      # never a traceback on the page
        raise CaseError(f"(file): not a case: {err}") from None
    return canonical(case)


@dataclass(frozen=True)
class FhirState:
    """What the page keeps of a loaded FHIR Bundle: the case it gave (canonical,
    as the widgets show it) and where each value came from."""
    case: dict
    sources: dict             # fact (and drug, request, request_date) -> [{"resource", "element"}]
    conflicts: list           # [{"fact", "values": [{"value", "resource", "element"}]}]
    unused: list
    request_date: Any         # datetime.date
    claim: Optional[str] = None
    patient: Optional[str] = None


def load_input(data: bytes | str) -> tuple[dict, Optional[FhirState]]:
    """An uploaded case JSON or FHIR Bundle (a JSON object with `resourceType`):
    (the case as the widgets show it, the bundle's FhirState or None).  A
    bundle that cannot give a case raises FhirError (a CaseError) saying
    which resource and element; anything else, as `load_case_json`."""
    try:
        raw = jsontext.loads(data)
    except CaseError as err:
        raise CaseError(f"(file): {err}") from None
    if not is_fhir(raw):
        return load_case_json(data), None
    from solver.fhir.inputs import case_from

    try:
        _, fhir = case_from(raw)
    except CaseError:
        raise
    except (ValueError, TypeError, RecursionError, AttributeError) as err:   # never a traceback on the page
        raise CaseError(f"(bundle): not a readable bundle: {err}") from None
    shown = canonical(parse_case(fhir.case))      # case_from may give the fast path's case: the model's here
    return shown, FhirState(shown, fhir.sources, fhir.conflicts, fhir.unused, fhir.request_date,
                            fhir.claim, fhir.patient)


def canonical(case) -> dict:
    """A validated case as a plain dict: unknown facts left out."""
    out = {"drug": case.drug, "request": case.request,
           "facts": {k: v for k, v in case.facts.model_dump().items() if v is not None}}
    if case.case_id is not None:
        out["case_id"] = case.case_id
    if case.plans is not None:
        out["plans"] = list(case.plans)
    return out


# ------------------------------------------------------------------ filling and comparing

# Where any documented value will do (MassHealth: weight documented), a
# plausible adult value rather than the smallest valid one.
TYPICAL = {"weight_kg": 70.0, "height_cm": 170.0}


def value_in_range(spec: FactSpec, low, high):
    """A valid value of a number fact in [low, high) (None: no bound), next to
    the policy's threshold: the low end, or just below the high end where the
    range has no low end; where any documented value will do, a typical one."""
    step = 1 if spec.kind == "integer" else 0.1
    if low is not None:
        value = low
    elif high is not None:
        value = high - step
    elif spec.name in TYPICAL:
        return TYPICAL[spec.name]
    else:
        value = spec.low if spec.low is not None else 0
    if spec.low is not None:
        value = max(value, spec.low)
    if spec.high is not None:
        value = min(value, spec.high)
    if spec.kind == "integer":
        return int(math.ceil(value))
    return round(float(value), 1)


def fill_values(facts: list[dict]) -> dict:
    """For a missing set's or a change's facts: a case value per fact that the
    solver said meets it (the first listed value, or a value in the range)."""
    out = {}
    for f in facts:
        spec = FACTS[f["fact"]]
        if f.get("values") is not None:
            out[spec.name] = f["values"][0]
        else:
            low, high = f.get("range") or (None, None)
            out[spec.name] = value_in_range(spec, low, high)
    return out


def apply_values(state: dict, values: dict) -> dict:
    """The widget state with some facts set to case values."""
    new = dict(state)
    for name, value in values.items():
        spec = FACTS[name]
        new[spec.key] = widget_value(spec, value)
    return new


def diff_facts(before: dict, after: dict) -> list[tuple[str, Any, Any]]:
    """(fact, before, after) for each fact whose value differs (None = unknown),
    in chart order; drug, request and plans as well."""
    out = []
    for key in ("drug", "request"):
        if before.get(key) != after.get(key):
            out.append((key, before.get(key), after.get(key)))
    if sorted(before.get("plans") or PLANS) != sorted(after.get("plans") or PLANS):
        out.append(("plans", before.get("plans") or list(PLANS), after.get("plans") or list(PLANS)))
    fb, fa = before.get("facts") or {}, after.get("facts") or {}
    for name in FACTS:
        if fb.get(name) != fa.get(name):
            out.append((name, fb.get(name), fa.get(name)))
    return out


def show(value: Any) -> str:
    """A case value as a reviewer reads it."""
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return YES if value else NO
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


# ------------------------------------------------------------------ take it away

def case_json(case: dict) -> str:
    """The case as a file `pa-solver decide` reads."""
    return json.dumps(case, indent=2, ensure_ascii=False) + "\n"


def fhir_json(resource: dict) -> str:
    """A FHIR resource as a file: what `pa-solver questionnaire` / `decide
    --format pas` print."""
    from solver.text.jsontext import dump_text

    return dump_text(resource) + "\n"


def result_json(result: dict) -> str:
    """A result as the page shows it, decision and changes, byte for byte what
    `pa-solver explain CASE.json --json --max-changes N` prints (N: the
    page's number of changes; without changes, what `pa-solver decide --json`
    prints)."""
    from solver.text.jsontext import dump_text

    return dump_text(result) + "\n"
