"""What one service worker process does with a request: bytes in, bytes out.

Each worker holds one warm `Solver` (one grounding, reused: the strategy the
benchmarks chose) and answers with the very functions the command line uses,
so an endpoint's answer is the CLI's, byte for byte.  The event loop never
solves: it hands `handle(op, body, params)` to a worker and sends back the
`Answer` (status, bytes, media type, and what the store must record).

A time limit stops clingo (`Control.interrupt` from a thread: solver/service/watchdog.py): the
answer is then `too-costly`, and the worker is ready for the next request
(every control the interrupt reached is cleared of it before the next one).
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple, Optional

from solver.base.contract import CaseError
from solver.engine.rulebase import Interrupted
from solver.rules.loading import RuleBaseError
from solver.engine.solver import Solver
from solver.text.jsontext import dump_text
from solver.text.jsontext import NotJSON, dump_bytes, loads
from solver.base.procs import leave_with
from solver.service.operations import BY_NAME, FHIR_JSON, JSON, OPERATIONS
from solver.service.watchdog import watchdog

_SOLVER: Optional[Solver] = None
_PLANS: Optional[list[str]] = None


class Answer(NamedTuple):
    status: int
    body: bytes
    media: str
    record: Optional[dict] = None       # for the store: kind, submission, decisions, rules_version


class Recorded(NamedTuple):
    """What a work function answers when the store must record it: the answer's JSON value, and the record."""
    value: object
    record: Optional[dict]


class Refused(Exception):
    """A request answered with an error: HTTP status, FHIR issue code, words."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code = status, code


def init(logic_dir=None, plans: Optional[list[str]] = None, server: Optional[int] = None) -> None:
    """Build the worker's solver once, and warm it with one request of every kind it will answer.
    `server`: the serving process's pid; the worker leaves when it is gone (solver/base/procs.py)."""
    global _SOLVER, _PLANS
    if server is not None:
        leave_with(server)
    _SOLVER = Solver(logic_dir) if logic_dir is not None else Solver()
    _PLANS = sorted(plans) if plans else None
    _warm()


def _warm() -> None:
    """Answer one request of every kind and let the answers go, so that no client pays for a
    first time.  A worker's first $submit imported the FHIR models and built its bundle reader
    (1.0-1.6 s, measured: the kill -9 test's clients got no answer in their first 2.5 s on a
    busy machine), its first CDS Hooks call about 1 s, its first questionnaire or diff 0.2-0.5 s;
    the first diff and the first `why` ground their own control.  The requests are the bundled
    examples (solver/base/paths.py); nothing is recorded (the store is the serving process's)."""
    from solver.base.paths import EXAMPLES
    from solver.fhir.crd import questionnaire_id

    declared = _SOLVER.rules.declared
    plans = list(declared.plans)           # the rule base's (an example naming another plan is refused, and warms)
    case = (EXAMPLES / "ohsu_adult_rr.json").read_bytes()
    qid = questionnaire_id((_PLANS or plans)[0], declared.default_drug, declared.default_request)
    qr = {"resourceType": "QuestionnaireResponse", "status": "in-progress",
          "questionnaire": f"/fhir/Questionnaire/{qid}", "item": []}
    for op, body, params in (
            ("decide", case, {"why": "true"}), ("explain", case, {}), ("questionnaire", case, {}),
            ("diff", dump_bytes({"plans": plans[:2]}), {}),
            ("submit", (EXAMPLES / "fhir" / "pas_request_besponsa.json").read_bytes(), {}),
            ("crd", (EXAMPLES / "crd" / "order_sign_besponsa.json").read_bytes(), {}),
            ("next_question", dump_bytes(qr), {}), ("fhir_questionnaire", b"", {"id": qid})):
        handle(op, body, params)


def ready() -> bool:
    """A no-op that makes the pool start a worker (and so build its solver) before any request."""
    solver()
    return True


def solver() -> Solver:
    if _SOLVER is None:
        init()
    return _SOLVER


