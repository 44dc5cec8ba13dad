"""The fast path for a case that is valid: msgspec instead of pydantic.

A one-shot `pa-solver decide` spent more time importing pydantic (about 120
ms, see bench/bench_startup.py) than reading, grounding and solving together.
msgspec imports in a few milliseconds.  The structs below mirror
`models.Facts` and `models.Case` field for field (a test compares them), and
are *narrower*: whatever they accept, pydantic accepts, with the same values
(a property test checks that on random cases).  Whatever they refuse, or
anything they are unsure of (a code not already in upper case, a duplicate
plan, a number that is not finite), goes to pydantic, which decides and names
the field.  So the fast path changes how fast a valid case is read, never
what is accepted, refused, or said.

    fast = fastcase.parse(obj)          # a FastCase, or None: use models.parse_case(obj)
"""

from __future__ import annotations

import math
from typing import Annotated, Literal, Optional

import msgspec
from msgspec import Meta

from .contract import icd10
from .jsontext import not_text_at

Age = Annotated[float, Meta(ge=0, le=130)]
Weight = Annotated[float, Meta(gt=0, le=500)]
Height = Annotated[float, Meta(gt=0, le=300)]
Cycles = Annotated[int, Meta(ge=1, le=20)]
Count = Annotated[int, Meta(ge=0)]
Received = Annotated[int, Meta(ge=0, le=20)]
Months = Annotated[float, Meta(ge=0)]


class FastFacts(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """models.Facts, field for field."""

    age_years: Optional[Age] = None
    weight_kg: Optional[Weight] = None
    height_cm: Optional[Height] = None
    diagnosis: Optional[Literal["all", "lymphoblastic_lymphoma", "other_cancer", "non_cancer"]] = None
    icd10_codes: Optional[list[str]] = None
    b_cell_precursor: Optional[bool] = None
    cd22_positive: Optional[bool] = None
    ph_status: Optional[Literal["positive", "negative"]] = None
    disease_setting: Optional[Literal["frontline_induction", "frontline_consolidation", "relapsed_refractory"]] = None
    nccn_category: Optional[Literal["1", "2A", "2B", "3", "none"]] = None
    regimen: Optional[
        Literal["single_agent", "mini_hyper_cvd", "mini_hyper_cvd_blinatumomab", "tki_combination", "other_combination"]
    ] = None
    with_rituximab: Optional[bool] = None
    planned_cycles: Optional[Cycles] = None
    units_per_21_days: Optional[Count] = None
    dose_within_label: Optional[bool] = None
    baseline_ecg_normal: Optional[bool] = None
    ecg_monitoring_planned: Optional[bool] = None
    substantial_comorbidities: Optional[bool] = None
    prior_inotuzumab: Optional[bool] = None
    tki_failure: Optional[bool] = None
    prior_systemic_therapies: Optional[Count] = None
    complete_remission_after_initial: Optional[bool] = None
    cycles_received: Optional[Received] = None
    unacceptable_toxicity: Optional[bool] = None
    disease_progression: Optional[bool] = None
    prescriber_specialty: Optional[Literal["oncology", "hematology", "other"]] = None
    months_since_initial_authorization: Optional[Months] = None
    new_to_plan_on_treatment: Optional[bool] = None
    supplied_by_samples_or_pap: Optional[bool] = None


class FastCase(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """models.Case, field for field."""

    case_id: Optional[str] = None
    drug: Literal["inotuzumab_ozogamicin", "blinatumomab"] = "inotuzumab_ozogamicin"
    request: Literal["initial", "continuation"] = "initial"
    plans: Optional[list[Literal["bcbs_fep", "bcbsnc", "cvs_caremark", "masshealth", "ohsu"]]] = None
    facts: FastFacts = msgspec.field(default_factory=FastFacts)


_FLOATS = ("age_years", "weight_kg", "height_cm", "months_since_initial_authorization")


def parse(obj) -> Optional[FastCase]:
    """The case in a decoded JSON object when it is plainly valid, with the
    values pydantic would give it; None when pydantic must decide."""
    if type(obj) is not dict:
        return None
    try:
        case = msgspec.convert(obj, FastCase, strict=True)
    except (msgspec.ValidationError, TypeError, ValueError, RecursionError):
        return None
    if case.case_id is not None and not_text_at(case.case_id) is not None:
        return None                        # a lone surrogate is no text: pydantic names it
    facts = case.facts
    for name in _FLOATS:                   # pydantic refuses infinity and NaN everywhere
        v = getattr(facts, name)
        if v is not None and not math.isfinite(v):
            return None
    changes: dict = {}
    if facts.icd10_codes is not None:
        codes = []
        for code in facts.icd10_codes:
            norm = icd10(code)
            if norm is None:
                return None
            codes.append(norm)
        changes["facts"] = msgspec.structs.replace(facts, icd10_codes=codes)
    if case.plans is not None:
        if len(set(case.plans)) != len(case.plans):
            return None
        changes["plans"] = sorted(case.plans)
    return msgspec.structs.replace(case, **changes) if changes else case
