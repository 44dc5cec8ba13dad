"""CRD over CDS Hooks 2.0 (SERVICE.md, "CRD answers"): discovery, and order-sign / order-select.

    services()                                  # GET /cds-services
    answer(hook_request, solver, server_plans)  # POST /cds-services/{id}: (response, decisions recorded)

For each draft order for one of our drugs (MedicationRequest, ServiceRequest or a Claim item
coded HCPCS J9229 / J9039), the order and the prefetched resources become one FHIR Bundle that
solver/fhir reads as any other (FHIR.md); the plan is read from the order's Coverage.  Each
order gets one `systemActions` update carrying one ext-coverage-information extension per plan
judged, and one card that says the decision and its specific reason.  Orders for other drugs
get nothing, never an error.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import uuid
from typing import Any, Optional

from solver.fhir import codes

EXT = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
CARD_TYPE = "http://hl7.org/fhir/us/davinci-crd/CodeSystem/cardType"
ORDER_HOOKS = ("order-sign", "order-select")
# Every CRD hook has a service, so that any CRD client's call gets an answer; the others carry no
# draft drug order, so they answer no cards (their discovery entry says so).
OTHER_HOOKS = ("order-dispatch", "appointment-book", "encounter-start", "encounter-discharge")
HOOKS = {h: f"pa-solver-{h}" for h in ORDER_HOOKS + OTHER_HOOKS}
ORDER_TYPES = ("MedicationRequest", "ServiceRequest", "Claim")
# HCPCS as CRD's examples write it, beside FHIR.md's system
HCPCS_SYSTEMS = (codes.HCPCS, "https://bluebutton.cms.gov/resources/codesystem/hcpcs", "http://www.cms.gov/hcpcs")
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "coverage": "Coverage?patient={{context.patientId}}&status=active",
    "conditions": "Condition?patient={{context.patientId}}",
    "observations": "Observation?patient={{context.patientId}}&code={loinc}",    # the rule base's loinc/2 codes
    "questionnaireResponses": "QuestionnaireResponse?subject={{context.patientId}}",
}


class HookError(ValueError):
    """A CDS Hooks request that cannot be answered (400), with the field named."""


def prefetch(declared=None) -> dict:
    """The prefetch templates: the Observations asked for are those the rule base reads (loinc/2)."""
    if declared is None:
        from solver.rules.declared import of

        declared = of()
    codes_asked = ",".join(f"{codes.LOINC}|{loinc}" for loinc, _ in declared.observations.values())
    return {k: v.replace("{loinc}", codes_asked) for k, v in PREFETCH.items()}


def services(declared=None) -> dict:
    out = []
    for hook, sid in HOOKS.items():
        if hook in ORDER_HOOKS:
            out.append({"hook": hook, "id": sid, "title": f"pa-solver coverage requirements ({hook})",
                        "description": "Prior-authorization requirements for Besponsa and Blincyto, decided by the "
                                       "plans' written criteria: covered, auth needed (with the questions the rules "
                                       "still need), or not covered with the criteria not met.",
                        "prefetch": prefetch(declared),
                        "usageRequirements": "Send the order's Coverage (prefetch coverage) to be judged under its "
                                             "plan."})
        else:
            out.append({"hook": hook, "id": sid, "title": f"pa-solver ({hook}): no cards",
                        "description": "pa-solver decides draft drug orders (order-sign, order-select); this hook "
                                       "carries none, so it always answers no cards and no actions."})
    return {"services": out}


def _resources(value: Any) -> list[dict]:
    """The resources in a prefetch value: a resource, or a Bundle's entries."""
    if not isinstance(value, dict):
        return []
    if value.get("resourceType") == "Bundle":
        return [e["resource"] for e in value.get("entry") or [] if isinstance(e, dict)
                and isinstance(e.get("resource"), dict) and "resourceType" in e["resource"]]
    return [value] if "resourceType" in value else []


def _codings(cc: Any) -> list[dict]:
    return [c for c in (cc or {}).get("coding") or [] if isinstance(c, dict)] if isinstance(cc, dict) else []


