"""DTR / SDC adaptive forms: Questionnaire/$next-question (SERVICE.md).

    next_question(body_obj, solver, server_plans)      # -> the QuestionnaireResponse, one question further

In: a QuestionnaireResponse (`in-progress`) whose `contained` Questionnaire holds the questions asked
so far (its `questionnaire` is "#" + that Questionnaire's id, or the canonical of one of the plans'
Questionnaires, `GET /fhir/Questionnaire/{id}`, whose id names the plan, drug and request), alone,
or as the parameter `questionnaire-response` of a Parameters beside the member's resources (more
`resource` parameters, or a Bundle), or inside a Bundle with them.  Every answered item counts as
FHIR.md says (its linkId is the fact name), the member's resources too.

Out: the same QuestionnaireResponse with the next question the rules still need added to its
contained Questionnaire (and an unanswered item for it), or `status` `completed` when no plan needs
more, with each plan's decision in an extension (`decision_extension`).  The next question is the first unanswered fact
of the plan's smallest missing set (CASE.md order), so answering each question with a value the
set lists approves in as many steps as that set has facts; another answer changes the sets, and
the next question comes from the new smallest one.
"""

from __future__ import annotations

import copy
from typing import Any, Optional


DECISION_EXT = "urn:pa-solver:plan-decision"
DECISION_SYSTEM = "urn:pa-solver:decision"
DECISION_WORDS = {"approved": "Approved", "denied": "Denied", "needs_info": "Needs information",
                  "case_review": "Case review", "no_policy": "No policy for this drug"}


class NextQuestionError(ValueError):
    """The request cannot be read as a $next-question input (400), or is not one (422: `not_ours`)."""

    def __init__(self, message: str, not_ours: bool = False):
        super().__init__(message)
        self.not_ours = not_ours


def _split(obj: Any) -> tuple[dict, list[dict]]:
    """(the QuestionnaireResponse, the member's resources) of the three accepted shapes."""
    if not isinstance(obj, dict):
        raise NextQuestionError("(body): expected a JSON object")
    rtype = obj.get("resourceType")
    if rtype == "QuestionnaireResponse":
        return obj, []
    if rtype == "Parameters":
        qr, others = None, []
        for p in obj.get("parameter") or []:
            res = p.get("resource") if isinstance(p, dict) else None
            if not isinstance(res, dict):
                continue
            if p.get("name") == "questionnaire-response" and res.get("resourceType") == "QuestionnaireResponse":
                qr = res
            elif res.get("resourceType") == "Bundle":
                others += [e["resource"] for e in res.get("entry") or [] if isinstance(e, dict)
                           and isinstance(e.get("resource"), dict)]
            else:
                others.append(res)
        if qr is None:
            raise NextQuestionError("Parameters: no parameter questionnaire-response holding a QuestionnaireResponse")
        return qr, others
    if rtype == "Bundle":
        res = [e["resource"] for e in obj.get("entry") or [] if isinstance(e, dict)
               and isinstance(e.get("resource"), dict)]
        qrs = [r for r in res if r.get("resourceType") == "QuestionnaireResponse" and r.get("status") == "in-progress"]
        if len(qrs) != 1:
            raise NextQuestionError(f"Bundle: expected one in-progress QuestionnaireResponse, found {len(qrs)}")
        return qrs[0], [r for r in res if r is not qrs[0]]
    raise NextQuestionError(f"$next-question takes a QuestionnaireResponse, a Parameters or a Bundle, not {rtype!r}",
                            not_ours=True)


def _target(qr: dict, declared) -> Optional[tuple[str, str, str]]:
    """(plan, drug, request) the response's Questionnaire is for, from its id or canonical."""
    from solver.fhir.crd import parse_questionnaire_id

    ref = qr.get("questionnaire")
    if not isinstance(ref, str):
        return None
    qid = ref[1:] if ref.startswith("#") else ref.rstrip("/").rsplit("/", 1)[-1]
    if ref.startswith("#"):
        for c in qr.get("contained") or []:
            if isinstance(c, dict) and c.get("id") == qid and c.get("resourceType") == "Questionnaire":
                return parse_questionnaire_id(str(c.get("name") or ""), declared) or parse_questionnaire_id(qid, declared)
    return parse_questionnaire_id(qid, declared)


