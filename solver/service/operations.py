"""Every endpoint of the service, in one table: its route, who answers it, and what it says of itself.

The table drives the routes (app.py), the dispatch in a worker (work.handle), the operations of the
CapabilityStatement (metadata.py) and the paths of the OpenAPI document (openapi.py).  A new endpoint
is one row here and the function of solver/service/work.py that answers it (or, for one the event
loop answers itself, a method of app.Service).
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Union

FHIR_JSON = "application/fhir+json"
JSON = "application/json"
POST_MEDIA = (JSON, FHIR_JSON)


def resource(kind: str) -> dict:
    """The JSON Schema of a FHIR resource of this type (as much as a JSON Schema says of one)."""
    return {"type": "object", "required": ["resourceType"], "properties": {"resourceType": {"const": kind}}}


JSON_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}},
              "additionalProperties": False}
ANY_OBJECT = {"type": "object"}
BUNDLE = resource("Bundle")
CASE_OR_BUNDLE = {"description": "A CASE.md case, or a FHIR R4 Bundle (FHIR.md)",
                  "oneOf": [{"$ref": "#/components/schemas/Case"}, BUNDLE]}
RESULT = {"type": "object", "required": ["case_id", "rules_version", "results", "derived_facts"],
          "properties": {"case_id": {"type": ["string", "null"]}, "rules_version": {"type": "string"},
                         "results": {"type": "array", "items": ANY_OBJECT}, "derived_facts": ANY_OBJECT}}

Schema = Union[dict, Callable]          # a JSON Schema, or a function of the rule base's Declared that gives one


class Api(NamedTuple):
    """An endpoint's OpenAPI entry (openapi.py builds it; path parameters come from the route)."""
    summary: str
    answer: Schema                              # the 200 answer's JSON Schema (its media type: the row's)
    answer_words: str = "the answer"            # the 200 answer's description
    request: Optional[Schema] = None            # the body's JSON Schema; None: it takes no body
    request_media: tuple[str, ...] = POST_MEDIA
    params: tuple[str, ...] = ()                # its query parameters, by name (openapi.py's QUERY)
    errors: Optional[tuple[int, ...]] = None    # the error statuses it answers; None: every one a body can cause
    responses: Optional[dict] = None            # further responses, by status, as written
    secured: bool = True                        # the bearer token is asked for (when the server has one)


class Capability(NamedTuple):
    """An operation the CapabilityStatement names, on a resource type."""
    name: str
    definition: str
    resource: str


class Operation(NamedTuple):
    name: str                       # what the event loop hands a worker (work.handle's `op`)
    methods: tuple[str, ...]
    path: str                       # the route, in Starlette's syntax ({name:convertor})
    fhir: bool                      # its errors are OperationOutcomes (else {"error": ...})
    media: str                      # the media type of its answer
    work: Optional[str] = None      # the function of solver.service.work answering it; None: the event loop does
    endpoint: Optional[str] = None  # the app.Service method taking the request; None: Service.answer (checked, to `work`)
    api: Optional[Api] = None       # its OpenAPI entry; None: not in the document
    capability: Optional[Capability] = None


def _diff_body(declared) -> dict:
    plans, drugs, requests = list(declared.plans), list(declared.drugs), list(declared.requests)
    return {"type": "object", "required": ["plans"], "additionalProperties": False,
            "properties": {"plans": {"type": "array", "minItems": 2, "maxItems": 2, "uniqueItems": True,
                                     "items": {"type": "string", "enum": plans}},
                           "drug": {"type": "string", "enum": drugs},
                           "request": {"type": "string", "enum": requests}}}


_PAS = "http://hl7.org/fhir/us/davinci-pas/OperationDefinition/"
_HEALTH = {"type": "object", "required": ["status", "rules_version"],
           "properties": {"status": {"const": "ok"}, "rules_version": {"type": "string"}}}
_SERVICES = {"type": "object", "required": ["services"],
             "properties": {"services": {"type": "array", "items": {
                 "type": "object", "required": ["hook", "id", "description"]}}}}
_HOOK_CALL = {"type": "object", "required": ["hook", "hookInstance", "context"],
              "properties": {"hook": {"type": "string"}, "hookInstance": {"type": "string"},
                             "context": {"type": "object"}, "prefetch": {"type": "object"}}}
_CARDS = {"type": "object", "required": ["cards", "systemActions"],
          "properties": {"cards": {"type": "array"}, "systemActions": {"type": "array"}}}