def _drug(order: dict, declared) -> Optional[str]:
    """The drug an order asks for, by the codes the rule base declares (drug_code/3)."""
    rtype = order.get("resourceType")
    if rtype == "MedicationRequest":
        ccs = [order.get("medicationCodeableConcept")]
    elif rtype == "ServiceRequest":
        ccs = [order.get("code")]
    elif rtype == "Claim":
        ccs = [i.get("productOrService") for i in order.get("item") or [] if isinstance(i, dict)]
    else:
        return None
    for cc in ccs:
        for c in _codings(cc):
            system, code = c.get("system"), c.get("code")
            if system in HCPCS_SYSTEMS and (codes.HCPCS, code) in declared.drug_codes:
                return declared.drug_codes[(codes.HCPCS, code)]
            if (system, code) in declared.drug_codes:
                return declared.drug_codes[(system, code)]
    return None


def _plans_of(coverage: dict, declared) -> list[str]:
    """The plan a Coverage names: class type plan whose value is a plan id, else a payor identifier
    that payer_id/3 declares, else a payor identifier whose value is a plan id."""
    for cls in coverage.get("class") or []:
        if isinstance(cls, dict) and cls.get("value") in declared.plans and any(
                c.get("code") == "plan" for c in _codings(cls.get("type"))):
            return [cls["value"]]
    idents = [p.get("identifier") for p in coverage.get("payor") or [] if isinstance(p, dict)]
    idents = [i for i in idents if isinstance(i, dict)]
    for ident in idents:
        plan = declared.payer_ids.get((ident.get("system"), ident.get("value")))
        if plan is not None:
            return [plan]
    for ident in idents:
        if ident.get("value") in declared.plans:
            return [ident["value"]]
    return []


def _order_coverages(order: dict, coverages: list[dict]) -> list[dict]:
    """The Coverages the order names (insurance / Claim.insurance.coverage), else every prefetched one."""
    refs = []
    for ins in order.get("insurance") or []:
        if isinstance(ins, dict):
            ref = ins.get("reference") or (ins.get("coverage") or {}).get("reference")
            if isinstance(ref, str):
                refs.append(ref.rsplit("/", 1)[-1])
    named = [c for c in coverages if c.get("id") in refs]
    return named or coverages


def _date(order: dict, today: dt.date) -> dt.date:
    for key in ("authoredOn", "created"):
        v = order.get(key)
        if isinstance(v, str) and len(v) >= 10:
            try:
                return dt.date.fromisoformat(v[:10])
            except ValueError:
                pass
    return today


def answer(req: Any, solver, server_plans: Optional[list[str]] = None, base_url: str = "",
           today: Optional[dt.date] = None) -> tuple[dict, list[dict]]:
    """The CDS Hooks response to one hook request, and the decisions it answers (for the store)."""
    from solver.text.jsontext import dump_text
    from solver.fhir.reader import read_bundle
    from solver.fhir.inputs import case_from
    from solver.base.contract import CaseError

    if not isinstance(req, dict):
        raise HookError("(request): expected a JSON object")
    hook = req.get("hook")
    if hook not in HOOKS:
        raise HookError(f"hook: {hook!r} is not one of {', '.join(HOOKS)}")
    ctx = req.get("context")
    if not isinstance(ctx, dict):
        raise HookError("context: expected an object")
    if not isinstance(req.get("hookInstance"), str):
        raise HookError("hookInstance: expected a string")
    if hook not in ORDER_HOOKS:
        return {"cards": [], "systemActions": []}, []
    declared = solver.rules.declared
    drafts = ctx.get("draftOrders")
    if not isinstance(drafts, dict) or drafts.get("resourceType") != "Bundle":
        raise HookError("context.draftOrders: expected a Bundle of the draft orders")
    orders = _resources(drafts)
    if hook == "order-select":
        chosen = ctx.get("selections")
        if not isinstance(chosen, list) or not all(isinstance(s, str) for s in chosen):
            raise HookError("context.selections: expected a list of ResourceType/id")
        orders = [o for o in orders if f"{o.get('resourceType')}/{o.get('id')}" in chosen]
    prefetch = req.get("prefetch") if isinstance(req.get("prefetch"), dict) else {}
    coverages = [r for r in _resources(prefetch.get("coverage")) if r.get("resourceType") == "Coverage"]
    member = [r for key in ("patient", "conditions", "observations", "questionnaireResponses")
              for r in _resources(prefetch.get(key))
              if r.get("resourceType") in ("Patient", "Condition", "Observation", "QuestionnaireResponse")]
    today = today or dt.datetime.now(dt.timezone.utc).date()

    cards, actions, decided = [], [], []
    for order in orders:
        drug = _drug(order, declared)
        if drug is None or order.get("resourceType") not in ORDER_TYPES:
            continue                                               # not ours: no card, no action
        covs = _order_coverages(order, coverages)
        if covs:
            judged = [(cov, plan) for cov in covs for plan in _plans_of(cov, declared)]
        else:
            judged = [(None, plan) for plan in (server_plans or declared.plans)]
        if not judged:
            continue                                               # a Coverage that names none of our plans
        when = _date(order, today)
        entries = [{"resource": r} for r in member]
        if order.get("resourceType") in ("MedicationRequest", "Claim"):
            entries.insert(0, {"resource": order})
        bundle = {"resourceType": "Bundle", "type": "collection", "timestamp": f"{when.isoformat()}T00:00:00Z",
                  "entry": entries}
        if order.get("resourceType") == "Claim":
            bundle["entry"][0]["resource"] = dict(order, created=order.get("created") or when.isoformat())
        try:
            fhir = read_bundle(bundle, as_of=when, drug=drug, declared=declared)
            case, _ = case_from(dict(fhir.case, plans=sorted({p for _, p in judged})), declared=declared)
        except CaseError as err:
            cards.append(_card_error(drug, str(err), declared))
            continue
        result = solver.solve(case)
        by_plan = {r["plan"]: r for r in result["results"]}
        updated = copy.deepcopy(order)
        lines = []
        for cov, plan in judged:
            r = by_plan[plan]
            if r["decision"] == "no_policy":
                continue
            digest = hashlib.sha256(dump_text({"order": _without_ours(order), "facts": case_facts(case),
                                               "plan": plan, "rules": result["rules_version"]}).encode()).hexdigest()
            updated.setdefault("extension", []).append(_extension(r, cov, plan, when, digest, solver, base_url))
            lines.append((plan, r, digest))
            decided.append({"plan": plan, "decision": r["decision"], "assertion": digest,
                            "rules_version": result["rules_version"]})
        if not lines:
            continue
        actions.append({"type": "update", "description": "Added coverage information (prior authorization "
                                                          "requirements) to the order.", "resource": updated})
        cards.append(_card(drug, lines, solver, base_url))
    return {"cards": cards, "systemActions": actions}, decided


