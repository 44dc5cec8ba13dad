"""`pa-solver ui`: the pages (Streamlit), on 127.0.0.1 unless --host says otherwise."""

from __future__ import annotations

import os
import sys
from typing import Optional

from solver.commands.io import error, warn


def cmd_ui(args) -> int:
    """Start the what-if page: `streamlit run ui/app.py`, extra options passed on
    after ours (so that the last word, and Streamlit takes the last, is theirs).
    The pages show cases, health data, and have no access check: they listen
    on 127.0.0.1 unless --host (or Streamlit's own --server.address) says
    otherwise -- never because a Streamlit config file or STREAMLIT_SERVER_ADDRESS
    does, which the address given here overrides."""
    import subprocess

    from solver.base.paths import UI
    from solver.commands.serve import loopback

    app = UI / "app.py"
    if not app.is_file():
        error(f"the page is not installed with this copy of the solver ({app} is missing)")
        return 2
    given = streamlit_option(args.streamlit_args, "server.address")
    if args.host is not None and given is not None:
        error(f"--host {args.host} and --server.address {given}: choose one")
        return 2
    host = args.host if args.host is not None else given
    if host is not None and not (loopback(host) or host.startswith("unix://")):
        warn(f"the pages listen on {host}: anyone who can reach it sees the cases; there is no access check "
              f"(the default, 127.0.0.1, is this machine only)")
    if args.store is not None:                  # for ui/recorded.py; the operator's choice, never the reviewer's
        os.environ["PA_SOLVER_STORE"] = args.store
    defaults = ["--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer"]
    if given is None:
        defaults += ["--server.address", host or "127.0.0.1"]
    argv = [sys.executable, "-m", "streamlit", "run", str(app), *defaults, *args.streamlit_args]
    if os.name == "posix":
        os.execv(sys.executable, argv)          # become the server: a signal to us reaches it
    return subprocess.call(argv)


def streamlit_option(argv: list, name: str) -> Optional[str]:
    """The value the last `--NAME VALUE` or `--NAME=VALUE` of `argv` gives (as
    `streamlit run` reads them), or None."""
    value = None
    for i, arg in enumerate(argv):
        if arg == f"--{name}" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(f"--{name}="):
            value = arg.split("=", 1)[1]
    return value


def add(sub) -> None:
    u = sub.add_parser("ui", help="open the what-if page in a browser (Streamlit), on 127.0.0.1 only unless "
                                   "--host; other options go to `streamlit run`, e.g. --server.port 8600",
                       description="Start the pages (`streamlit run` on ui/app.py).  They listen on 127.0.0.1, "
                                   "this machine only, unless --host says otherwise: they show cases (health "
                                   "data) and have no access check.  Every other option is passed on to "
                                   "`streamlit run` as given (e.g. --server.port 8600, --server.headless true; "
                                   "`streamlit run --help` lists them), after this command's own "
                                   "(--server.address, --browser.gatherUsageStats false, --client.toolbarMode "
                                   "viewer), so that a later one wins; Streamlit's --server.address may stand "
                                   "for --host.  The address of a Streamlit config file or of "
                                   "STREAMLIT_SERVER_ADDRESS is not used.")
    u.add_argument("--host", default=None, metavar="ADDRESS",
                   help="the address to listen on (default 127.0.0.1); 0.0.0.0 is every interface: anyone "
                        "who can reach this machine sees the pages (a warning says so)")
    u.add_argument("--store", default=None, metavar="PATH_OR_URL",
                   help="the record `pa-solver serve --store` writes: the Recorded decisions page reads it")
    u.set_defaults(func=cmd_ui)
