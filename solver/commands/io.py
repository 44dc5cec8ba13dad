"""Reading input and writing output for every command: a case file or standard input as bytes, JSONL lines
(one error line in place of a bad one), standard output line by line, one line on stderr for an error
(never a traceback), the --output checks, the readable table."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Iterator, Optional

from solver.base.contract import CaseError
from solver.text.words import OUT_ERRORS, safe, utf8


class InputError(Exception):
    """Input that cannot be read at all (no such file, stdin closed)."""


class OutputError(Exception):
    """Output that cannot be written (a full disk, a closed pipe's peer)."""


def stdin_bytes():
    """Standard input as a binary stream, or InputError when there is none."""
    stream = getattr(sys.stdin, "buffer", None) if sys.stdin is not None else None
    if stream is None or stream.closed:
        raise InputError("cannot read standard input: it is closed")
    return stream


def open_input(path: str):
    """A binary stream of `path` (- for stdin), or InputError saying why not."""
    if path == "-":
        return stdin_bytes()
    try:
        return open(path, "rb")
    except IsADirectoryError:
        raise InputError(f"cannot read {safe(path)}: a directory, not a file") from None
    except FileNotFoundError:
        raise InputError(f"cannot read {safe(path)}: no such file") from None
    except OSError as err:
        raise InputError(f"cannot read {safe(path)}: {err.strerror or err}") from None


MAX_LINE = 16 << 20          # bytes; a longer line is an error line, read past without holding it


def read_bytes(path: str) -> bytes:
    """A whole case file (or stdin); one larger than MAX_LINE is refused
    without holding it all."""
    src = open_input(path)
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


def input_lines(src, errors: list) -> Iterator[tuple[int, bytes]]:
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


class Out:
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


def stderr(kind: str, message: str) -> None:
    """One line on stderr, control characters escaped; a stderr that cannot
    be written is no reason to fail."""
    try:
        print(f"{kind}: {safe(message)}", file=sys.stderr)
    except (OSError, ValueError, AttributeError):
        pass


def error(message: str) -> None:
    stderr("error", message)


def warn(message: str) -> None:
    stderr("warning", message)


def color() -> bool:
    """Colour on a terminal, unless NO_COLOR is set (no-color.org)."""
    return sys.stdout is not None and sys.stdout.isatty() and not os.environ.get("NO_COLOR")


@contextlib.contextmanager
def progress(args, unit: str = "case"):
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


def check_output(path: Optional[str]) -> bool:
    """An output path that can be written, checked before any work; False
    after saying why not."""
    if not path:
        return True
    if os.path.isdir(path):
        error(f"--output {path}: a directory; give a file name")
        return False
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        error(f"--output {path}: the directory {parent} does not exist")
        return False
    if not os.access(parent, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        error(f"--output {path}: not writable")
        return False
    return True


def emit(text: str, output: Optional[str]) -> None:
    """`text` (no final newline) to the --output file, or to standard output."""
    if output:
        with open(output, "w", encoding="utf-8", errors=OUT_ERRORS) as fh:
            fh.write(text + "\n")
    else:
        out = Out()
        out.line(text)
        out.flush()


def input_file_ok(path: str) -> bool:
    """A path that is a regular file, or False after saying why not."""
    if os.path.isfile(path):
        return True
    error(f"cannot read {path}: {'a directory, not a file' if os.path.isdir(path) else 'no such file'}")
    return False


def render_table(result, verbose: bool = False, color: bool = False) -> str:
    """The readable answer (solver/render/table.py) for a result dict or CaseResult."""
    from solver.render.table import render

    if hasattr(result, "model_dump"):
        result = json.loads(result.to_json())
    return render(result, verbose=verbose, color=color)


def load_case(path: str, data: Optional[bytes] = None, args=None, solver=None):
    """(case, fhir) for a JSON file (or - for stdin): a case or a FHIR Bundle, read against the
    solver's rule base; None after printing why not to stderr."""
    from solver.text.jsontext import NotJSON

    try:
        if data is None:
            data = read_bytes(path)
        return read_case(data, args, solver)
    except InputError as err:
        error(str(err))
    except NotJSON as err:
        error(f"{'standard input' if path == '-' else path}: {err}")
    except CaseError as err:
        from solver.fhir.resources import FhirError

        error(f"invalid FHIR bundle: {err}" if isinstance(err, FhirError) else f"invalid case: {err}")
    return None


def read_case(data: bytes, args=None, solver=None):
    """(case, fhir) from bytes: a CASE.md case or a FHIR Bundle (solver/fhir/inputs.py), read against
    the solver's rule base (default: the rule base in use)."""
    from solver.fhir.inputs import case_from
    from solver.text.jsontext import loads

    return case_from(loads(data), as_of=getattr(args, "as_of", None), drug=getattr(args, "drug", None),
                     declared=solver)
