"""The service's HTTP edges (SERVICE.md), against a real `pa-solver serve`: headers over the limit
(431), a request that arrives too slowly (408), what the parser cannot read (JSON, not text), a
wrong method (405 with Allow), malformed $inquire shapes (400 naming the element), SIGHUP (drains),
and a killed solver process failing only the requests it held."""

from __future__ import annotations

import http.client
import json
import select
import signal
import socket
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from test_service import EXAMPLES, FHIR, PAS, Server, wait_for

READ_TIMEOUT = 1.0          # the servers here give a request a second (the default is 20 s)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("edges"), "--workers", "2", "--read-timeout", str(READ_TIMEOUT))
    yield s
    s.stop()


def exchange(port: int, data: bytes, *, chunks=None) -> tuple[bytes, float]:
    """Send `data`, then each of `chunks` ((pause, bytes) pairs) unless the server has answered
    meanwhile, as a client reading its socket would; read until the server closes.  The bytes
    read and the seconds it took."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        try:
            s.sendall(data)
            for pause, piece in chunks or []:
                if select.select([s], [], [], pause)[0]:
                    break                                   # answered (and closing): stop sending
                s.sendall(piece)
        except OSError:
            pass                                            # refused mid-send: the answer is waiting
        got = b""
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            got += b
    return got, time.monotonic() - start


def parse(raw: bytes) -> tuple[int, dict, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def json_error(raw: bytes, status: int) -> str:
    got, headers, body = parse(raw)
    assert got == status, raw[:500]
    assert headers["content-type"] == "application/json", headers
    assert int(headers["content-length"]) == len(body)
    return json.loads(body)["error"]


def outcome_error(raw: bytes, status: int, code: str) -> str:
    got, headers, body = parse(raw)
    assert got == status, raw[:500]
    assert headers["content-type"] == FHIR, headers
    issue = json.loads(body)["issue"][0]
    assert issue["code"] == code, issue
    return issue["diagnostics"]


# ------------------------------------------------------------------ 431: headers over the limit

def test_headers_over_the_limit_are_refused_431_before_they_are_held_whole(server):
    # 200 headers of 100 kB: refused once past 64 KiB, not read to the end (the server closes)
    head = b"GET /health HTTP/1.1\r\nHost: x\r\n"
    chunks = [(0, b"X-Pad-%d: %s\r\n" % (i, b"a" * 100_000)) for i in range(200)] + [(0, b"\r\n")]
    raw, _ = exchange(server.port, head, chunks=chunks)
    assert "over the limit of 65536 bytes" in json_error(raw, 431)
    # all of them in one piece
    raw, _ = exchange(server.port, head + b"".join(c for _, c in chunks[:3]) + b"\r\n")
    assert "request line and headers" in json_error(raw, 431)
    # many small ones, under a FHIR path: an OperationOutcome
    many = b"".join(b"X-%d: %s\r\n" % (i, b"b" * 100) for i in range(1000))
    raw, _ = exchange(server.port, b"POST /fhir/Claim/$submit HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert "over the limit" in outcome_error(raw, 431, "too-long")
    # a long URL counts too
    raw, _ = exchange(server.port, b"GET /health?" + b"q" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    json_error(raw, 431)
    # under the limit: answered
    r = httpx.get(server.url + "/health", headers={"Cookie": "c" * 60_000})
    assert r.status_code == 200
    # said in --help
    out = subprocess.run([sys.executable, "-m", "solver.cli", "serve", "--help"], capture_output=True, text=True,
                         timeout=60).stdout
    assert "--max-headers" in out and "431" in out and "64 KiB" in " ".join(out.split())


# ------------------------------------------------------------------ 408: too slow

def post_head(path: str, length: int, media: str = "application/json") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {media}\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def test_a_body_that_idles_or_trickles_is_answered_408_and_the_connection_closed(server):
    # idles: 10 of 100 bytes, then nothing
    raw, took = exchange(server.port, post_head("/decide", 100) + b'{"facts": ')
    assert "did not arrive within 1 s" in json_error(raw, 408)
    assert parse(raw)[1]["connection"] == "close" and took < 30
    # trickles: a byte every 0.1 s keeps coming, but the whole body is late
    raw, took = exchange(server.port, post_head("/fhir/Claim/$submit", 1000, FHIR),
                         chunks=[(0.1, b" ")] * 300)
    assert "did not arrive" in outcome_error(raw, 408, "timeout")
    assert took < 25                                         # not held for the whole trickle (30 s)
    # a head that idles
    raw, _ = exchange(server.port, b"GET /health HTTP/1.1\r\nHost: x\r\n")
    assert "headers did not arrive" in json_error(raw, 408)
    # a body the server answered without reading (no token needed here, but /health reads none):
    # the connection is closed when it does not come, after the answer
    raw, took = exchange(server.port, b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n")
    assert parse(raw)[0] == 200 and took < 30
    # a connection that sends nothing is not held either (uvicorn's keep-alive time, 5 s)
    _, took = exchange(server.port, b"")
    assert took < 30
    # the option is checked
    bad = subprocess.run([sys.executable, "-m", "solver.cli", "serve", "--read-timeout", "0"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "--read-timeout 0: must be" in bad.stderr


# ------------------------------------------------------------------ what the parser cannot read

@pytest.mark.parametrize("data, words", [
    (b"POST /decide HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", "Content-Length"),
    (b"POST /decide HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "Transfer-Encoding"),
    (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "HTTP/2 is not served"),
    (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", "TLS"),
    (b"GET /he\x00alth HTTP/1.1\r\nHost: x\r\n\r\n", "could not be read"),
    (b"GET /health HTTP/1.1\r\nBad Header: x\r\n\r\n", "header"),
], ids=["content-length", "cl-and-te", "http2-preface", "tls", "nul-in-path", "bad-header-name"])
def test_what_the_parser_cannot_read_is_answered_in_json(server, data, words):
    raw, _ = exchange(server.port, data)
    assert words in json_error(raw, 400)


def test_a_parser_error_under_fhir_is_an_operation_outcome(server):
    raw, _ = exchange(server.port, b"POST /fhir/Claim/$submit HTTP/1.1\r\nContent-Length: x1\r\n\r\n")
    assert "Content-Length" in outcome_error(raw, 400, "invalid")


def test_an_unreadable_request_pipelined_behind_another_does_not_take_its_answer(server):
    raw, _ = exchange(server.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
                                   b"GET /health HTTP/1.1\r\nContent-Length: x\r\n\r\n")
    status, headers, body = parse(raw)
    assert status == 200 and json.loads(body)["status"] == "ok" and headers["connection"] == "close", raw


H2C = b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"


def test_a_request_asking_to_upgrade_is_answered_as_http_1_1_body_and_all(server):
    # curl --http2 on http:// sends `Upgrade: h2c` with a POST's body: the body was lost (400 "not JSON")
    body = (EXAMPLES / "ohsu_adult_rr.json").read_bytes()
    plain = server.post("/decide", body).content
    head = b"POST /decide HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + H2C + \
        b"Content-Length: %d\r\n\r\n" % len(body)
    after = b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"   # a request pipelined after it
    raw, _ = exchange(server.port, head + body[:10], chunks=[(0.05, body[10:50]), (0.05, body[50:] + after)])
    first, _, second = raw.partition(b"HTTP/1.1 404")
    status, _, got = parse(first)
    assert status == 200 and got == plain
    assert b"no endpoint '/nowhere'" in second
    raw, _ = exchange(server.port, b"GET /health HTTP/1.1\r\nHost: x\r\n" + H2C + b"\r\n" + after)
    assert raw.startswith(b"HTTP/1.1 200") and b"no endpoint '/nowhere'" in raw
    raw, _ = exchange(server.port, b"POST /decide HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + H2C +
                      b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
    assert "send the request without Upgrade" in json_error(raw, 400)


def test_a_websocket_upgrade_is_answered_as_plain_http(server):
    raw, _ = exchange(server.port, b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n"
                                   b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    assert "no endpoint" in json_error(raw, 404)


# ------------------------------------------------------------------ 405: a wrong method

POST_ONLY = ["/fhir/Claim/$submit", "/fhir/Claim/$inquire", "/fhir/Questionnaire/$next-question",
             "/cds-services/pa-solver-order-sign", "/decide", "/explain", "/questionnaire", "/diff"]


@pytest.mark.parametrize("path", POST_ONLY)
def test_a_wrong_method_on_a_post_only_path_is_405_with_allow(server, path):
    for method in ("GET", "HEAD", "PUT", "DELETE"):
        r = httpx.request(method, server.url + path)
        assert r.status_code == 405 and r.headers["allow"] == "POST", (method, r.status_code, r.text)
        if method != "HEAD":
            words = r.json()["issue"][0]["diagnostics"] if path.startswith("/fhir/") else r.json()["error"]
            assert words == f"{method} is not allowed on {path}"


def test_a_wrong_method_on_a_get_path_is_405_with_allow(server):
    for path in ("/health", "/fhir/metadata", "/openapi.json", "/cds-services",
                 "/fhir/Questionnaire/pa-inotuzumab-ozogamicin-initial-ohsu"):
        r = httpx.post(server.url + path, content=b"{}", headers={"Content-Type": "application/json"})
        assert r.status_code == 405 and set(r.headers["allow"].split(", ")) == {"GET", "HEAD"}, path
    # a Questionnaire is still read by GET, and an unknown one is 404
    assert httpx.get(server.url + "/fhir/Questionnaire/pa-inotuzumab-ozogamicin-initial-ohsu").status_code == 200
    assert httpx.get(server.url + "/fhir/Questionnaire/nope").status_code == 404


# ------------------------------------------------------------------ $inquire and $submit shapes

@pytest.mark.parametrize("identifier, element", [
    (5, "Claim.identifier: must be a list"),
    (True, "Claim.identifier: must be a list"),
    ({"system": "urn:x", "value": "v"}, "Claim.identifier: must be a list"),
    ("abc", "Claim.identifier: must be a list"),
    ([5], "Claim.identifier[0]: must be an Identifier object"),
    ([[{"value": "v"}]], "Claim.identifier[0]: must be an Identifier object"),
    ([{"value": 5}], "Claim.identifier[0].value: must be a string"),
    ([{"value": "v"}, {"value": "w", "system": {"a": 1}}], "Claim.identifier[1].system: must be a string"),
])
def test_a_claim_identifier_of_the_wrong_shape_is_400_naming_it(server, identifier, element):
    inquiry = {"resourceType": "Bundle", "type": "collection",
               "entry": [{"resource": {"resourceType": "Claim", "identifier": identifier}}]}
    r = server.post("/fhir/Claim/$inquire", json.dumps(inquiry).encode(), FHIR)
    assert r.status_code == 400 and r.json()["issue"][0]["diagnostics"].startswith(element), r.text
    bundle = json.loads(PAS.read_text())
    bundle["entry"][0]["resource"]["identifier"] = identifier
    r = server.post("/fhir/Claim/$submit", json.dumps(bundle).encode(), FHIR)
    assert r.status_code == 400 and r.json()["issue"][0]["diagnostics"].startswith(element), r.text


# ------------------------------------------------------------------ SIGHUP

def solver_processes(s: Server) -> list:
    (forkserver,) = [c for c in psutil.Process(s.proc.pid).children() if "forkserver" in " ".join(c.cmdline())]
    return forkserver.children()


def send_held(s: Server, n: int, path: str = "/decide") -> list:
    """`n` requests sent in full on connections of their own, answers not yet read; then a /health
    round trip, so that the server has taken each of them (the event loop reads in order)."""
    body = (EXAMPLES / "ohsu_adult_rr.json").read_bytes()
    conns = []
    for _ in range(n):
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=120)
        c.request("POST", path, body, {"Content-Type": "application/json"})
        conns.append(c)
    for _ in range(2):
        assert httpx.get(s.url + "/health", timeout=60).status_code == 200
    return conns


def test_sighup_drains_what_is_in_flight_and_exits_0(tmp_path):
    s = Server(tmp_path, "--workers", "1")
    workers = solver_processes(s)
    try:
        for w in workers:
            w.suspend()                                     # what it is given, it holds
        conns = send_held(s, 5)
        s.proc.send_signal(signal.SIGHUP)

        def refused() -> bool:
            try:
                socket.create_connection(("127.0.0.1", s.port), timeout=5).close()
                return False
            except OSError:
                return True
        wait_for(refused)                                   # it stopped taking new connections...
        assert refused() and s.proc.poll() is None          # ...and waits for what it holds
    finally:
        for w in workers:
            w.resume()
    answers = [c.getresponse() for c in conns]
    assert [a.status for a in answers] == [200] * 5
    assert s.stop() == 0


# ------------------------------------------------------------------ a killed solver process

def test_a_killed_worker_fails_only_the_requests_it_held(tmp_path):
    s = Server(tmp_path, "--workers", "2", "--time-limit", "60")
    try:
        workers = solver_processes(s)
        assert len(workers) == 2
        for w in workers:
            w.suspend()
        conns = send_held(s, 6)                             # three on each: each goes to the least busy
        workers[0].kill()
        workers[1].resume()
        answers = [c.getresponse() for c in conns]
        codes = sorted(a.status for a in answers)
        assert codes == [200] * 3 + [503] * 3, codes
        for a in answers:
            body = json.loads(a.read())
            if a.status == 503:
                assert "was lost" in body["error"]
        # the lost worker was replaced, and the server goes on
        held = send_held(s, 4)
        assert [c.getresponse().status for c in held] == [200] * 4
    finally:
        for w in psutil.Process(s.proc.pid).children(recursive=True):
            if w.status() == psutil.STATUS_STOPPED:
                w.resume()
        assert s.stop() == 0