_NEXT = {"type": "object", "required": ["resourceType", "status"],
         "properties": {"resourceType": {"const": "QuestionnaireResponse"},
                        "status": {"enum": ["in-progress", "completed"]}}}

OPERATIONS: tuple[Operation, ...] = (
    Operation("health", ("GET",), "/health", False, JSON, endpoint="health", api=Api(
        "liveness and the rules version", _HEALTH, "serving", errors=(), secured=False,
        responses={"503": {"description": "shutting down", "content": {JSON: {"schema": ANY_OBJECT}}}})),
    Operation("openapi", ("GET",), "/openapi.json", False, JSON, endpoint="openapi"),
    Operation("metadata", ("GET",), "/fhir/metadata", True, FHIR_JSON, endpoint="metadata", api=Api(
        "the CapabilityStatement", resource("CapabilityStatement"), "CapabilityStatement", errors=(),
        secured=False)),
    Operation("submit", ("POST",), "/fhir/Claim/$submit", True, FHIR_JSON, work="answer_submit", api=Api(
        "PAS Claim/$submit: the PAS response Bundle (decide --format pas)", BUNDLE, request=BUNDLE),
        capability=Capability("submit", _PAS + "Claim-submit", "Claim")),
    Operation("inquire", ("POST",), "/fhir/Claim/$inquire", True, FHIR_JSON, endpoint="inquire", api=Api(
        "PAS Claim/$inquire: the answer recorded for the submission the Claim's identifier names", BUNDLE,
        request=BUNDLE), capability=Capability("inquire", _PAS + "Claim-inquiry", "Claim")),
    Operation("next_question", ("POST",), "/fhir/Questionnaire/$next-question", True, FHIR_JSON,
              work="answer_next_question", api=Api(
                  "DTR / SDC $next-question: the QuestionnaireResponse with the next question, or completed",
                  _NEXT, request={"type": "object", "required": ["resourceType"]}, params=("as_of",))),
    Operation("fhir_questionnaire", ("GET",), "/fhir/Questionnaire/{id:resource_id}", True, FHIR_JSON,
              work="answer_fhir_questionnaire", endpoint="fhir_questionnaire", api=Api(
                  "a plan's Questionnaire for a drug and request (pa-<drug>-<request>-<plan>)",
                  resource("Questionnaire"), "Questionnaire", errors=(401, 404))),
    Operation("cds_discovery", ("GET",), "/cds-services", False, JSON, endpoint="cds_discovery", api=Api(
        "CDS Hooks discovery", _SERVICES, "the services", errors=(), secured=False)),
    Operation("crd", ("POST",), "/cds-services/{service_id}", False, JSON, work="answer_crd", endpoint="cds_hook",
              api=Api("a CDS Hooks call (order-sign, order-select; the other CRD hooks answer no cards)", _CARDS,
                      "cards and system actions", request=_HOOK_CALL, request_media=(JSON,),
                      errors=(400, 401, 408, 413, 415, 503),
                      responses={"404": {"description": "no such service",
                                         "content": {JSON: {"schema": JSON_ERROR}}}})),
    Operation("decide", ("POST",), "/decide", False, JSON, work="answer_decide", api=Api(
        "decide --json", RESULT, request=CASE_OR_BUNDLE, params=("as_of", "drug", "why"))),
    Operation("explain", ("POST",), "/explain", False, JSON, work="answer_explain", api=Api(
        "explain --json", RESULT, request=CASE_OR_BUNDLE, params=("as_of", "drug", "max_changes", "why"))),
    Operation("questionnaire", ("POST",), "/questionnaire", False, FHIR_JSON, work="answer_questionnaire", api=Api(
        "questionnaire CASE_OR_BUNDLE: the adaptive DTR Questionnaire", resource("Questionnaire"),
        request=CASE_OR_BUNDLE, params=("as_of", "drug"))),
    Operation("diff", ("POST",), "/diff", False, JSON, work="answer_diff", api=Api(
        "diff A B --json", {"type": "object", "required": ["plans", "differences"]}, request=_diff_body)),
)

BY_NAME = {o.name: o for o in OPERATIONS}


def documented() -> list[tuple[str, Operation]]:
    """(method, row) of every operation the OpenAPI document describes, in the table's order."""
    return [(m, o) for o in OPERATIONS if o.api is not None for m in o.methods]
