"""A result as a Da Vinci PAS response (shared/spec/FHIR.md, "What comes
back"): a Bundle of type collection holding one ClaimResponse per decided
plan.

Each ClaimResponse is `use` preauthorization, `outcome` complete, its
insurer the plan (identifier = plan id, display = plan name), `created` the
request date, `request` the Claim when the bundle had one; its item carries
an adjudication (category `submitted`) with the PAS reviewAction extension,
whose code (X12 306) is A1 approved, A3 denied, A4 pended (needs_info and
case_review).  The specific reason travels in `processNote` (one note per
criterion not met, with its citation and policy sentence; per missing set,
the facts and the values that would complete it) and, as codes, in the
adjudication's `reason` (criterion ids and missing fact names, system
`REASON_SYSTEM`).  An approval with a duration has `preAuthPeriod`.
`disposition` is the one line a person reads first: the decision
in words once, then the pathway, the criteria not met or the facts needed.
"""

from __future__ import annotations

import datetime as dt
from typing import Optional

from solver.text.words import condition

REVIEW_ACTION = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-reviewAction"
REVIEW_ACTION_CODE = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-reviewActionCode"
X12_306 = "https://codesystem.x12.org/005010/306"
ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
PLAN_SYSTEM = "urn:pa-solver:plan"
REASON_SYSTEM = "urn:pa-solver:reason"

ACTION = {"approved": ("A1", "Certified in total"), "denied": ("A3", "Not Certified"),
          "needs_info": ("A4", "Pended"), "case_review": ("A4", "Pended")}


def _add_months(day: dt.date, months) -> dt.date:
    """The day `months` later (a fraction of a month, what is left of an earlier
    authorization, as days of an average month, rounded down)."""
    whole = int(months)
    if months != whole:
        return _add_months(day, whole) + dt.timedelta(days=int((months - whole) * 365.25 / 12))
    y, m = divmod(day.month - 1 + whole, 12)
    year, month = day.year + y, m + 1
    for d in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month, d)
        except ValueError:
            continue
    raise ValueError(day)


def _reasons(r: dict) -> tuple[list, list]:
    """(notes, reason codings) for one plan's result."""
    notes, codings = [], []
    if r["decision"] == "denied":
        from solver.case.outcome import closest

        from solver.case.outcome import broken

        for pw in closest(r["pathways"]):
            for c in pw.get("criteria", []):
                if c["status"] == "not_met":
                    words = "; ".join(broken(c))
                    notes.append(f"Not met ({pw['id']}): {c['id']}, {c['source']}: \u201c{c['text']}\u201d"
                                 + (f" \u2014 {words}" if words else ""))
                    codings.append({"system": REASON_SYSTEM, "code": c["id"], "display": c["text"]})
    elif r["decision"] == "needs_info":
        for i, m in enumerate(r["missing"], 1):
            facts = "; ".join(condition(f["fact"], f.get("values"), f.get("range")) for f in m["facts"])
            notes.append(f"Missing, set {i} (would meet {m['pathway']}, {m['outcome']}): {facts}")
            for f in m["facts"]:
                coding = {"system": REASON_SYSTEM, "code": f"missing:{f['fact']}"}
                if coding not in codings:
                    codings.append(coding)
    elif r["decision"] == "case_review":
        notes.append(f"Sent to case review: pathway {r.get('pathway')}")
    elif r["decision"] == "approved":
        notes.append(f"Approved: pathway {r.get('pathway')}")
    return notes, codings


