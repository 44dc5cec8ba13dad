"""FHIR at the edge of the house (shared/spec/FHIR.md): a Bundle becomes a case with its sources
(`reader`), a case or result becomes what goes out (`pas`, `dtr`, `crd`, `nextq`); the engine and the
rule base never see FHIR.  The contract's codes and units live in `codes`.  Nothing is imported here:
FHIR's libraries load only when a FHIR input arrives."""
