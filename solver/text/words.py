"""Words for what a fact must be: one formatter for the command line, the
report and the pages, so a range reads the same everywhere.

    condition("age_years", range=[18, 65])            -> '18 <= age_years < 65'
    condition("ph_status", values=["negative"])        -> 'ph_status = "negative"'
    condition("cd22_positive", values=[True], show=yes_no, name="**cd22_positive**")
                                                       -> '**cd22_positive** = yes'
"""

from __future__ import annotations

import codecs
import json
import os
import re
from typing import Any, Callable, Optional, Sequence


def number(x: Any) -> str:
    """A bound or value as people write it: 18, not 18.0."""
    if isinstance(x, float) and x.is_integer():
        x = int(x)
    return json.dumps(x)


def condition(fact: str, values: Optional[Sequence] = None, range: Optional[Sequence] = None,
              show: Callable[[Any], str] = number, name: Optional[str] = None,
              symbols: Sequence[str] = (">=", "<=", "documented")) -> str:
    """`fact = a or b`, `fact >= lo`, `fact < hi`, `lo <= fact < hi`, or
    `fact documented` (a range [null, null]: any known value); `symbols`: the
    words for >=, <= and documented (the pages write ≥ and ≤)."""
    name = name or fact
    ge, le, documented = symbols
    if values is not None:
        return f"{name} = " + " or ".join(show(v) for v in values)
    lo, hi = range if range is not None else (None, None)
    if lo is None and hi is None:
        return f"{name} {documented}"
    if hi is None:
        return f"{name} {ge} {number(lo)}"
    if lo is None:
        return f"{name} < {number(hi)}"
    return f"{number(lo)} {le} {name} < {number(hi)}"


# C0 and C1 controls, DEL, the Unicode marks that reorder or break lines, and
# lone UTF-16 surrogates (no text: they cannot be written as UTF-8).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(m: "re.Match") -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def safe(text: Any) -> str:
    """A string fit to print on one line of a terminal: every control
    character (newline, escape, carriage return, bidirectional marks) shown as
    an escape, so input can neither forge lines nor drive the terminal."""
    return _UNSAFE.sub(_escape, str(text))


def safe_block(text: str) -> str:
    """`safe` line by line: our own line breaks kept, every other control escaped."""
    return "\n".join(safe(line) for line in text.split("\n"))


# Every output of the project is UTF-8.  Input is read so that no string of
# it can hold a lone UTF-16 surrogate (solver/text/jsontext.py refuses them, the
# case model too), but a surrogate can still arrive from outside the case:
# a file or folder name that is not UTF-8 reaches Python as surrogate
# escapes.  Every writer therefore encodes with OUT_ERRORS: a lone surrogate
# is written as its escape `\udXXX` -- in a JSON string that is the JSON
# escape of the same code unit, elsewhere a visible escape like `safe`'s --
# so no output line is ever lost to a UnicodeEncodeError.
OUT_ERRORS = "pa-solver-escape"


def _escape_unencodable(err: UnicodeError):
    if isinstance(err, UnicodeEncodeError):
        return "".join(f"\\u{ord(c):04x}" for c in err.object[err.start:err.end]), err.end
    raise err


codecs.register_error(OUT_ERRORS, _escape_unencodable)


def utf8(text: str) -> bytes:
    """`text` as UTF-8 bytes for output; a lone surrogate as its escape (OUT_ERRORS)."""
    return text.encode("utf-8", OUT_ERRORS)


# Readable text (why, report) is wrapped to the reader's width: the terminal's, COLUMNS when set
# (as shutil reads it), 80 when the output is a pipe or a file; never narrower than MIN_COLUMNS.
MIN_COLUMNS = 40
HANGING = 4          # a wrapped line goes on this much deeper than where it began


def columns(terminal: bool = True) -> int:
    """The width to wrap at: COLUMNS if set, else the terminal's when standard output is one
    (`terminal` False: output to a file, which has no width of its own), else 80."""
    import shutil

    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return max(MIN_COLUMNS, int(env))
    return max(MIN_COLUMNS, shutil.get_terminal_size((80, 24)).columns) if terminal else 80


def wrap_block(text: str, width: int) -> str:
    """Each line of `text` no wider than `width` where it has spaces to break at, continued on
    lines indented HANGING deeper than it starts (a hanging indent), so that a wrapped line still
    reads as one.  Only line breaks change: the words, in order, are the same.  A word longer than
    the width (an id, a path) is left whole."""
    import textwrap

    out = []
    for line in text.split("\n"):
        if len(line) <= width:
            out.append(line)
            continue
        lead = line[:len(line) - len(line.lstrip(" "))]
        out.extend(textwrap.wrap(line, width, subsequent_indent=lead + " " * HANGING, break_long_words=False,
                                 break_on_hyphens=False, replace_whitespace=False, expand_tabs=False)
                   or [line])
    return "\n".join(out)
