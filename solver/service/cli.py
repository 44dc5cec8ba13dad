"""`pa-solver serve` and `pa-solver audit` (registered in solver/cli.py)."""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from typing import Optional

from solver.rules.declared import Choices

DEFAULT_PORT = 8700


def add_parsers(sub, positive) -> None:
    s = sub.add_parser("serve", help="serve CRD, PAS $submit / $inquire and the JSON endpoints over HTTP "
                                     "(SERVICE.md); every answered decision is recorded first")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; another needs --token-file)")
    s.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free port)")
    from solver.cli import _workers

    s.add_argument("--workers", type=_workers, default=None, metavar="N",
                   help="solver processes, one warm clingo each, 1-256 (default: every usable core); never more "
                        "than this machine runs at once (as batch --workers: its cores, and 3/4 of the available "
                        "memory at about 64 MiB each), a lower number said on stderr")
    s.add_argument("--token-file", default=None, metavar="F",
                   help="a file holding the bearer token every endpoint requires but /health, /fhir/metadata, "
                        "/openapi.json and CDS Hooks discovery")
    s.add_argument("--store", default="decisions.sqlite", metavar="PATH|URL",
                   help="the SQLite file that records every $submit and CRD decision (default decisions.sqlite), "
                        "or a PostgreSQL database: postgresql://user@host/db (pa-solver[postgres])")
    s.add_argument("--store-sync", choices=("normal", "full"), default="normal",
                   help="normal: a recorded answer survives the server being killed; full: also a power cut "
                        "(an fsync per answer)")
    s.add_argument("--rules", default=None, metavar="DIR", help="serve the rule base in DIR instead of logic/")
    s.add_argument("--plans", nargs="+", choices=Choices("plans"), metavar="PLAN",
                   default=None, help="the plans a request that names none is judged for (default: every plan: "
                                      "%(choices)s)")
    s.add_argument("--time-limit", type=float, default=10.0, metavar="S",
                   help="stop a decision that takes longer (answered 503 too-costly; default 10 s)")
    s.add_argument("--max-body", type=positive, default=16 << 20, metavar="BYTES",
                   help="the largest request body (413 past it; default 16 MiB)")
    s.add_argument("--max-headers", type=positive, default=64 << 10, metavar="BYTES",
                   help="the largest request line and headers together (431 past it; default 64 KiB)")
    s.add_argument("--read-timeout", type=float, default=20.0, metavar="S",
                   help="a request's headers must arrive within S seconds of its first byte, and then its "
                        "whole body within S seconds more (408 past either; default 20 s)")
    s.set_defaults(func=cmd_serve)

    a = sub.add_parser("audit", help="list the decisions the service recorded (--store), each checked against "
                                     "its digests; exit 1 when any is damaged",
                       description="List the decisions `pa-solver serve` recorded, oldest first, each read whole "
                                   "and checked against the SHA-256 of its request and answer: ok, damaged (what "
                                   "is wrong; its bytes are never sent) or unverified (recorded before answers' "
                                   "digests were kept); a SQLite file's pages are checked too (PRAGMA quick_check, "
                                   "as serve does at its start). Exit status: 0 nothing listed is damaged, 1 at "
                                   "least one record (or the file) is, 2 the store cannot be opened or read.")
    a.add_argument("--store", default="decisions.sqlite", metavar="PATH|URL",
                   help="the record `serve --store` writes: a SQLite file (default decisions.sqlite) or a "
                        "PostgreSQL database, postgresql://user@host/db")
    a.add_argument("--since", default=None, metavar="WHEN", help="from this UTC date or time on (YYYY-MM-DD[THH:MM])")
    a.add_argument("--plan", choices=Choices("plans"), default=None, metavar="PLAN",
                   help="only the records that decided this plan (%(choices)s)")
    a.add_argument("--kind", choices=("submit", "crd"), default=None,
                   help="only PAS $submit records, or only CRD (CDS Hooks) records")
    a.add_argument("--json", action="store_true", help="one JSON object per line")
    a.set_defaults(func=cmd_audit)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _token(path: Optional[str]) -> Optional[str]:
    from solver.cli import _error

    if path is None:
        return None
    try:
        with open(path, "rb") as fh:
            raw = fh.read(4097)
    except OSError as err:
        _error(f"--token-file {path}: {err.strerror or err}")
        return ""
    try:
        token = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        _error(f"--token-file {path}: not UTF-8 text")
        return ""
    if not token or len(raw) > 4096 or any(c.isspace() for c in token):
        _error(f"--token-file {path}: must hold one token (1-4096 characters, no spaces)")
        return ""
    return token