def outcome(code: str, message: str) -> bytes:
    """An OperationOutcome with one error issue (FHIR endpoints' errors)."""
    return dump_text({"resourceType": "OperationOutcome",
                      "issue": [{"severity": "error", "code": code, "diagnostics": message}]}).encode("utf-8",
                                                                                                    "backslashreplace") + b"\n"


def error_body(op: str, status: int, code: str, message: str) -> Answer:
    row = BY_NAME.get(op)
    if (row is not None and row.fhir) or op.startswith("fhir"):
        return Answer(status, outcome(code, message), FHIR_JSON)
    return Answer(status, dump_text({"error": message}).encode("utf-8", "backslashreplace") + b"\n", JSON)


def handle(op: str, body: bytes, params: dict, time_limit: Optional[float] = None) -> Answer:
    """Answer one request (run in a worker process).  Never raises for bad input."""
    s = solver()
    if time_limit:
        watchdog(s, time_limit).arm(time_limit)
    try:
        answer = _WORK.get(op)
        if answer is None:
            raise Refused(404, "not-found", f"no operation {op!r}")
        got = answer(s, body, params)
        value, record = (got.value, got.record) if isinstance(got, Recorded) else (got, None)
        # the CLI's bytes: its JSON line, newline included, in the table's media type (a Questionnaire
        # is a FHIR resource and says so: FHIR clients pick their parser by application/fhir+json)
        return Answer(200, dump_bytes(value) + b"\n", BY_NAME[op].media, record)
    except Refused as err:
        return error_body(op, err.status, err.code, str(err))
    except NotJSON as err:
        return error_body(op, 400, "invalid", f"the body is {err}")
    except CaseError as err:
        from solver.fhir.resources import FhirError

        if isinstance(err, FhirError) and _not_a_request(str(err)):
            return error_body(op, 422, "not-supported", str(err))
        return error_body(op, 400, "invalid", str(err))
    except Interrupted:
        return error_body(op, 503, "too-costly", f"the decision took longer than the server's limit of "
                                                  f"{time_limit:g} s and was stopped")
    except (ValueError, TypeError, RuleBaseError) as err:
        return error_body(op, 400, "invalid", str(err))
    finally:
        if time_limit:
            watchdog(s, time_limit).disarm()


# FhirErrors that mean "valid FHIR, but not a prior-authorization request we decide" (422)
_NOT_A_REQUEST = ("a response bundle", "requests neither", "a bare ", "not a Bundle", "requests both")


def _not_a_request(message: str) -> bool:
    return any(m in message for m in _NOT_A_REQUEST)


def _date(params: dict, name: str) -> Optional[dt.date]:
    v = params.get(name)
    if v is None:
        return None
    try:
        return dt.date.fromisoformat(v)
    except (TypeError, ValueError):
        raise Refused(400, "invalid", f"{name}: {v!r} is not a date (YYYY-MM-DD)") from None


def _choice(params: dict, name: str, allowed: tuple) -> Optional[str]:
    v = params.get(name)
    if v is not None and v not in allowed:
        raise Refused(400, "invalid", f"{name}: {v!r} is not one of {', '.join(allowed)}")
    return v


def _read(body, params: dict, s: Solver):
    """The case in a request: `body` its bytes, or the JSON value already read from them."""
    from solver.fhir.inputs import case_from

    obj = loads(body) if isinstance(body, bytes) else body
    return case_from(obj, as_of=_date(params, "as_of"), drug=_choice(params, "drug", tuple(s.rules.declared.drugs)),
                     declared=s.rules.declared)


# ------------------------------------------------------------ the work functions (operations.py's `work`)
# Each takes (solver, body, query parameters) and gives the answer's JSON value (or a Recorded), or raises.

def _case_why(s: Solver, body: bytes, params: dict):
    why = _choice(params, "why", ("true", "false")) == "true"
    case, fhir = _read(body, params, s)
    return case, fhir, why


