"""A rule base's files: which they are, what `#include` brings in, and the version that covers every
byte clingo reads (`rules_version`, recorded with every decision).  A file is read as data: a `#script`
is refused, as is a file that is not UTF-8, too big, or not a regular file (solver/rules/loading.py
holds the limits).  No clingo here: the command line checks a folder without loading the solver."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from typing import Optional

from solver.base.paths import in_use
from solver.rules.loading import RuleBaseError
from solver.text.jsontext import not_text_at
from solver.text.words import safe

# The most error/2 findings one refusal lists (a rule base without facts.lp has 160).
SAY_ERRORS = 5

# The files every rule base holds beside its plans (the engine reads what they define).
REQUIRED_FILES = (
    ("vocabulary.lp", "the predicates, checks and #external atoms the engine reads"),
    ("show.lp", "the parts decide, explain, diff, rests and rests_check"),
)


def lp_files(logic_dir) -> list[str]:
    """The .lp files of a rule-base folder, sorted by name (RuleBaseError for a path that is
    not UTF-8 text: clingo takes file names as UTF-8, and would fail on it with a traceback)."""
    folder = os.fspath(logic_dir)
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    paths = [os.path.join(folder, n) for n in sorted(names)
             if n.endswith(".lp") and os.path.isfile(os.path.join(folder, n))]
    for path in paths:
        if not_text_at(path) is not None:
            raise RuleBaseError(f"{safe(path)}: the path is not UTF-8 text; clingo reads only UTF-8 file names "
                                f"(rename the file or its folder)")
    return paths


def _rule_bytes(path: str, room: int) -> bytes:
    """A rule file's bytes, read once for the version hash and checked on the
    way: a rule file is data, so one with a #script (code clingo would run) is
    refused, and so is one that is not UTF-8 text (clingo's Python logger
    cannot decode a message quoting it, and aborts the process), one that is
    not a regular file (a FIFO would hold clingo's read for good) and one past
    the `room` left of the rule base's size limit (solver/rules/loading.py)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        raise RuleBaseError(f"{path}: {err.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise RuleBaseError(f"{path}: {_kind(st.st_mode)}, not a regular file")
        if st.st_size > room:
            raise RuleBaseError(_too_big(path, st.st_size))
        try:
            text = fh.read(st.st_size + 1)          # (not room + 1: a buffer that large costs a decide 0.5 ms)
            if len(text) > st.st_size:              # it grew since: the rest, up to the limit
                text += fh.read(room + 1 - len(text))
        except OSError as err:
            raise RuleBaseError(f"{path}: {err.strerror}") from None
    if len(text) > room:
        raise RuleBaseError(_too_big(path, len(text)))
    if b"#script" in text:
        raise RuleBaseError(f"{path} has a #script: rule files are data, no code runs from them")
    try:
        text.decode("utf-8")
    except UnicodeDecodeError as err:
        raise RuleBaseError(f"{path} is not UTF-8 text (byte {err.start})") from None
    return text


def _too_big(path: str, size: int) -> str:
    from solver.rules import loading

    return (f"{path}: {size / (1 << 20):.1f} MB, past the {loading.LIMITS.rules_mb:g} MB a rule base's files may "
            f"hold together (PA_SOLVER_RULES_MB)")


def _kind(mode: int) -> str:
    return ("a FIFO" if stat.S_ISFIFO(mode) else "a directory" if stat.S_ISDIR(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "not a file")


# clingo's lexer (libgringo's nongroundlexer), as far as an #include directive goes: comments
# (`%` and `#!` to the end of the line, `%* .. *%` nested, a `%` inside one comments out the rest
# of its line), strings, and the #include keyword itself (`#includes` is another keyword).
_TOKEN = re.compile(rb'%\*|%[^\n]*|#![^\n]*|"(?:[^\\"\n]|\\"|\\\\|\\n)*"|#include(?![A-Za-z0-9_])')
_IN_BLOCK = re.compile(rb"%\*|\*%|%[^\n]*")
_GAP = re.compile(rb"[ \t\r\n]+|%\*|%[^\n]*|#![^\n]*")
_STRING = re.compile(rb'"((?:[^\\"\n]|\\"|\\\\|\\n)*)"')


def _after_block(text: bytes, pos: int) -> int:
    depth = 1
    while depth:
        m = _IN_BLOCK.search(text, pos)
        if m is None:
            return len(text)
        depth += {b"%*": 1, b"*%": -1}.get(m.group(), 0)
        pos = m.end()
    return pos


def _includes(text: bytes) -> list[tuple[int, Optional[str]]]:
    """(line, file name) of every #include directive clingo follows in a rule file's text;
    the name None for a library include (`#include <incmode>`)."""
    out: list[tuple[int, Optional[str]]] = []
    if b"#include" not in text:
        return out
    pos = 0
    while True:
        m = _TOKEN.search(text, pos)
        if m is None:
            return out
        pos = m.end()
        tok = m.group()
        if tok == b"%*":
            pos = _after_block(text, pos)
        elif tok == b"#include":
            line = text.count(b"\n", 0, m.start()) + 1
            while True:                               # what may stand between the keyword and its file
                gap = _GAP.match(text, pos)
                if gap is None:
                    break
                pos = _after_block(text, gap.end()) if gap.group() == b"%*" else gap.end()
            name = _STRING.match(text, pos)
            if name is not None:
                raw = re.sub(rb'\\(["\\n])', lambda e: b"\n" if e.group(1) == b"n" else e.group(1), name.group(1))
                out.append((line, raw.decode("utf-8")))
                pos = name.end()
            elif text.startswith(b"<", pos):
                out.append((line, None))


def _resolve(name: str, source: str, line: int) -> str:
    """The file clingo reads for `#include "name"` in `source`, found as clingo finds it: the name
    as written (from the working directory, or absolute), else beside the including file.  A name
    both find as two different files is refused (the author meant the one beside, clingo would read
    the other), as is one neither finds (clingo's CLINGOPATH is not followed) and one that is not a
    regular file."""
    at = f'{source}:{line}: #include "{name}"'
    found = []
    candidates = [name]
    if not os.path.isabs(name) and os.path.dirname(source):
        candidates.append(os.path.join(os.path.dirname(source), name))
    for path in candidates:
        try:
            found.append((path, os.stat(path)))
        except (OSError, ValueError):
            pass
    if not found:
        raise RuleBaseError(f"{at}: no such file (looked beside {os.path.basename(source)} and in the working "
                            f"directory)")
    path, st = found[0]
    if len(found) == 2 and os.path.realpath(path) != os.path.realpath(found[1][0]):
        raise RuleBaseError(f"{at} names two files: {os.path.abspath(path)} in the working directory, which clingo "
                            f"reads, and {found[1][0]} beside the including file; write the path to the one meant")
    if not stat.S_ISREG(st.st_mode):
        raise RuleBaseError(f"{at}: {path} is {_kind(st.st_mode)}, not a regular file")
    return path


def rule_files(logic_dir=None) -> list[tuple[str, bytes, bool]]:
    """Every file clingo reads for the rule base in a folder, read and checked once (_rule_bytes):
    (path, bytes, whether it is one of the folder's .lp files).  The folder's .lp files come
    first, by name; then the files their #include directives bring in, depth first in the order
    clingo reads them, each file once.  Together they may hold at most the size limit."""
    from solver.rules import loading

    room = loading.LIMITS.rules_bytes
    out: list[tuple[str, bytes, bool]] = []
    top = lp_files(in_use(logic_dir))
    for path in top:
        out.append((path, _rule_bytes(path, room), True))
        room -= len(out[-1][1])
    if not any(b"#include" in text for _, text, _ in out):
        return out
    seen = {os.path.realpath(path) for path in top}

    def follow(source: str, text: bytes) -> None:
        nonlocal room
        for line, name in _includes(text):
            if name is None:
                raise RuleBaseError(f"{source}:{line}: #include <...>: a library include; a rule file includes "
                                    f"only files")
            path = _resolve(name, source, line)
            key = os.path.realpath(path)
            if key in seen:
                continue
            seen.add(key)
            out.append((path, _rule_bytes(path, room), False))
            room -= len(out[-1][1])
            follow(path, out[-1][1])

    for path, text, _ in out[:len(top)]:
        follow(path, text)
    return out


def version_of(files: list[tuple[str, bytes, bool]]) -> str:
    h = hashlib.sha256()
    for path, text, own in files:
        # a folder's own file by its name (the hash of a folder without includes is as it was);
        # an included file by its place in the list, its #include directive being in the bytes before
        h.update((os.path.basename(path).encode() if own else b"#include") + b"\0" + text + b"\0")
    return h.hexdigest()[:16]




def rules_version(logic_dir=None) -> str:
    """The hash of every byte clingo reads for a rule-base folder: its .lp files and what they
    #include (RuleBaseError for a file that is not a rule file: see rule_files)."""
    return version_of(rule_files(logic_dir))
