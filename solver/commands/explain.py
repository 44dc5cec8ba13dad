"""`pa-solver explain`: decide a case and list, per plan, the fewest fact changes that would change its
decision (a .jsonl file, or JSON lines on stdin: streamed as batch)."""

from __future__ import annotations


from solver.commands.batch import cmd_batch
from solver.commands.decide import answer
from solver.commands.io import load_case, stdin_bytes
from solver.commands.options import answer_options, bad_max_changes, engine_options, format_ok


def cmd_explain(args) -> int:
    if not format_ok(args):
        return 2
    if bad_max_changes(args.max_changes, 1):
        return 2
    if args.case.endswith((".jsonl", ".ndjson")):
        # many cases: stream them like `batch`, with the changes
        args.cases = args.case
        return cmd_batch(args)
    data = None
    if args.case == "-":
        kind, first = sniff_stdin()
        if kind == "jsonl":
            args.cases, args.first_lines = "-", first
            return cmd_batch(args)
        data = first
    from solver.engine.solver import Solver

    solver = Solver()
    return answer(load_case(args.case, data, args, solver), args, args.max_changes, solver)


def sniff_stdin():
    """("jsonl", lines read) when standard input holds one JSON object per
    line (the first non-blank line is a whole object and another follows),
    else ("json", all of it)."""
    from solver.text.jsontext import NotJSON, loads

    src = stdin_bytes()
    head: list[bytes] = []
    for line in iter(src.readline, b""):
        head.append(line)
        if line.strip():
            break
    try:
        first_is_object = isinstance(loads(head[-1]), dict) if head else False
    except NotJSON:
        first_is_object = False
    if first_is_object:
        for line in iter(src.readline, b""):
            head.append(line)
            if line.strip():
                return "jsonl", head
    return "json", b"".join(head) + src.read()


def add(sub) -> None:
    e = sub.add_parser("explain", help="decide a case and list, per plan, the fewest fact changes that would "
                                       "change its decision (a .jsonl file: one JSON line per case, as batch)")
    answer_options(e, "print the CASE.md JSON shape, with `changes` per plan",
                    "a case or FHIR bundle (JSON file, or - for stdin), or a .jsonl file of them, one per line")
    e.add_argument("--max-changes", type=int, default=2, metavar="N",
                   help="at most N facts changed together (default 2)")
    engine_options(e)
    e.set_defaults(func=cmd_explain)