def case_facts(case) -> dict:
    from solver.text.jsontext import dump_text

    facts = case.facts
    if hasattr(facts, "model_dump"):
        d = facts.model_dump(exclude_none=True)
    else:
        import msgspec

        d = {k: v for k, v in msgspec.structs.asdict(facts).items() if v is not None}
    return json.loads(dump_text({"drug": case.drug, "request": case.request, "facts": d}))


def _without_ours(order: dict) -> dict:
    o = dict(order)
    o["extension"] = [e for e in order.get("extension") or [] if not (isinstance(e, dict) and e.get("url") == EXT)]
    return o


def _extension(r: dict, cov: Optional[dict], plan: str, when: dt.date, digest: str, solver, base_url: str) -> dict:
    dec = r["decision"]
    ext: list[dict] = []
    if cov is not None and cov.get("id"):
        ext.append({"url": "coverage", "valueReference": {"reference": f"Coverage/{cov['id']}"}})
    else:
        ext.append({"url": "coverage", "valueReference": {"display": f"{solver.rules.plans.get(plan, plan)} "
                                                                     f"(no Coverage in the request)"}})
    covered, pa = {"approved": ("covered", "satisfied"), "needs_info": ("conditional", "auth-needed"),
                   "case_review": ("conditional", "auth-needed"), "denied": ("not-covered", None)}[dec]
    ext.append({"url": "covered", "valueCode": covered})
    if pa:
        ext.append({"url": "pa-needed", "valueCode": pa})
    if dec in ("needs_info", "case_review"):
        ext.append({"url": "doc-needed", "valueCode": "clinical"})
    if dec == "needs_info":
        ext.append({"url": "doc-purpose", "valueCode": "withpa"})
        ext.append({"url": "questionnaire", "valueCanonical": questionnaire_url(base_url, r)})
    if dec in ("case_review", "denied"):
        ext.append({"url": "reason", "valueCodeableConcept": {"text": reason(r)}})
    ext.append({"url": "date", "valueDate": when.isoformat()})
    ext.append({"url": "coverage-assertion-id", "valueString": digest})
    if dec == "approved":
        ext.append({"url": "satisfied-pa-id", "valueString": digest})
    return {"url": EXT, "extension": ext}


def questionnaire_id(plan: str, drug: str, request: str) -> str:
    return f"pa-{drug}-{request}-{plan}".replace("_", "-")


