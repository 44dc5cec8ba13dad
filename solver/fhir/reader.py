"""A FHIR R4 Bundle in, a CASE.md case out, with where every value came from
(shared/spec/FHIR.md).  The engine and the rule base never see FHIR.

    got = read_bundle(obj, as_of=None, drug=None)
    got.case          # a CASE.md case (a dict), valid: decided on its own it gives the same result
    got.sources       # fact -> [{"resource": "Observation/w1", "element": "valueQuantity"}, ...]
    got.conflicts     # [{"fact", "values": [{"value", "resource", "element"}, ...]}]: the fact is unknown
    got.unused        # resources and items that gave no fact

Every resource the mapping reads is validated, one resource at a time, so
that an error names the resource and the element (`Patient/p1 birthDate:
...`): its read elements by fast.py (msgspec structs built from the R4B
models), and the whole resource by its `fhir.resources.R4B` model wherever
fast.py doubts anything -- which is where every error comes from; a resource of another known type is
listed as unused without being validated (real bundles carry much more than a
decision needs), and an unknown resource type is refused.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from solver.base.contract import ICD10_CODES, CaseError, icd10
from solver.rules.declared import CODE_SYSTEMS
from solver.fhir import codes, fast


class FhirError(CaseError):
    """A bundle that cannot give a case; the message names the resource and element."""


class FhirCase:
    def __init__(self, case: dict, sources: dict, conflicts: list, unused: list, request_date: dt.date,
                 claim: Optional[str] = None, patient: Optional[str] = None):
        self.case, self.sources, self.conflicts, self.unused = case, sources, conflicts, unused
        self.request_date = request_date
        self.claim, self.patient = claim, patient          # "Claim/id", "Patient/id" when the bundle has them

    def to_json(self) -> dict:
        """The `fhir` key of a result."""
        return {"case": self.case, "sources": self.sources, "conflicts": self.conflicts, "unused": self.unused,
                "request_date": self.request_date.isoformat()}


def is_fhir(obj: Any) -> bool:
    """A decoded JSON object that is a FHIR resource (it names its type)."""
    return isinstance(obj, dict) and "resourceType" in obj


# ------------------------------------------------------------------ facts by kind

def fact_kinds(declared) -> dict[str, tuple[str, tuple]]:
    """fact -> (bool | enum | integer | number | list, enum values): the rule base's declared facts
    (solver/rules/declared.py) and the case's list of ICD-10 codes."""
    out = {}
    for name in declared.case_facts:
        fd = declared.facts[name]
        out[name] = (fd.kind, fd.values if fd.kind == "enum" else ())
    out[ICD10_CODES] = ("list", ())
    return out


def _declared(declared):
    if declared is None:
        from solver.rules import declared as d

        return d.of()
    return declared


def _drug_words(declared) -> str:
    """The drugs a bundle may request, as an error names them: 'X (HCPCS J9229)'."""
    by_drug: dict[str, list[str]] = {}
    names = {v: k.upper() for k, v in CODE_SYSTEMS.items()}
    for (system, code), drug in declared.drug_codes.items():
        by_drug.setdefault(drug, []).append(f"{names.get(system, system)} {code}")
    words = [f"{d.replace('_', ' ')} ({', '.join(by_drug[d])})" if d in by_drug else d.replace("_", " ")
             for d in declared.drugs]
    if len(words) == 2:
        return f"neither {words[0]} nor {words[1]}"
    return "none of " + ", ".join(words)


# ------------------------------------------------------------------ reading

RESPONSE_TYPES = ("transaction-response", "batch-response")


def _ref(res: Any) -> str:
    return f"{res.get_resource_type()}/{res.id or '(no id)'}"


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


def _codings(cc) -> list:
    return list(cc.coding or []) if cc is not None else []


def _as_date(value) -> Optional[dt.date]:
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


def _request_date(value, ref: str, element: str) -> dt.date:
    """The date of a request-date source, or FhirError saying why it has none."""
    got = _as_date(value)
    if got is None:
        raise FhirError(f"{ref} {element}: {str(value)!r} is not a full date (a year or a month only), so it "
                        f"gives no request date; give one with --as-of YYYY-MM-DD")
    return got


