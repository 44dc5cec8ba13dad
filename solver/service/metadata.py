"""GET /fhir/metadata: the CapabilityStatement (valid under the R4B models; tested)."""

from __future__ import annotations

from functools import lru_cache

from solver.text.jsontext import dump_text

OPERATIONS = [
    ("submit", "http://hl7.org/fhir/us/davinci-pas/OperationDefinition/Claim-submit", "Claim"),
    ("inquire", "http://hl7.org/fhir/us/davinci-pas/OperationDefinition/Claim-inquiry", "Claim"),
]


@lru_cache(maxsize=4)
def capability_statement(rules_version: str) -> bytes:
    cs = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-06",
        "kind": "instance",
        "software": {"name": "pa-solver", "version": rules_version},
        "implementation": {"description": "Prior-authorization eligibility as Answer Set Programming "
                                          f"(rules {rules_version})"},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "application/json"],
        "rest": [{
            "mode": "server",
            "documentation": "Da Vinci PAS $submit and $inquire; every answer is recorded before it is sent.",
            "resource": [{"type": "Claim", "operation": [{"name": n, "definition": d} for n, d, _ in OPERATIONS]}],
        }],
    }
    return dump_text(cs).encode("utf-8")
