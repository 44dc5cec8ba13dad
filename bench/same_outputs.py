"""Are two checkouts' outputs the same, byte for byte?

    python bench/same_outputs.py OLD_CHECKOUT NEW_CHECKOUT [--keep DIR]

Runs every command on the bundled examples and on a 2,000-case batch (JSON,
text, PAS, questionnaire, diff, coverage, report, why, plan check), then
serves each checkout and sends it the same requests (JSON endpoints, CRD,
PAS $submit and $inquire, DTR, the metadata and the OpenAPI document), and
compares what each checkout gave.  Each checkout runs its own code
(`python -m solver.cli` with the checkout as the working directory), so a
checkout needs no installation of its own: the current environment's
packages serve both.

What a service answer holds that is meant to change from run to run (a
timestamp, a generated id) is masked before comparing; nothing else is.
Exit 0 when everything is the same, 1 with the list of what differs.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

EX = "examples"
CASES = [f"{EX}/ohsu_adult_rr.json", f"{EX}/cvs_frontline_incomplete.json", f"{EX}/bcbsnc_compendia.json",
         f"{EX}/continuation.json", f"{EX}/masshealth_blinatumomab.json"]
PAS = f"{EX}/fhir/pas_request_besponsa.json"
CRD = f"{EX}/crd/order_sign_besponsa.json"


def commands(cases_file: str, results_file: str) -> dict[str, list[str]]:
    """Every command's outputs worth pinning: name -> arguments of `pa-solver`."""
    out: dict[str, list[str]] = {}
    for path in CASES + [PAS]:
        name = Path(path).stem
        out[f"decide-{name}.txt"] = ["decide", path]
        out[f"decide-{name}.json"] = ["decide", path, "--json"]
        out[f"decide-{name}-verbose.txt"] = ["decide", path, "--verbose"]
        out[f"explain-{name}.json"] = ["explain", path, "--json", "--max-changes", "2"]
        out[f"explain-{name}.txt"] = ["explain", path]
        out[f"why-{name}.txt"] = ["why", path]
        out[f"decide-{name}-why.json"] = ["decide", path, "--json", "--why"]
        out[f"questionnaire-{name}.json"] = ["questionnaire", path]
    out["decide-pas.json"] = ["decide", PAS, "--format", "pas"]
    out["questionnaire-all.json"] = ["questionnaire"]
    out["diff-masshealth-ohsu.txt"] = ["diff", "masshealth", "ohsu"]
    out["diff-masshealth-ohsu.json"] = ["diff", "masshealth", "ohsu", "--json"]
    out["diff-ohsu-against-v1.json"] = ["diff", "ohsu", "--against", "tests/rules_v1", "--json"]
    out["coverage.txt"] = ["coverage"]
    out["coverage.json"] = ["coverage", "--json"]
    out["plan-check.txt"] = ["plan", "check"]
    out["batch.jsonl"] = ["batch", cases_file, "--workers", "2", "--no-progress"]
    out["batch-why.jsonl"] = ["batch", cases_file, "--workers", "2", "--no-progress", "--why"]
    out["explain-batch.jsonl"] = ["explain", f"{EX}/batch.jsonl", "--json"]
    out["report.txt"] = ["report", results_file]
    out["report.json"] = ["report", results_file, "--format", "json"]
    out["batch-v2-readings.jsonl"] = ["batch", f"{EX}/v2_readings.jsonl", "--workers", "1", "--no-progress"]
    out["help.txt"] = ["--help"]
    for command in ("decide", "explain", "batch", "report", "diff", "questionnaire", "coverage", "ui", "why",
                    "serve", "audit"):
        out[f"help-{command}.txt"] = [command, "--help"]
    out["help-plan-new.txt"] = ["plan", "new", "--help"]
    out["help-plan-check.txt"] = ["plan", "check", "--help"]
    out["error-bad-case.txt"] = ["decide", "tests/rules_v1"]            # a folder, not a case
    out["error-bad-option.txt"] = ["batch", "-", "--workers", "0"]
    return out