def next_question(obj: Any, solver, server_plans: Optional[list[str]] = None, as_of=None) -> dict:
    import datetime as dt

    from solver.fhir.dtr import question_item
    from solver.fhir.reader import read_bundle
    from solver.fhir.values import fact_kinds
    from solver.fhir.inputs import case_from
    from solver.fhir.crd import questionnaire_id

    qr, member = _split(obj)
    if qr.get("status") != "in-progress":
        raise NextQuestionError(f"QuestionnaireResponse.status: {qr.get('status')!r}; $next-question continues "
                                f"an in-progress response")
    declared = solver.rules.declared
    target = _target(qr, declared)
    plans = [target[0]] if target else (server_plans or list(declared.plans))
    drug = target[1] if target else None
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": _without_contained(qr)}] + [{"resource": r} for r in member
                                                                  if isinstance(r, dict) and "resourceType" in r]}
    if target is not None:
        bundle["entry"].append({"resource": {"resourceType": "QuestionnaireResponse", "id": "pa-solver-request",
                                             "status": "completed",
                                             "item": [{"linkId": "request", "answer": [
                                                 {"valueCoding": {"code": target[2]}}]}]}})
    if drug is None:
        drug = declared.default_drug
    if as_of is None and not qr.get("authored"):
        if member:
            raise NextQuestionError("QuestionnaireResponse.authored: the request date is needed to read the "
                                    "member's resources (age, the latest observation); or give ?as_of=YYYY-MM-DD")
        as_of = dt.date(2000, 1, 1)          # answers alone: no fact depends on the date
    fhir = read_bundle(bundle, as_of=as_of, drug=drug, declared=declared)
    case, _ = case_from(dict(fhir.case, plans=plans), declared=declared)
    result = solver.solve(case)
    out = copy.deepcopy(qr)
    contained = [c for c in out.get("contained") or [] if isinstance(c, dict)]
    qid = questionnaire_id(plans[0], case.drug, case.request) if len(plans) == 1 else f"pa-{case.drug}-{case.request}"
    form = next((c for c in contained if c.get("resourceType") == "Questionnaire"), None)
    if form is None:
        form = {"resourceType": "Questionnaire", "id": qid, "status": "active", "item": []}
        if target:
            form["name"] = qid
        out["contained"] = contained + [form]
        out["questionnaire"] = f"#{qid}"
    asked = {i.get("linkId") for i in form.get("item") or [] if isinstance(i, dict)}
    pending = [r for r in result["results"] if r["decision"] == "needs_info"]
    nxt = None
    for r in pending:
        m = r["missing"][0]                                    # the smallest set (CASE.md order)
        nxt = next((f["fact"] for f in m["facts"] if f["fact"] not in asked), None)
        if nxt is None:                          # its facts were asked and left unanswered: another set's
            nxt = next((f["fact"] for mm in r["missing"] for f in mm["facts"] if f["fact"] not in asked), None)
        if nxt is not None:
            break
    kinds = fact_kinds(declared)
    if nxt is not None and nxt in kinds:
        serves = sorted({c for r in pending for m in r["missing"] for f in m["facts"] if f["fact"] == nxt
                         for c in f["criteria"]})
        form.setdefault("item", []).append(question_item(nxt, kinds[nxt], serves, solver.rules))
        out.setdefault("item", []).append({"linkId": nxt, "text": form["item"][-1]["text"]})
        out["status"] = "in-progress"
    else:
        out["status"] = "completed"
        out["extension"] = [e for e in out.get("extension") or [] if not (isinstance(e, dict)
                                                                           and e.get("url") == DECISION_EXT)] + [
            decision_extension(r, solver.rules.plans.get(r["plan"], r["plan"])) for r in result["results"]]
    return out


def decision_extension(r: dict, plan_name: str) -> dict:
    """One plan's decision on a completed response, as a form filler shows it: a complex extension
    (`DECISION_EXT`) of two parts,

        plan      valueReference  {identifier: {system: urn:pa-solver:plan, value: <plan id>},
                                   display: <the plan's name>}   (as ClaimResponse.insurer in PAS)
        decision  valueCodeableConcept  {coding: [{system: DECISION_SYSTEM, code: <CASE.md decision>,
                                         display: "Denied"...}], text: the same words}

    An extension holds a value or parts, never both (FHIR ext-1): hence two parts, not a coding
    whose display is the plan."""
    from solver.fhir.pas import PLAN_SYSTEM

    words = DECISION_WORDS.get(r["decision"], r["decision"])
    return {"url": DECISION_EXT, "extension": [
        {"url": "plan", "valueReference": {"identifier": {"system": PLAN_SYSTEM, "value": r["plan"]},
                                           "display": plan_name}},
        {"url": "decision", "valueCodeableConcept": {
            "coding": [{"system": DECISION_SYSTEM, "code": r["decision"], "display": words}], "text": words}}]}


def _without_contained(qr: dict) -> dict:
    """The response as the reader reads it: its answered items (linkId = fact), no contained form."""
    q = {k: v for k, v in qr.items() if k not in ("contained", "questionnaire", "extension")}
    q["id"] = q.get("id") or "next-question"
    q["item"] = [i for i in q.get("item") or [] if isinstance(i, dict) and i.get("answer")]
    return q