def cmd_serve(args) -> int:
    from solver.cli import _error, _stderr
    from solver.rules.loading import RuleBaseError
    from solver.rules.files import rules_version

    token = _token(args.token_file)
    if token == "":
        return 2
    if token is None and not _loopback(args.host):
        _error(f"--host {args.host}: without --token-file the server listens on 127.0.0.1 only")
        return 2
    if args.rules is not None and not os.path.isdir(args.rules):
        _error(f"--rules {args.rules}: not a folder")
        return 2
    try:
        # What each worker builds (work.init), here first and within the load limits: a worker
        # process has no watch on its time, and a rule base that never loads would leave the
        # service starting for good (solver/loading.py).
        from solver.engine.solver import Solver

        Solver(args.rules).explainer
    except RuleBaseError as err:
        _error(f"--rules {args.rules}: {err}" if args.rules is not None else str(err))
        return 2
    if not 0 <= args.port <= 65535:
        _error(f"--port {args.port}: must be 0-65535")
        return 2
    if not 0 < args.read_timeout < 1e6:
        _error(f"--read-timeout {args.read_timeout:g}: must be a number of seconds above 0")
        return 2
    try:
        from solver.service.store import StoreError, open_store

        # a SQLite file PRAGMA quick_check rejects is refused here, in one line, before anything is served
        open_store(args.store, args.store_sync, check=True).close()
    except StoreError as err:
        _error(str(err))
        return 2
    import uvicorn

    from solver.service.app import Config, create_app

    from solver.cli import _planned_workers

    workers = _planned_workers(args.workers, "local")       # as many as this machine runs at once
    config = Config(store=args.store, workers=workers, token=token, logic_dir=args.rules, plans=args.plans,
                    time_limit=args.time_limit, max_body=args.max_body, store_sync=args.store_sync,
                    read_timeout=args.read_timeout)
    version = rules_version(args.rules) if args.rules else rules_version()
    _stderr("pa-solver serve", f"http://{args.host}:{args.port} ({'bearer token required' if token else 'no token: localhost only'}); "
                               f"{config.workers} solver process{'es' * (config.workers != 1)}; rules {version}; store {_store_name(args.store)}")
    from solver.service.protocol import protocol

    # ws="none": a WebSocket upgrade request is answered as plain HTTP (no endpoint speaks WebSocket;
    # uvicorn would hand it to its WebSocket protocol, which refuses it with an empty 403 in text)
    server = _uvicorn_server()(uvicorn.Config(
        create_app(config), host=args.host, port=args.port, log_level="warning", access_log=False,
        timeout_graceful_shutdown=30, lifespan="on", ws="none",
        http=protocol(max_head=args.max_headers, read_timeout=args.read_timeout)))
    # uvicorn drains on SIGTERM / SIGINT (and here SIGHUP) and then raises the signal again for the
    # handler it found: let that be a no-op, so a drained stop exits 0 (SERVICE.md)
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, lambda signum, frame: None)
    try:
        server.run()
    except OSError as err:
        _error(f"cannot listen on {args.host}:{args.port}: {err.strerror or err}")
        return 2
    # Drained: every answer sent and recorded, the store closed, the solver processes ended
    # (lifespan shutdown).  Leave now: the interpreter's own exit joins executor threads, which
    # can wait on a pool a killed worker broke (seen once under load as a stop that never came).
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0 if server.started else 2)


def _uvicorn_server():
    """uvicorn's Server, draining on SIGHUP too: uvicorn catches only SIGINT and SIGTERM, and SIGHUP's
    default ends the process at once, dropping every request in flight (seen: 18)."""
    import contextlib
    import signal
    import threading

    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):
            hup = getattr(signal, "SIGHUP", None)          # none on Windows
            main = threading.current_thread() is threading.main_thread()
            before = signal.signal(hup, self.handle_exit) if hup is not None and main else None
            try:
                with super().capture_signals():
                    yield
            finally:
                if before is not None:
                    signal.signal(hup, before)

    return Server


def _store_name(spec: str) -> str:
    from solver.service.store import is_url, shown

    return shown(spec) if is_url(spec) else os.path.abspath(spec)


def cmd_audit(args) -> int:
    from solver.cli import _Out, _error
    from solver.service.store import StoreError, is_url, open_store, shown

    if not is_url(args.store) and not os.path.isfile(args.store):
        _error(f"--store {args.store}: no such file (start the service with --store PATH first)")
        return 2
    try:
        store = open_store(args.store)
        pages = store.damaged_pages()           # what `serve` refuses at its start (an index may be all)
        rows = store.list(since=args.since, plan=args.plan, kind=args.kind, verify=True)
        store.close()
    except StoreError as err:
        _error(str(err))
        return 2
    damaged = [r["seq"] for r in rows if r["integrity"] == "damaged"]
    out = _Out()
    if args.json:
        for r in rows:
            out.line(json.dumps(r, sort_keys=True, ensure_ascii=False))
        if pages:
            _error(f"--store {shown(args.store)}: the file is damaged; PRAGMA quick_check says: {pages}")
    else:
        from solver.text.words import safe

        out.line(f"{len(rows)} decision{'s' * (len(rows) != 1)} recorded in {safe(shown(args.store))}")
        for r in rows:
            if r["kind"] is None:                   # a row the database could not read at all
                out.line(f"{r['seq']:>6}  {'?':<19}  {'damaged':<10}  {safe(r['damage'])}")
                continue
            decided = ", ".join(f"{p} {d}" for p, d in sorted(r["decisions"].items())) or "no plan decided"
            # a submission's key is "system|value" (its value shown); a CRD call's, its hookInstance
            sub = f" {safe(str(r['submission']).split('|', 1)[-1])}" if r["submission"] else ""
            why = f"  ({safe(r['damage'])})" if r["damage"] else ""
            out.line(f"{r['seq']:>6}  {safe(str(r['decided_at'])[:19])}  {r['integrity']:<10}  {safe(r['kind'])}{sub}  "
                     f"{safe(decided)}  rules {safe(str(r['rules_version']))}{why}")
        unverified = sum(r["integrity"] == "unverified" for r in rows)
        if unverified:
            out.line(f"{unverified} unverified: recorded before answers' digests were kept")
        if damaged:
            out.line(f"{len(damaged)} damaged (never sent; restore them from a backup): "
                     + ", ".join(f"#{s}" for s in damaged))
        if pages:
            out.line(f"the file is damaged (serve refuses it); PRAGMA quick_check says: {safe(pages)}")
    out.flush()
    return 1 if damaged or pages else 0
