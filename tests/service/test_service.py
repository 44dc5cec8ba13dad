"""The service (SERVICE.md), called as a client would: a real `pa-solver serve` on a free local
port, real HTTP.  Endpoint by endpoint against the CLI's bytes, every status code, the token,
the store ($submit recorded before it is answered, $inquire after kill -9 and a restart), a
worker killed mid-request, SIGTERM, the time limit."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from conftest import run_cli
from served import Server, free_port  # noqa: F401  (free_port: test_store_pg takes it from here)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
PAS = EXAMPLES / "fhir" / "pas_request_besponsa.json"
FHIR = "application/fhir+json"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("serve"), "--workers", "2", "--max-body", str(1 << 20))
    yield s
    s.stop()


def cli(*args: str) -> bytes:
    return run_cli(*args, timeout=120, text=False).stdout


def outcome(r: httpx.Response, code: str) -> str:
    body = r.json()
    assert r.headers["content-type"].startswith(FHIR) and body["resourceType"] == "OperationOutcome", body
    assert body["issue"][0]["code"] == code, body
    return body["issue"][0]["diagnostics"]


# ------------------------------------------------------------------ answers equal the CLI's

CASES = sorted(EXAMPLES.glob("*.json")) + [PAS]


@pytest.mark.parametrize("path", CASES, ids=[p.name for p in CASES])
def test_decide_explain_and_questionnaire_equal_the_cli(server, path):
    body = path.read_bytes()
    assert server.post("/decide", body).content == cli("decide", str(path), "--json")
    assert server.post("/explain", body).content == cli("explain", str(path), "--json")
    assert server.post("/explain?max_changes=1", body).content == cli("explain", str(path), "--json",
                                                                       "--max-changes", "1")
    q = server.post("/questionnaire", body)
    assert q.content == cli("questionnaire", str(path))
    assert q.headers["content-type"].split(";")[0] == FHIR         # a FHIR resource, said as FHIR


def test_why_says_what_each_decision_rests_on_as_the_cli_does(server):
    for path in (EXAMPLES / "ohsu_adult_rr.json", PAS):
        body = path.read_bytes()
        assert server.post("/decide?why=true", body).content == cli("decide", str(path), "--json", "--why")
        assert server.post("/explain?why=true&max_changes=1", body).content == cli(
            "explain", str(path), "--json", "--why", "--max-changes", "1")
    assert server.post("/decide?why=false", PAS.read_bytes()).content == cli("decide", str(PAS), "--json")
    bad = server.post("/decide?why=yes", PAS.read_bytes())
    assert bad.status_code == 400 and "why" in bad.json()["error"]


def test_every_v2_example_line_and_diff_equal_the_cli(server, tmp_path):
    for line in (EXAMPLES / "v2_readings.jsonl").read_text().splitlines():
        f = tmp_path / "case.json"
        f.write_text(line)
        assert server.post("/decide", line.encode()).content == cli("decide", str(f), "--json")
    got = server.post("/diff", json.dumps({"plans": ["ohsu", "masshealth"], "request": "continuation"}).encode())
    assert got.status_code == 200
    assert got.content == cli("diff", "ohsu", "masshealth", "--request", "continuation", "--json")


def test_submit_answers_the_pas_response_and_inquire_gives_back_the_same_bytes(server):
    body = PAS.read_bytes()
    r = server.post("/fhir/Claim/$submit", body, FHIR)
    assert r.status_code == 200 and r.content == cli("decide", str(PAS), "--format", "pas")
    claim = json.loads(body)["entry"][0]["resource"]
    inquiry = {"resourceType": "Bundle", "type": "collection",
               "entry": [{"resource": {"resourceType": "Claim", "identifier": claim["identifier"]}}]}
    again = server.post("/fhir/Claim/$inquire", json.dumps(inquiry).encode(), FHIR)
    assert again.status_code == 200 and again.content == r.content
    inquiry["entry"][0]["resource"]["identifier"] = [{"system": "urn:example:claims", "value": "never-sent"}]
    missing = server.post("/fhir/Claim/$inquire", json.dumps(inquiry).encode(), FHIR)
    assert missing.status_code == 404 and "never-sent" in outcome(missing, "not-found")


def test_metadata_openapi_and_health(server):
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement

    meta = httpx.get(server.url + "/fhir/metadata")
    cs = CapabilityStatement.model_validate(meta.json())
    assert {o.name for o in cs.rest[0].resource[0].operation} == {"submit", "inquire"}
    doc = httpx.get(server.url + "/openapi.json").json()
    assert {"/decide", "/explain", "/questionnaire", "/diff", "/fhir/Claim/$submit", "/fhir/Claim/$inquire",
            "/fhir/metadata", "/health"} <= set(doc["paths"])
    assert set(doc["paths"]["/questionnaire"]["post"]["responses"]["200"]["content"]) == {FHIR}
    assert set(doc["paths"]["/decide"]["post"]["responses"]["200"]["content"]) == {"application/json"}
    health = httpx.get(server.url + "/health").json()
    assert health["status"] == "ok" and len(health["rules_version"]) == 16


# ------------------------------------------------------------------ every status code

def test_bad_requests_get_clear_answers_never_500(server):
    r = server.post("/decide", b'{"facts": {"age_years": 500}}')
    assert r.status_code == 400 and r.json() == {"error": "facts.age_years: Input should be less than or equal to 130"}
    r = server.post("/decide", b'{"case_id": "a\\ud800"}')
    assert r.status_code == 400 and "lone UTF-16 surrogate" in r.json()["error"]
    r = server.post("/decide", b"[" * 10000)
    assert r.status_code == 400 and "nested more than 64 deep" in r.json()["error"]
    r = server.post("/decide", b"\xff\xfe")
    assert r.status_code == 400 and "not UTF-8" in r.json()["error"]
    r = server.post("/explain?max_changes=9", (EXAMPLES / "ohsu_adult_rr.json").read_bytes())
    assert r.status_code == 400 and "max_changes" in r.json()["error"]
    r = server.post("/decide?as_of=yesterday", PAS.read_bytes())
    assert r.status_code == 400 and "as_of" in r.json()["error"]
    assert httpx.get(server.url + "/nowhere").status_code == 404
    r = httpx.get(server.url + "/decide")
    assert r.status_code == 405 and r.json() == {"error": "GET is not allowed on /decide"}
    r = server.post("/decide", b"facts", "text/plain")
    assert r.status_code == 415 and "must be JSON" in r.json()["error"]
    r = server.post("/decide", b" " * ((1 << 20) + 1))
    assert r.status_code == 413
    r = server.post("/fhir/Claim/$submit", b"{" * 10, FHIR)
    assert r.status_code == 400 and outcome(r, "invalid")
    # valid FHIR that is not a prior-authorization request
    r = server.post("/fhir/Claim/$submit", b'{"resourceType": "Patient", "id": "p1"}', FHIR)
    assert r.status_code == 422 and "PAS request Bundle" in outcome(r, "not-supported")
    neither = json.loads(PAS.read_text())
    for e in neither["entry"]:
        if e["resource"]["resourceType"] == "Claim":
            for item in e["resource"]["item"]:
                item["productOrService"]["coding"][0]["code"] = "J9999"
    r = server.post("/fhir/Claim/$submit", json.dumps(neither).encode(), FHIR)
    assert r.status_code == 422 and "requests neither" in outcome(r, "not-supported")
    no_id = json.loads(PAS.read_text())
    del no_id["entry"][0]["resource"]["identifier"]
    r = server.post("/fhir/Claim/$submit", json.dumps(no_id).encode(), FHIR)
    assert r.status_code == 400 and "Claim.identifier" in outcome(r, "required")
    r = server.post("/diff", b'{"plans": ["ohsu", "ohsu"]}')
    assert r.status_code == 400 and "two different plan ids" in r.json()["error"]
    r = server.post("/diff", b'{"plans": ["ohsu", "masshealth"], "against": "/etc"}')
    assert r.status_code == 400 and "--against is a server option" in r.json()["error"]
    r = server.post("/fhir/Claim/$inquire", b'{"resourceType": "Bundle", "entry": []}', FHIR)
    assert r.status_code == 422


# ------------------------------------------------------------------ access

def test_token_on_and_off(tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    s = Server(tmp_path, "--workers", "1", "--token-file", str(token))
    try:
        body = (EXAMPLES / "ohsu_adult_rr.json").read_bytes()
        r = s.post("/decide", body)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert s.post("/decide", body, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert s.post("/decide", body, headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
        r = s.post("/fhir/Claim/$submit", PAS.read_bytes(), FHIR)
        assert r.status_code == 401 and outcome(r, "security")
        assert httpx.get(s.url + "/health").status_code == 200          # /health needs no token
        for path in ("/fhir/metadata", "/openapi.json", "/cds-services"):  # nor what says what the server does
            assert httpx.get(s.url + path).status_code == 200, path
        r = httpx.get(s.url + "/fhir/Questionnaire/pa-inotuzumab-ozogamicin-initial-ohsu")
        assert r.status_code == 401 and outcome(r, "security")
    finally:
        assert s.stop() == 0
    # no token: localhost only, said at start; another address is refused
    open_ = subprocess.run([sys.executable, "-m", "solver.cli", "serve", "--host", "0.0.0.0", "--port", "1"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert open_.returncode == 2 and "without --token-file the server listens on 127.0.0.1 only" in open_.stderr
    empty = tmp_path / "empty"
    empty.write_text("\n")
    bad = subprocess.run([sys.executable, "-m", "solver.cli", "serve", "--token-file", str(empty)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert bad.returncode == 2 and "must hold one token" in bad.stderr


# ------------------------------------------------------------------ faults

def test_kill_9_during_load_loses_no_answered_submission(tmp_path):
    kill_9_during_load_loses_nothing(tmp_path, tmp_path / "kept.sqlite")


def kill_9_during_load_loses_nothing(tmp_path: Path, store, answers: int = 20) -> None:
    """Four clients $submit without pause; once `answers` are answered, SIGKILL the server;
    restart it on the same store: $inquire gives back every answered submission byte for byte,
    and `audit` lists each.  `store`: a SQLite file or a PostgreSQL URL (tests/service/test_store_pg.py).
    It waits for the answers, not for a time: on a busy machine a fixed 2.5 s held none."""
    s = Server(tmp_path, "--workers", "2", store=store)
    template = json.loads(PAS.read_text())
    answered: dict[str, bytes] = {}
    stop = threading.Event()

    def client(k: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            ident = f"load-{k}-{n}"
            b = json.loads(json.dumps(template))
            b["entry"][0]["resource"]["identifier"] = [{"system": "urn:test", "value": ident}]
            b["identifier"] = {"system": "urn:test:bundles", "value": ident}    # so each answer's bytes are its own
            try:
                r = httpx.post(s.url + "/fhir/Claim/$submit", content=json.dumps(b).encode(),
                               headers={"Content-Type": FHIR}, timeout=120)
            except httpx.HTTPError:
                return                                      # the server is gone
            if r.status_code == 200:
                answered[ident] = r.content

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    assert wait_for(lambda: len(answered) >= answers or not any(t.is_alive() for t in threads), 120) and \
        len(answered) >= answers, f"{len(answered)} answered in 120 s"
    import psutil

    left = psutil.Process(s.proc.pid).children(recursive=True)   # solver processes, fork server
    s.proc.kill()                                           # SIGKILL: no shutdown, no flush
    s.proc.wait()
    stop.set()
    for t in threads:
        t.join(120)
    # nothing of the killed server lingers: its solver processes leave when it is gone
    _, alive = psutil.wait_procs(left, timeout=60)
    assert not alive, [p.cmdline()[-1][:80] for p in alive]
    again = Server(tmp_path, "--workers", "1", store=store)
    try:
        for ident, body in answered.items():
            inquiry = {"resourceType": "Bundle", "type": "collection", "entry": [
                {"resource": {"resourceType": "Claim", "identifier": [{"system": "urn:test", "value": ident}]}}]}
            r = again.post("/fhir/Claim/$inquire", json.dumps(inquiry).encode(), FHIR)
            assert r.status_code == 200 and r.content == body, ident
    finally:
        assert again.stop() == 0
    audit = subprocess.run([sys.executable, "-m", "solver.cli", "audit", "--store", str(store), "--json"],
                           capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert audit.returncode == 0, audit.stderr
    rows = [json.loads(line) for line in audit.stdout.splitlines()]
    assert {r["submission"].split("|", 1)[1] for r in rows} >= set(answered)


class Load:
    """Clients posting /explain without pause (each answer takes milliseconds, so a request is
    always in flight); every response kept, a refused connection ends a client."""

    def __init__(self, server: Server, clients: int = 6):
        self.server, self.responses, self.stop = server, [], threading.Event()
        self.threads = [threading.Thread(target=self._client) for _ in range(clients)]
        for t in self.threads:
            t.start()

    def _client(self) -> None:
        while not self.stop.is_set():
            try:
                self.responses.append(self.server.post("/explain?max_changes=3", b'{"facts": {"age_years": 70}}'))
            except httpx.HTTPError:
                return

    def end(self) -> list:
        self.stop.set()
        for t in self.threads:
            t.join(60)
        return self.responses


def wait_for(condition, seconds: float = 60.0) -> bool:
    """Until `condition()` holds (a loaded machine is slow), at most `seconds`; whether it holds."""
    deadline = time.time() + seconds
    while not condition() and time.time() < deadline:
        time.sleep(0.05)
    return bool(condition())


def test_a_worker_killed_mid_request_gives_that_request_503_and_the_server_goes_on(tmp_path):
    import psutil

    s = Server(tmp_path, "--workers", "1", "--time-limit", "60")
    try:
        load = Load(s)
        assert wait_for(lambda: len(load.responses) >= 10, 120)   # the load is under way: a request is always held
        # the solver processes: forked by the forkserver, itself a child of the server
        (forkserver,) = [c for c in psutil.Process(s.proc.pid).children() if "forkserver" in " ".join(c.cmdline())]
        workers = forkserver.children()
        assert workers
        for w in workers:
            w.kill()
        seen = len(load.responses)

        def answered_again() -> bool:
            """The requests held by the dead worker were answered 503, and then every client had
            answers from the new workers (12: twice the clients, so none still waits for a 503)."""
            codes = [r.status_code for r in load.responses[seen:]]
            return 503 in codes and codes[len(codes) - codes[::-1].index(503):].count(200) >= 12

        assert wait_for(answered_again, 120), [r.status_code for r in load.responses[seen:]]
        got = load.end()
        codes = [r.status_code for r in got]
        assert set(codes) == {200, 503} and codes.count(503) <= 6, codes     # at most what was in flight
        for r in got:
            if r.status_code == 503:
                assert "was lost" in r.json()["error"]
        # after the kill the server went on: answers kept coming, and they are the CLI's
        assert codes[-1] == 200
        body = (EXAMPLES / "ohsu_adult_rr.json").read_bytes()
        ok = s.post("/decide", body)
        assert ok.status_code == 200 and ok.content == cli("decide", str(EXAMPLES / "ohsu_adult_rr.json"), "--json")
    finally:
        assert s.stop() == 0


def test_a_decision_over_the_time_limit_is_stopped(tmp_path):
    s = Server(tmp_path, "--workers", "1", "--time-limit", "0.0005")
    try:
        r = s.post("/explain?max_changes=4", b'{"facts": {}}')
        assert r.status_code == 503 and "longer than the server's limit" in r.json()["error"]
        # the worker is ready for the next request once the limit lets it finish
    finally:
        assert s.stop() == 0


def test_sigterm_drains_and_exits_0(tmp_path):
    s = Server(tmp_path, "--workers", "1")
    load = Load(s)
    assert wait_for(lambda: len(load.responses) >= 10, 120)    # requests are in flight
    assert s.stop(signal.SIGTERM) == 0
    got = load.end()
    # every request the server took was answered in full before it exited (no 503, no broken response)
    assert got and all(r.status_code == 200 for r in got), {r.status_code for r in got}


def many_orders(n: int) -> bytes:
    """The worked CRD example with `n` draft orders (each a decision: seconds of solving for
    thousands, so a small time limit stops it).  Written as text: a deep copy per order took
    13 s for 20,000 on a busy machine."""
    req = json.loads((EXAMPLES / "crd" / "order_sign_besponsa.json").read_text())
    (order, *_) = req["context"]["draftOrders"]["entry"]
    req["context"]["draftOrders"]["entry"] = ["ORDERS"]
    order["resource"]["id"] = "mr-ORDER"
    one = json.dumps(order)
    orders = ", ".join(one.replace("mr-ORDER", f"mr-{i}") for i in range(n))
    return json.dumps(req).replace('"ORDERS"', orders).encode()


def every_kind() -> list[tuple[str, bytes, dict]]:
    """One request of each kind a worker answers (work.handle's op, body, params)."""
    case = (EXAMPLES / "ohsu_adult_rr.json").read_bytes()
    qid = "pa-inotuzumab-ozogamicin-initial-ohsu"
    qr = {"resourceType": "QuestionnaireResponse", "status": "in-progress",
          "questionnaire": f"http://127.0.0.1/fhir/Questionnaire/{qid}", "item": []}
    return [("decide", case, {}), ("decide", case, {"why": "true"}), ("explain", case, {}),
            ("questionnaire", case, {}), ("diff", b'{"plans": ["ohsu", "masshealth"]}', {}),
            ("submit", PAS.read_bytes(), {}), ("crd", many_orders(1), {}),
            ("next_question", json.dumps(qr).encode(), {}), ("fhir_questionnaire", b"", {"id": qid})]


def test_a_request_over_the_time_limit_stops_that_request_only():
    """Issue 23: the watchdog interrupted every clingo control of the worker, and a control
    not solving keeps an interrupt until its next solve, which it stops at once: after one
    request over the limit, the worker's next /explain and /diff were answered 503 in
    milliseconds.  Here, in this process, as a worker does it: every kind answered, one request
    stopped by a small limit, then every kind again, with a generous limit: the same answers."""
    from solver.service import work

    work.init()
    before = [work.handle(op, body, params, 60.0) for op, body, params in every_kind()]
    assert [a.status for a in before] == [200] * len(before), [a.body[:200] for a in before]
    over = work.handle("crd", many_orders(2000), {}, 0.1)
    assert over.status == 503 and b"longer than the server's limit of 0.1 s" in over.body, over.body[:200]
    after = [work.handle(op, body, params, 60.0) for op, body, params in every_kind()]
    assert [(op, a.status) for (op, _, _), a in zip(every_kind(), after)] == \
        [(op, 200) for op, _, _ in every_kind()], [a.body[:200] for a in after]
    assert [a.body for a in after] == [a.body for a in before]


def test_every_request_over_the_time_limit_is_stopped():
    """A single interrupt among short solves back to back goes unheeded now and then (clingo:
    in 155 of 300 tries, measured); the watchdog sent one, and about one CDS Hooks call in six
    over a 0.1 s limit ran to its end and was answered 200.  Fifteen such calls: each stopped."""
    from solver.service import work

    work.init()
    body = many_orders(2000)                     # seconds of solving, on any machine over 0.1 s
    codes = [work.handle("crd", body, {}, 0.1).status for _ in range(15)]
    assert codes == [503] * 15, codes


def test_after_a_request_over_the_time_limit_the_worker_answers_the_next_ones(tmp_path):
    """The same through the served app: one worker, a CDS Hooks call too costly for the limit,
    then /explain, /diff and /decide?why=true on that worker answer as the CLI does."""
    s = Server(tmp_path, "--workers", "1", "--time-limit", "3")
    try:
        # 18 s of solving on this machine (a machine 5 times as fast is still over the limit);
        # reading its 5 MB is not limited, and slow on a busy machine: a generous deadline
        r = s.post("/cds-services/pa-solver-order-sign", many_orders(10000), timeout=600)
        assert r.status_code == 503 and "longer than the server's limit of 3 s" in r.json()["error"], r.text[:300]
        case = EXAMPLES / "ohsu_adult_rr.json"
        r = s.post("/explain", case.read_bytes())
        assert r.status_code == 200 and r.content == cli("explain", str(case), "--json"), r.text[:300]
        r = s.post("/diff", b'{"plans": ["ohsu", "masshealth"]}')
        assert r.status_code == 200 and r.content == cli("diff", "ohsu", "masshealth", "--json"), r.text[:300]
        r = s.post("/decide?why=true", case.read_bytes())
        assert r.status_code == 200 and r.content == cli("decide", str(case), "--json", "--why"), r.text[:300]
    finally:
        assert s.stop() == 0
