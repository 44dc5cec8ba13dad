"""Which criteria hold back a plan that did not approve: one rule, applied
where lean results are written (`batch --lean`), where results are counted
(`report`) and where a denial is explained (the table).

A criterion blocks when the plan did not approve the case and the criterion
is not met (or unknown) on one of the plan's pathways closest to approval:
outcome approved first (case review only where the plan has no approving
pathway in the result), then the fewest criteria not met, then the fewest
unknown; ties all count, a criterion once.
"""

from __future__ import annotations

from typing import Iterable

RULE = ("criteria not met / unknown, once per case, where the plan did not approve, on its pathways "
        "closest to approval: outcome approved (case_review when none), then fewest not met, then "
        "fewest unknown")
RANK = {"approved": 0, "case_review": 1}


def closest_key(outcome: str, not_met: int, unknown: int) -> tuple:
    """The order of closeness: smaller is closer.  KeyError for an outcome
    that is not a pathway outcome."""
    return (RANK[outcome], not_met, unknown)


def blocking(pathways: Iterable[tuple[str, list, list]]) -> tuple[list, list]:
    """(not met ids, unknown ids), sorted and distinct, of the pathways
    closest to approval among (outcome, not met ids, unknown ids)."""
    best = None
    nm: list = []
    un: list = []
    for outcome, n, u in pathways:
        key = closest_key(outcome, len(n), len(u))
        if best is None or key < best:
            best, nm, un = key, list(n), list(u)
        elif key == best:
            nm += n
            un += u
    return sorted(set(nm)), sorted(set(un))
