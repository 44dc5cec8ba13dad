"""GET /openapi.json: every endpoint, its bodies in and out, and every error it answers."""

from __future__ import annotations

import re
from functools import lru_cache

from solver.service.operations import FHIR_JSON, JSON, JSON_ERROR, Operation, documented
from solver.text.jsontext import dump_text

_OUTCOME = {"type": "object", "required": ["resourceType", "issue"],
            "properties": {"resourceType": {"const": "OperationOutcome"},
                           "issue": {"type": "array", "minItems": 1, "items": {
                               "type": "object", "required": ["severity", "code", "diagnostics"],
                               "properties": {"severity": {"type": "string"}, "code": {"type": "string"},
                                              "diagnostics": {"type": "string"}}}}}}
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


def _query(declared) -> dict:
    """The query parameters an operation may take, by name (Api.params)."""
    return {
        "as_of": {"name": "as_of", "in": "query", "required": False, "schema": {"type": "string", "format": "date"},
                  "description": "FHIR input: the request date (the CLI's --as-of)"},
        "drug": {"name": "drug", "in": "query", "required": False,
                 "schema": {"type": "string", "enum": list(declared.drugs)},
                 "description": "FHIR input: the drug, where a bundle requests several (the CLI's --drug)"},
        "why": {"name": "why", "in": "query", "required": False,
                "schema": {"type": "string", "enum": ["true", "false"]},
                "description": "true: each plan also carries rests_on, rests_on_count and facts_count (the CLI's "
                               "--why)"},
        "max_changes": {"name": "max_changes", "in": "query", "required": False,
                        "schema": {"type": "string", "pattern": "^[1-4]$"},
                        "description": "at most this many fact changes together (1-4, default 2)"},
    }


def _path(route: str) -> str:
    """The OpenAPI path of a route: its parameters without their convertors."""
    return re.sub(r"\{(\w+):[^}]*\}", r"{\1}", route)


def _schema(schema, declared) -> dict:
    return schema(declared) if callable(schema) else schema


def _operation(row: Operation, declared, query: dict) -> dict:
    """One operation object of the document, from the row's Api."""
    api = row.api
    op: dict = {"summary": api.summary}
    params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
              for n in re.findall(r"\{(\w+)", row.path)] + [query[n] for n in api.params]
    if params:
        op["parameters"] = params
    if api.request is not None:
        body = _schema(api.request, declared)
        op["requestBody"] = {"required": True, "content": {m: {"schema": body} for m in api.request_media}}
    codes = api.errors if api.errors is not None else (_ERRORS_FHIR if row.fhir else _ERRORS_JSON)
    errors = _errors(codes, _OUTCOME, FHIR_JSON) if row.fhir else _errors(codes, JSON_ERROR, JSON)
    op["responses"] = {"200": {"description": api.answer_words,
                               "content": {row.media: {"schema": _schema(api.answer, declared)}}},
                       **errors, **(api.responses or {})}
    if api.secured:
        op["security"] = [{"bearer": []}, {}]
    return op


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
    query = _query(declared)
    paths: dict = {}
    for method, row in documented():
        paths.setdefault(_path(row.path), {})[method.lower()] = _operation(row, declared, query)
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "pa-solver", "version": "1",
                 "description": "Prior-authorization eligibility (Besponsa, Blincyto) decided by ASP rules: "
                                "shared/spec/SERVICE.md."},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                       "schemas": _case_schemas(declared)},
        "paths": paths,
    }
    return dump_text(doc).encode("utf-8")
