"""The fast path of the FHIR reader (solver/fhir/fast.py) gives the mapping
exactly what R4B validation gives it: on every test bundle and on thousands
of mutations of their elements, reading with the fast path and reading with
R4B alone agree -- the same case, sources and unused list, or the same error.
The one allowed difference: a mutation in an element the mapping never reads
may be refused by R4B and read past by the fast path (its value cannot
change the case)."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import pytest

from fhir_build import bundle_for
from solver.fhir import fast
from solver.fhir.reader import read_bundle
from solver.fhir.resources import FhirError

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = [None, "", " x", "x ", "a b", 1, 0, -1, 1.5, 2 ** 40, True, False, [], {}, [None], {"x": 1},
           "2020-02-30", "2025-01-01T10:00:00", "2025-01-01T10:00:60Z", "2025", "2025-13", "C91.00", "final",
           "true", "12.5", "\u00a0", "x\u200fy"]


def corpus() -> list[dict]:
    out = [json.loads(p.read_text()) for p in sorted((ROOT / "tests" / "fhir" / "examples").glob("*.json"))]
    out.append(json.loads((ROOT / "examples" / "fhir" / "pas_request_besponsa.json").read_text()))
    for p in sorted(ROOT.glob("examples/*.json")):
        case = json.loads(p.read_text())
        out.append(bundle_for(case))
        out.append(bundle_for(case, nested=False))
    return out


def outcome(bundle: dict, fast_path: bool):
    try:
        got = read_bundle(copy.deepcopy(bundle), fast_path=fast_path)
    except FhirError as err:
        return ("error", str(err))
    return ("ok", json.dumps(got.to_json(), sort_keys=True, default=str), got.claim, got.patient)


def _type_of(spec) -> str:
    name = spec if isinstance(spec, str) else spec.__name__
    return name[len("list["):-1] if name.startswith("list[") else name


def paths(value, rtype: str, read: bool, here=()):
    """(path, read) for every element under a resource: read when every step is an element fast.py reads."""
    if isinstance(value, dict):
        for k, v in value.items():
            spec = fast.READS.get(rtype, {}).get(k) if read else None
            step_read = spec is not None
            sub = _type_of(spec[0]) if step_read else ""
            yield here + (k,), step_read
            yield from paths(v, sub, step_read, here + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield here + (i,), read
            yield from paths(v, rtype, read, here + (i,))


def mutated(bundle: dict, entry: int, path: tuple, new) -> dict:
    b = copy.deepcopy(bundle)
    node = b["entry"][entry]["resource"]
    for step in path[:-1]:
        node = node[step]
    if new is DELETE:
        if isinstance(node, dict):
            del node[path[-1]]
        else:
            node.pop(path[-1])
    else:
        node[path[-1]] = new
    return b


DELETE = object()


@pytest.mark.parametrize("index", range(len(corpus())))
def test_both_paths_agree_on_the_bundle_and_its_mutations(index):
    bundle = corpus()[index]
    assert outcome(bundle, True) == outcome(bundle, False)
    rng = random.Random(index)
    cases = []
    for e, entry in enumerate(bundle.get("entry", [])):
        res = entry.get("resource", {})
        rtype = res.get("resourceType")
        if rtype not in fast.RESOURCES:
            continue
        for path, read in paths(res, rtype, True):
            for new in HOSTILE + [DELETE]:
                cases.append((e, path, read, new))
    rng.shuffle(cases)
    compared = refused_unread = 0
    for e, path, read, new in cases[:300]:
        b = mutated(bundle, e, path, new)
        quick, slow = outcome(b, True), outcome(b, False)
        if quick != slow:
            # only an element the mapping does not read may differ: R4B refuses it, the fast path
            # reads on (to a result, or to the error the rest of the bundle gives)
            assert not read and slow[0] == "error", (path, new, quick, slow)
            refused_unread += 1
        compared += 1
    assert compared >= min(300, len(cases))


def test_the_fast_path_reads_the_resources_it_mirrors():
    """Not a path that always doubts: every read resource of the bundled PAS request is read fast."""
    bundle = json.loads((ROOT / "examples" / "fhir" / "pas_request_besponsa.json").read_text())
    read = [r for r in (e["resource"] for e in bundle["entry"]) if r["resourceType"] in fast.RESOURCES]
    assert read and all(fast.read(r) is not None for r in read)
    for case_file in sorted(ROOT.glob("examples/*.json")):
        b = bundle_for(json.loads(case_file.read_text()))
        assert all(fast.read(e["resource"]) is not None for e in b["entry"]
                   if e["resource"]["resourceType"] in fast.RESOURCES), case_file.name


def test_an_unknown_element_name_or_two_choices_go_to_r4b():
    bundle = bundle_for(json.loads((ROOT / "examples" / "ohsu_adult_rr.json").read_text()))
    pat = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    assert fast.read({**pat, "birthdate": "2000-01-01"}) is None                  # a typo: R4B names it
    with pytest.raises(FhirError, match="birthdate"):
        read_bundle(mutated(bundle, bundle["entry"].index(next(e for e in bundle["entry"] if e["resource"] is pat)),
                            ("birthdate",), "2000-01-01"))
    obs = next((e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"), None)
    if obs is not None:
        assert fast.read({**obs, "valueString": "70"}) is None                     # value[x] twice
