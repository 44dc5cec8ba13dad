"""A FHIR R4 Bundle in, a CASE.md case out, with where every value came from
(shared/spec/FHIR.md).  The engine and the rule base never see FHIR.

    got = read_bundle(obj, as_of=None, drug=None)
    got.case          # a CASE.md case (a dict), valid: decided on its own it gives the same result
    got.sources       # fact -> [{"resource": "Observation/w1", "element": "valueQuantity"}, ...]
    got.conflicts     # [{"fact", "values": [{"value", "resource", "element"}, ...]}]: the fact is unknown
    got.unused        # resources and items that gave no fact

Every resource the mapping reads is validated, one resource at a time, so
that an error names the resource and the element (`Patient/p1 birthDate:
...`): solver/fhir/resources.py.  The steps: the bundle's entries
(resources.py), the request date, the case's id, the drug, the kind of
request, then the clinical facts (facts.py: QuestionnaireResponse answers,
the patient's age, diagnoses, observations), merged or in conflict and the
case checked (values.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from solver.base.contract import ICD10_CODES
from solver.rules.declared import CODE_SYSTEMS
from solver.fhir import codes
from solver.fhir.facts import diagnoses, observations, patient_age, questionnaire_answers
from solver.fhir.resources import FhirError, as_date, codings, read_entries, ref
from solver.fhir.values import Reading, check_case


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


def read_bundle(obj: Any, as_of: Optional[dt.date] = None, drug: Optional[str] = None,
                fast_path: bool = True, declared=None) -> FhirCase:
    """The case a FHIR R4 Bundle asks about (FHIR.md), or FhirError.  `fast_path`
    False validates every read resource with its R4B model (fast.py reads the
    same elements the same way, and defers to R4B on anything it doubts).
    `declared`: the rule base's declarations (its drugs' codes, its facts); default, the
    rule base in use."""
    declared = _declared(declared)
    got = Reading(*read_entries(obj, fast_path), declared)
    claims = got.of("Claim")
    claim = claims[0] if claims else None
    qrs = [q for q in got.of("QuestionnaireResponse") if q.status not in codes.QUESTIONNAIRE_RESPONSE_EXCLUDED]
    when, when_src = _request_date(obj, claim, qrs, as_of)
    case_id = _case_id(obj, claim)
    chosen, drug_sources = _drug(got, claim, drug)
    request, request_src = questionnaire_answers(got, qrs, *_claim_request(claim))
    patient = patient_age(got, claim, when)
    icd = diagnoses(got, claim)
    observations(got, when)

    facts, sources, conflicts = got.vals.resolve()
    for c in conflicts:                  # a conflict makes a fact unknown, never hides a bad value
        for v in c["values"]:
            check_case({"facts": {c["fact"]: v["value"]}}, {c["fact"]: [v]}, declared)
    if icd:
        facts[ICD10_CODES] = sorted(icd)
        sources[ICD10_CODES] = [{"resource": r, "element": e} for r, e in sorted(set().union(*icd.values()))]
    case = {"drug": chosen, "request": request or declared.default_request, "facts": facts}
    if case_id:
        case["case_id"] = str(case_id)
    sources["drug"] = sorted(drug_sources, key=lambda s: (s["resource"], s["element"]))
    sources["request"] = [request_src] if request_src else [{"resource": "(default)", "element": declared.default_request}]
    sources["request_date"] = [when_src]
    unused = got.left_unused()
    check_case(case, sources, declared)
    return FhirCase(case, dict(sorted(sources.items())), conflicts, unused, when,
                    claim=ref(claim) if claim is not None else None,
                    patient=ref(patient) if patient is not None else None)


def _declared(declared):
    if declared is None:
        from solver.rules import declared as d

        return d.of()
    return declared


def _request_date(obj: dict, claim, qrs: list, as_of: Optional[dt.date]) -> tuple[dt.date, dict]:
    """The request date and its source: --as-of, else Claim.created, else the latest
    QuestionnaireResponse.authored, else Bundle.timestamp; FhirError when there is none."""
    when, when_src = None, None
    if as_of is not None:
        when, when_src = as_of, {"resource": "(--as-of)", "element": "as_of"}
    elif claim is not None and claim.created is not None:
        when, when_src = _full_date(claim.created, ref(claim), "created"), {"resource": ref(claim),
                                                                            "element": "created"}
    else:
        authored = [(_full_date(q.authored, ref(q), "authored"), q) for q in qrs if q.authored is not None]
        if authored:
            d, q = max(authored, key=lambda x: x[0])
            when, when_src = d, {"resource": ref(q), "element": "authored"}
        elif obj.get("timestamp"):
            try:
                when = dt.date.fromisoformat(str(obj["timestamp"])[:10])
            except ValueError:
                raise FhirError(f"Bundle.timestamp: {obj['timestamp']!r} is not a date") from None
            when_src = {"resource": "Bundle", "element": "timestamp"}
    if when is None:
        raise FhirError("no request date: the bundle has no Claim.created, QuestionnaireResponse.authored or "
                        "Bundle.timestamp; give one with --as-of YYYY-MM-DD")
    return when, when_src


def _full_date(value, where: str, element: str) -> dt.date:
    """The date of a request-date source, or FhirError saying why it has none."""
    got = as_date(value)
    if got is None:
        raise FhirError(f"{where} {element}: {str(value)!r} is not a full date (a year or a month only), so it "
                        f"gives no request date; give one with --as-of YYYY-MM-DD")
    return got


def _case_id(obj: dict, claim) -> Any:
    """Bundle.identifier.value, else Bundle.id, else the Claim's first identifier."""
    ident = obj.get("identifier")
    case_id = ident.get("value") if isinstance(ident, dict) else None
    case_id = case_id or obj.get("id")
    if not case_id and claim is not None and claim.identifier:
        case_id = claim.identifier[0].value
    return case_id


