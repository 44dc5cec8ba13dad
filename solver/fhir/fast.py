"""The elements of a FHIR resource the mapping reads, validated fast.

    res = fast.read(resource_dict)      # a light object, or None: "R4B decides"

R4B validation builds a pydantic model for every element of a resource; for a
PAS bundle that is about two thirds of reading it.  This module reads only
the elements `reader.py` uses, with msgspec structs whose attribute names are
the FHIR element names, and validates each of them as the R4B model would:
its type (strict: no "true" for a boolean, no 1 for a string), FHIR's
pattern for its primitive type (code, id, uri, date, dateTime: the patterns
of fhir_core itself, matched whole), no null, no surrounding whitespace,
and the resource's required elements present.  A resource whose top level
has an element name R4B does not know is not read here.

Anything it doubts -- a type, a pattern, a lax value R4B would coerce, a date
Python cannot parse, a leap second -- returns None, and the reader validates
that resource with its R4B model, whose error names the resource and element.
So a resource read here gives exactly what R4B would give the mapping
(tests/fhir/test_fast.py checks both paths on every test bundle and on
mutations of them); what is not checked here is the content of the elements
the mapping never reads (a malformed `Claim.insurance`, say): they are
listed in FHIR.md's table as not read, and a decision does not depend on them.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Any, Union  # noqa: F401  (the structs' types are resolved here)

import msgspec
from fhir_core import types as ft

UNSET = msgspec.UNSET
UnsetType = msgspec.UnsetType

CODE = re.compile(r"[^\s]+(\s[^\s]+)*")
ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
URI = re.compile(r"\S*")
STRING = re.compile(r"[ \r\n\t\S]+")
INT32 = 2 ** 31 - 1


class Doubt(ValueError):
    """A value this module will not vouch for: R4B decides."""


def _string(v: str, pattern: re.Pattern) -> str:
    if v != v.strip() or not pattern.fullmatch(v):
        raise Doubt(v)
    return v


def _date(v: str):
    """A FHIR date as R4B gives it: a date, or the string of a partial date."""
    if not ft.Date.pattern.fullmatch(v):
        raise Doubt(v)
    return dt.date.fromisoformat(v) if len(v) == 10 else v


def _datetime(v: str):
    """A FHIR dateTime as R4B gives it: a datetime (a full date as midnight), or a partial date's string."""
    if not ft.DateTime.pattern.fullmatch(v):
        raise Doubt(v)
    if len(v) < 10:
        return v
    if len(v) == 10:
        return dt.datetime.fromisoformat(v)
    if v[17:19] == "60":                                  # a leap second: R4B keeps the string
        raise Doubt(v)
    return dt.datetime.fromisoformat(v)


