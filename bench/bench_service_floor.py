"""The ceiling the service's design sets, with no solving at all: locust (32 clients, as
bench_service.py) against uvicorn (uvloop, httptools, as `pa-solver serve`) answering a real
59 KB `/decide` answer that is already made:

    /inproc   written by the event loop itself
    /pool     fetched from a worker process through a ProcessPoolExecutor, as the service does

    python bench/bench_service_floor.py [--seconds 10] [--rounds 2]

Answers/s here bound what `/decide` can reach on this machine: each request's share of the
cores spent outside the solver is 2 cores / (these answers/s).  Needs '.[bench]' (locust).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ANSWER = Path(os.environ.get("PA_FLOOR_ANSWER", "-"))


_CACHED: list = []


def _answer(_body: bytes) -> bytes:
    """In a worker: the canned answer (read once)."""
    if not _CACHED:
        _CACHED.append(ANSWER.read_bytes())
    return _CACHED[0]


async def app(scope, receive, send):
    """A bare ASGI app: read the body, answer the canned bytes (from a worker for /pool)."""
    if scope["type"] == "lifespan":
        while True:
            m = await receive()
            if m["type"] == "lifespan.startup":
                app.body = ANSWER.read_bytes()
                app.pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("forkserver"))
                await asyncio.get_running_loop().run_in_executor(app.pool, _answer, b"")
                await send({"type": "lifespan.startup.complete"})
            else:
                app.pool.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return
    body, more = b"", True
    while more:
        m = await receive()
        body += m.get("body", b"")
        more = m.get("more_body", False)
    if scope["path"] == "/pool":
        out = await asyncio.get_running_loop().run_in_executor(app.pool, _answer, body)
    else:
        out = app.body
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": out})


def phase(url: str, path: str, seconds: float, users: int = 32) -> tuple[float, float]:
    import gevent
    from locust import FastHttpUser, constant, events, task
    from locust.env import Environment

    body = (ROOT / "examples" / "cvs_frontline_incomplete.json").read_bytes()

    class Client(FastHttpUser):
        host = url
        wait_time = constant(0)

        @task
        def post(self):
            self.client.post(path, data=body, headers={"Content-Type": "application/json"}, name=path)

    env = Environment(user_classes=[Client], events=events)
    runner = env.create_local_runner()
    runner.start(users, spawn_rate=users)
    gevent.sleep(2.0)
    env.stats.reset_all()
    t0 = time.perf_counter()
    gevent.sleep(seconds)
    elapsed = time.perf_counter() - t0
    s = env.stats.get(path, "POST")
    runner.quit()
    gevent.sleep(0.5)
    return s.num_requests / elapsed, s.get_response_time_percentile(0.99)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        answer = Path(tmp) / "answer.json"
        answer.write_bytes(subprocess.run([sys.executable, "-m", "solver.cli", "decide", "--json",
                                           str(ROOT / "examples" / "cvs_frontline_incomplete.json")],
                                          capture_output=True, check=True, cwd=ROOT).stdout)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "PA_FLOOR_ANSWER": str(answer), "PYTHONPATH": str(ROOT / "bench")}
        server = subprocess.Popen([sys.executable, "-m", "uvicorn", "bench_service_floor:app", "--port", str(port),
                                   "--log-level", "warning", "--no-access-log", "--loop", "uvloop",
                                   "--http", "httptools"], env=env, cwd=tmp)
        try:
            import urllib.request

            url = f"http://127.0.0.1:{port}"
            for _ in range(200):
                try:
                    urllib.request.urlopen(urllib.request.Request(url + "/inproc", data=b"{}"), timeout=1).read()
                    break
                except OSError:
                    time.sleep(0.1)
            print(f"answer: {answer.stat().st_size} bytes")
            for _ in range(args.rounds):
                for path in ("/inproc", "/pool"):
                    rate, p99 = phase(url, path, args.seconds)
                    print(f"{path:8} {rate:7.0f}/s  p99 {p99:4.0f} ms  -> {2000 / rate:.2f} ms of the 2 cores a request",
                          flush=True)
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
