"""GET /openapi.json: every endpoint, its bodies in and out, and every error it answers."""

from __future__ import annotations

from functools import lru_cache

from solver.text.jsontext import dump_text

_JSON_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}},
               "additionalProperties": False}
_OUTCOME = {"type": "object", "required": ["resourceType", "issue"],
            "properties": {"resourceType": {"const": "OperationOutcome"},
                           "issue": {"type": "array", "minItems": 1, "items": {
                               "type": "object", "required": ["severity", "code", "diagnostics"],
                               "properties": {"severity": {"type": "string"}, "code": {"type": "string"},
                                              "diagnostics": {"type": "string"}}}}}}
_ANY_OBJECT = {"type": "object"}
_CASE_OR_BUNDLE = {"description": "A CASE.md case, or a FHIR R4 Bundle (FHIR.md)",
                   "oneOf": [{"$ref": "#/components/schemas/Case"},
                             {"type": "object", "required": ["resourceType"],
                              "properties": {"resourceType": {"const": "Bundle"}}}]}
_RESULT = {"type": "object", "required": ["case_id", "rules_version", "results", "derived_facts"],
           "properties": {"case_id": {"type": ["string", "null"]}, "rules_version": {"type": "string"},
                          "results": {"type": "array", "items": _ANY_OBJECT}, "derived_facts": _ANY_OBJECT}}
_BUNDLE = {"type": "object", "required": ["resourceType"], "properties": {"resourceType": {"const": "Bundle"}}}
_ERRORS_JSON = (400, 401, 408, 413, 415, 422, 503)
_ERRORS_FHIR = (400, 401, 404, 408, 413, 415, 422, 503)
_WORDS = {400: "bad input (the message names the field)", 401: "missing or wrong bearer token",
          404: "unknown submission", 408: "the body did not arrive in time (serve --read-timeout)",
          413: "body over the limit", 415: "not JSON",
          422: "valid FHIR that is not a prior-authorization request",
          503: "a solver process was lost, the decision took too long (too-costly), it could not be recorded, or "
               "($inquire) its record is damaged (exception: said, never sent)"}


def _errors(codes, schema, media) -> dict:
    return {str(c): {"description": _WORDS[c], "content": {media: {"schema": schema}}} for c in codes}


def _post(summary: str, body: dict, ok: dict, media: str = "application/json", fhir: bool = False,
          params: list | None = None) -> dict:
    errors = _errors(_ERRORS_FHIR, _OUTCOME, "application/fhir+json") if fhir else \
        _errors(_ERRORS_JSON, _JSON_ERROR, "application/json")
    op = {"summary": summary,
          "requestBody": {"required": True, "content": {"application/json": {"schema": body},
                                                        "application/fhir+json": {"schema": body}}},
          "responses": {"200": {"description": "the answer", "content": {media: {"schema": ok}}}, **errors},
          "security": [{"bearer": []}, {}]}
    if params:
        op["parameters"] = params
    return {"post": op}


_AS_OF = {"name": "as_of", "in": "query", "required": False, "schema": {"type": "string", "format": "date"},
          "description": "FHIR input: the request date (the CLI's --as-of)"}
def _drug_param(drugs: list) -> dict:
    return {"name": "drug", "in": "query", "required": False, "schema": {"type": "string", "enum": drugs},
            "description": "FHIR input: the drug, where a bundle requests several (the CLI's --drug)"}


_WHY = {"name": "why", "in": "query", "required": False, "schema": {"type": "string", "enum": ["true", "false"]},
        "description": "true: each plan also carries rests_on, rests_on_count and facts_count (the CLI's --why)"}
_MAX = {"name": "max_changes", "in": "query", "required": False, "schema": {"type": "string", "pattern": "^[1-4]$"},
        "description": "at most this many fact changes together (1-4, default 2)"}


def _case_schemas(declared) -> dict:
    """The case's JSON Schema, from the pydantic models that validate it (CASE.md, built from the
    rule base's declarations), with what their validators add: ICD-10 codes' form, no plan twice,
    a case id that is text."""
    from solver.base.contract import ICD10
    from solver.case.models import types

    schema = types(declared).Case.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = schema.pop("$defs")
    codes = defs["Facts"]["properties"]["icd10_codes"]["anyOf"][0]
    codes["items"]["pattern"] = ICD10.pattern
    plans = next(a for a in schema["properties"]["plans"]["anyOf"] if a.get("type") == "array")
    plans["uniqueItems"] = True
    return {"Case": schema, **defs}


