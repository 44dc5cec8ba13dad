"""`pa-solver batch`: a JSONL file of cases, one JSON line out per non-blank line in, in order, on every
local core or a Dask cluster."""

from __future__ import annotations

import json
from collections import deque
from itertools import chain

from solver.base.contract import CaseError
from solver.commands.io import InputError, MAX_LINE, Out, TOO_LONG, error, input_lines, open_input, progress, warn
from solver.commands.options import bad_max_changes, check_engine, check_work_rules, engine_options, fhir_options


def cmd_batch(args) -> int:
    """One output line per non-blank input line, in order.  Exit 0 when every
    line was decided, 1 when some are error lines (all written), 2 when the
    work could not run (bad option, unreadable input, unwritable output)."""
    from solver.analysis.batch import stream_encoded
    from solver.analysis.workers import EngineError

    if bad_max_changes(args.max_changes, 0) or not check_engine(args) or not check_work_rules(args):
        return 2
    if getattr(args, "why", False) and (getattr(args, "lean", False) or args.max_changes):
        error("--why writes its own lines (decision, pathway, authorization and rests_on per plan); it does not "
               "combine with --lean or --max-changes (decide --why gives one whole result with rests_on)")
        return 2
    try:
        src = open_input(args.cases)
    except InputError as err:
        error(str(err))
        return 2
    read_errors: list[str] = []
    numbered = input_lines(src, read_errors)
    first = getattr(args, "first_lines", None)
    if first:                                  # lines `explain -` read to tell JSONL from JSON
        numbered = chain(((i, b) for i, b in enumerate(first, 1) if b.strip()),
                         ((n + len(first), b) for n, b in numbered))
    numbers: deque = deque()

    def lines():
        for number, line in numbered:
            numbers.append(number)
            yield line if line is not TOO_LONG else CaseError(f"(line): longer than {MAX_LINE >> 20} MiB; not read")

    out = Out()
    errors = 0
    try:
        with progress(args) as bar:
            for item in stream_encoded(lines(), workers=args.workers, max_changes=args.max_changes,
                                       engine=args.engine, scheduler=args.scheduler,
                                       lean=getattr(args, "lean", False), warn=warn,
                                       fhir_options=(args.as_of, args.drug), rules=getattr(args, "rules", None),
                                       why=getattr(args, "why", False)):
                number = numbers.popleft()
                if item[0] == "ok":
                    out.line(item[1])
                else:
                    errors += 1
                    out.line(json.dumps({"case_id": item[1], "error": item[2], "line": number}, sort_keys=True,
                                        ensure_ascii=False, separators=(",", ":")))
                if bar is not None:
                    bar.update(1)
        out.flush()
    except EngineError as err:
        error(str(err))
        return 2
    finally:
        if args.cases != "-":
            src.close()
    if read_errors:
        error(f"{'standard input' if args.cases == '-' else args.cases}: {read_errors[0]}")
        return 2
    return 1 if errors else 0


def add(sub) -> None:
    b = sub.add_parser("batch", help="decide a JSONL file of cases (or - for stdin), one JSON line out per line in")
    b.add_argument("cases", help="a JSONL file of cases or FHIR bundles, one per line (or - for stdin)")
    b.add_argument("--max-changes", type=int, default=0, metavar="N",
                   help="also list the changes of at most N facts that change each decision (explain; default 0)")
    b.add_argument("--lean", action="store_true",
                   help="lean lines for reports: no citations or texts; each pathway's status and, where a "
                        "plan did not approve, the criteria that block it")
    b.add_argument("--why", action="store_true",
                   help="why lines: per plan its decision, pathway, authorization and rests_on (the smallest set "
                        "of the case's facts, subset-minimal, that fixes the decision whatever the others are), "
                        "rests_on_count and facts_count; no criteria or missing sets")
    engine_options(b)
    fhir_options(b)
    b.set_defaults(func=cmd_batch)
