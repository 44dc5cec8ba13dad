"""pa-solver command line: decide one case, or a batch of cases."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from typing import Optional

from .models import CaseError, CaseResult, parse_case

STATUS_MARK = {"met": "met", "not_met": "NOT MET", "unknown": "unknown"}


def _read_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def _fmt_fact(f) -> str:
    from .text import condition

    return condition(f.fact, f.values, f.range)


def render_table(result: CaseResult) -> str:
    """The readable report: per plan, decision, deciding pathway, criteria, missing sets."""
    lines = [f"case {result.case_id or '(no id)'}   rules {result.rules_version}"]
    for k, v in sorted(result.derived_facts.items()):
        lines.append(f"  derived: {k} = {v} (from ICD-10 codes)")
    for r in result.results:
        lines.append("")
        head = f"{r.plan}: {r.decision.upper()}"
        if r.pathway:
            head += f" via {r.pathway}"
        if r.authorization:
            a = r.authorization
            limits = [f"{a.months} months" if a.months else "no duration stated"]
            if a.max_cycles:
                limits.append(f"max {a.max_cycles} cycles")
            if a.max_units_per_21_days:
                limits.append(f"max {a.max_units_per_21_days} units/21 days")
            head += f"  [{', '.join(limits)}]"
        lines.append(head)
        date = r.policy.date or "undated"
        lines.append(f"  policy: {r.policy.document} ({r.policy.id}, {date})")
        if r.note:
            lines.append(f"  note: {r.note}")
        for pw in r.pathways:
            lines.append(f"  pathway {pw.id} ({pw.outcome}) — {pw.status}: {pw.title}")
            for c in pw.criteria:
                lines.append(f"    {STATUS_MARK[c.status]:<8} {c.id:<20} {c.source}")
        for i, m in enumerate(r.missing, 1):
            facts = "; ".join(_fmt_fact(f) for f in m.facts)
            lines.append(f"  missing set {i} -> {m.pathway} ({m.outcome}): {facts}")
        if r.changes is not None:
            if r.decision == "no_policy":
                lines.append("  no fact changes this: the document has no criteria for this drug")
            elif not r.changes:
                lines.append("  no change of so few facts would change this decision")
            for c in r.changes:
                facts = "; ".join(_fmt_change(f) for f in c.facts)
                lines.append(f"  would change to {c.decision.upper()}: {facts}")
    return "\n".join(lines)


def _fmt_change(f) -> str:
    from .text import number

    return f"{_fmt_fact(f)} (now {'unknown' if f.from_ is None else number(f.from_)})"


def _load_case(path: str):
    """The validated case in a JSON file (or - for stdin), or None after
    printing why not to stderr."""
    try:
        text = _read_text(path)
    except OSError as err:
        print(f"error: cannot read {path}: {err.strerror}", file=sys.stderr)
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        print(f"error: {path}: not valid JSON: {err}", file=sys.stderr)
        return None
    try:
        return parse_case(data)
    except CaseError as err:
        print(f"error: invalid case: {err}", file=sys.stderr)
        return None


def cmd_decide(args) -> int:
    from . import decide

    case = _load_case(args.case)
    if case is None:
        return 2
    result = decide(case)
    print(result.to_json() if args.json else render_table(result))
    return 0


def cmd_explain(args) -> int:
    from . import explain

    if _bad_max_changes(args.max_changes, 1):
        return 2
    if args.case.endswith((".jsonl", ".ndjson")):
        # many cases: stream them like `batch`, with the changes
        args.cases = args.case
        return cmd_batch(args)
    case = _load_case(args.case)
    if case is None:
        return 2
    result = explain(case, args.max_changes)
    print(result.to_json() if args.json else render_table(result))
    return 0


def _bad_max_changes(n: int, low: int) -> bool:
    """Say so (and return True) when --max-changes is outside low..MAX_CHANGES."""
    from .engine import MAX_CHANGES

    if low <= n <= MAX_CHANGES:
        return False
    print(f"error: --max-changes must be between {low} and {MAX_CHANGES}, not {n}", file=sys.stderr)
    return True


@contextlib.contextmanager
def _progress(args, unit: str = "case"):
    """A tqdm bar on stderr when it is a terminal (and not --no-progress), else
    None; closed on the way out."""
    bar = None
    if sys.stderr.isatty() and not getattr(args, "no_progress", False):
        from tqdm import tqdm

        bar = tqdm(unit=unit, file=sys.stderr)
    try:
        yield bar
    finally:
        if bar is not None:
            bar.close()


def cmd_batch(args) -> int:
    from .batch import EngineError, stream_encoded

    if _bad_max_changes(args.max_changes, 0):
        return 2
    try:
        src = sys.stdin if args.cases == "-" else open(args.cases, encoding="utf-8")
    except OSError as err:
        print(f"error: cannot read {args.cases}: {err.strerror}", file=sys.stderr)
        return 2
    lines = (line for line in src if line.strip())
    out = sys.stdout
    try:
        with _progress(args) as bar:
            for item in stream_encoded(lines, workers=args.workers, max_changes=args.max_changes,
                                       engine=args.engine, scheduler=args.scheduler, lean=getattr(args, "lean", False)):
                if item[0] == "ok":
                    out.write(item[1])
                else:
                    out.write(json.dumps({"case_id": item[1], "error": item[2]}, sort_keys=True,
                                         separators=(",", ":")))
                out.write("\n")
                if bar is not None:
                    bar.update(1)
    except EngineError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        if src is not sys.stdin:
            src.close()
    return 0


def cmd_report(args) -> int:
    from . import report
    from .batch import EngineError

    if _bad_max_changes(args.max_changes, 0):
        return 2
    if args.format == "parquet" and not args.output:
        print("error: --format parquet needs --output PATH", file=sys.stderr)
        return 2
    if args.cases == "-":
        source = sys.stdin.buffer
    elif not os.path.isfile(args.cases):
        why = "a directory, not a file" if os.path.isdir(args.cases) else "no such file"
        print(f"error: cannot read {args.cases}: {why}", file=sys.stderr)
        return 2
    else:
        source = args.cases
    try:
        with _progress(args) as bar:
            tally = report.tally(source, max_changes=args.max_changes, workers=args.workers, engine=args.engine,
                                 scheduler=args.scheduler, progress=bar.update if bar is not None else None)
    except EngineError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.format == "table":
        text = report.render(tally, top=args.top)
        if args.output:
            with open(args.output, "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
        else:
            print(text)
        return 0
    text = report.write(tally, args.format, args.output)
    if not args.output:
        sys.stdout.write(text)
    return 0


def _engine_options(parser) -> None:
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: every local core)")
    parser.add_argument("--engine", choices=("local", "dask"), default="local",
                        help="local: a process pool on this machine (default); dask: a Dask cluster")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="with --engine dask: the scheduler of an existing cluster (default: a local cluster)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def cmd_ui(args) -> int:
    """Start the what-if page: `streamlit run ui/app.py`, extra options passed on."""
    import subprocess
    from pathlib import Path

    app = Path(__file__).resolve().parent.parent / "ui" / "app.py"
    if not app.is_file():
        print(f"error: the page is not installed with this copy of the solver ({app} is missing)", file=sys.stderr)
        return 2
    defaults = ["--browser.gatherUsageStats", "false"]
    argv = [sys.executable, "-m", "streamlit", "run", str(app), *defaults, *args.streamlit_args]
    if os.name == "posix":
        os.execv(sys.executable, argv)          # become the server: a signal to us reaches it
    return subprocess.call(argv)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pa-solver", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("decide", help="decide one case (JSON file, or - for stdin)")
    d.add_argument("case")
    d.add_argument("--json", action="store_true", help="print the CASE.md JSON shape (sorted, byte-stable)")
    d.set_defaults(func=cmd_decide)
    e = sub.add_parser("explain", help="decide a case and list, per plan, the fewest fact changes that would "
                                       "change its decision (a .jsonl file: one JSON line per case, as batch)")
    e.add_argument("case")
    e.add_argument("--json", action="store_true", help="print the CASE.md JSON shape, with `changes` per plan")
    e.add_argument("--max-changes", type=int, default=2, metavar="N",
                   help="at most N facts changed together (default 2)")
    _engine_options(e)
    e.set_defaults(func=cmd_explain)
    b = sub.add_parser("batch", help="decide a JSONL file of cases (or - for stdin), one JSON line out per line in")
    b.add_argument("cases")
    b.add_argument("--max-changes", type=int, default=0, metavar="N",
                   help="also list the changes of at most N facts that change each decision (explain; default 0)")
    b.add_argument("--lean", action="store_true",
                   help="lean lines for reports: no citations or texts, criteria ids by status per plan")
    _engine_options(b)
    b.set_defaults(func=cmd_batch)
    r = sub.add_parser("report", help="count decisions, blocking criteria, flipping facts and smallest missing "
                                      "sets over cases or results (JSONL, or - for stdin)")
    r.add_argument("cases")
    r.add_argument("--format", choices=("table", "json", "csv", "parquet"), default="table")
    r.add_argument("--output", "-o", default=None, metavar="PATH", help="write here (required for parquet)")
    r.add_argument("--max-changes", type=int, default=1, metavar="N",
                   help="cases are explained with at most N changes (default 1; 0: no flips)")
    r.add_argument("--top", type=int, default=8, help="rows per list in the table (default 8)")
    _engine_options(r)
    r.set_defaults(func=cmd_report)
    u = sub.add_parser("ui", help="open the what-if page in a browser (Streamlit); other options go to "
                                   "`streamlit run`, e.g. --server.port 8600")
    u.set_defaults(func=cmd_ui)
    return p


def main(argv: Optional[list[str]] = None) -> int:
    args, extra = build_parser().parse_known_args(argv)
    if args.command == "ui":
        args.streamlit_args = extra
    elif extra:
        build_parser().error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
