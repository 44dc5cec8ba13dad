"""Typed models of the case contract (shared/spec/CASE.md, version 1).

`Case` and `Facts` validate input: unknown keys, wrong types, out-of-range
numbers, NaN and unknown enum values are rejected, and `CaseError` names the
field.  The result models are what the solver returns and what `--json`
prints.
"""

from __future__ import annotations

import math
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .contract import ICD10, PLANS, CaseError, icd10  # noqa: F401  (PLANS, ICD10, CaseError: re-exported)
from .jsontext import not_text_at

Drug = Literal["inotuzumab_ozogamicin", "blinatumomab"]
Request = Literal["initial", "continuation"]
PlanId = Literal["bcbs_fep", "bcbsnc", "cvs_caremark", "masshealth", "ohsu"]

Decision = Literal["approved", "case_review", "needs_info", "denied", "no_policy"]

# Integers and numbers are strict: a JSON `true` is not a number, `3.5` is not
# an integer, and NaN / infinity are refused.
_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)
Number = float


class Facts(BaseModel):
    """Every fact of CASE.md; absent or null means unknown."""

    model_config = _STRICT

    # patient
    age_years: Optional[Number] = Field(None, ge=0, le=130, description="age at the request")
    weight_kg: Optional[Number] = Field(None, gt=0, le=500, description="body weight")
    height_cm: Optional[Number] = Field(None, gt=0, le=300, description="height")
    # diagnosis and disease
    diagnosis: Optional[Literal["all", "lymphoblastic_lymphoma", "other_cancer", "non_cancer"]] = None
    icd10_codes: Optional[list[str]] = Field(None, description="ICD-10 diagnosis codes")
    b_cell_precursor: Optional[bool] = None
    cd22_positive: Optional[bool] = None
    ph_status: Optional[Literal["positive", "negative"]] = None
    disease_setting: Optional[Literal["frontline_induction", "frontline_consolidation", "relapsed_refractory"]] = None
    nccn_category: Optional[Literal["1", "2A", "2B", "3", "none"]] = None
    # regimen and dosing
    regimen: Optional[
        Literal["single_agent", "mini_hyper_cvd", "mini_hyper_cvd_blinatumomab", "tki_combination", "other_combination"]
    ] = None
    with_rituximab: Optional[bool] = None
    planned_cycles: Optional[int] = Field(None, ge=1, le=20)
    units_per_21_days: Optional[int] = Field(None, ge=0)
    dose_within_label: Optional[bool] = None
    baseline_ecg_normal: Optional[bool] = None
    ecg_monitoring_planned: Optional[bool] = None
    # history
    substantial_comorbidities: Optional[bool] = None
    prior_inotuzumab: Optional[bool] = None
    tki_failure: Optional[bool] = None
    prior_systemic_therapies: Optional[int] = Field(None, ge=0)
    complete_remission_after_initial: Optional[bool] = None
    cycles_received: Optional[int] = Field(None, ge=0, le=20)
    unacceptable_toxicity: Optional[bool] = None
    disease_progression: Optional[bool] = None
    # administrative
    prescriber_specialty: Optional[Literal["oncology", "hematology", "other"]] = None
    months_since_initial_authorization: Optional[Number] = Field(None, ge=0)
    new_to_plan_on_treatment: Optional[bool] = None
    supplied_by_samples_or_pap: Optional[bool] = None

    @field_validator("planned_cycles", "units_per_21_days", "prior_systemic_therapies", "cycles_received",
                     mode="before")
    @classmethod
    def _whole(cls, v):
        # JSON has one kind of number: 4.0 is the integer 4 (JSON Schema says so too); 3.5 is refused
        if isinstance(v, float) and v.is_integer():
            return int(v)
        return v

    @field_validator("icd10_codes")
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


class Case(BaseModel):
    model_config = _STRICT

    case_id: Optional[str] = None
    drug: Drug = "inotuzumab_ozogamicin"
    request: Request = "initial"
    plans: Optional[list[PlanId]] = None
    facts: Facts = Facts()

    @field_validator("case_id")
    @classmethod
    def _case_id(cls, case_id):
        # JSON input cannot carry a lone UTF-16 surrogate (solver/jsontext.py refuses it); a dict
        # given to the Python API can: it is no text, and no output could echo it.
        at = None if case_id is None else not_text_at(case_id)
        if at is not None:
            raise ValueError(f"not text: a lone UTF-16 surrogate at {at}")
        return case_id

    @field_validator("plans")
    @classmethod
    def _plans(cls, plans):
        if plans is None:
            return None
        if len(set(plans)) != len(plans):
            raise ValueError("a plan is listed twice")
        return sorted(plans)


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


def parse_case(data) -> Case:
    """Validate a decoded JSON object (dict) or a JSON text into a `Case`."""
    case_id = None
    try:
        if isinstance(data, (str, bytes, bytearray, memoryview)):
            from .jsontext import loads

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


# The result models live in solver/results.py, imported when first asked for:
# a one-shot `pa-solver decide --json` never builds them (pydantic builds each
# model's validator when its class is defined, which costs milliseconds each).
_RESULTS = ("Authorization", "CriterionResult", "PathwayResult", "MissingFact", "MissingSet", "PolicyRef",
            "ChangedFact", "Change", "PlanResult", "CaseResult")


def __getattr__(name: str):
    if name in _RESULTS:
        from . import results

        return getattr(results, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