def _ids(words: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def disposition(r: dict) -> str:
    """The decision in one line, its word said once:

        Approved: pathway ohsu_adult_rr_single (6 months)
        Denied: criterion fep_rs_3 not met (pathway fep_fda_label)
        Pended for information: ph_status and regimen (toward pathway cvs_continuation)
        Pended for case review: pathway ohsu_lbl_adult_rr_single

    The full reason (citations, policy sentences, values) is in `processNote`."""
    from solver.case.outcome import closest
    from solver.text.words import number

    dec = r["decision"]
    if dec == "approved":
        months = (r.get("authorization") or {}).get("months")
        period = f" ({number(months)} month{'s' * (months != 1)})" if months else ""
        return f"Approved: pathway {r.get('pathway')}{period}" if r.get("pathway") else f"Approved{period}"
    if dec == "case_review":
        return f"Pended for case review: pathway {r.get('pathway')}" if r.get("pathway") else "Pended for case review"
    if dec == "denied":
        parts = []
        for pw in closest(r["pathways"]):
            ids = list(dict.fromkeys(c["id"] for c in pw.get("criteria", []) if c["status"] == "not_met"))
            if ids:
                parts.append(f"{'criterion' if len(ids) == 1 else 'criteria'} {_ids(ids)} not met (pathway {pw['id']})")
        return "Denied: " + "; ".join(parts) if parts else "Denied: no pathway of the policy is met"
    # sets that differ only in the values they ask for read the same: said once; past three, counted
    sets = list(dict.fromkeys(f"{_ids([f['fact'] for f in m['facts']])} (toward "
                              + ("case review on " if m["outcome"] == "case_review" else "")
                              + f"pathway {m['pathway']})" for m in r.get("missing", [])))
    if not sets:
        return "Pended for information"
    if len(sets) > 3:
        sets = sets[:3] + [f"{len(sets) - 3} other set{'s' * (len(sets) > 4)} (the notes list them)"]
    return "Pended for information: " + (sets[0] if len(sets) == 1 else "either " + ", or ".join(sets))


def claim_response(r: dict, plan_name: str, created: dt.date, request_ref: Optional[str],
                   patient: dict) -> dict:
    code, display = ACTION[r["decision"]]
    notes, codings = _reasons(r)
    adjudication = {
        "extension": [{"url": REVIEW_ACTION, "extension": [
            {"url": REVIEW_ACTION_CODE, "valueCodeableConcept": {"coding": [
                {"system": X12_306, "code": code, "display": display}]}}]}],
        "category": {"coding": [{"system": ADJUDICATION, "code": "submitted"}]},
    }
    if codings:
        adjudication["reason"] = {"coding": codings, "text": "; ".join(notes)}
    out = {
        "resourceType": "ClaimResponse", "id": f"{r['plan'].replace('_', '-')}-response", "status": "active",
        "type": {"coding": [{"system": CLAIM_TYPE, "code": "professional"}]}, "use": "preauthorization",
        "patient": patient, "created": created.isoformat(),
        "insurer": {"identifier": {"system": PLAN_SYSTEM, "value": r["plan"]}, "display": plan_name},
        "outcome": "complete",
        "disposition": disposition(r),
        "item": [{"itemSequence": 1, "adjudication": [adjudication]}],
    }
    if request_ref:
        out["request"] = {"reference": request_ref}
    auth = r.get("authorization") or {}
    if r["decision"] == "approved" and auth.get("months"):
        out["preAuthPeriod"] = {"start": created.isoformat(),
                                "end": _add_months(created, auth["months"]).isoformat()}
    if notes:
        out["processNote"] = [{"number": i, "type": "display", "text": n} for i, n in enumerate(notes, 1)]
    return out


def pas_bundle(result: dict, plan_names: dict, created: dt.date, request_ref: Optional[str] = None,
               patient: Optional[dict] = None) -> dict:
    """The PAS response Bundle for a result (decided plans only: no_policy is left out)."""
    patient = patient or {"display": result.get("case_id") or "(the member of the case)"}
    entries = [claim_response(r, plan_names.get(r["plan"], r["plan"]), created, request_ref, patient)
               for r in result["results"] if r["decision"] in ACTION]
    out = {"resourceType": "Bundle", "type": "collection", "timestamp": f"{created.isoformat()}T00:00:00Z",
           "entry": [{"fullUrl": f"urn:pa-solver:{e['id']}", "resource": e} for e in entries]}
    if result.get("case_id"):
        out["identifier"] = {"system": "urn:pa-solver:case", "value": result["case_id"]}
    return out