def run_commands(root: Path, cases_file: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1", "PYTHONHASHSEED": "0"}
    results = dest / "_results.jsonl"
    subprocess.run([sys.executable, "-m", "solver.cli", "batch", str(cases_file), "--workers", "2",
                    "--no-progress"], cwd=root, env=env, stdout=results.open("wb"), check=False)
    for name, args in commands(str(cases_file), str(results)).items():
        r = subprocess.run([sys.executable, "-m", "solver.cli", *args], cwd=root, env=env,
                           capture_output=True, timeout=600)
        (dest / name).write_bytes(r.stdout + b"\n--- stderr ---\n" + r.stderr + f"\n--- exit {r.returncode}\n".encode())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: bytes, media: str) -> tuple[int, str, bytes]:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": media})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def run_service(root: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    store = dest / "_store.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "solver.cli", "serve", "--port", str(port), "--workers", "1",
                             "--store", str(store)], cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            try:
                if _get(url + "/health")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise SystemExit(f"{root}: the server did not start: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.2)
        ex = root / EX
        pas = (root / PAS).read_bytes()
        claim = json.loads(pas)
        ident = next(e["resource"]["identifier"] for e in claim["entry"] if e["resource"]["resourceType"] == "Claim")
        inquire = json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": {"resourceType": "Claim", "identifier": ident}}]}).encode()
        asks = {
            "decide.json": ("POST", "/decide", (ex / "ohsu_adult_rr.json").read_bytes(), "application/json"),
            "decide-why.json": ("POST", "/decide?why=true", (ex / "cvs_frontline_incomplete.json").read_bytes(),
                                "application/json"),
            "explain.json": ("POST", "/explain", (ex / "bcbsnc_compendia.json").read_bytes(), "application/json"),
            "questionnaire.json": ("POST", "/questionnaire", (ex / "cvs_frontline_incomplete.json").read_bytes(),
                                   "application/json"),
            "diff.json": ("POST", "/diff", b'{"plans": ["masshealth", "ohsu"]}', "application/json"),
            "submit.json": ("POST", "/fhir/Claim/$submit", pas, "application/fhir+json"),
            "inquire.json": ("POST", "/fhir/Claim/$inquire", inquire, "application/fhir+json"),
            "crd.json": ("POST", "/cds-services/pa-solver-order-sign", (root / CRD).read_bytes(), "application/json"),
            "bad-case.json": ("POST", "/decide", b'{"facts": {"age_years": 999}}', "application/json"),
            "metadata.json": ("GET", "/fhir/metadata", b"", ""),
            "openapi.json": ("GET", "/openapi.json", b"", ""),
            "cds-services.json": ("GET", "/cds-services", b"", ""),
        }
        for name, (method, path, body, media) in asks.items():
            status, ctype, got = _post(url + path, body, media) if method == "POST" else _get(url + path)
            (dest / name).write_bytes(f"{status} {ctype}\n".encode() + got)
        # the next-question walk: start with the PAS bundle's case, answer nothing
        q = json.loads(subprocess.run([sys.executable, "-m", "solver.cli", "questionnaire",
                                       str(ex / "cvs_frontline_incomplete.json")], cwd=root,
                                      capture_output=True).stdout or b"{}")
        if q:
            body = json.dumps({"resourceType": "Parameters", "parameter": [
                {"name": "questionnaire-response", "resource": {
                    "resourceType": "QuestionnaireResponse", "status": "in-progress",
                    "contained": [q], "questionnaire": "#" + q.get("id", "")}}]}).encode()
            status, ctype, got = _post(url + "/fhir/Questionnaire/$next-question", body, "application/fhir+json")
            (dest / "next-question.json").write_bytes(f"{status} {ctype}\n".encode() + got)
    finally:
        proc.terminate()
        proc.wait(60)
    r = subprocess.run([sys.executable, "-m", "solver.cli", "audit", "--store", str(store)], cwd=root,
                       capture_output=True)
    (dest / "audit.txt").write_bytes(r.stdout.replace(str(store).encode(), b"<store>")
                                     + b"\n--- exit " + str(r.returncode).encode() + b"\n")


# What is meant to differ from one serving to the next.
_VOLATILE = [
    (re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?"), b"<instant>"),
    (re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), b"<uuid>"),
    (re.compile(rb"\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)?"), b"<instant>"),
    (re.compile(rb"127\.0\.0\.1:\d+"), b"<server>"),                 # each serving has its own port
]


def masked(data: bytes) -> bytes:
    for pattern, into in _VOLATILE:
        data = pattern.sub(into, data)
    return data


def compare(a: Path, b: Path, service: bool) -> list[str]:
    differ = []
    names = sorted({p.name for p in a.iterdir() if not p.name.startswith("_")} |
                   {p.name for p in b.iterdir() if not p.name.startswith("_")})
    for name in names:
        x, y = a / name, b / name
        if not x.exists() or not y.exists():
            differ.append(f"{name}: only in {'new' if not x.exists() else 'old'}")
            continue
        bx, by = x.read_bytes(), y.read_bytes()
        if service:
            bx, by = masked(bx), masked(by)
        if bx != by:
            lines = list(difflib.unified_diff(bx.decode(errors="replace").splitlines(),
                                              by.decode(errors="replace").splitlines(), "old", "new", n=1,
                                              lineterm=""))
            differ.append(f"{name}:\n    " + "\n    ".join(lines[:12]))
    return differ


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", type=Path, help="a checkout of the project (its root folder)")
    ap.add_argument("new", type=Path, help="another checkout")
    ap.add_argument("--cases", type=int, default=2000, help="cases in the generated batch (default 2000)")
    ap.add_argument("--keep", type=Path, help="write the outputs here (DIR/old, DIR/new) and keep them")
    ap.add_argument("--no-service", action="store_true", help="only the commands")
    args = ap.parse_args(argv)
    from bench import cases                                     # the benchmark's case generator
    work = args.keep or Path(tempfile.mkdtemp(prefix="same-outputs-"))
    work.mkdir(parents=True, exist_ok=True)
    cases_file = work / "cases.jsonl"
    cases_file.write_text("".join(json.dumps(c, sort_keys=True) + "\n" for c in cases(args.cases)))
    problems = []
    for label, root in (("old", args.old), ("new", args.new)):
        t = time.perf_counter()
        run_commands(root.resolve(), cases_file, work / label / "cli")
        if not args.no_service:
            run_service(root.resolve(), work / label / "service")
        print(f"{label}: {root} recorded in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    problems += compare(work / "old" / "cli", work / "new" / "cli", service=False)
    if not args.no_service:
        problems += compare(work / "old" / "service", work / "new" / "service", service=True)
    n = len(list((work / "old" / "cli").iterdir())) + (0 if args.no_service else
                                                       len(list((work / "old" / "service").iterdir())))
    if problems:
        print(f"{len(problems)} of {n} outputs differ:\n" + "\n".join(problems))
        return 1
    print(f"all {n} outputs the same (outputs in {work})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
