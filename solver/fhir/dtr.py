"""A DTR-style Questionnaire built from the rule base itself
(shared/spec/FHIR.md, "What comes back").

    questionnaire(solver, drug, request, plans)            every fact the plans' criteria test
    questionnaire(solver, ..., result=decided)             adaptive: only what the rules still need

One item per fact: `linkId` = the CASE.md fact name (so a QuestionnaireResponse
to it is read by solver/fhir/reader.py as it stands), type boolean, choice
(answerOption codes = the fact's values in the rule base's domain), integer,
decimal or quantity, a question in words, and in `code` the criteria the
answer serves (id, citation).  Adaptive: only facts still unknown that appear
in some minimal missing set of a plan that needs information, the fact the
most plans need first (then by name).
"""

from __future__ import annotations

from typing import Iterable, Optional

from . import codes

CRITERION_SYSTEM = "urn:pa-solver:criterion"
QUESTIONNAIRE_URL = "urn:pa-solver:questionnaire"

QUESTIONS: dict[str, str] = {
    "age_years": "Age of the patient on the request date, in years",
    "weight_kg": "Body weight",
    "height_cm": "Body height",
    "diagnosis": "Diagnosis",
    "b_cell_precursor": "Is the disease B-cell precursor?",
    "cd22_positive": "Is the disease CD22-positive (confirmed by testing)?",
    "ph_status": "Philadelphia chromosome status",
    "disease_setting": "Disease setting",
    "nccn_category": "NCCN category of evidence for this use",
    "regimen": "Regimen",
    "with_rituximab": "Will it be given with rituximab?",
    "planned_cycles": "Number of treatment cycles planned",
    "units_per_21_days": "Billable units per 21 days",
    "dose_within_label": "Is the dose within the FDA label?",
    "baseline_ecg_normal": "Is the baseline ECG within normal limits?",
    "ecg_monitoring_planned": "Will the ECG be monitored during treatment?",
    "substantial_comorbidities": "Does the patient have substantial comorbidities?",
    "prior_inotuzumab": "Has the patient received inotuzumab ozogamicin before?",
    "tki_failure": "Has a tyrosine kinase inhibitor failed (intolerance or refractory disease)?",
    "prior_systemic_therapies": "Number of prior systemic therapies",
    "complete_remission_after_initial": "Complete remission after the initial course?",
    "cycles_received": "Number of cycles received so far",
    "unacceptable_toxicity": "Has there been unacceptable toxicity?",
    "disease_progression": "Has the disease progressed on this drug?",
    "prescriber_specialty": "Specialty of the prescriber",
    "months_since_initial_authorization": "Months since the initial authorization",
    "new_to_plan_on_treatment": "Is the member new to the plan and already on this drug?",
    "supplied_by_samples_or_pap": "Was the drug supplied by samples or a patient assistance program?",
}


def _kinds() -> dict[str, tuple[str, tuple]]:
    from .reader import _fact_kinds

    return _fact_kinds()


def _item(fact: str, kind: tuple, criteria: list, rules) -> dict:
    k, choices = kind
    item = {"linkId": fact, "text": QUESTIONS.get(fact, fact.replace("_", " ").capitalize()),
            "code": [{"system": CRITERION_SYSTEM, "code": c, "display": rules.criteria[c].source}
                     for c in criteria if c in rules.criteria]}
    if k == "bool":
        item["type"] = "boolean"
    elif k == "enum":
        item["type"] = "choice"
        domain = rules.facts.get(fact)
        values = [v.string for v in domain.values] if domain is not None else list(choices)   # the rule base's domain
        item["answerOption"] = [{"valueCoding": {"code": v, "display": v.replace("_", " ")}} for v in values]
    elif k == "integer":
        item["type"] = "integer"
    elif fact in codes.OBSERVATIONS:
        item["type"] = "quantity"
        unit = next(iter(codes.OBSERVATIONS[fact][1]))
        item["extension"] = [{"url": "http://hl7.org/fhir/StructureDefinition/questionnaire-unitOption",
                              "valueCoding": {"system": codes.UCUM, "code": u, "display": u}}
                             for u in codes.OBSERVATIONS[fact][1]]
        item["text"] += f" ({unit})"
    else:
        item["type"] = "decimal"
    if not item["code"]:
        del item["code"]
    return item


def questionnaire(solver, drug: str, request: str, plans: Optional[Iterable[str]] = None,
                  result: Optional[dict] = None) -> dict:
    """The Questionnaire for these plans, drug and request; adaptive when
    `result` (a decided case of that drug and request) is given."""
    rules = solver.rules
    plans = sorted(plans) if plans else sorted(rules.plans)
    cfacts = rules.criterion_facts
    serves: dict[str, set] = {}
    for pw in rules.pathways.values():
        if pw.plan in plans and drug in pw.drugs and request in pw.requests:
            for c in pw.criteria:
                for f in cfacts.get(c, ()):
                    serves.setdefault(f, set()).add(c)
    kinds = _kinds()
    if result is None:
        order = sorted(f for f in serves if f in kinds)
        title = "Prior authorization questions"
    else:
        need: dict[str, set] = {}
        for r in result["results"]:
            if r["plan"] in plans and r["decision"] == "needs_info":
                for m in r["missing"]:
                    for f in m["facts"]:
                        need.setdefault(f["fact"], set()).add(r["plan"])
        order = sorted((f for f in need if f in kinds), key=lambda f: (-len(need[f]), f))
        title = "Prior authorization: what the rules still need"
    items = [_item(f, kinds[f], sorted(serves.get(f, ())), rules) for f in order]
    name = f"{drug}-{request}".replace("_", "-")
    return {
        "resourceType": "Questionnaire", "id": f"pa-{name}", "url": f"{QUESTIONNAIRE_URL}:{name}",
        "name": f"PriorAuthorization_{''.join(w.capitalize() for w in name.split('-'))}", "title": title,
        "status": "active", "subjectType": ["Patient"],
        "description": f"{drug}, {request} request; plans: {', '.join(plans)}. rules {rules.version}",
        "item": items,
    }

