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

from solver.fhir import codes

CRITERION_SYSTEM = "urn:pa-solver:criterion"
QUESTIONNAIRE_URL = "urn:pa-solver:questionnaire"

def _kinds(rules) -> dict[str, tuple[str, tuple]]:
    from solver.fhir.values import fact_kinds

    return fact_kinds(rules.declared)


def question_item(fact: str, kind: tuple, criteria: list, rules) -> dict:
    k, choices = kind
    decl = rules.declared.facts.get(fact)
    item = {"linkId": fact, "text": decl.asked if decl is not None else fact.replace("_", " ").capitalize(),
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
    elif fact in rules.declared.observations:
        item["type"] = "quantity"
        units = rules.declared.observations[fact][1]
        unit = next(iter(units))
        item["extension"] = [{"url": "http://hl7.org/fhir/StructureDefinition/questionnaire-unitOption",
                              "valueCoding": {"system": codes.UCUM, "code": u, "display": u}}
                             for u in units]
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
    kinds = _kinds(rules)
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
    items = [question_item(f, kinds[f], sorted(serves.get(f, ())), rules) for f in order]
    name = f"{drug}-{request}".replace("_", "-")
    return {
        "resourceType": "Questionnaire", "id": f"pa-{name}", "url": f"{QUESTIONNAIRE_URL}:{name}",
        "name": f"PriorAuthorization_{''.join(w.capitalize() for w in name.split('-'))}", "title": title,
        "status": "active", "subjectType": ["Patient"],
        "description": f"{drug}, {request} request; plans: {', '.join(plans)}. rules {rules.version}",
        "item": items,
    }

