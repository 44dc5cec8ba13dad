"""Benchmark of the real rule base: both solving strategies, warm latency,
batch throughput over every core, and peak memory as the batch grows.

    python bench/bench.py                  # default sizes
    python bench/bench.py --sizes 1000 10000 100000

Cases are a seeded, realistic mix: full profiles for each plan's pathways with
facts dropped (0-60 %) and a few values changed, so that decisions span
approved, case_review, needs_info, denied and no_policy.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from collections import Counter

from solver.analysis.batch import stream_encoded
from solver.engine.solver import Solver
from solver.case.models import parse_case

PROFILES = {
    "adult_rr": {"age_years": 52, "weight_kg": 78, "diagnosis": "all", "b_cell_precursor": True,
                 "cd22_positive": True, "ph_status": "negative", "disease_setting": "relapsed_refractory",
                 "regimen": "single_agent", "planned_cycles": 4, "units_per_21_days": 30,
                 "dose_within_label": True, "baseline_ecg_normal": True, "ecg_monitoring_planned": True,
                 "prior_inotuzumab": False, "prior_systemic_therapies": 2, "prescriber_specialty": "hematology",
                 "nccn_category": "2A"},
    "ph_pos_tki": {"age_years": 61, "weight_kg": 70, "diagnosis": "all", "b_cell_precursor": True,
                   "cd22_positive": True, "ph_status": "positive", "tki_failure": True,
                   "disease_setting": "relapsed_refractory", "regimen": "tki_combination", "planned_cycles": 6,
                   "units_per_21_days": 60, "dose_within_label": True, "baseline_ecg_normal": True,
                   "ecg_monitoring_planned": True, "prior_inotuzumab": False, "prescriber_specialty": "oncology"},
    "frontline": {"age_years": 67, "weight_kg": 82, "diagnosis": "all", "b_cell_precursor": True,
                  "cd22_positive": True, "ph_status": "negative", "disease_setting": "frontline_consolidation",
                  "regimen": "mini_hyper_cvd", "with_rituximab": True, "substantial_comorbidities": False,
                  "planned_cycles": 4, "units_per_21_days": 40, "baseline_ecg_normal": True,
                  "ecg_monitoring_planned": True, "prior_inotuzumab": False},
    "pediatric": {"age_years": 9, "weight_kg": 30, "diagnosis": "all", "b_cell_precursor": True,
                  "cd22_positive": True, "disease_setting": "relapsed_refractory", "regimen": "single_agent",
                  "planned_cycles": 3, "units_per_21_days": 15, "baseline_ecg_normal": True,
                  "ecg_monitoring_planned": True, "prior_inotuzumab": False, "ph_status": "negative",
                  "prior_systemic_therapies": 1, "prescriber_specialty": "oncology", "dose_within_label": True},
    "lymphoma": {"age_years": 41, "icd10_codes": ["C83.50"], "b_cell_precursor": True, "cd22_positive": True,
                 "disease_setting": "relapsed_refractory", "regimen": "single_agent", "nccn_category": "2A",
                 "ph_status": "negative", "planned_cycles": 3},
    "continuation": {"diagnosis": "all", "b_cell_precursor": True, "cycles_received": 3,
                     "months_since_initial_authorization": 4.5, "unacceptable_toxicity": False,
                     "disease_progression": False, "cd22_positive": True, "disease_setting": "relapsed_refractory"},
    "new_to_plan": {"diagnosis": "all", "new_to_plan_on_treatment": True, "supplied_by_samples_or_pap": False},
    "non_cancer": {"diagnosis": "non_cancer", "age_years": 30},
}
CHANGES = {"age_years": [0.5, 17.9, 18, 64.9, 65, 80], "ph_status": ["positive", "negative"],
           "regimen": ["single_agent", "mini_hyper_cvd", "tki_combination", "other_combination"],
           "planned_cycles": [6, 7], "units_per_21_days": [63, 64], "cd22_positive": [True, False],
           "prior_inotuzumab": [True, False], "disease_setting": ["relapsed_refractory", "frontline_induction"]}


def cases(n: int, seed: int = 2026):
    rng = random.Random(seed)
    names = sorted(PROFILES)
    for i in range(n):
        name = rng.choice(names)
        facts = {k: v for k, v in PROFILES[name].items() if rng.random() >= rng.uniform(0, 0.6)}
        for fact in rng.sample(sorted(CHANGES), rng.randint(0, 2)):
            facts[fact] = rng.choice(CHANGES[fact])
        request = "continuation" if name == "continuation" else "initial"
        drug = "blinatumomab" if rng.random() < 0.1 else "inotuzumab_ozogamicin"
        yield {"case_id": f"{name}-{i}", "drug": drug, "request": request, "facts": facts}


def percentiles(ts):
    ts = sorted(ts)
    return ts[len(ts) // 2] * 1e3, ts[min(len(ts) - 1, int(len(ts) * 0.99))] * 1e3


def peak_rss_mb():
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return me / 1024, kids / 1024


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--latency-cases", type=int, default=2000)
    ap.add_argument("--fresh-cases", type=int, default=200)
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args(argv)

    parsed = [parse_case(c) for c in cases(args.latency_cases)]
    solver = Solver()
    mix = Counter()
    for c in parsed[:200]:                       # warm up
        solver.decide_json(c)
    ts = []
    for c in parsed:
        t = time.perf_counter()
        out = solver.decide_json(c)
        ts.append(time.perf_counter() - t)
        mix.update(r["decision"] for r in json.loads(out)["results"])
    reuse = percentiles(ts)
    print(f"decision mix over {len(parsed)} cases x plans: {dict(sorted(mix.items()))}")
    print(f"one grounding reused (assumptions): p50 {reuse[0]:.3f} ms  p99 {reuse[1]:.3f} ms  "
          f"mean {sum(ts) / len(ts) * 1e3:.3f} ms  (warm decide, all five plans, missing sets)")

    ts = []
    for c in parsed[: args.fresh_cases]:
        t = time.perf_counter()
        Solver().decide_json(c)
        ts.append(time.perf_counter() - t)
    fresh = percentiles(ts)
    print(f"fresh Control per case (load+ground+solve): p50 {fresh[0]:.2f} ms  p99 {fresh[1]:.2f} ms  "
          f"-> reuse is {fresh[0] / reuse[0]:.0f}x faster")

    for n in args.sizes:
        lines = (json.dumps(c) for c in cases(n, seed=n))
        t = time.perf_counter()
        count = sum(1 for _ in stream_encoded(lines, workers=args.workers))
        dt = time.perf_counter() - t
        me, kids = peak_rss_mb()
        print(f"batch {n:>7} cases: {count / dt:7.0f} cases/s  ({dt:.1f} s)  "
              f"peak RSS parent {me:.0f} MB, largest worker {kids:.0f} MB")


if __name__ == "__main__":
    sys.exit(main())