def answer_decide(s: Solver, body: bytes, params: dict) -> dict:
    from solver.fhir.inputs import result_for

    case, fhir, why = _case_why(s, body, params)
    return result_for(s, case, fhir, why=why)


def answer_explain(s: Solver, body: bytes, params: dict) -> dict:
    from solver.engine.rulebase import MAX_CHANGES
    from solver.fhir.inputs import result_for

    case, fhir, why = _case_why(s, body, params)
    raw = params.get("max_changes", "2")
    if not (isinstance(raw, str) and raw.isdigit() and 1 <= int(raw) <= MAX_CHANGES):
        raise Refused(400, "invalid", f"max_changes: must be a whole number from 1 to {MAX_CHANGES}, not {raw!r}")
    return result_for(s, case, fhir, int(raw), why=why)


def answer_questionnaire(s: Solver, body: bytes, params: dict) -> dict:
    from solver.fhir.dtr import questionnaire
    from solver.fhir.inputs import result_for

    case, fhir, _why = _case_why(s, body, params)
    result = result_for(s, case, fhir)
    return questionnaire(s, case.drug, case.request, list(case.plans) if case.plans else None, result)


def answer_diff(s: Solver, body: bytes, params: dict) -> dict:
    return _diff(s, loads(body))


def _diff(s: Solver, obj) -> dict:
    from solver.analysis.diff import diff

    PLANS, DRUGS, REQUESTS = tuple(s.rules.plans), tuple(s.rules.declared.drugs), s.rules.declared.requests
    if not isinstance(obj, dict):
        raise Refused(400, "invalid", "(body): expected a JSON object {\"plans\": [A, B], \"drug\", \"request\"}")
    unknown = sorted(set(obj) - {"plans", "drug", "request"})
    if unknown:
        raise Refused(400, "invalid", f"{unknown[0]}: unknown field (a diff takes plans, drug, request; "
                                      f"no file or folder: --against is a server option)")
    plans = obj.get("plans")
    if not (isinstance(plans, list) and len(plans) == 2 and all(isinstance(p, str) and p in PLANS for p in plans)
            and plans[0] != plans[1]):
        raise Refused(400, "invalid", f"plans: two different plan ids of {', '.join(PLANS)}")
    drug = obj.get("drug") or s.rules.declared.default_drug
    request = obj.get("request") or s.rules.declared.default_request
    if drug not in DRUGS:
        raise Refused(400, "invalid", f"drug: one of {', '.join(DRUGS)}")
    if request not in REQUESTS:
        raise Refused(400, "invalid", f"request: one of {', '.join(REQUESTS)}")
    return diff(s, plans[0], plans[1], drug=drug, request=request)


def answer_submit(s: Solver, body: bytes, params: dict) -> Recorded:
    """PAS Claim/$submit: a request Bundle whose first entry is a Claim -> the PAS response Bundle
    (`decide --format pas`), and what the store records."""
    from solver.fhir.pas import pas_bundle
    from solver.fhir.inputs import result_for

    obj = loads(body)
    if not isinstance(obj, dict) or obj.get("resourceType") != "Bundle":
        got = obj.get("resourceType") if isinstance(obj, dict) else type(obj).__name__
        raise Refused(422, "not-supported", f"$submit takes a PAS request Bundle (Claim first), not {got!r}")
    entries = obj.get("entry") if isinstance(obj.get("entry"), list) else []
    first = entries[0].get("resource") if entries and isinstance(entries[0], dict) else None
    if not isinstance(first, dict) or first.get("resourceType") != "Claim":
        raise Refused(422, "not-supported", "Bundle.entry[0]: a PAS request Bundle's first entry is the Claim")
    key = claim_key(first)
    if key is None:
        raise Refused(400, "required", "Claim.identifier: a PAS request names itself with an identifier "
                                       "($inquire finds the answer by it)")
    case, fhir = _read(obj, params, s)
    if _PLANS and not case.plans:
        case = case.model_copy(update={"plans": _PLANS}) if hasattr(case, "model_copy") else \
            _with_plans(case, _PLANS)
    result = result_for(s, case, fhir)
    patient = {"reference": fhir.patient} if fhir.patient else None
    out = pas_bundle(result, s.rules.plans, fhir.request_date, fhir.claim, patient)
    decisions = {r["plan"]: r["decision"] for r in result["results"]}
    return Recorded(out, {"kind": "submit", "submission": key, "decisions": decisions,
                          "rules_version": result["rules_version"]})


