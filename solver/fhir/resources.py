"""A bundle's entries, each resource validated on its own (solver/fhir/reader.py), and the
error that names the resource and the element (`Patient/p1 birthDate: ...`).

The elements the mapping reads are validated by fast.py (msgspec structs built from the R4B
models), and the whole resource by its `fhir.resources.R4B` model wherever fast.py doubts
anything -- which is where every error comes from; a resource of another known type is listed as
unused without being validated, and an unknown resource type is refused.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from solver.base.contract import CaseError
from solver.fhir import codes, fast


class FhirError(CaseError):
    """A bundle that cannot give a case; the message names the resource and element."""


RESPONSE_TYPES = ("transaction-response", "batch-response")


def ref(res: Any) -> str:
    """A read resource as sources name it: "Type/id"."""
    return f"{res.get_resource_type()}/{res.id or '(no id)'}"


def codings(cc) -> list:
    return list(cc.coding or []) if cc is not None else []


def as_date(value) -> Optional[dt.date]:
    """A FHIR date/dateTime as a date; None for a partial date (a year or a month).  A
    dateTime R4B keeps as a string (a leap second, 23:59:60) still has its date."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and len(value) >= 10:
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def read_entries(obj: Any, fast_path: bool) -> tuple[list, list]:
    """The read resources of a request Bundle, each validated, and the other resources (listed
    unused); FhirError for what is not a request Bundle or not valid FHIR."""
    if not isinstance(obj, dict):
        raise FhirError("(bundle): expected a JSON object")
    rtype = obj.get("resourceType")
    if rtype != "Bundle":
        raise FhirError(f"a bare {rtype} resource, not a Bundle: put it in a Bundle (type collection) "
                        f"with the member's other resources")
    entries = obj.get("entry") or []
    if not isinstance(entries, list):
        raise FhirError("Bundle.entry: must be a list")
    raw = []
    for i, e in enumerate(entries):
        res = e.get("resource") if isinstance(e, dict) else None
        if not isinstance(res, dict) or "resourceType" not in res:
            raise FhirError(f"Bundle.entry[{i}]: no resource")
        raw.append(res)
    if raw and raw[0].get("resourceType") == "ClaimResponse":
        raise FhirError("a response bundle (its first entry is a ClaimResponse): give the request")
    if obj.get("type") in RESPONSE_TYPES:
        raise FhirError(f"Bundle.type {obj['type']}: a response bundle; give the request")
    resources, unused = [], []
    for i, res in enumerate(raw):
        if res.get("resourceType") in codes.READ:
            got = fast.read(res) if fast_path else None     # R4B decides what the fast path doubts
            resources.append(got if got is not None else _validate(res, i))
        else:
            _model_class(res.get("resourceType"), i)      # a known type, not read: listed unused
            unused.append(f"{res.get('resourceType')}/{res.get('id') or '(no id)'}")
    return resources, unused


def _model_class(rtype: Any, index: int):
    """The R4B model class of a resource type, or FhirError for a type FHIR R4 does not have."""
    from fhir.resources.R4B import get_fhir_model_class

    try:
        return get_fhir_model_class(rtype)
    except (ValueError, KeyError, TypeError):
        raise FhirError(f"entry {index}: unknown resource type {rtype!r}") from None


def _validate(entry_obj: dict, index: int):
    """The R4B model of one entry's resource, or FhirError naming it and the element."""
    from pydantic import ValidationError

    rtype = entry_obj.get("resourceType")
    where = f"{rtype}/{entry_obj.get('id') or '(no id)'} (entry {index})"
    model = _model_class(rtype, index)
    _json_types(entry_obj, where)
    try:
        return model.model_validate(entry_obj)
    except ValidationError as err:
        e = err.errors()[0]
        loc = ".".join(str(p) for p in e["loc"]) or "(resource)"
        raise FhirError(f"{where} {loc}: {e['msg']}") from None
    except (ValueError, TypeError) as err:
        raise FhirError(f"{where}: {err}") from None


# FHIR JSON writes these as JSON numbers and booleans; R4B's models would take "78" for 78
# and "true" for true.  The elements the mapping reads a number or a yes/no from are checked
# as JSON first (the fast path is strict already; this is the path R4B decides).
_NUMBERS = ("valueDecimal", "valueInteger")
_BOOLEANS = ("valueBoolean",)


def _json_types(res: dict, where: str) -> None:
    """FhirError naming the element where a read number or boolean is not a JSON number or boolean."""
    stack: list = [(res, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        for key, v in node.items():
            here = f"{path}.{key}" if path else key
            if key in _NUMBERS or (key == "value" and path.endswith(("valueQuantity", "Quantity"))):
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise FhirError(f"{where} {here}: {v!r} is not a JSON number (FHIR JSON writes a "
                                    f"{'decimal' if key != 'valueInteger' else 'integer'} as a number)")
            elif key in _BOOLEANS:
                if not isinstance(v, bool):
                    raise FhirError(f"{where} {here}: {v!r} is not a JSON boolean (true or false)")
            elif isinstance(v, (dict, list)):
                stack.append((v, here))