class _Values:
    """Values of facts gathered from sources; equal ones merge, different ones conflict."""

    def __init__(self):
        self.by_fact: dict[str, list] = {}

    def add(self, fact: str, value: Any, resource: str, element: str) -> None:
        self.by_fact.setdefault(fact, []).append((value, resource, element))

    def resolve(self):
        values, sources, conflicts = {}, {}, []
        for fact in sorted(self.by_fact):
            got = self.by_fact[fact]
            distinct = []
            for v, _, _ in got:
                if not any(_same(v, d) for d in distinct):
                    distinct.append(v)
            srcs = sorted({(r, e) for _, r, e in got})
            if len(distinct) == 1:
                values[fact] = distinct[0]
                sources[fact] = [{"resource": r, "element": e} for r, e in srcs]
            else:
                conflicts.append({"fact": fact, "values": sorted(
                    ({"value": v, "resource": r, "element": e} for v, r, e in got),
                    key=lambda x: (x["resource"], x["element"], repr(x["value"])))})
        return values, sources, conflicts


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) < 1e-9
    return a == b and type(a) is type(b)


def read_bundle(obj: Any, as_of: Optional[dt.date] = None, drug: Optional[str] = None,
                fast_path: bool = True, declared=None) -> FhirCase:
    """The case a FHIR R4 Bundle asks about (FHIR.md), or FhirError.  `fast_path`
    False validates every read resource with its R4B model (fast.py reads the
    same elements the same way, and defers to R4B on anything it doubts).
    `declared`: the rule base's declarations (its drugs' codes, its facts); default, the
    rule base in use."""
    declared = _declared(declared)
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
    by_type: dict[str, list] = {}
    for r in resources:
        by_type.setdefault(r.get_resource_type(), []).append(r)
    used: set[str] = set()
    vals = _Values()

    claims = by_type.get("Claim", [])
    claim = claims[0] if claims else None
    qrs = [q for q in by_type.get("QuestionnaireResponse", [])
           if q.status not in codes.QUESTIONNAIRE_RESPONSE_EXCLUDED]

    # the request date: Claim.created, else the latest QuestionnaireResponse.authored, else Bundle.timestamp
    when, when_src = None, None
    if as_of is not None:
        when, when_src = as_of, {"resource": "(--as-of)", "element": "as_of"}
    elif claim is not None and claim.created is not None:
        when, when_src = _request_date(claim.created, _ref(claim), "created"), {"resource": _ref(claim),
                                                                                "element": "created"}
    else:
        authored = [(_request_date(q.authored, _ref(q), "authored"), q) for q in qrs if q.authored is not None]
        if authored:
            d, q = max(authored, key=lambda x: x[0])
            when, when_src = d, {"resource": _ref(q), "element": "authored"}
        elif obj.get("timestamp"):
            try:
                when = dt.date.fromisoformat(str(obj["timestamp"])[:10])
            except ValueError:
                raise FhirError(f"Bundle.timestamp: {obj['timestamp']!r} is not a date") from None
            when_src = {"resource": "Bundle", "element": "timestamp"}
    if when is None:
        raise FhirError("no request date: the bundle has no Claim.created, QuestionnaireResponse.authored or "
                        "Bundle.timestamp; give one with --as-of YYYY-MM-DD")

    # case id
    ident = obj.get("identifier")
    case_id = ident.get("value") if isinstance(ident, dict) else None
    case_id = case_id or obj.get("id")
    if not case_id and claim is not None and claim.identifier:
        case_id = claim.identifier[0].value

    # drug
    drugs: dict[str, list] = {}
    looked = []
    if claim is not None:
        looked.append(f"{_ref(claim)} item.productOrService")
        used.add(_ref(claim))
        for k, item in enumerate(claim.item or []):
            for c in _codings(item.productOrService):
                d = declared.drug_codes.get((c.system, c.code))
                if d:
                    drugs.setdefault(d, []).append({"resource": _ref(claim),
                                                    "element": f"item[{k}].productOrService"})
    for mr in by_type.get("MedicationRequest", []):
        looked.append(f"{_ref(mr)} medicationCodeableConcept")
        if mr.status in codes.MEDICATION_REQUEST_EXCLUDED:
            continue
        for c in _codings(mr.medicationCodeableConcept):
            d = declared.drug_codes.get((c.system, c.code))
            if d:
                drugs.setdefault(d, []).append({"resource": _ref(mr), "element": "medicationCodeableConcept"})
                used.add(_ref(mr))
    if drug is not None:
        chosen = drug
        drug_sources = drugs.get(drug) or [{"resource": "(--drug)", "element": "drug"}]
    elif len(drugs) == 1:
        chosen = next(iter(drugs))
        drug_sources = drugs[chosen]
    elif len(drugs) > 1:
        raise FhirError(f"the bundle requests both {' and '.join(sorted(drugs))}: pick one with --drug")
    else:
        where = "; ".join(looked) or "no Claim or MedicationRequest in the bundle"
        raise FhirError(f"the bundle requests {_drug_words(declared)}: looked in {where}")

    # request: the certificationType extension on the Claim item, else a QuestionnaireResponse item
    request, request_src = None, None
    if claim is not None:
        for k, item in enumerate(claim.item or []):
            for ext in item.extension or []:
                if ext.url == codes.CERTIFICATION_TYPE_URL and ext.valueCodeableConcept is not None:
                    for c in _codings(ext.valueCodeableConcept):
                        if c.code in codes.CERTIFICATION_TYPES:
                            request = codes.CERTIFICATION_TYPES[c.code]
                            request_src = {"resource": _ref(claim), "element": f"item[{k}].extension(certificationType)"}

    kinds = fact_kinds(declared)
    # QuestionnaireResponse items, at any depth
    for q in qrs:
        for item, path in _items(q.item or [], "item"):
            link = item.linkId
            answers = item.answer or []
            if link == "request":
                used.add(_ref(q))
                for a in answers:
                    v = a.valueCoding.code if a.valueCoding is not None else a.valueString
                    if v in declared.requests and request is None:
                        request, request_src = v, {"resource": _ref(q), "element": f"{path}[linkId=request]"}
                continue
            if link not in kinds or kinds[link][0] == "list":
                leaf = not item.item and not any(a.item for a in answers)     # groups are read for their items
                if leaf and (not answers or link not in kinds):
                    unused.append(f"{_ref(q)} item {link}")
                continue
            used.add(_ref(q))
            for a in answers[:1]:
                v = _answer(a, link, kinds[link], _ref(q), declared)
                if v is not None:
                    vals.add(link, v, _ref(q), f"item[linkId={link}]")
    for q in by_type.get("QuestionnaireResponse", []):
        if q.status in codes.QUESTIONNAIRE_RESPONSE_EXCLUDED:
            unused.append(f"{_ref(q)} (status {q.status})")

    # patient and age
    patients = by_type.get("Patient", [])
    patient = None
    if claim is not None and claim.patient is not None and claim.patient.reference:
        ref = claim.patient.reference.split("/")[-1]
        patient = next((p for p in patients if p.id == ref), None)
    if patient is None and len(patients) == 1:
        patient = patients[0]
    for p in patients:
        if p is not patient:
            unused.append(f"{_ref(p)} (not the claim's patient)")
    if patient is not None and patient.birthDate is not None:
        born = _as_date(patient.birthDate)
        if born is not None:
            used.add(_ref(patient))
            vals.add("age_years", float(_age(born, when)), _ref(patient), "birthDate")
        else:
            unused.append(f"{_ref(patient)} birthDate (partial date: no age)")

    # diagnoses: every ICD-10-CM code, from every source (a list: codes add up, they do not conflict)
    icd: dict[str, set] = {}
    for cond in by_type.get("Condition", []):
        status = [c.code for c in _codings(cond.verificationStatus)]
        if any(c in codes.CONDITION_EXCLUDED for c in status):
            unused.append(f"{_ref(cond)} (verificationStatus {status[0]})")
            continue
        for c in _codings(cond.code):
            if c.system == codes.ICD10_CM and c.code:
                icd.setdefault(_icd10(c.code, _ref(cond), "code"), set()).add((_ref(cond), "code"))
                used.add(_ref(cond))
    if claim is not None:
        for k, dx in enumerate(claim.diagnosis or []):
            for c in _codings(dx.diagnosisCodeableConcept):
                if c.system == codes.ICD10_CM and c.code:
                    element = f"diagnosis[{k}].diagnosisCodeableConcept"
                    icd.setdefault(_icd10(c.code, _ref(claim), element), set()).add((_ref(claim), element))

    # observations: the latest on or before the request date; equal dates that disagree conflict
    obs_by_fact: dict[str, list] = {}
    for o in by_type.get("Observation", []):
        fact = next((f for f, (loinc, _) in declared.observations.items()
                     if any(c.system == codes.LOINC and c.code == loinc for c in _codings(o.code))), None)
        if fact is None or o.status not in codes.OBSERVATION_STATUSES:
            unused.append(_ref(o) + ("" if fact is None else f" (status {o.status})"))
            continue
        taken = _as_date(o.effectiveDateTime) if o.effectiveDateTime is not None else \
            (_as_date(o.effectivePeriod.end or o.effectivePeriod.start) if o.effectivePeriod is not None else None)
        taken = taken or when
        if taken > when:
            unused.append(f"{_ref(o)} (taken after the request date)")
            continue
        v = _quantity(o.valueQuantity, fact, f"{_ref(o)} valueQuantity", declared)
        if v is None:
            unused.append(f"{_ref(o)} (no value)")
            continue
        obs_by_fact.setdefault(fact, []).append((taken, v, _ref(o)))
    for fact, got in obs_by_fact.items():
        latest = max(t for t, _, _ in got)
        for t, v, ref in got:
            if t == latest:
                vals.add(fact, v, ref, "valueQuantity")
                used.add(ref)
            else:
                unused.append(f"{ref} (an older {fact})")

    facts, sources, conflicts = vals.resolve()
    for c in conflicts:                  # a conflict makes a fact unknown, never hides a bad value
        for v in c["values"]:
            _check({"facts": {c["fact"]: v["value"]}}, {c["fact"]: [v]}, declared)
    if icd:
        facts[ICD10_CODES] = sorted(icd)
        sources[ICD10_CODES] = [{"resource": r, "element": e} for r, e in sorted(set().union(*icd.values()))]
    case = {"drug": chosen, "request": request or declared.default_request, "facts": facts}
    if case_id:
        case["case_id"] = str(case_id)
    sources["drug"] = sorted(drug_sources, key=lambda s: (s["resource"], s["element"]))
    sources["request"] = [request_src] if request_src else [{"resource": "(default)", "element": declared.default_request}]
    sources["request_date"] = [when_src]
    for r in resources:
        if _ref(r) not in used and not any(u.startswith(_ref(r)) for u in unused):
            unused.append(_ref(r))
    _check(case, sources, declared)
    return FhirCase(case, dict(sorted(sources.items())), conflicts, sorted(set(unused)), when,
                    claim=_ref(claim) if claim is not None else None,
                    patient=_ref(patient) if patient is not None else None)


