"""The FHIR contract's table as data (shared/spec/FHIR.md, "Where each part of
a case comes from"): code systems, the codes that name each drug and
measurement, the statuses that count, unit conversions.  The reader, and the
tests, take every code from here."""

from __future__ import annotations

ICD10_CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NDC = "http://hl7.org/fhir/sid/ndc"

# The codes that name each drug are the rule base's: drug_code/3 (logic/facts.lp, or a plan's
# own file; solver/rules/declared.py reads them as (system, code) -> drug).

# PAS certificationType (X12 1322) on Claim.item -> CASE.md request.
CERTIFICATION_TYPE_URL = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-certificationType"
CERTIFICATION_TYPES = {"I": "initial", "R": "continuation", "4": "continuation"}

# Which facts an Observation gives, by LOINC code and unit, is the rule base's: loinc/2 and unit/3
# (logic/facts.lp; solver/rules/declared.py reads them as Declared.observations).
OBSERVATION_STATUSES = frozenset({"final", "amended", "corrected"})

CONDITION_EXCLUDED = frozenset({"entered-in-error", "refuted"})            # verificationStatus codes
MEDICATION_REQUEST_EXCLUDED = frozenset({"entered-in-error", "cancelled"})
QUESTIONNAIRE_RESPONSE_EXCLUDED = frozenset({"entered-in-error", "stopped"})

# Resource types the mapping reads; every other known type is listed as unused.
READ = ("Claim", "Patient", "Condition", "Observation", "QuestionnaireResponse", "MedicationRequest")