class _S(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Absent elements read as None, as on an R4B model; patterns and choices checked on creation."""

    def __post_init__(self):
        for group, required in self._one_of:
            n = sum(getattr(self, f) is not UNSET for f in group)
            if n > 1 or (required and n == 0):
                raise Doubt(group)
        checks = self._checks
        for name in self._read:                     # the others stay UNSET: nothing reads them
            v = getattr(self, name)
            if v is UNSET:
                setattr(self, name, None)
            elif name in checks:
                setattr(self, name, checks[name](v))

    def get_resource_type(self) -> str:
        return self._type


def _int32(v):
    if isinstance(v, bool) or not -INT32 - 1 <= v <= INT32:
        raise Doubt(v)
    return v


def _decimal(v):
    if isinstance(v, bool):
        raise Doubt(v)
    return v


def _str(pattern: re.Pattern):
    return functools.partial(_string, pattern=pattern)


# The elements the mapping reads, per R4B element type: (type, check).  Every other
# element of the R4B model is a known name of type Any: present or not, never read.
READS = {
    "Coding": {"system": (str, _str(URI)), "code": (str, _str(CODE))},
    "CodeableConcept": {"coding": ("list[Coding]", None)},
    "Reference": {"reference": (str, _str(STRING))},
    "Identifier": {"value": (str, _str(STRING))},
    "Extension": {"url": (str, _str(URI)), "valueCodeableConcept": ("CodeableConcept", None)},
    "Quantity": {"value": ("Union[int, float]", _decimal), "unit": (str, _str(STRING)),
                 "system": (str, _str(URI)), "code": (str, _str(CODE))},
    "Period": {"start": (str, _datetime), "end": (str, _datetime)},
    "ClaimItem": {"extension": ("list[Extension]", None), "productOrService": ("CodeableConcept", None)},
    "ClaimDiagnosis": {"diagnosisCodeableConcept": ("CodeableConcept", None)},
    "Claim": {"id": (str, _str(ID)), "status": (str, _str(CODE)), "created": (str, _datetime),
              "identifier": ("list[Identifier]", None), "patient": ("Reference", None),
              "item": ("list[ClaimItem]", None), "diagnosis": ("list[ClaimDiagnosis]", None)},
    "Patient": {"id": (str, _str(ID)), "birthDate": (str, _date)},
    "Condition": {"id": (str, _str(ID)), "verificationStatus": ("CodeableConcept", None),
                  "code": ("CodeableConcept", None)},
    "Observation": {"id": (str, _str(ID)), "status": (str, _str(CODE)), "code": ("CodeableConcept", None),
                    "effectiveDateTime": (str, _datetime), "effectivePeriod": ("Period", None),
                    "valueQuantity": ("Quantity", None)},
    "MedicationRequest": {"id": (str, _str(ID)), "status": (str, _str(CODE)),
                          "medicationCodeableConcept": ("CodeableConcept", None)},
    "QuestionnaireResponseItemAnswer": {
        "valueBoolean": (bool, None), "valueInteger": (int, _int32), "valueDecimal": ("Union[int, float]", _decimal),
        "valueString": (str, _str(STRING)), "valueCoding": ("Coding", None), "valueQuantity": ("Quantity", None),
        "item": ("list[QuestionnaireResponseItem]", None)},
    "QuestionnaireResponseItem": {"linkId": (str, _str(STRING)), "item": ("list[QuestionnaireResponseItem]", None),
                                  "answer": ("list[QuestionnaireResponseItemAnswer]", None)},
    "QuestionnaireResponse": {"id": (str, _str(ID)), "status": (str, _str(CODE)), "authored": (str, _datetime),
                              "item": ("list[QuestionnaireResponseItem]", None)},
}
RESOURCES = ("Claim", "Patient", "Condition", "Observation", "MedicationRequest", "QuestionnaireResponse")


def _model(name: str):
    from fhir.resources import R4B

    if name in RESOURCES or name in ("Coding", "CodeableConcept", "Reference", "Identifier", "Extension",
                                     "Quantity", "Period"):
        return R4B.get_fhir_model_class(name)
    import importlib

    module = {"ClaimItem": "claim", "ClaimDiagnosis": "claim", "QuestionnaireResponseItem": "questionnaireresponse",
              "QuestionnaireResponseItemAnswer": "questionnaireresponse"}[name]
    return getattr(importlib.import_module(f"fhir.resources.R4B.{module}"), name)


def _struct(name: str):
    """A msgspec struct mirroring one R4B element type: the read elements typed and
    checked; the others known by name; required ones (complex, or a primitive's
    value) without a default; its choice groups checked on creation."""
    model = _model(name)
    reads = READS[name]
    required = {n for n, f in model.model_fields.items() if f.is_required()}
    required |= {n for n, _ in model.get_required_fields(None)}
    fields, checks, read = [], {}, []
    for fname, info in model.model_fields.items():
        alias = info.alias or fname
        if alias in reads:
            read.append(fname)
        typ, check = reads.get(alias, ("Any", None))
        typ = typ if isinstance(typ, str) else typ.__name__
        if fname in required:
            fields.append((fname, typ, msgspec.field(name=alias)))
        else:
            fields.append((fname, f"Union[{typ}, UnsetType]", msgspec.field(default=UNSET, name=alias)))
        if check is not None:
            checks[fname] = check
    if name in RESOURCES:
        fields.append(("resourceType", str, msgspec.field(name="resourceType")))
    one_of = tuple((tuple(group), bool(model.model_fields[group[0]].json_schema_extra.get("one_of_many_required")))
                   for group in model.get_one_of_many_fields(None).values())
    cls = msgspec.defstruct(name, fields, bases=(_S,), kw_only=True, forbid_unknown_fields=True, module=__name__)
    cls._checks, cls._one_of, cls._type, cls._read = checks, one_of, name, tuple(read)
    return cls


@functools.lru_cache(maxsize=None)
def structs() -> dict:
    """The resource structs, built once from the R4B models (their element names, required
    elements and choice groups are R4B's own)."""
    for name in READS:
        globals()[name] = _struct(name)
    return {name: globals()[name] for name in RESOURCES}


def read(res: dict):
    """The read elements of a resource, validated as R4B would; None where R4B must decide."""
    struct = structs().get(res.get("resourceType"))
    if struct is None:
        return None
    try:
        return msgspec.convert(res, struct, strict=True)
    except (msgspec.ValidationError, ValueError, TypeError, OverflowError):
        return None
