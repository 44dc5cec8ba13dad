"""Load on the service: locust (headless, in this process) against `pa-solver serve`.

    python bench/bench_service.py                       # 32 clients, 20 s per phase, server --workers = cores
    python bench/bench_service.py --users 32 --seconds 30 --workers 2 --phases decide submit mix

Phases: `decide` (POST /decide with the cases of examples/batch.jsonl), `submit` (PAS $submit, a
fresh Claim identifier each time, so every one is recorded), `crd` (order-sign, the worked
example), `mix` (decide 3 : submit 2 : crd 1).  For each: requests/s, p50 / p95 / p99 in ms,
failures, and for the recorded kinds that the store holds exactly one row per answered request.
The load generator shares the machine's cores with the server: on 2 cores it takes about one.
Needs `pip install -e '.[bench]'` (locust).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(store: Path, workers: int, extra: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "solver.cli", "serve", "--port", str(port), "--store", str(store),
                             "--workers", str(workers), *extra], cwd=store.parent,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    import urllib.request

    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the server did not start: {proc.stderr.read().decode()}")


def run_phase(url: str, phase: str, users: int, seconds: float) -> dict:
    import gevent
    from locust import FastHttpUser, constant, events, task
    from locust.env import Environment

    cases = [line.encode() for line in (ROOT / "examples" / "batch.jsonl").read_text().splitlines() if line.strip()]
    pas = json.loads((ROOT / "examples" / "fhir" / "pas_request_besponsa.json").read_text())
    crd = (ROOT / "examples" / "crd" / "order_sign_besponsa.json").read_bytes()
    counter = itertools.count()
    json_h = {"Content-Type": "application/json"}
    fhir_h = {"Content-Type": "application/fhir+json"}

    def submit_body() -> bytes:
        pas["entry"][0]["resource"]["identifier"] = [{"system": "urn:bench", "value": f"b-{next(counter)}"}]
        return json.dumps(pas).encode()

    weights = {"decide": (1, 0, 0), "submit": (0, 1, 0), "crd": (0, 0, 1), "mix": (3, 2, 1)}[phase]

    class Client(FastHttpUser):
        host = url
        wait_time = constant(0)

        @task(weights[0] or 0)
        def decide(self):
            self.client.post("/decide", data=cases[next(counter) % len(cases)], headers=json_h, name="/decide")

        @task(weights[1] or 0)
        def submit(self):
            self.client.post("/fhir/Claim/$submit", data=submit_body(), headers=fhir_h, name="$submit")

        @task(weights[2] or 0)
        def order_sign(self):
            self.client.post("/cds-services/pa-solver-order-sign", data=crd, headers=json_h, name="order-sign")

    Client.tasks = [t for t, w in zip((Client.decide, Client.submit, Client.order_sign), weights) if w
                    for _ in range(w)]
    env = Environment(user_classes=[Client], events=events)
    runner = env.create_local_runner()
    runner.start(users, spawn_rate=users)
    gevent.sleep(2.0)                                   # warm: every client running
    env.stats.reset_all()
    t0 = time.perf_counter()
    gevent.sleep(seconds)
    elapsed = time.perf_counter() - t0
    stats = {name: env.stats.get(name, "POST") for name in ("/decide", "$submit", "order-sign")}
    out = {}
    for name, s in stats.items():
        if s.num_requests:
            out[name] = {"requests": s.num_requests, "per_s": round(s.num_requests / elapsed, 1),
                         "failures": s.num_failures, "p50_ms": s.get_response_time_percentile(0.5),
                         "p95_ms": s.get_response_time_percentile(0.95),
                         "p99_ms": s.get_response_time_percentile(0.99)}
    runner.quit()
    gevent.sleep(0.5)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--phases", nargs="+", default=["decide", "submit", "crd", "mix"],
                    choices=["decide", "submit", "crd", "mix"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "bench.sqlite"
        proc, url = start(store, args.workers, [])
        try:
            results = {}
            for phase in args.phases:
                before = _count(store)
                got = run_phase(url, phase, args.users, args.seconds)
                time.sleep(0.5)
                recorded = _count(store) - before
                answered = sum(v["requests"] - v["failures"] for k, v in got.items() if k in ("$submit", "order-sign"))
                results[phase] = {"endpoints": got, "recorded": recorded, "answered_recordable": answered}
                for name, v in got.items():
                    print(f"{phase:7} {name:11} {v['per_s']:8.1f}/s  p50 {v['p50_ms']:5.0f} ms  p95 {v['p95_ms']:5.0f} ms  "
                          f"p99 {v['p99_ms']:5.0f} ms  failures {v['failures']}", flush=True)
                if answered:
                    print(f"{phase:7} recorded {recorded} rows for {answered} answered $submit / order-sign "
                          f"(at least one each; the warm-up's are counted too)", flush=True)
        finally:
            proc.terminate()
            proc.wait(60)
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_service.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=2))


def _count(store: Path) -> int:
    with sqlite3.connect(store) as db:
        return db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]


if __name__ == "__main__":
    main()