def _icd10(code: str, ref: str, element: str) -> str:
    norm = icd10(code)
    if norm is None:
        raise FhirError(f"{ref} {element}: {code!r} is not an ICD-10 code (e.g. C91.00)")
    return norm


def _items(items, path: str):
    """Every item of a QuestionnaireResponse, nested in items or in answers."""
    for i, item in enumerate(items):
        here = f"{path}[{i}]"
        yield item, here
        yield from _items(item.item or [], f"{here}.item")
        for j, a in enumerate(item.answer or []):
            yield from _items(a.item or [], f"{here}.answer[{j}].item")


def _answer(a, fact: str, kind: tuple, ref: str, declared) -> Any:
    k, choices = kind
    where = f"{ref} item {fact}"
    if k == "bool":
        if a.valueBoolean is None:
            raise FhirError(f"{where}: expected valueBoolean")
        return bool(a.valueBoolean)
    if k == "enum":
        v = a.valueCoding.code if a.valueCoding is not None else a.valueString
        if v is None:
            raise FhirError(f"{where}: expected valueCoding or valueString")
        return v
    if k == "integer":
        if a.valueInteger is None:
            raise FhirError(f"{where}: expected valueInteger")
        return int(a.valueInteger)
    if fact in declared.observations and a.valueQuantity is not None:
        return _quantity(a.valueQuantity, fact, f"{where} valueQuantity", declared)
    if a.valueDecimal is not None:
        return float(a.valueDecimal)
    if a.valueInteger is not None:
        return float(a.valueInteger)
    raise FhirError(f"{where}: expected valueDecimal or valueInteger")