def _drug(got: Reading, claim, drug: Optional[str]) -> tuple[str, list]:
    """The drug requested and its sources: --drug, else the one drug the Claim's items and the
    MedicationRequests name; FhirError for none or more than one."""
    declared = got.declared
    drugs: dict[str, list] = {}
    looked = []
    if claim is not None:
        looked.append(f"{ref(claim)} item.productOrService")
        got.used.add(ref(claim))
        for k, item in enumerate(claim.item or []):
            for c in codings(item.productOrService):
                d = declared.drug_codes.get((c.system, c.code))
                if d:
                    drugs.setdefault(d, []).append({"resource": ref(claim),
                                                    "element": f"item[{k}].productOrService"})
    for mr in got.of("MedicationRequest"):
        looked.append(f"{ref(mr)} medicationCodeableConcept")
        if mr.status in codes.MEDICATION_REQUEST_EXCLUDED:
            continue
        for c in codings(mr.medicationCodeableConcept):
            d = declared.drug_codes.get((c.system, c.code))
            if d:
                drugs.setdefault(d, []).append({"resource": ref(mr), "element": "medicationCodeableConcept"})
                got.used.add(ref(mr))
    if drug is not None:
        return drug, drugs.get(drug) or [{"resource": "(--drug)", "element": "drug"}]
    if len(drugs) == 1:
        chosen = next(iter(drugs))
        return chosen, drugs[chosen]
    if len(drugs) > 1:
        raise FhirError(f"the bundle requests both {' and '.join(sorted(drugs))}: pick one with --drug")
    where = "; ".join(looked) or "no Claim or MedicationRequest in the bundle"
    raise FhirError(f"the bundle requests {_drug_words(declared)}: looked in {where}")


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


def _claim_request(claim) -> tuple[Optional[str], Optional[dict]]:
    """The kind of request the certificationType extension on a Claim item names, and its source
    (None, None: none; a QuestionnaireResponse item may name it)."""
    request, request_src = None, None
    if claim is not None:
        for k, item in enumerate(claim.item or []):
            for ext in item.extension or []:
                if ext.url == codes.CERTIFICATION_TYPE_URL and ext.valueCodeableConcept is not None:
                    for c in codings(ext.valueCodeableConcept):
                        if c.code in codes.CERTIFICATION_TYPES:
                            request = codes.CERTIFICATION_TYPES[c.code]
                            request_src = {"resource": ref(claim), "element": f"item[{k}].extension(certificationType)"}
    return request, request_src