def claim_key(claim: dict) -> Optional[str]:
    """The submission a Claim's identifier names ($submit records it, $inquire looks it up), or None
    when it names none; Refused (400, naming the element) when `identifier` is not FHIR's shape."""
    from solver.service.records import submission_key

    idents = claim.get("identifier")
    if idents is not None and not isinstance(idents, list):
        raise Refused(400, "invalid", f"Claim.identifier: must be a list of Identifiers, not {_kind(idents)}")
    for i, ident in enumerate(idents or []):
        if not isinstance(ident, dict):
            raise Refused(400, "invalid", f"Claim.identifier[{i}]: must be an Identifier object, not {_kind(ident)}")
        for field in ("system", "value"):
            if field in ident and not isinstance(ident[field], str):
                raise Refused(400, "invalid", f"Claim.identifier[{i}].{field}: must be a string, "
                                              f"not {_kind(ident[field])}")
    return submission_key(idents)


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true or false", type(None): "null"}.get(
        type(value), "a number")


def _with_plans(case, plans):
    import msgspec

    return msgspec.structs.replace(case, plans=list(plans))


def answer_crd(s: Solver, body: bytes, params: dict) -> Recorded:
    """A CDS Hooks call: cards and systemActions, and the decisions the store records."""
    from solver.fhir.crd import HookError, answer

    try:
        out, decided = answer(loads(body), s, _PLANS, params.get("base_url", ""))
    except HookError as err:
        raise Refused(400, "invalid", str(err)) from None
    record = None
    if decided:
        by_plan: dict = {}
        for d in decided:
            by_plan.setdefault(d["plan"], []).append(d["decision"])
        record = {"kind": "crd", "submission": params.get("hook_instance"),
                  "decisions": {p: ", ".join(v) for p, v in by_plan.items()},
                  "rules_version": decided[0]["rules_version"]}
    return Recorded(out, record)


def answer_next_question(s: Solver, body: bytes, params: dict) -> dict:
    from solver.fhir.nextq import NextQuestionError, next_question

    try:
        out = next_question(loads(body), s, _PLANS, _date(params, "as_of"))
    except NextQuestionError as err:
        raise Refused(422 if err.not_ours else 400, "not-supported" if err.not_ours else "invalid", str(err)) from None
    return out


def answer_fhir_questionnaire(s: Solver, body: bytes, params: dict) -> dict:
    """GET /fhir/Questionnaire/{id}: a plan's whole Questionnaire for a drug and request (the
    canonical a CRD card points to; $next-question asks it one question at a time)."""
    from solver.fhir.dtr import questionnaire
    from solver.fhir.crd import parse_questionnaire_id

    qid = params.get("id", "")
    got = parse_questionnaire_id(qid, s.rules.declared)
    if got is None:
        raise Refused(404, "not-found", f"no Questionnaire {qid!r} (ids are pa-<drug>-<request>-<plan>)")
    plan, drug, request = got
    q = questionnaire(s, drug, request, [plan])
    q["id"], q["name"] = qid, qid
    q["url"] = f"{params.get('base_url', '').rstrip('/')}/fhir/Questionnaire/{qid}"
    q["extension"] = [{"url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-adaptive",
                       "valueBoolean": True}]
    return q


# what answers each operation in a worker: its row's `work`, a function above (a row naming none that is
# here fails on import)
_WORK = {o.name: globals()[o.work] for o in OPERATIONS if o.work is not None}
