"""`pa-solver serve` and `pa-solver audit` (registered in solver/cli.py)."""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from typing import Optional

DEFAULT_PORT = 8700


def add_parsers(sub, positive) -> None:
    s = sub.add_parser("serve", help="serve CRD, PAS $submit / $inquire and the JSON endpoints over HTTP "
                                     "(SERVICE.md); every answered decision is recorded first")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; another needs --token-file)")
    s.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free port)")
    s.add_argument("--workers", type=positive, default=None,
                   help="solver processes, one warm clingo each (default: every core)")
    s.add_argument("--token-file", default=None, metavar="F",
                   help="a file holding the bearer token every endpoint but /health and discovery requires")
    s.add_argument("--store", default="decisions.sqlite", metavar="PATH|URL",
                   help="the SQLite file that records every $submit and CRD decision (default decisions.sqlite), "
                        "or a PostgreSQL database: postgresql://user@host/db (pa-solver[postgres])")
    s.add_argument("--store-sync", choices=("normal", "full"), default="normal",
                   help="normal: a recorded answer survives the server being killed; full: also a power cut "
                        "(an fsync per answer)")
    s.add_argument("--rules", default=None, metavar="DIR", help="serve the rule base in DIR instead of logic/")
    s.add_argument("--plans", nargs="+", choices=("bcbs_fep", "bcbsnc", "cvs_caremark", "masshealth", "ohsu"),
                   default=None, help="the plans a request that names none is judged for (default: every plan)")
    s.add_argument("--time-limit", type=float, default=10.0, metavar="S",
                   help="stop a decision that takes longer (answered 503 too-costly; default 10 s)")
    s.add_argument("--max-body", type=positive, default=16 << 20, metavar="BYTES",
                   help="the largest request body (413 past it; default 16 MiB)")
    s.set_defaults(func=cmd_serve)

    a = sub.add_parser("audit", help="list the decisions the service recorded (--store)")
    a.add_argument("--store", default="decisions.sqlite", metavar="PATH|URL")
    a.add_argument("--since", default=None, metavar="WHEN", help="from this UTC date or time on (YYYY-MM-DD[THH:MM])")
    a.add_argument("--plan", choices=("bcbs_fep", "bcbsnc", "cvs_caremark", "masshealth", "ohsu"), default=None)
    a.add_argument("--kind", choices=("submit", "crd"), default=None)
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
    from ..cli import _error

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
    from ..cli import _error, _stderr
    from ..engine import RuleBaseError, rules_version

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
        from ..engine import LOGIC_DIR, Solver

        Solver(args.rules or LOGIC_DIR).explainer
    except RuleBaseError as err:
        _error(f"--rules {args.rules}: {err}" if args.rules is not None else str(err))
        return 2
    if not 0 <= args.port <= 65535:
        _error(f"--port {args.port}: must be 0-65535")
        return 2
    try:
        from .store import StoreError, open_store

        open_store(args.store, args.store_sync).close()
    except StoreError as err:
        _error(str(err))
        return 2
    import uvicorn

    from .app import Config, create_app

    config = Config(store=args.store, workers=args.workers, token=token, logic_dir=args.rules, plans=args.plans,
                    time_limit=args.time_limit, max_body=args.max_body, store_sync=args.store_sync)
    version = rules_version(args.rules) if args.rules else rules_version()
    _stderr("pa-solver serve", f"http://{args.host}:{args.port} ({'bearer token required' if token else 'no token: localhost only'}); "
                               f"{config.workers} solver process{'es' * (config.workers != 1)}; rules {version}; store {_store_name(args.store)}")
    server = uvicorn.Server(uvicorn.Config(create_app(config), host=args.host, port=args.port, log_level="warning",
                                           access_log=False, timeout_graceful_shutdown=30, lifespan="on"))
    # uvicorn drains on SIGTERM / SIGINT and then raises the signal again for the handler it
    # found: let that be a no-op, so a drained stop exits 0 (SERVICE.md)
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
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


def _store_name(spec: str) -> str:
    from .store import is_url, shown

    return shown(spec) if is_url(spec) else os.path.abspath(spec)


def cmd_audit(args) -> int:
    from ..cli import _Out, _error
    from .store import StoreError, is_url, open_store, shown

    if not is_url(args.store) and not os.path.isfile(args.store):
        _error(f"--store {args.store}: no such file (start the service with --store PATH first)")
        return 2
    try:
        store = open_store(args.store)
        rows = store.list(since=args.since, plan=args.plan, kind=args.kind)
        store.close()
    except StoreError as err:
        _error(str(err))
        return 2
    out = _Out()
    if args.json:
        for r in rows:
            out.line(json.dumps(r, sort_keys=True, ensure_ascii=False))
    else:
        from ..text import safe

        out.line(f"{len(rows)} decision{'s' * (len(rows) != 1)} recorded in {safe(shown(args.store))}")
        for r in rows:
            decided = ", ".join(f"{p} {d}" for p, d in sorted(r["decisions"].items())) or "no plan decided"
            # a submission's key is "system|value" (its value shown); a CRD call's, its hookInstance
            sub = f" {safe(r['submission'].split('|', 1)[-1])}" if r["submission"] else ""
            out.line(f"{r['seq']:>6}  {r['decided_at'][:19]}  {r['kind']}{sub}  {decided}  "
                     f"rules {r['rules_version']}")
    out.flush()
    return 0