@lru_cache(maxsize=4)
def document(logic_dir=None) -> bytes:
    """The OpenAPI document of a server of the rule base in `logic_dir` (default: the one in use):
    its enums are that rule base's plans, drugs and requests."""
    from solver.rules.declared import of

    declared = of(logic_dir)
    plans, drugs, requests = list(declared.plans), list(declared.drugs), list(declared.requests)
    _DRUG = _drug_param(drugs)
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "pa-solver", "version": "1",
                 "description": "Prior-authorization eligibility (Besponsa, Blincyto) decided by ASP rules: "
                                "shared/spec/SERVICE.md."},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                       "schemas": _case_schemas(declared)},
        "paths": {
            "/health": {"get": {"summary": "liveness and the rules version", "responses": {
                "200": {"description": "serving", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["status", "rules_version"],
                    "properties": {"status": {"const": "ok"}, "rules_version": {"type": "string"}}}}}},
                "503": {"description": "shutting down", "content": {"application/json": {"schema": _ANY_OBJECT}}}}}},
            "/fhir/metadata": {"get": {"summary": "the CapabilityStatement", "responses": {
                "200": {"description": "CapabilityStatement", "content": {"application/fhir+json": {"schema": {
                    "type": "object", "required": ["resourceType"],
                    "properties": {"resourceType": {"const": "CapabilityStatement"}}}}}}}}},
            "/fhir/Claim/$submit": _post("PAS Claim/$submit: the PAS response Bundle (decide --format pas)",
                                         _BUNDLE, _BUNDLE, "application/fhir+json", fhir=True),
            "/fhir/Claim/$inquire": _post("PAS Claim/$inquire: the answer recorded for the submission the Claim's "
                                          "identifier names", _BUNDLE, _BUNDLE, "application/fhir+json", fhir=True),
            "/fhir/Questionnaire/$next-question": _post(
                "DTR / SDC $next-question: the QuestionnaireResponse with the next question, or completed",
                {"type": "object", "required": ["resourceType"]},
                {"type": "object", "required": ["resourceType", "status"],
                 "properties": {"resourceType": {"const": "QuestionnaireResponse"},
                                "status": {"enum": ["in-progress", "completed"]}}},
                "application/fhir+json", fhir=True, params=[_AS_OF]),
            "/fhir/Questionnaire/{id}": {"get": {
                "summary": "a plan's Questionnaire for a drug and request (pa-<drug>-<request>-<plan>)",
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "Questionnaire", "content": {"application/fhir+json": {
                    "schema": {"type": "object", "required": ["resourceType"],
                               "properties": {"resourceType": {"const": "Questionnaire"}}}}}},
                              **_errors((401, 404), _OUTCOME, "application/fhir+json")},
                "security": [{"bearer": []}, {}]}},
            "/cds-services": {"get": {"summary": "CDS Hooks discovery", "responses": {"200": {
                "description": "the services", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["services"],
                    "properties": {"services": {"type": "array", "items": {
                        "type": "object", "required": ["hook", "id", "description"]}}}}}}}}}},
            "/cds-services/{service_id}": {"post": {
                "summary": "a CDS Hooks call (order-sign, order-select; the other CRD hooks answer no cards)",
                "parameters": [{"name": "service_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["hook", "hookInstance", "context"],
                    "properties": {"hook": {"type": "string"}, "hookInstance": {"type": "string"},
                                   "context": {"type": "object"}, "prefetch": {"type": "object"}}}}}},
                "responses": {"200": {"description": "cards and system actions", "content": {"application/json": {
                    "schema": {"type": "object", "required": ["cards", "systemActions"],
                               "properties": {"cards": {"type": "array"}, "systemActions": {"type": "array"}}}}}},
                              **_errors((400, 401, 408, 413, 415, 503), _JSON_ERROR, "application/json"),
                              "404": {"description": "no such service", "content": {"application/json": {
                                  "schema": _JSON_ERROR}}}},
                "security": [{"bearer": []}, {}]}},
            "/decide": _post("decide --json", _CASE_OR_BUNDLE, _RESULT, params=[_AS_OF, _DRUG, _WHY]),
            "/explain": _post("explain --json", _CASE_OR_BUNDLE, _RESULT, params=[_AS_OF, _DRUG, _MAX, _WHY]),
            "/questionnaire": _post("questionnaire CASE_OR_BUNDLE: the adaptive DTR Questionnaire", _CASE_OR_BUNDLE,
                                    {"type": "object", "required": ["resourceType"],
                                     "properties": {"resourceType": {"const": "Questionnaire"}}},
                                    media="application/fhir+json", params=[_AS_OF, _DRUG]),
            "/diff": _post("diff A B --json", {
                "type": "object", "required": ["plans"], "additionalProperties": False,
                "properties": {"plans": {"type": "array", "minItems": 2, "maxItems": 2, "uniqueItems": True, "items": {
                    "type": "string", "enum": plans}},
                    "drug": {"type": "string", "enum": drugs},
                    "request": {"type": "string", "enum": requests}}},
                {"type": "object", "required": ["plans", "differences"]}),
        },
    }
    return dump_text(doc).encode("utf-8")
