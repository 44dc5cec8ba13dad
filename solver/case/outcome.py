"""A result in words, for every reader of it: the pathways closest to approval
(the rule of solver/case/blocking.py, the one the report counts blocking criteria
by), and what a criterion's tests say ("planned_cycles is 8; the policy allows
at most 6").  The terminal table, `why`, PAS dispositions, CRD cards and the
pages all say a result with these."""

from __future__ import annotations

from solver.case.blocking import closest_key
from solver.text.words import number


def closest(pathways: list[dict]) -> list[dict]:
    """The pathways closest to approval, by the rule of solver/case/blocking.py
    (the one the report counts blocking criteria by)."""
    def key(pw):
        crits = pw.get("criteria", [])
        return closest_key(pw["outcome"], sum(c["status"] == "not_met" for c in crits),
                           sum(c["status"] == "unknown" for c in crits))
    if not pathways:
        return []
    best = min(key(pw) for pw in pathways)
    return [pw for pw in pathways if key(pw) == best]


def need(test: str) -> str:
    """A test in words a reviewer reads: "at most 6", "at least 18", "one of a, b", "yes"."""
    if test in ("true", "false"):
        return "yes" if test == "true" else "no"
    if test == "documented":
        return "any known value"
    if test.startswith("in ["):
        values = test[4:-1].split(", ")
        return values[0] if len(values) == 1 else "one of " + ", ".join(values)
    words = {">=": "at least", "<=": "at most", "<": "under"}
    out = []
    for part in test.split(" and "):
        op, _, bound = part.partition(" ")
        out.append(f"{words.get(op, op)} {bound}" if bound else part)
    return " and ".join(out)


def shown(value) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return number(value) if not isinstance(value, str) else value


def fact_words(b: dict) -> str:
    """"planned_cycles is 8; the policy allows at most 6" (one test of a criterion's `because`)."""
    if b["holds"] is None:
        return f"{b['fact']} is unknown; the policy needs {need(b['test'])}"
    if b["holds"]:
        return f"{b['fact']} is {shown(b['value'])}, as the policy needs ({need(b['test'])})"
    return f"{b['fact']} is {shown(b['value'])}; the policy allows {need(b['test'])}"


def sentence(b: dict, source: str) -> str:
    """"planned_cycles is 8; the policy allows at most 6 — I. Length of Authorization"."""
    return f"{fact_words(b)} \u2014 {source}"


def broken(c: dict) -> list[str]:
    """The words of a criterion's tests that do not hold (a denial's specific reason)."""
    return [fact_words(b) for b in c.get("because", []) if b["holds"] is False]
