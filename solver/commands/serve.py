"""`pa-solver serve`: CRD, PAS $submit / $inquire, DTR and the JSON endpoints over HTTP (SERVICE.md)."""

from __future__ import annotations

import ipaddress
import os
import sys
from typing import Optional

from solver.rules.declared import Choices
from solver.commands.audit import store_name
from solver.commands.options import positive, workers


DEFAULT_PORT = 8700


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token(path: Optional[str]) -> Optional[str]:
    from solver.commands.io import error

    if path is None:
        return None
    try:
        with open(path, "rb") as fh:
            raw = fh.read(4097)
    except OSError as err:
        error(f"--token-file {path}: {err.strerror or err}")
        return ""
    try:
        token = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        error(f"--token-file {path}: not UTF-8 text")
        return ""
    if not token or len(raw) > 4096 or any(c.isspace() for c in token):
        error(f"--token-file {path}: must hold one token (1-4096 characters, no spaces)")
        return ""
    return token


def cmd_serve(args) -> int:
    from solver.commands.io import error, stderr
    from solver.rules.loading import RuleBaseError
    from solver.rules.files import rules_version

    token = read_token(args.token_file)
    if token == "":
        return 2
    if token is None and not loopback(args.host):
        error(f"--host {args.host}: without --token-file the server listens on 127.0.0.1 only")
        return 2
    if args.rules is not None and not os.path.isdir(args.rules):
        error(f"--rules {args.rules}: not a folder")
        return 2
    try:
        # What each worker builds (work.init), here first and within the load limits: a worker
        # process has no watch on its time, and a rule base that never loads would leave the
        # service starting for good (solver/rules/loading.py).
        from solver.engine.solver import Solver

        Solver(args.rules).explainer
    except RuleBaseError as err:
        error(f"--rules {args.rules}: {err}" if args.rules is not None else str(err))
        return 2
    if not 0 <= args.port <= 65535:
        error(f"--port {args.port}: must be 0-65535")
        return 2
    if not 0 < args.read_timeout < 1e6:
        error(f"--read-timeout {args.read_timeout:g}: must be a number of seconds above 0")
        return 2
    try:
        from solver.service.records import StoreError
        from solver.service.store import open_store

        # a SQLite file PRAGMA quick_check rejects is refused here, in one line, before anything is served
        open_store(args.store, args.store_sync, check=True).close()
    except StoreError as err:
        error(str(err))
        return 2
    import uvicorn

    from solver.service.app import Config, create_app

    from solver.commands.options import planned_workers

    workers = planned_workers(args.workers, "local")       # as many as this machine runs at once
    config = Config(store=args.store, workers=workers, token=token, logic_dir=args.rules, plans=args.plans,
                    time_limit=args.time_limit, max_body=args.max_body, store_sync=args.store_sync,
                    read_timeout=args.read_timeout)
    version = rules_version(args.rules) if args.rules else rules_version()
    stderr("pa-solver serve", f"http://{args.host}:{args.port} ({'bearer token required' if token else 'no token: localhost only'}); "
                               f"{config.workers} solver process{'es' * (config.workers != 1)}; rules {version}; store {store_name(args.store)}")
    from solver.service.protocol import protocol

    # ws="none": a WebSocket upgrade request is answered as plain HTTP (no endpoint speaks WebSocket;
    # uvicorn would hand it to its WebSocket protocol, which refuses it with an empty 403 in text)
    server = uvicorn_server()(uvicorn.Config(
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
        error(f"cannot listen on {args.host}:{args.port}: {err.strerror or err}")
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


def uvicorn_server():
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


def add(sub) -> None:
    s = sub.add_parser("serve", help="serve CRD, PAS $submit / $inquire and the JSON endpoints over HTTP "
                                     "(SERVICE.md); every answered decision is recorded first")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; another needs --token-file)")
    s.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free port)")
    s.add_argument("--workers", type=workers, default=None, metavar="N",
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
