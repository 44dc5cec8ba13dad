"""What the case contract fixes, without a validation library: the error a bad
case raises, and how an ICD-10 code is written (plans, drugs and facts are
the rule base's: solver/rules/declared.py).

`models.py` (pydantic, the reference validation) and `fastcase.py` (the
one-shot fast path) both take these from here, so they cannot disagree on them.
"""

from __future__ import annotations

import re
from typing import Optional

# The case's ICD-10 codes: a field CASE.md fixes, not a fact the rules test; they give `diagnosis`
# through the rule base's icd10_prefix/2.  Plans, drugs and facts are the rule base's
# (solver/rules/declared.py).
ICD10_CODES = "icd10_codes"
ICD10_AFTER = "diagnosis"          # the fact icd10_prefix/2 gives values of: the codes stand after it

ICD10 = re.compile(r"^[A-TV-Z][0-9][0-9AB](\.?[0-9A-TV-Z]{1,4})?$")


class CaseError(ValueError):
    """A case that cannot be evaluated; the message names each bad field."""

    def __init__(self, message: str, case_id: Optional[str] = None):
        super().__init__(message)
        self.case_id = case_id


def icd10(code: str) -> Optional[str]:
    """An ICD-10 code as the solver reads it (upper case, the dot after the
    third character), or None when `code` is not one."""
    norm = code.strip().upper()
    if not ICD10.match(norm):
        return None
    if "." not in norm and len(norm) > 3:
        norm = norm[:3] + "." + norm[3:]
    return norm
