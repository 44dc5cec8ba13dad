"""pa-solver command line: decide one case, or a batch of cases."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections import deque
from itertools import chain
from typing import Iterator, Optional

from solver.base.contract import CaseError
from solver.rules.declared import Choices
from solver.rules.loading import RuleBaseError
from solver.text.words import OUT_ERRORS, columns, safe, safe_block, utf8, wrap_block

class InputError(Exception):
    """Input that cannot be read at all (no such file, stdin closed)."""


class OutputError(Exception):
    """Output that cannot be written (a full disk, a closed pipe's peer)."""


def _stdin_bytes():
    """Standard input as a binary stream, or InputError when there is none."""
    stream = getattr(sys.stdin, "buffer", None) if sys.stdin is not None else None
    if stream is None or stream.closed:
        raise InputError("cannot read standard input: it is closed")
    return stream


def _open_input(path: str):
    """A binary stream of `path` (- for stdin), or InputError saying why not."""
    if path == "-":
        return _stdin_bytes()
    try:
        return open(path, "rb")
    except IsADirectoryError:
        raise InputError(f"cannot read {safe(path)}: a directory, not a file") from None
    except FileNotFoundError:
        raise InputError(f"cannot read {safe(path)}: no such file") from None
    except OSError as err:
        raise InputError(f"cannot read {safe(path)}: {err.strerror or err}") from None


def _read_bytes(path: str) -> bytes:
    """A whole case file (or stdin); one larger than MAX_LINE is refused
    without holding it all."""
    src = _open_input(path)
    try:
        data = src.read(MAX_LINE + 1)
        if len(data) > MAX_LINE:
            raise InputError(f"{'standard input' if path == '-' else safe(path)}: larger than "
                             f"{MAX_LINE >> 20} MiB; not a case")
        return data
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read {safe(path)}: {getattr(err, 'strerror', None) or err}") from None
    finally:
        if path != "-":
            src.close()


MAX_LINE = 16 << 20          # bytes; a longer line is an error line, read past without holding it


def _lines(src, errors: list) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of every non-blank line of a binary stream; a line
    longer than MAX_LINE is given as b"" + a marker (an error line in its
    place); a read failure ends the lines and is appended to `errors`."""
    number = 0
    try:
        while True:
            line = src.readline(MAX_LINE + 1)
            if not line:
                return
            number += 1
            if len(line) > MAX_LINE and not line.endswith(b"\n"):
                while True:                               # the rest of the over-long line
                    rest = src.readline(1 << 20)
                    if not rest or rest.endswith(b"\n"):
                        break
                yield number, TOO_LONG
                continue
            if line.strip():
                yield number, line.rstrip(b"\r\n")      # a parse error then points into the line
    except (OSError, ValueError) as err:
        errors.append(f"cannot read line {number + 1}: {getattr(err, 'strerror', None) or err}")


TOO_LONG = b"\x00too-long"


class _Out:
    """Standard output as bytes, line by line; a failed write is OutputError."""

    def __init__(self):
        self.stream = getattr(sys.stdout, "buffer", None) if sys.stdout is not None else None
        if self.stream is None:
            raise OutputError("standard output is closed")

    def line(self, text) -> None:
        data = utf8(text) if isinstance(text, str) else text
        try:
            self.stream.write(data + b"\n")
        except OSError as err:
            raise OutputError(err.strerror or str(err)) from None

    def flush(self) -> None:
        try:
            self.stream.flush()
        except OSError as err:
            raise OutputError(err.strerror or str(err)) from None


def render_table(result, verbose: bool = False, color: bool = False) -> str:
    """The readable answer (solver/table.py) for a result dict or CaseResult."""
    from solver.render.table import render

    if hasattr(result, "model_dump"):
        result = json.loads(result.to_json())
    return render(result, verbose=verbose, color=color)


def _load_case(path: str, data: Optional[bytes] = None, args=None, solver=None):
    """(case, fhir) for a JSON file (or - for stdin): a case or a FHIR Bundle, read against the
    solver's rule base; None after printing why not to stderr."""
    from solver.text.jsontext import NotJSON

    try:
        if data is None:
            data = _read_bytes(path)
        return read_case(data, args, solver)
    except InputError as err:
        _error(str(err))
    except NotJSON as err:
        _error(f"{'standard input' if path == '-' else path}: {err}")
    except CaseError as err:
        from solver.fhir.reader import FhirError

        _error(f"invalid FHIR bundle: {err}" if isinstance(err, FhirError) else f"invalid case: {err}")
    return None


def read_case(data: bytes, args=None, solver=None):
    """(case, fhir) from bytes: a CASE.md case or a FHIR Bundle (solver/inputs.py), read against
    the solver's rule base (default: the rule base in use)."""
    from solver.fhir.inputs import case_from
    from solver.text.jsontext import loads

    return case_from(loads(data), as_of=getattr(args, "as_of", None), drug=getattr(args, "drug", None),
                     declared=solver)


def _stderr(kind: str, message: str) -> None:
    """One line on stderr, control characters escaped; a stderr that cannot
    be written is no reason to fail."""
    try:
        print(f"{kind}: {safe(message)}", file=sys.stderr)
    except (OSError, ValueError, AttributeError):
        pass


def _error(message: str) -> None:
    _stderr("error", message)


def _warn(message: str) -> None:
    _stderr("warning", message)


def _answer(loaded, args, max_changes: int = 0, solver=None) -> int:
    """Decide (and explain) one loaded case (None: it could not be read,
    already said); print its JSON, its PAS response or its table."""
    from solver.engine.solver import Solver
    from solver.text.jsontext import dump_text
    from solver.fhir.inputs import result_for

    if loaded is None:
        return 2
    if args.format == "pas" and loaded[1] is None and args.as_of is None:
        _error("--format pas: a plain case has no request date; give it with --as-of YYYY-MM-DD")
        return 2
    solver = solver or Solver()
    result = result_for(solver, *loaded, max_changes, why=getattr(args, "why", False))
    out = _Out()
    if getattr(args, "format", None) == "pas":
        out.line(dump_text(_pas(result, loaded[1], args, solver)))
    elif args.json or getattr(args, "format", None) == "json":
        out.line(dump_text(result))
    else:
        out.line(render_table(result, verbose=args.verbose, color=_color()))
    out.flush()
    return 0


def _pas(result: dict, fhir, args, solver) -> dict:
    """The PAS response bundle (solver/fhir/pas.py)."""
    from solver.fhir.pas import pas_bundle

    created = fhir.request_date if fhir is not None else args.as_of
    patient = {"reference": fhir.patient} if fhir is not None and fhir.patient else None
    return pas_bundle(result, solver.rules.plans, created, fhir.claim if fhir is not None else None, patient)


def _color() -> bool:
    """Colour on a terminal, unless NO_COLOR is set (no-color.org)."""
    return sys.stdout is not None and sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def cmd_decide(args) -> int:
    if not _format_ok(args):
        return 2
    from solver.engine.solver import Solver

    solver = Solver()
    return _answer(_load_case(args.case, args=args, solver=solver), args, solver=solver)


def _format_ok(args) -> bool:
    """--json and --format agree (--format pas's request date is checked once
    the input is read: a bundle has one, a plain case needs --as-of)."""
    if args.json and args.format not in (None, "json"):
        _error(f"--json and --format {args.format}: choose one")
        return False
    return True


def cmd_explain(args) -> int:
    if not _format_ok(args):
        return 2
    if _bad_max_changes(args.max_changes, 1):
        return 2
    if args.case.endswith((".jsonl", ".ndjson")):
        # many cases: stream them like `batch`, with the changes
        args.cases = args.case
        return cmd_batch(args)
    data = None
    if args.case == "-":
        kind, first = _sniff_stdin()
        if kind == "jsonl":
            args.cases, args.first_lines = "-", first
            return cmd_batch(args)
        data = first
    from solver.engine.solver import Solver

    solver = Solver()
    return _answer(_load_case(args.case, data, args, solver), args, args.max_changes, solver)


def _sniff_stdin():
    """("jsonl", lines read) when standard input holds one JSON object per
    line (the first non-blank line is a whole object and another follows),
    else ("json", all of it)."""
    from solver.text.jsontext import NotJSON, loads

    src = _stdin_bytes()
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


def _bad_max_changes(n: int, low: int) -> bool:
    """Say so (and return True) when --max-changes is outside low..MAX_CHANGES."""
    from solver.engine.rulebase import MAX_CHANGES

    if low <= n <= MAX_CHANGES:
        return False
    _error(f"--max-changes must be between {low} and {MAX_CHANGES}, not {n}")
    return True


@contextlib.contextmanager
def _progress(args, unit: str = "case"):
    """A tqdm bar on stderr when it is a terminal (and not --no-progress), else
    None; closed on the way out."""
    bar = None
    if sys.stderr is not None and sys.stderr.isatty() and not getattr(args, "no_progress", False):
        from tqdm import tqdm

        bar = tqdm(unit=unit, file=sys.stderr)
    try:
        yield bar
    finally:
        if bar is not None:
            bar.close()


def _check_engine(args) -> bool:
    """Options of the engine checked before any work; False after saying why."""
    from solver.analysis.batch import EngineError, check_scheduler

    if args.scheduler is not None and args.engine != "dask":
        _error("--scheduler needs --engine dask")
        return False
    if args.engine == "dask" and args.scheduler is not None:
        try:
            check_scheduler(args.scheduler)
        except EngineError as err:
            _error(str(err))
            return False
    else:                           # processes on this machine: as many as it runs at once
        args.workers = _planned_workers(args.workers, args.engine)
    return True


def _planned_workers(workers: Optional[int], engine: str) -> int:
    """The worker processes to start on this machine for --workers (solver/batch.py's
    worker_plan); a number asked for and lowered is said in one line on stderr."""
    from solver.analysis.batch import worker_plan

    n, note = worker_plan(workers, engine)
    if note is not None:
        _stderr("note", note)
    return n


def _workers(text: str) -> int:
    """--workers: a whole number from 1 to MAX_WORKERS (more is refused, not lowered: a
    number that large is a mistake, not a wish)."""
    from solver.analysis.batch import MAX_WORKERS

    n = _positive(text)
    if n > MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_WORKERS}, not {n} (a number below that is "
                                         f"lowered to what this machine runs at once)")
    return n


