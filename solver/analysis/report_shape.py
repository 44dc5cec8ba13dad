"""The shape of a result line the report reads (solver/analysis/report.py's
docstring says which fields): the decisions, outcomes and statuses it knows,
the plans of the rule base in use, and `fault`, the first field of a line
that the report cannot count."""

from __future__ import annotations

import json
from typing import Any, Optional

from solver.case.blocking import closest_key

DECISIONS = ("approved", "case_review", "needs_info", "denied", "no_policy")
OUTCOMES = ("approved", "case_review")        # pathway outcomes, closest to approval first
STATUSES = ("met", "not_met", "unknown")

DECISION = frozenset(DECISIONS)
BOUND = (int, float, type(None))              # a range's ends (bool is not one)


def known_plans() -> dict:
    """The plans of the rule base in use (`--rules`): a result line naming another is refused."""
    from solver.rules.declared import of

    return of().plans


_TYPES = {dict: "an object", list: "a list", str: "a string", bool: "true or false", int: "a number",
          float: "a number", type(None): "null"}


def _what(v: Any) -> str:
    return _TYPES.get(type(v), type(v).__name__)


class _Fault(Exception):
    pass


def _field(d: dict, key: str, path: str, kind: Optional[type] = None, allow_none: bool = False) -> Any:
    if key not in d:
        raise _Fault(f"{path}.{key}: missing")
    v = d[key]
    if kind is not None and type(v) is not kind and not (allow_none and v is None):
        raise _Fault(f"{path}.{key}: must be {_TYPES[kind]}, not {_what(v)}")
    return v


def _one_of(v: Any, allowed: tuple, where: str) -> None:
    if type(v) is not str or v not in allowed:
        shown = json.dumps(v)[:40] if isinstance(v, (str, int, float, bool, type(None))) else _what(v)
        raise _Fault(f"{where}: must be one of {', '.join(allowed)}, not {shown}")


def fault(result: Any) -> Optional[str]:
    """The first field of a result line the report cannot count, as
    "path: what is wrong" (e.g. "results[0].decision: must be one of ..."),
    or None when the line can be counted."""
    try:
        _check(result)
    except _Fault as err:
        return str(err)
    return None


def _check(result: Any) -> None:
    if type(result) is not dict:
        raise _Fault(f"(line): must be an object, not {_what(result)}")
    rs = result.get("results")
    if type(rs) is not list:
        raise _Fault(f"results: must be a list, not {_what(rs)}")
    for i, r in enumerate(rs):
        p = f"results[{i}]"
        if type(r) is not dict:
            raise _Fault(f"{p}: must be an object, not {_what(r)}")
        _one_of(_field(r, "plan", p), tuple(known_plans()), f"{p}.plan")
        dec = _field(r, "decision", p)
        _one_of(dec, DECISIONS, f"{p}.decision")
        pws = _field(r, "pathways", p, list)
        if dec != "approved":
            if "blocking" in r:
                b = _field(r, "blocking", p, dict)
                for key in ("not_met", "unknown"):
                    for k, cid in enumerate(_field(b, key, f"{p}.blocking", list)):
                        if type(cid) is not str:
                            raise _Fault(f"{p}.blocking.{key}[{k}]: must be a string, not {_what(cid)}")
            else:
                _check_pathways(pws, p)
        ms = _field(r, "missing", p, list)
        for j, m in enumerate(ms):
            q = f"{p}.missing[{j}]"
            if type(m) is not dict:
                raise _Fault(f"{q}: must be an object, not {_what(m)}")
            if not _field(m, "facts", q, list):
                raise _Fault(f"{q}.facts: must not be empty")
        smallest = min((len(m["facts"]) for m in ms), default=0)
        for j, m in enumerate(ms):
            if len(m["facts"]) == smallest:          # the sets counted: their names are read
                q = f"{p}.missing[{j}]"
                _field(m, "pathway", q, str)
                for k, f in enumerate(m["facts"]):
                    if type(f) is not dict:
                        raise _Fault(f"{q}.facts[{k}]: must be an object, not {_what(f)}")
                    _field(f, "fact", f"{q}.facts[{k}]", str)
        changes = _field(r, "changes", p, list, allow_none=True) if "changes" in r else None
        for j, c in enumerate(changes or ()):
            q = f"{p}.changes[{j}]"
            if type(c) is not dict:
                raise _Fault(f"{q}: must be an object, not {_what(c)}")
            fs = _field(c, "facts", q, list)
            if not fs:
                raise _Fault(f"{q}.facts: must not be empty")
            if len(fs) != 1:
                continue                              # changes of several facts are not counted
            qf = f"{q}.facts[0]"
            f = fs[0]
            if type(f) is not dict:
                raise _Fault(f"{qf}: must be an object, not {_what(f)}")
            if f.get("values") is not None:
                vs = _field(f, "values", qf, list)
                for k, v in enumerate(vs):
                    if isinstance(v, (dict, list)):
                        raise _Fault(f"{qf}.values[{k}]: must be a string, number, true, false or null, "
                                     f"not {_what(v)}")
            else:
                rg = _field(f, "range", qf, list)
                if len(rg) != 2 or any(type(b) not in BOUND for b in rg):
                    raise _Fault(f"{qf}.range: must be [low, high], each a number or null")
            _field(f, "fact", qf, str)
            _one_of(_field(c, "decision", q), DECISIONS, f"{q}.decision")
            if f.get("values") is not None and not f["values"]:
                raise _Fault(f"{qf}.values: must not be empty")


def _check_pathways(pws: list, p: str) -> None:
    """The pathways of a full result that did not approve: each one's outcome
    and criteria by status; the ids of the closest (those counted)."""
    best, ids = None, []
    for j, pw in enumerate(pws):
        q = f"{p}.pathways[{j}]"
        if type(pw) is not dict:
            raise _Fault(f"{q}: must be an object, not {_what(pw)}")
        _one_of(_field(pw, "outcome", q), OUTCOMES, f"{q}.outcome")
        nm, un = [], []
        for k, c in enumerate(_field(pw, "criteria", q, list)):
            qc = f"{q}.criteria[{k}]"
            if type(c) is not dict:
                raise _Fault(f"{qc}: must be an object, not {_what(c)}")
            status = _field(c, "status", qc)
            _one_of(status, STATUSES, f"{qc}.status")
            if status != "met":
                (nm if status == "not_met" else un).append((f"{qc}.id", _field(c, "id", qc)))
        key = closest_key(pw["outcome"], len(nm), len(un))
        if best is None or key < best:
            best, ids = key, nm + un
        elif key == best:
            ids += nm + un
    for where, cid in ids:
        if type(cid) is not str:
            raise _Fault(f"{where}: must be a string, not {_what(cid)}")