def parse_questionnaire_id(qid: str, declared) -> Optional[tuple[str, str, str]]:
    """(plan, drug, request) of a questionnaire id, or None."""
    for plan in declared.plans:
        for drug in declared.drugs:
            for request in declared.requests:
                if questionnaire_id(plan, drug, request) == qid:
                    return plan, drug, request
    return None


def questionnaire_url(base_url: str, r: dict) -> str:
    """The canonical of the plan's adaptive Questionnaire: served at GET /fhir/Questionnaire/{id},
    its questions asked one by one, only what the rules still need, by $next-question."""
    return f"{base_url.rstrip('/')}/fhir/Questionnaire/{questionnaire_id(r['plan'], r['drug'], r['request'])}"


def reason(r: dict) -> str:
    """The specific reason in words: a denial's criteria not met (citation, sentence); a case
    review's pathway; the facts a pended plan still needs; an approval's pathway."""
    from solver.case.outcome import closest

    dec = r["decision"]
    if dec == "denied":
        broken = [c for pw in closest(r["pathways"]) for c in pw["criteria"] if c["status"] == "not_met"]
        seen, parts = set(), []
        from solver.case.outcome import broken as broken_words

        for c in broken:
            if c["id"] not in seen:
                seen.add(c["id"])
                words = "; ".join(broken_words(c))
                parts.append(f"{c['id']} ({c['source']}): \u201c{c['text']}\u201d" + (f": {words}" if words else ""))
        return "Not met: " + "; ".join(parts)
    pw = next((p for p in r["pathways"] if p["id"] == r.get("pathway")), None)
    if dec == "case_review":
        return f"A person reviews it: {pw['title'] if pw else r.get('pathway')}"
    if dec == "needs_info":
        from solver.text.words import condition

        m = r["missing"][0]
        return "Needs " + "; ".join(condition(f["fact"], f.get("values"), f.get("range")) for f in m["facts"])
    return f"Approved: {pw['title'] if pw else r.get('pathway')}"


def _card(drug: str, lines: list, solver, base_url: str) -> dict:
    words = {"approved": "covered, prior authorization satisfied", "needs_info": "prior authorization needed",
             "case_review": "prior authorization needed: a person reviews it", "denied": "not covered"}
    names = [solver.rules.plans.get(p, p) for p, _, _ in lines]
    if len(lines) == 1:
        plan, r, _ = lines[0]
        summary = f"{solver.rules.declared.drugs.get(drug, drug)}: {words[r['decision']]}"
        if r["decision"] == "needs_info":
            n = len(r["missing"][0]["facts"])
            summary += f" ({n} answer{'s' * (n != 1)} would complete it)"
    else:
        summary = f"{solver.rules.declared.drugs.get(drug, drug)}: " + "; ".join(
            f"{solver.rules.plans.get(p, p)} {words[r['decision']].split(',')[0].split(':')[0]}" for p, r, _ in lines)
    detail = "\n\n".join(f"**{solver.rules.plans.get(p, p)}**: {words[r['decision']]}. {reason(r)}"
                         + (f" (policy: {r['policy']['document']})" if r.get("policy") else "")
                         for p, r, _ in lines)
    indicator = "critical" if all(r["decision"] == "denied" for _, r, _ in lines) else \
        "warning" if any(r["decision"] != "approved" for _, r, _ in lines) else "info"
    card = {"uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, "pa-solver:" + ":".join(d for _, _, d in lines))),
            "summary": summary[:140], "indicator": indicator, "detail": detail,
            "source": {"label": ", ".join(names),
                       "topic": {"system": CARD_TYPE, "code": "coverage-info", "display": "Coverage Information"}}}
    pended = [(p, r) for p, r, _ in lines if r["decision"] == "needs_info"]
    if pended:
        card["links"] = [{"label": f"Questions for {solver.rules.plans.get(p, p)}", "type": "absolute",
                          "url": questionnaire_url(base_url, r)} for p, r in pended]
    return card


def _card_error(drug: str, message: str, declared) -> dict:
    return {"uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, "pa-solver-error:" + message)),
            "summary": f"{declared.drugs.get(drug, drug)}: coverage could not be judged"[:140],
            "indicator": "warning", "detail": f"The order's data could not be read: {message}",
            "source": {"label": "pa-solver", "topic": {"system": CARD_TYPE, "code": "coverage-info",
                                                      "display": "Coverage Information"}}}
