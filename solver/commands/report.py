"""`pa-solver report`: counts over cases or results (decisions, blocking criteria, flipping facts,
smallest missing sets); `report --compare OLD NEW`: the decisions that moved between two result files."""

from __future__ import annotations

import json

from solver.text.words import columns, safe_block, wrap_block
from solver.commands.io import InputError, check_output, emit, error, input_file_ok, progress, stdin_bytes
from solver.commands.options import bad_max_changes, check_engine, engine_options, positive


def cmd_compare(args) -> int:
    from solver.analysis.compare import NothingToCompare, compare, render

    if args.cases is not None:
        error("report --compare OLD NEW takes no other input file")
        return 2
    if not all(input_file_ok(path) for path in args.compare):
        return 2
    if args.format not in ("table", "json") or not check_output(args.output):
        if args.format not in ("table", "json"):
            error("report --compare: --format table or json")
        return 2
    try:
        got = compare(*args.compare)
    except NothingToCompare as err:
        error(f"report --compare: {err}")
        return 2
    except OSError as err:
        error(f"cannot read: {err.strerror or err}")
        return 2
    text = wrap_block(safe_block(render(got)), columns(not args.output)) if args.format == "table" else \
        json.dumps(got, indent=2, ensure_ascii=False)
    try:
        emit(text, args.output)
    except OSError as err:
        error(f"cannot write {args.output or 'the output'}: {err.strerror or err}")
        return 2
    return 0


def cmd_report(args) -> int:
    from solver.analysis import report, report_out
    from solver.analysis.workers import EngineError

    if args.compare is not None:
        return cmd_compare(args)
    if args.cases is None:
        error("report needs a file of cases or results (or - for stdin), or --compare OLD NEW")
        return 2
    if bad_max_changes(args.max_changes, 0) or not check_engine(args):
        return 2
    if args.format == "parquet" and not args.output:
        error("--format parquet needs --output PATH")
        return 2
    if not check_output(args.output):
        return 2
    if args.cases == "-":
        try:
            source = stdin_bytes()
        except InputError as err:
            error(str(err))
            return 2
    elif not input_file_ok(args.cases):
        return 2
    else:
        source = args.cases
    try:
        with progress(args) as bar:
            tally = report.tally(source, max_changes=args.max_changes, workers=args.workers, engine=args.engine,
                                 scheduler=args.scheduler, progress=bar.update if bar is not None else None)
    except EngineError as err:
        error(str(err))
        return 2
    try:
        if args.format == "table":
            emit(wrap_block(safe_block(report_out.render(tally, top=args.top)), columns(not args.output)), args.output)
        else:
            text = report_out.write(tally, args.format, args.output)      # writes the file itself
            if not args.output:
                emit(text.rstrip("\n"), None)
    except OSError as err:
        error(f"cannot write {args.output or 'the output'}: {err.strerror or err}")
        return 2
    return 0


def add(sub) -> None:
    r = sub.add_parser("report", help="count decisions, blocking criteria, flipping facts and smallest missing "
                                      "sets over cases or results (JSONL, or - for stdin)")
    r.add_argument("cases", nargs="?", default=None,
                   help="cases, or results of batch / explain --json (JSONL, or - for stdin); not with --compare")
    r.add_argument("--compare", nargs=2, metavar=("OLD", "NEW"), default=None,
                   help="compare two result files of the same cases (batch with the old and the new rule "
                        "base): per plan, the decisions that moved and the cases")
    r.add_argument("--format", choices=("table", "json", "csv", "parquet"), default="table",
                   help="table (default): the report to read; json; csv or parquet: the tidy table, one row "
                        "per count (section, plan, item, decision, detail, count)")
    r.add_argument("--output", "-o", default=None, metavar="PATH", help="write here (required for parquet)")
    r.add_argument("--max-changes", type=int, default=1, metavar="N",
                   help="cases are explained with at most N changes (default 1; 0: no flips)")
    r.add_argument("--top", type=positive, default=8, help="rows per list in the table (default 8)")
    engine_options(r)
    r.set_defaults(func=cmd_report)
