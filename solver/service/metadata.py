"""GET /fhir/metadata: the CapabilityStatement (valid under the R4B models; tested)."""

from __future__ import annotations

from functools import lru_cache

from solver.service.operations import OPERATIONS
from solver.text.jsontext import dump_text


def _resources() -> list[dict]:
    """The resource types the table's operations are on, each with its operations (the table's order)."""
    by_type: dict[str, list[dict]] = {}
    for o in OPERATIONS:
        if o.capability is not None:
            c = o.capability
            by_type.setdefault(c.resource, []).append({"name": c.name, "definition": c.definition})
    return [{"type": t, "operation": ops} for t, ops in by_type.items()]


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
            "resource": _resources(),
        }],
    }
    return dump_text(cs).encode("utf-8")
