"""FHIR at the edge of the house (shared/spec/FHIR.md): a Bundle becomes a
case with its sources (`reader`); the engine and the rule base never see FHIR.
The contract's codes and units live in `codes`."""

from .reader import FhirCase, FhirError, is_fhir, read_bundle

__all__ = ["FhirCase", "FhirError", "is_fhir", "read_bundle"]
