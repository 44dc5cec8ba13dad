"""The facts a bundle gives, as they are gathered (solver/fhir/reader.py): each fact's kind, the
values its sources give (equal ones merge, different ones conflict), the bundle being read (what
gave a fact and what did not), and the case checked against CASE.md naming the source of a bad
value.
"""

from __future__ import annotations

from typing import Any

from solver.base.contract import ICD10_CODES, CaseError
from solver.fhir.resources import FhirError, ref


def fact_kinds(declared) -> dict[str, tuple[str, tuple]]:
    """fact -> (bool | enum | integer | number | list, enum values): the rule base's declared facts
    (solver/rules/declared.py) and the case's list of ICD-10 codes."""
    out = {}
    for name in declared.case_facts:
        fd = declared.facts[name]
        out[name] = (fd.kind, fd.values if fd.kind == "enum" else ())
    out[ICD10_CODES] = ("list", ())
    return out


class Values:
    """Values of facts gathered from sources; equal ones merge, different ones conflict."""

    def __init__(self):
        self.by_fact: dict[str, list] = {}

    def add(self, fact: str, value: Any, resource: str, element: str) -> None:
        self.by_fact.setdefault(fact, []).append((value, resource, element))

    def resolve(self):
        values, sources, conflicts = {}, {}, []
        for fact in sorted(self.by_fact):
            got = self.by_fact[fact]
            distinct = []
            for v, _, _ in got:
                if not any(_same(v, d) for d in distinct):
                    distinct.append(v)
            srcs = sorted({(r, e) for _, r, e in got})
            if len(distinct) == 1:
                values[fact] = distinct[0]
                sources[fact] = [{"resource": r, "element": e} for r, e in srcs]
            else:
                conflicts.append({"fact": fact, "values": sorted(
                    ({"value": v, "resource": r, "element": e} for v, r, e in got),
                    key=lambda x: (x["resource"], x["element"], repr(x["value"])))})
        return values, sources, conflicts


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) < 1e-9
    return a == b and type(a) is type(b)


class Reading:
    """A bundle being read: its read resources by type, the rule base's declarations, the values
    gathered, the resources that gave a fact (`used`) and what gave none (`unused`)."""

    def __init__(self, resources: list, unused: list, declared):
        self.resources, self.unused, self.declared = resources, unused, declared
        self.by_type: dict[str, list] = {}
        for r in resources:
            self.by_type.setdefault(r.get_resource_type(), []).append(r)
        self.used: set[str] = set()
        self.vals = Values()

    def of(self, rtype: str) -> list:
        """The read resources of one type, in the bundle's order."""
        return self.by_type.get(rtype, [])

    def left_unused(self) -> list:
        """What gave no fact, sorted, once each: every read resource neither used nor listed already."""
        for r in self.resources:
            if ref(r) not in self.used and not any(u.startswith(ref(r)) for u in self.unused):
                self.unused.append(ref(r))
        return sorted(set(self.unused))


def check_case(case: dict, sources: dict, declared) -> None:
    """The case is valid CASE.md, or FhirError naming the source of the bad value."""
    from solver.case.models import parse_case, types

    try:
        parse_case(case, types(declared))
    except CaseError as err:
        msg = str(err)
        field = msg.split(":", 1)[0]
        fact = field.split(".", 1)[1].split("[", 1)[0] if field.startswith("facts.") else field
        srcs = sources.get(fact) or []
        where = ", ".join(f"{s['resource']} {s['element']}" for s in srcs) or "(bundle)"
        raise FhirError(f"{where}: {msg}", case.get("case_id")) from None