def cmd_batch(args) -> int:
    """One output line per non-blank input line, in order.  Exit 0 when every
    line was decided, 1 when some are error lines (all written), 2 when the
    work could not run (bad option, unreadable input, unwritable output)."""
    from solver.analysis.batch import EngineError, stream_encoded

    if _bad_max_changes(args.max_changes, 0) or not _check_engine(args) or not _check_work_rules(args):
        return 2
    if getattr(args, "why", False) and (getattr(args, "lean", False) or args.max_changes):
        _error("--why writes its own lines (decision, pathway, authorization and rests_on per plan); it does not "
               "combine with --lean or --max-changes (decide --why gives one whole result with rests_on)")
        return 2
    try:
        src = _open_input(args.cases)
    except InputError as err:
        _error(str(err))
        return 2
    read_errors: list[str] = []
    numbered = _lines(src, read_errors)
    first = getattr(args, "first_lines", None)
    if first:                                  # lines `explain -` read to tell JSONL from JSON
        numbered = chain(((i, b) for i, b in enumerate(first, 1) if b.strip()),
                         ((n + len(first), b) for n, b in numbered))
    numbers: deque = deque()

    def lines():
        for number, line in numbered:
            numbers.append(number)
            yield line if line is not TOO_LONG else CaseError(f"(line): longer than {MAX_LINE >> 20} MiB; not read")

    out = _Out()
    errors = 0
    try:
        with _progress(args) as bar:
            for item in stream_encoded(lines(), workers=args.workers, max_changes=args.max_changes,
                                       engine=args.engine, scheduler=args.scheduler,
                                       lean=getattr(args, "lean", False), warn=_warn,
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
        _error(str(err))
        return 2
    finally:
        if args.cases != "-":
            src.close()
    if read_errors:
        _error(f"{'standard input' if args.cases == '-' else args.cases}: {read_errors[0]}")
        return 2
    return 1 if errors else 0


def _check_rules(args) -> bool:
    """--rules DIR: a folder whose rule base loads within the limits and passes its own checks,
    checked before any work (its declarations are read once and kept for the command)."""
    rules = getattr(args, "rules", None)
    if rules is None:
        return True
    from solver.rules import declared

    if not os.path.isdir(rules):
        _error(f"--rules {rules}: not a folder")
        return False
    try:
        declared.of(rules)
    except (RuleBaseError, RuntimeError, KeyError, ValueError) as err:
        _error(f"--rules {rules}: {err}")
        return False
    args.rules = os.path.abspath(rules)
    return True


def _check_work_rules(args) -> bool:
    """The rule base a batch will use (--rules DIR, else PA_SOLVER_LOGIC or logic/) loads within
    the limits and passes its own checks, checked here before any work: the worker processes
    load it again, with no watch on their time (solver/loading.py).  The groundings the work
    needs are built: the changes' (--max-changes), the why lines' (--why)."""
    from solver.engine.solver import Solver

    rules = getattr(args, "rules", None)
    if rules is not None and not _check_rules(args):
        return False
    try:
        solver = Solver(args.rules)
        if getattr(args, "max_changes", 0):
            solver.explainer
        if getattr(args, "why", False):
            solver.rester, solver.rests_checker
    except (RuleBaseError, RuntimeError, KeyError, ValueError) as err:
        _error(f"--rules {rules}: {err}" if rules is not None else str(err))
        return False
    return True


def _check_output(path: Optional[str]) -> bool:
    """An output path that can be written, checked before any work; False
    after saying why not."""
    if not path:
        return True
    if os.path.isdir(path):
        _error(f"--output {path}: a directory; give a file name")
        return False
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        _error(f"--output {path}: the directory {parent} does not exist")
        return False
    if not os.access(parent, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        _error(f"--output {path}: not writable")
        return False
    return True


def _emit(text: str, output: Optional[str]) -> None:
    """`text` (no final newline) to the --output file, or to standard output."""
    if output:
        with open(output, "w", encoding="utf-8", errors=OUT_ERRORS) as fh:
            fh.write(text + "\n")
    else:
        out = _Out()
        out.line(text)
        out.flush()


def _input_file_ok(path: str) -> bool:
    """A path that is a regular file, or False after saying why not."""
    if os.path.isfile(path):
        return True
    _error(f"cannot read {path}: {'a directory, not a file' if os.path.isdir(path) else 'no such file'}")
    return False


def _cmd_compare(args) -> int:
    from solver.analysis.compare import NothingToCompare, compare, render

    if args.cases is not None:
        _error("report --compare OLD NEW takes no other input file")
        return 2
    if not all(_input_file_ok(path) for path in args.compare):
        return 2
    if args.format not in ("table", "json") or not _check_output(args.output):
        if args.format not in ("table", "json"):
            _error("report --compare: --format table or json")
        return 2
    try:
        got = compare(*args.compare)
    except NothingToCompare as err:
        _error(f"report --compare: {err}")
        return 2
    except OSError as err:
        _error(f"cannot read: {err.strerror or err}")
        return 2
    text = wrap_block(safe_block(render(got)), columns(not args.output)) if args.format == "table" else \
        json.dumps(got, indent=2, ensure_ascii=False)
    try:
        _emit(text, args.output)
    except OSError as err:
        _error(f"cannot write {args.output or 'the output'}: {err.strerror or err}")
        return 2
    return 0


def cmd_report(args) -> int:
    from solver.analysis import report
    from solver.analysis.batch import EngineError

    if args.compare is not None:
        return _cmd_compare(args)
    if args.cases is None:
        _error("report needs a file of cases or results (or - for stdin), or --compare OLD NEW")
        return 2
    if _bad_max_changes(args.max_changes, 0) or not _check_engine(args):
        return 2
    if args.format == "parquet" and not args.output:
        _error("--format parquet needs --output PATH")
        return 2
    if not _check_output(args.output):
        return 2
    if args.cases == "-":
        try:
            source = _stdin_bytes()
        except InputError as err:
            _error(str(err))
            return 2
    elif not _input_file_ok(args.cases):
        return 2
    else:
        source = args.cases
    try:
        with _progress(args) as bar:
            tally = report.tally(source, max_changes=args.max_changes, workers=args.workers, engine=args.engine,
                                 scheduler=args.scheduler, progress=bar.update if bar is not None else None)
    except EngineError as err:
        _error(str(err))
        return 2
    try:
        if args.format == "table":
            _emit(wrap_block(safe_block(report.render(tally, top=args.top)), columns(not args.output)), args.output)
        else:
            text = report.write(tally, args.format, args.output)      # writes the file itself
            if not args.output:
                _emit(text.rstrip("\n"), None)
    except OSError as err:
        _error(f"cannot write {args.output or 'the output'}: {err.strerror or err}")
        return 2
    return 0


def _date(text: str):
    import datetime as dt

    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, not {text!r}") from None


def _answer_options(parser, json_help: str, case_help: str = "a case or FHIR bundle (JSON file, or - for stdin)") -> None:
    """What decide and explain share: the case, --json, --verbose, --format, FHIR's options."""
    parser.add_argument("case", help=case_help)
    parser.add_argument("--json", action="store_true", help=json_help)
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="the table shows every pathway and criterion with its citation and policy sentence")
    parser.add_argument("--why", action="store_true",
                        help="per plan, rests_on: the smallest set of the case's facts (subset-minimal) that fixes "
                             "its decision whatever the other facts are")
    _fhir_options(parser)
    _format_option(parser)


def _format_option(parser) -> None:
    parser.add_argument("--format", choices=("table", "json", "pas"), default=None,
                        help="table (default), json (as --json), or pas: a Da Vinci PAS response bundle, one "
                             "ClaimResponse per plan (a plain case needs --as-of for its date)")


def _fhir_options(parser) -> None:
    parser.add_argument("--as-of", type=_date, default=None, metavar="YYYY-MM-DD",
                        help="FHIR input: the request date (default: Claim.created, else the latest "
                             "QuestionnaireResponse.authored, else Bundle.timestamp; never the clock)")
    parser.add_argument("--drug", choices=DRUG_CHOICES, default=None, metavar="DRUG",
                        help="FHIR input: the drug, where a bundle requests several (%(choices)s)")


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n


def cmd_why(args) -> int:
    """What each plan's decision rests on (solver/why.py)."""
    from solver.engine.solver import Solver
    from solver.fhir.inputs import result_for
    from solver.render.why import render

    solver = Solver()
    loaded = _load_case(args.case, args=args, solver=solver)
    if loaded is None:
        return 2
    result = result_for(solver, *loaded, why=True)
    case = loaded[0]
    given = [n for n in solver.rules.case_facts if solver.value(case, result["derived_facts"], n) is not None]
    out = _Out()
    out.line(wrap_block(safe_block(render(result, given, args.plan)), columns()))
    out.flush()
    return 0


def cmd_questionnaire(args) -> int:
    """A DTR Questionnaire from the rule base; adaptive for a case or bundle."""
    from solver.engine.solver import Solver
    from solver.text.jsontext import dump_text
    from solver.fhir.dtr import questionnaire
    from solver.fhir.inputs import result_for

    solver = Solver()
    result = None
    drug, request, plans = args.drug, args.request, args.plans
    if args.case is not None:
        loaded = _load_case(args.case, args=args, solver=solver)
        if loaded is None:
            return 2
        case = loaded[0]
        result = result_for(solver, *loaded)
        drug, request = drug or case.drug, request or case.request
        plans = plans or (list(case.plans) if case.plans else None)
    out = _Out()
    declared = solver.rules.declared
    out.line(dump_text(questionnaire(solver, drug or declared.default_drug, request or declared.default_request,
                                     plans, result)))
    out.flush()
    return 0


def cmd_diff(args) -> int:
    """Where two plans part ways, or two versions of one plan (solver/diff.py)."""
    from solver.analysis.diff import Against, diff
    from solver.rules.loading import RuleBaseError
    from solver.engine.solver import Solver
    from solver.text.jsontext import dump_text

    if (args.plan_b is None) == (args.against is None):
        _error("diff needs two different plans, or one plan and --against DIR")
        return 2
    if args.plan_a == args.plan_b:
        _error("diff needs two different plans")
        return 2
    solver = Solver()
    declared = solver.rules.declared
    drug, request = args.drug or declared.default_drug, args.request or declared.default_request
    against = None
    if args.against is not None:
        try:
            against = Against(solver, args.plan_a, args.against)
        except RuleBaseError as err:
            _error(f"--against {args.against}: {err}")
            return 2
        got = against.diff(solver, drug, request)
    else:
        got = diff(solver, args.plan_a, args.plan_b, drug=drug, request=request)
    out = _Out()
    if args.json:
        out.line(dump_text(got))
    else:
        from solver.render.table import render_diff

        out.line(render_diff(got, solver, color=_color(), against=against))
    out.flush()
    return 0


def _engine_options(parser) -> None:
    parser.add_argument("--workers", type=_workers, default=None, metavar="N",
                        help="worker processes, 1-256 (default: every usable core).  Never more than this machine "
                             "runs at once -- one per usable core, and as many as 3/4 of the available memory "
                             "holds at about 64 MiB each (128 MiB with --engine dask), a lower number said on "
                             "stderr -- nor than there is work for; with --scheduler the cluster's own workers "
                             "do the work")
    parser.add_argument("--engine", choices=("local", "dask"), default="local",
                        help="local: a process pool on this machine (default); dask: a Dask cluster")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="with --engine dask: the scheduler of an existing cluster (default: a local cluster)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def cmd_coverage(args) -> int:
    """Every sentence of the plans' documents accounted for (solver/coverage.py).
    Exit 0 when every unit is encoded or set aside, 1 when some are not, 2 for
    an unknown plan or a document that cannot be read."""
    from solver.analysis.coverage import UnknownPlan, coverage, render
    from solver.text.jsontext import dump_text

    try:
        got = coverage(None if args.plan is None else [args.plan])
    except UnknownPlan as err:
        _error(str(err))
        return 2
    except OSError as err:
        _error(f"cannot read a policy document: {err.strerror or err} ({getattr(err, 'filename', '')})")
        return 2
    out = _Out()
    out.line(dump_text(got) if args.json else safe_block(render(got, color=_color())))
    out.flush()
    return 1 if any(p["counts"]["unaccounted"] for p in got["plans"]) else 0


def cmd_plan(args) -> int:
    """`plan new` writes a plan's file from its document; `plan check` says what is not yet right
    (solver/planfile.py).  Exit 0 when nothing is, 1 with one line per problem, 2 for bad input."""
    from solver.rules.loading import RuleBaseError
    from solver.analysis.planfile import PlanError, check, new_plan

    try:
        if args.plan_command == "new":
            path, copied = new_plan(args.id, args.document, args.rules, drug=args.drug, name=args.name,
                                    force=args.force)
            out = _Out()
            out.line(f"wrote {path}" + (f"; the document is now {copied}" if copied else ""))
            out.line(f"next: turn its not_a_criterion lines into criteria (docs/adding-a-plan.md), then "
                     f"pa-solver plan check {args.id}" + (f" --rules {args.rules}" if args.rules else ""))
            out.flush()
            return 0
        rep = check([args.id] if args.id else None, args.rules)
    except (PlanError, RuleBaseError) as err:
        _error(str(err))
        return 2
    out = _Out()
    for line in rep.summary:
        out.line(line)
    for line in rep.problems:
        out.line(f"problem: {safe(line)}")
    out.line(f"{len(rep.problems)} problem{'' if len(rep.problems) == 1 else 's'}")
    out.flush()
    return 1 if rep.problems else 0


def cmd_ui(args) -> int:
    """Start the what-if page: `streamlit run ui/app.py`, extra options passed on
    after ours (so that the last word, and Streamlit takes the last, is theirs).
    The pages show cases, health data, and have no access check: they listen
    on 127.0.0.1 unless --host (or Streamlit's own --server.address) says
    otherwise -- never because a Streamlit config file or STREAMLIT_SERVER_ADDRESS
    does, which the address given here overrides."""
    import subprocess

    from solver.base.paths import UI
    from solver.service.cli import _loopback

    app = UI / "app.py"
    if not app.is_file():
        _error(f"the page is not installed with this copy of the solver ({app} is missing)")
        return 2
    given = _streamlit_option(args.streamlit_args, "server.address")
    if args.host is not None and given is not None:
        _error(f"--host {args.host} and --server.address {given}: choose one")
        return 2
    host = args.host if args.host is not None else given
    if host is not None and not (_loopback(host) or host.startswith("unix://")):
        _warn(f"the pages listen on {host}: anyone who can reach it sees the cases; there is no access check "
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


# Read from the rule base in use only when a value is checked or --help is shown: every option that
# takes them has a metavar, since argparse would otherwise list the choices as it builds the parser.
PLAN_CHOICES, DRUG_CHOICES, REQUEST_CHOICES = Choices("plans"), Choices("drugs"), Choices("requests")


def _rules_option(parser) -> None:
    parser.add_argument("--rules", default=None, metavar="DIR",
                        help="use the rule base in DIR (a copy of logic/ with other plans, an older checkout's "
                             "logic/) instead of the installed one; its plans' documents are found in "
                             "DIR/policies/, DIR/, then among the installed ones")


def _rules_in(argv: list[str]) -> Optional[str]:
    """The value of `--rules DIR` (or `--rules=DIR`) in a command line, before it is parsed: the rule
    base is chosen before anything reads it (the parser's own choices included)."""
    for i, a in enumerate(argv):
        if a == "--":
            break
        if a == "--rules" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--rules="):
            return a.split("=", 1)[1]
    return None


def _streamlit_option(argv: list, name: str) -> Optional[str]:
    """The value the last `--NAME VALUE` or `--NAME=VALUE` of `argv` gives (as
    `streamlit run` reads them), or None."""
    value = None
    for i, arg in enumerate(argv):
        if arg == f"--{name}" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(f"--{name}="):
            value = arg.split("=", 1)[1]
    return value


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line on stderr and exit 2."""

    def error(self, message: str):
        _error(f"{self.prog}: {message} (see {self.prog} --help)")
        raise SystemExit(2)

    def _get_formatter(self):
        # The width given, so that argparse does not import shutil (and with it
        # bz2 and lzma: 2 ms of a one-shot command) only to ask the terminal.
        try:
            width = os.get_terminal_size(sys.stderr.fileno()).columns - 2
        except (OSError, ValueError, AttributeError):
            columns = os.environ.get("COLUMNS", "")
            width = int(columns) - 2 if columns.isdigit() else 78
        return self.formatter_class(prog=self.prog, width=max(40, width))


COMMANDS = ("decide", "explain", "batch", "report", "questionnaire", "diff", "coverage", "ui", "serve", "audit",
            "why", "plan")


def build_parser(command: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser; with `command`, only that subcommand's (a one-shot command
    does not build the other four: argparse takes milliseconds per parser)."""
    p = _Parser(prog="pa-solver", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    if command in (None, "decide"):
        d = sub.add_parser("decide", help="decide one case (JSON file, or - for stdin)")
        _answer_options(d, "print the CASE.md JSON shape (sorted, byte-stable)")
        d.set_defaults(func=cmd_decide)
    if command in (None, "explain"):
        e = sub.add_parser("explain", help="decide a case and list, per plan, the fewest fact changes that would "
                                           "change its decision (a .jsonl file: one JSON line per case, as batch)")
        _answer_options(e, "print the CASE.md JSON shape, with `changes` per plan",
                        "a case or FHIR bundle (JSON file, or - for stdin), or a .jsonl file of them, one per line")
        e.add_argument("--max-changes", type=int, default=2, metavar="N",
                       help="at most N facts changed together (default 2)")
        _engine_options(e)
        e.set_defaults(func=cmd_explain)
    if command in (None, "batch"):
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
        _engine_options(b)
        _fhir_options(b)
        b.set_defaults(func=cmd_batch)
    if command in (None, "report"):
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
        r.add_argument("--top", type=_positive, default=8, help="rows per list in the table (default 8)")
        _engine_options(r)
        r.set_defaults(func=cmd_report)
    if command in (None, "diff"):
        plans = PLAN_CHOICES
        f = sub.add_parser("diff", help="where two plans part ways: every minimal profile of facts under which "
                                         "they decide differently")
        f.add_argument("plan_a", choices=plans, metavar="PLAN_A", help="a plan: %(choices)s")
        f.add_argument("plan_b", choices=plans, nargs="?", default=None, metavar="PLAN_B",
                       help="the plan to compare it with (or --against DIR)")
        f.add_argument("--against", metavar="DIR", default=None,
                       help="compare PLAN_A with the same plan in another rule-base folder (e.g. an older "
                            "checkout's logic/); today's vocabulary judges both")
        f.add_argument("--drug", choices=DRUG_CHOICES, default=None, metavar="DRUG",
                       help="the drug whose criteria are compared: %(choices)s (default: the rule base's first)")
        f.add_argument("--request", choices=REQUEST_CHOICES, default=None, metavar="REQUEST",
                       help="%(choices)s (default initial)")
        f.add_argument("--json", action="store_true", help="{plans, drug, request, rules_version, differences}")
        f.set_defaults(func=cmd_diff)
    if command in (None, "questionnaire"):
        q = sub.add_parser("questionnaire", help="a DTR Questionnaire built from the rule base: every fact the "
                                                  "plans' criteria test, or, for a case or bundle, only the "
                                                  "unknown facts the plans still need (most-needed first)")
        q.add_argument("case", nargs="?", default=None, help="a case or FHIR bundle (JSON file, or - for stdin)")
        q.add_argument("--request", choices=REQUEST_CHOICES, default=None, metavar="REQUEST",
                       help="the questions for this request: %(choices)s (default: the case's request, else initial)")
        q.add_argument("--plans", nargs="+", choices=PLAN_CHOICES, default=None, metavar="PLAN",
                       help="only these plans' questions: %(choices)s (default: the case's plans, else every plan)")
        _fhir_options(q)
        q.set_defaults(func=cmd_questionnaire)
    if command in (None, "coverage"):
        c = sub.add_parser("coverage", help="every sentence of a plan's document with the criteria that encode it "
                                            "or the reason it is set aside (exit 1 if any is unaccounted)")
        c.add_argument("plan", nargs="?", default=None, help="one plan id (default: every plan)")
        c.add_argument("--json", action="store_true",
                       help='{"plans": [{"plan", "document", "title", "counts", "sentences": [{"text", "kind", '
                            '"criteria", "set_aside"}]}]}')
        c.set_defaults(func=cmd_coverage)
    if command in (None, "ui"):
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
    if command in (None, "why"):
        w = sub.add_parser("why", help="per plan, what its decision rests on: decision <- pathway <- criterion <- "
                                       "fact = value, in at most 15 lines, and the facts that did not matter")
        w.add_argument("case", help="a case or FHIR bundle (JSON file, or - for stdin)")
        w.add_argument("--plan", choices=PLAN_CHOICES, default=None, metavar="PLAN",
                       help="only this plan: %(choices)s (default: every plan the case is decided for)")
        _fhir_options(w)
        w.set_defaults(func=cmd_why)
    if command in (None, "plan"):
        pl = sub.add_parser("plan", help="for whoever writes a plan: `plan new` starts its .lp file from its "
                                         "document, `plan check` says what is not yet right (docs/adding-a-plan.md)")
        psub = pl.add_subparsers(dest="plan_command", required=True, parser_class=_Parser)
        pn = psub.add_parser("new", help="write ID.lp: the plan's declarations and every sentence of the "
                                         "document as a not_a_criterion still to do")
        pn.add_argument("id", help="the plan id: lower-case letters, digits and _")
        pn.add_argument("--document", required=True, metavar="FILE",
                        help="the policy document, as text; copied beside the rules unless it is there")
        pn.add_argument("--drug", default=None, help="the drug it covers (default: the rule base's default drug)")
        pn.add_argument("--name", default=None, help="the plan's name (default: the document's first heading)")
        pn.add_argument("--force", action="store_true", help="write over an existing ID.lp")
        _rules_option(pn)
        pn.set_defaults(func=cmd_plan)
        pc = psub.add_parser("check", help="every criterion quoted from the document, able to be met, broken "
                                           "and unknown; every pathway able to decide; every fact used; every "
                                           "sentence accounted for (exit 1: one line per problem)")
        pc.add_argument("id", nargs="?", default=None, help="one plan (default: every plan, and the facts)")
        _rules_option(pc)
        pc.set_defaults(func=cmd_plan)
    if command in (None, "serve", "audit"):
        from solver.service.cli import add_parsers

        add_parsers(sub, _positive)
    for name, sp in sub.choices.items():
        if name not in ("serve", "audit", "plan"):  # serve, plan's commands have their own; audit reads a record
            _rules_option(sp)
    from solver.rules.loading import HELP

    p.epilog = HELP
    for name, command_parser in sub.choices.items():
        if name not in ("ui", "audit"):         # the commands that load a rule base here
            command_parser.epilog = HELP
    return p


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    rules = _rules_in(argv)
    if rules is None:
        return _main(argv)
    # the rule base in use, for this command, its worker processes and its pages; as it was after
    # (a caller of main() in its own process keeps its own)
    before = os.environ.get("PA_SOLVER_LOGIC")
    os.environ["PA_SOLVER_LOGIC"] = os.path.abspath(rules)
    try:
        return _main(argv, rules)
    finally:
        if before is None:
            os.environ.pop("PA_SOLVER_LOGIC", None)
        else:
            os.environ["PA_SOLVER_LOGIC"] = before


def _main(argv: list[str], rules: Optional[str] = None) -> int:
    _exit_on_term()
    if rules is not None:
        # --rules DIR is checked before the parser reads its choices (plan ids, drugs) from it
        if not _guard_loads() or not _check_rules(argparse.Namespace(rules=rules)):
            return 2
    try:
        args, extra = build_parser(argv[0] if argv and argv[0] in COMMANDS else None).parse_known_args(argv)
    except KeyboardInterrupt:                   # Ctrl-C while the options are read: no traceback
        return 130
    except RuleBaseError as err:               # the rule base in use, read for a choice (a plan id, a drug)
        _error(str(err))
        return 2
    if args.command == "ui":
        args.streamlit_args = extra
    elif extra:
        build_parser(args.command).error(f"unrecognized arguments: {' '.join(extra)}")
    for stream in (sys.stdout, sys.stderr):     # any print: a lone surrogate as its escape, never a traceback
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors=OUT_ERRORS)
    if not _guard_loads():
        return 2
    try:
        return args.func(args)
    except RuleBaseError as err:                # a rule base refused: its own line names the file and the problem
        _error(str(err))
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except OutputError as err:
        _error(f"cannot write the output: {err}")
        _silence_stdout()
        return 2
    except Exception as err:                    # a bug: one line saying so, not a traceback
        if os.environ.get("PA_SOLVER_DEBUG"):
            raise
        _error(f"internal error, a bug in pa-solver (please report it; PA_SOLVER_DEBUG=1 shows where): "
               f"{type(err).__name__}: {err}")
        return 70


def _guard_loads() -> bool:
    """Every load of a rule base in this process under the limits the environment sets
    (solver/loading.py: past one, a line and exit 2; SIGTERM or Ctrl-C during one, a clean end).
    False after saying which setting is wrong."""
    from solver.rules import loading

    try:
        limits = loading.Limits.from_env()
    except ValueError as err:
        _error(str(err))
        return False
    loading.guard(limits, _error)
    return True


def _exit_on_term() -> None:
    """SIGTERM ends the work as Ctrl-C does: the pool is shut down and the
    workers (who die with their parent in any case) are not left behind."""
    import signal

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    try:
        signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):          # not the main thread
        pass


def _silence_stdout() -> None:
    """After a failed write, send what is still buffered to /dev/null, so the
    interpreter's last flush does not fail again with a traceback."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


if __name__ == "__main__":
    sys.exit(main())
