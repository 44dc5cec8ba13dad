"""Bundles written for tests: a CASE.md case as the FHIR resources a payer
would receive (a PAS Claim, the Patient, Observations, Conditions and a
QuestionnaireResponse), by the table of shared/spec/FHIR.md.  Codes come
from solver.fhir.codes, the one place the reader takes them from too."""

from __future__ import annotations

import datetime as dt
from typing import Optional

from solver.rules import declared
from solver.fhir import codes

HCPCS_FOR = {drug: code for (system, code), drug in declared.of().drug_codes.items() if system == codes.HCPCS}


def birth_date(age: float, on: dt.date) -> dt.date:
    """A birth date that gives `age` completed years on `on`."""
    years = int(age)
    try:
        return on.replace(year=on.year - years)
    except ValueError:                       # 29 February in a year without one
        return on.replace(year=on.year - years, day=28)


def claim(drug: str = "inotuzumab_ozogamicin", request: str = "initial", created: str = "2025-03-01T10:00:00-05:00",
          cid: str = "claim1", diagnoses: tuple = ()) -> dict:
    cert = {"initial": "I", "continuation": "R"}[request]
    out = {
        "resourceType": "Claim", "id": cid, "status": "active", "use": "preauthorization",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]},
        "patient": {"reference": "Patient/pat1"}, "created": created,
        "provider": {"reference": "Organization/prov1"}, "priority": {"coding": [{"code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "Coverage/cov1"}}],
        "item": [{"sequence": 1, "productOrService": {"coding": [{"system": codes.HCPCS, "code": HCPCS_FOR[drug]}]},
                  "extension": [{"url": codes.CERTIFICATION_TYPE_URL, "valueCodeableConcept": {"coding": [
                      {"system": "https://codesystem.x12.org/005010/1322", "code": cert}]}}]}],
    }
    if diagnoses:
        out["diagnosis"] = [{"sequence": i + 1, "diagnosisCodeableConcept": {"coding": [
            {"system": codes.ICD10_CM, "code": c}]}} for i, c in enumerate(diagnoses)]
    return out


def patient(birth: Optional[dt.date], pid: str = "pat1") -> dict:
    out = {"resourceType": "Patient", "id": pid}
    if birth is not None:
        out["birthDate"] = birth.isoformat()
    return out


def observation(fact: str, value: float, unit: Optional[str] = None, oid: str = "obs1",
                status: str = "final", effective: Optional[str] = None) -> dict:
    loinc, units = declared.of().observations[fact]
    unit = unit or next(iter(units))
    out = {"resourceType": "Observation", "id": oid, "status": status,
           "code": {"coding": [{"system": codes.LOINC, "code": loinc}]}, "subject": {"reference": "Patient/pat1"},
           "valueQuantity": {"value": value, "system": codes.UCUM, "code": unit, "unit": unit}}
    if effective:
        out["effectiveDateTime"] = effective
    return out


def condition(code: str, cid: str = "cond1", verification: Optional[str] = None) -> dict:
    out = {"resourceType": "Condition", "id": cid, "subject": {"reference": "Patient/pat1"},
           "code": {"coding": [{"system": codes.ICD10_CM, "code": code}]}}
    if verification:
        out["verificationStatus"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": verification}]}
    return out


def answer(kind: str, value) -> dict:
    if kind == "bool":
        return {"valueBoolean": value}
    if kind == "enum":
        return {"valueCoding": {"code": value}}
    if kind == "integer":
        return {"valueInteger": value}
    return {"valueDecimal": value}


def questionnaire_response(items: list, qid: str = "qr1", authored: Optional[str] = None,
                           status: str = "completed") -> dict:
    out = {"resourceType": "QuestionnaireResponse", "id": qid, "status": status, "item": items}
    if authored:
        out["authored"] = authored
    return out


def bundle(*resources: dict, bid: Optional[str] = "b1", timestamp: Optional[str] = None) -> dict:
    out = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
    if bid:
        out["id"] = bid
    if timestamp:
        out["timestamp"] = timestamp
    return out


def bundle_for(case: dict, on: dt.date = dt.date(2025, 3, 1), nested: bool = True) -> dict:
    """The case as a PAS request bundle: age as a birth date, weight and height
    as Observations, ICD-10 codes as Conditions, every other fact as a
    QuestionnaireResponse item (in groups when `nested`)."""
    from strategies import kind

    facts = case.get("facts", {})
    drug = case.get("drug", "inotuzumab_ozogamicin")
    resources = [claim(drug, case.get("request", "initial"), created=f"{on.isoformat()}T09:00:00Z"),
                 patient(birth_date(facts["age_years"], on) if facts.get("age_years") is not None else None)]
    items = []
    for name, value in facts.items():
        if value is None or name == "age_years":
            continue
        if name in declared.of().observations:
            resources.append(observation(name, value, oid=f"obs-{name.replace('_', '-')}"))
        elif name == "icd10_codes":
            resources += [condition(c, cid=f"cond{i}") for i, c in enumerate(value)]
        else:
            items.append({"linkId": name, "answer": [answer(kind(name), value)]})
    if items:
        if nested:
            half = len(items) // 2
            items = [{"linkId": "group-a", "item": items[:half]}, {"linkId": "group-b", "item": items[half:]}]
        resources.append(questionnaire_response(items))
    b = bundle(*resources, bid=None)
    if case.get("case_id") is not None:
        b["identifier"] = {"system": "urn:example:cases", "value": case["case_id"]}
    return b
