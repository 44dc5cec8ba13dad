"""The result models: what `solver.decide` returns and `--json` prints
(shared/spec/CASE.md, "Output").  Plain dicts of the same shape come out of
`Solver.solve`; these models give them types for the Python API."""

from __future__ import annotations

from typing import ClassVar, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, model_serializer

Decision = Literal["approved", "case_review", "needs_info", "denied", "no_policy"]

class Authorization(BaseModel):
    months: Optional[Union[int, float]] = None      # what is left of an earlier authorization may be a fraction
    max_cycles: Optional[int] = None
    max_units_per_21_days: Optional[int] = None


class _DropNone(BaseModel):
    """Optional keys that are absent rather than null (`reading`, `values`/`range`)."""

    @model_serializer(mode="wrap")
    def _drop_none(self, handler):
        return {k: v for k, v in handler(self).items() if v is not None or k not in self._optional}


class Because(BaseModel):
    """One test a criterion's status rests on: the fact, the case's value (null: unknown), the
    test in words, and whether it holds (null: unknown)."""
    fact: str
    value: Optional[Union[bool, int, float, str]]
    test: str
    holds: Optional[bool]


class CriterionResult(_DropNone):
    _optional: ClassVar[tuple] = ("reading",)
    id: str
    status: Literal["met", "not_met", "unknown"]
    source: str
    text: str
    reading: Optional[str] = None
    because: list[Because] = []


class PathwayResult(BaseModel):
    id: str
    title: str
    outcome: Literal["approved", "case_review"]
    status: Literal["met", "open", "not_met"]
    criteria: list[CriterionResult]


class MissingFact(_DropNone):
    _optional: ClassVar[tuple] = ("values", "range")
    fact: str
    values: Optional[list] = None
    range: Optional[list[Optional[float | int]]] = None
    criteria: list[str]


class MissingSet(BaseModel):
    pathway: str
    outcome: Literal["approved", "case_review"]
    facts: list[MissingFact]


class PolicyRef(BaseModel):
    document: str
    id: str
    date: Optional[str]
    source: str


class ChangedFact(_DropNone):
    """One fact of a change (CASE.md, "Changes that would change a decision")."""

    model_config = ConfigDict(populate_by_name=True)
    _optional: ClassVar[tuple] = ("values", "range")
    fact: str
    from_: Optional[Union[bool, int, float, str]] = Field(alias="from")
    values: Optional[list] = None
    range: Optional[list[Optional[float | int]]] = None


class Change(BaseModel):
    decision: Decision
    facts: list[ChangedFact]


class RestsOn(BaseModel):
    fact: str
    value: Optional[Union[bool, int, float, str]]


class PlanResult(_DropNone):
    _optional: ClassVar[tuple] = ("changes", "rests_on", "rests_on_count", "facts_count")
    plan: str
    drug: str
    request: str
    decision: Decision
    pathway: Optional[str] = None
    authorization: Optional[Authorization] = None
    policy: PolicyRef
    note: Optional[str] = None
    pathways: list[PathwayResult]
    missing: list[MissingSet]
    changes: Optional[list[Change]] = None    # only from explain
    rests_on: Optional[list[RestsOn]] = None  # only when asked why (decide --why)
    rests_on_count: Optional[int] = None
    facts_count: Optional[int] = None


class CaseResult(_DropNone):
    _optional: ClassVar[tuple] = ("fhir",)
    case_id: Optional[str]
    rules_version: str
    derived_facts: dict[str, str] = {}
    results: list[PlanResult]
    fhir: Optional[dict] = None        # a FHIR input's derived case and sources (FHIR.md)

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no whitespace variance, byte-stable."""
        import json

        return json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
