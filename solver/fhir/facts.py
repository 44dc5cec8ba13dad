"""The clinical facts of a bundle (solver/fhir/reader.py), one kind of resource at a time:
QuestionnaireResponse answers, the patient's age, the diagnoses (ICD-10-CM codes) and the
observations, each value with the resource and element it came from.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from solver.base.contract import icd10
from solver.fhir import codes
from solver.fhir.resources import FhirError, as_date, codings, ref
from solver.fhir.values import Reading, fact_kinds


def questionnaire_answers(got: Reading, qrs: list, request: Optional[str], request_src: Optional[dict]):
    """The facts QuestionnaireResponse items answer, at any depth, and the request they name where the
    Claim names none: (request, its source)."""
    declared = got.declared
    kinds = fact_kinds(declared)
    for q in qrs:
        for item, path in _items(q.item or [], "item"):
            link = item.linkId
            answers = item.answer or []
            if link == "request":
                got.used.add(ref(q))
                for a in answers:
                    v = a.valueCoding.code if a.valueCoding is not None else a.valueString
                    if v in declared.requests and request is None:
                        request, request_src = v, {"resource": ref(q), "element": f"{path}[linkId=request]"}
                continue
            if link not in kinds or kinds[link][0] == "list":
                leaf = not item.item and not any(a.item for a in answers)     # groups are read for their items
                if leaf and (not answers or link not in kinds):
                    got.unused.append(f"{ref(q)} item {link}")
                continue
            got.used.add(ref(q))
            for a in answers[:1]:
                v = _answer(a, link, kinds[link], ref(q), declared)
                if v is not None:
                    got.vals.add(link, v, ref(q), f"item[linkId={link}]")
    for q in got.of("QuestionnaireResponse"):
        if q.status in codes.QUESTIONNAIRE_RESPONSE_EXCLUDED:
            got.unused.append(f"{ref(q)} (status {q.status})")
    return request, request_src


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


def patient_age(got: Reading, claim, when: dt.date):
    """The claim's patient (else the bundle's only one) and its age on the request date; None: no patient."""
    patients = got.of("Patient")
    patient = None
    if claim is not None and claim.patient is not None and claim.patient.reference:
        wanted = claim.patient.reference.split("/")[-1]
        patient = next((p for p in patients if p.id == wanted), None)
    if patient is None and len(patients) == 1:
        patient = patients[0]
    for p in patients:
        if p is not patient:
            got.unused.append(f"{ref(p)} (not the claim's patient)")
    if patient is not None and patient.birthDate is not None:
        born = as_date(patient.birthDate)
        if born is not None:
            got.used.add(ref(patient))
            got.vals.add("age_years", float(_age(born, when)), ref(patient), "birthDate")
        else:
            got.unused.append(f"{ref(patient)} birthDate (partial date: no age)")
    return patient


def _age(born: dt.date, on: dt.date) -> int:
    """Completed years on a date; a birthday on that date counts (29 February: 1 March in other years)."""
    years = on.year - born.year
    if (on.month, on.day) < (born.month, born.day):
        years -= 1
    return max(years, 0) if on >= born else -1


def diagnoses(got: Reading, claim) -> dict[str, set]:
    """Every ICD-10-CM code, from every source (a list: codes add up, they do not conflict): code ->
    {(resource, element)}."""
    icd: dict[str, set] = {}
    for cond in got.of("Condition"):
        status = [c.code for c in codings(cond.verificationStatus)]
        if any(c in codes.CONDITION_EXCLUDED for c in status):
            got.unused.append(f"{ref(cond)} (verificationStatus {status[0]})")
            continue
        for c in codings(cond.code):
            if c.system == codes.ICD10_CM and c.code:
                icd.setdefault(_icd10(c.code, ref(cond), "code"), set()).add((ref(cond), "code"))
                got.used.add(ref(cond))
    if claim is not None:
        for k, dx in enumerate(claim.diagnosis or []):
            for c in codings(dx.diagnosisCodeableConcept):
                if c.system == codes.ICD10_CM and c.code:
                    element = f"diagnosis[{k}].diagnosisCodeableConcept"
                    icd.setdefault(_icd10(c.code, ref(claim), element), set()).add((ref(claim), element))
    return icd


def _icd10(code: str, ref: str, element: str) -> str:
    norm = icd10(code)
    if norm is None:
        raise FhirError(f"{ref} {element}: {code!r} is not an ICD-10 code (e.g. C91.00)")
    return norm


def observations(got: Reading, when: dt.date) -> None:
    """The observations' facts: the latest on or before the request date; equal dates that disagree conflict."""
    declared = got.declared
    obs_by_fact: dict[str, list] = {}
    for o in got.of("Observation"):
        fact = next((f for f, (loinc, _) in declared.observations.items()
                     if any(c.system == codes.LOINC and c.code == loinc for c in codings(o.code))), None)
        if fact is None or o.status not in codes.OBSERVATION_STATUSES:
            got.unused.append(ref(o) + ("" if fact is None else f" (status {o.status})"))
            continue
        taken = as_date(o.effectiveDateTime) if o.effectiveDateTime is not None else \
            (as_date(o.effectivePeriod.end or o.effectivePeriod.start) if o.effectivePeriod is not None else None)
        taken = taken or when
        if taken > when:
            got.unused.append(f"{ref(o)} (taken after the request date)")
            continue
        v = _quantity(o.valueQuantity, fact, f"{ref(o)} valueQuantity", declared)
        if v is None:
            got.unused.append(f"{ref(o)} (no value)")
            continue
        obs_by_fact.setdefault(fact, []).append((taken, v, ref(o)))
    for fact, found in obs_by_fact.items():
        latest = max(t for t, _, _ in found)
        for t, v, r in found:
            if t == latest:
                got.vals.add(fact, v, r, "valueQuantity")
                got.used.add(r)
            else:
                got.unused.append(f"{r} (an older {fact})")


def _quantity(q, fact: str, where: str, declared) -> Optional[float]:
    if q is None or q.value is None:
        return None
    units = declared.observations[fact][1]
    unit = q.code or q.unit
    if (q.system not in (None, codes.UCUM)) or unit not in units:
        raise FhirError(f"{where}: unit {unit!r} is not one of {', '.join(units)} (UCUM)")
    factor = units[unit]
    return float(q.value) if factor == 1.0 else round(float(q.value) * factor, 6)

