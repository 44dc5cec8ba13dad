"""FHIR bundles per second in batch, and where a bundle's time goes.

    python bench/bench_fhir.py [--bundles 2000] [--workers 2]

Each bundle is a realistic PAS request of ten resources: the Claim, the
Patient, weight and height Observations, two Conditions, a
QuestionnaireResponse with the other facts, and an Organization, a Coverage
and a Practitioner the mapping does not read.  Prints, for one process, the
time per bundle spent reading it (JSON, validation of the elements the
mapping reads -- solver/fhir/fast.py, R4B where it doubts --, the mapping)
and deciding it, then the batch throughput over
`--workers` processes.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fhir_build import bundle_for  # noqa: E402

from solver.analysis.batch import stream_encoded  # noqa: E402
from solver.engine.solver import Solver
from solver.text.jsontext import dump_text  # noqa: E402
from solver.fhir.inputs import case_from, result_for  # noqa: E402
from solver.text.jsontext import loads  # noqa: E402

EXTRA = [
    {"resourceType": "Organization", "id": "prov1", "name": "Provider"},
    {"resourceType": "Coverage", "id": "cov1", "status": "active", "beneficiary": {"reference": "Patient/pat1"},
     "payor": [{"reference": "Organization/payer1"}]},
    {"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "Example"}]},
]


def bundles(n: int) -> list[bytes]:
    rng = random.Random(7)
    base = [json.loads(p.read_text()) for p in sorted((ROOT / "examples").glob("*.json"))]
    out = []
    for i in range(n):
        case = json.loads(json.dumps(rng.choice(base)))
        case["case_id"] = f"fhir-{i}"
        facts = case.setdefault("facts", {})
        facts.setdefault("weight_kg", round(rng.uniform(30, 110), 1))
        facts.setdefault("height_cm", round(rng.uniform(120, 200), 1))
        facts.setdefault("age_years", rng.randint(2, 85))
        facts.setdefault("icd10_codes", ["C91.00", "C91.02"])
        b = bundle_for(case)
        b["entry"] += [{"resource": r} for r in EXTRA]
        out.append(json.dumps(b).encode())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundles", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    data = bundles(args.bundles)
    print(f"{len(data)} bundles, {statistics.mean(len(json.loads(d)['entry']) for d in data[:50]):.0f} resources "
          f"each, {statistics.mean(map(len, data)) / 1024:.1f} KiB")
    solver = Solver()
    for d in data[:50]:                                   # warm up imports and the solver
        dump_text(result_for(solver, *case_from(loads(d))))
    read, decide = [], []
    for d in data[:1000]:
        t0 = time.perf_counter()
        case, fhir = case_from(loads(d))
        t1 = time.perf_counter()
        dump_text(result_for(solver, case, fhir))
        t2 = time.perf_counter()
        read.append(t1 - t0)
        decide.append(t2 - t1)
    print(f"one process: read (JSON + validation + mapping) mean {1e3 * statistics.mean(read):.2f} ms, "
          f"decide + JSON mean {1e3 * statistics.mean(decide):.2f} ms")
    t = time.perf_counter()
    n = sum(1 for item in stream_encoded(data, workers=args.workers) if item[0] == "ok")
    dt = time.perf_counter() - t
    print(f"batch, {args.workers} workers: {n} bundles decided in {dt:.1f} s = {n / dt:,.0f} bundles/s")


if __name__ == "__main__":
    main()