def _quantity(q, fact: str, where: str, declared) -> Optional[float]:
    if q is None or q.value is None:
        return None
    units = declared.observations[fact][1]
    unit = q.code or q.unit
    if (q.system not in (None, codes.UCUM)) or unit not in units:
        raise FhirError(f"{where}: unit {unit!r} is not one of {', '.join(units)} (UCUM)")
    factor = units[unit]
    return float(q.value) if factor == 1.0 else round(float(q.value) * factor, 6)


def _age(born: dt.date, on: dt.date) -> int:
    """Completed years on a date; a birthday on that date counts (29 February: 1 March in other years)."""
    years = on.year - born.year
    if (on.month, on.day) < (born.month, born.day):
        years -= 1
    return max(years, 0) if on >= born else -1


def _check(case: dict, sources: dict, declared) -> None:
    """The case is valid CASE.md, or FhirError naming the source of the bad value."""
    from solver.case.models import parse_case, types

    try:
        parse_case(case, types(declared))
    except CaseError as err:
        msg = str(err)
        field = msg.split(":", 1)[0]
        fact = field.split(".", 1)[1].split("[", 1)[0] if field.startswith("facts.") else field
        srcs = sources.get(fact) or []
        where = ", ".join(f"{s['resource']} {s['element']}" for s in srcs) or "(bundle)"
        raise FhirError(f"{where}: {msg}", case.get("case_id")) from None
