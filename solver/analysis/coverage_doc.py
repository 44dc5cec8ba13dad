"""A policy document as coverage reads it (solver/analysis/coverage.py): its
markup dropped, its text cut into units.

**Markup.**  The documents are text converted from PDF and HTML, with some
Markdown.  Before anything is matched, each line loses its markup, and the
rest is compared with whitespace collapsed to one space:

- at the start of a line: Markdown heading marks (`#`..`######`), a bullet
  (`-`, `•`) and an item number (`1.`, `1e.`, `a.`, `ii.`), in that order;
- anywhere: HTML tags (`<sup>`, `<b>`, `<input .../>`, `<p>`, ...; their text
  is kept), emphasis and footnote asterisks (`*`), Markdown's backslash
  escapes (the backslash) and the bullet `•`.

Nothing else changes: superscripts such as `¹⁻⁴` stay, so a criterion's text
simply stops before them.

**Units** (kept simple and deterministic).  A line that ends in two spaces
(Markdown's line break) continues on the next line.  Then every line that has
words left is:

- a *bullet* when it starts with a bullet or an item number: one unit;
- a *heading* when it starts with `#` or a section number (`II.`): one unit;
- a *table row* when it holds a tab: one unit;
- otherwise a *paragraph*, cut into sentences after `.`, `!` or `?` (and a
  closing quote or bracket) followed by a space and a capital letter, unless
  the word before the stop is a single capital letter (`U. S.`).

Horizontal rules (`---`) and blank lines are no units.
"""

from __future__ import annotations

import re
from typing import Optional

_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")
_START = re.compile(r"[ \t]*(?P<head>#{1,6}[ \t]+)?(?P<bullet>[-•][ \t]+)?(?P<item>(?:\d{1,2}e?|[a-z]|[ivx]{2,4})\.[ \t]+)?")
_ESCAPED = re.compile(r"\\(?=[!-/:-@\[-`{-~])")
_STOP = re.compile(r"[.!?][\"'”’)\]]*(?=\s+[A-Z“\"])")
_SECTION = re.compile(r"[ \t]*[IVX]{1,5}\.[ \t]")
_RULE = re.compile(r"[ \t]*(?:-{3,}|\*{3,}|_{3,})[ \t]*")


class Document:
    """A document's text, its markup-free form and its units.

    `norm` is the markup-free text of every unit, in order, joined by one
    space; `raw[i]` is the offset in `text` of `norm[i]`.  `units` are
    (start, end, kind) ranges of `norm`."""

    def __init__(self, text: str):
        self.text = text
        chars: list[str] = []
        raw: list[int] = []
        self.units: list[tuple[int, int, str]] = []

        def emit(line_start: int, line: str, skip: int) -> None:
            # the line's characters after its start markup, less tags, escapes and asterisks
            dropped = bytearray(len(line))
            for m in _TAG.finditer(line, skip):
                dropped[m.start():m.end()] = b"\1" * (m.end() - m.start())
            for m in _ESCAPED.finditer(line, skip):
                dropped[m.start()] = 1
            for i in range(skip, len(line)):
                c = line[i]
                if dropped[i] or c in "*•":
                    continue
                if c.isspace():
                    if chars and chars[-1] != " ":
                        chars.append(" ")
                        raw.append(line_start + i)
                    continue
                chars.append(c)
                raw.append(line_start + i)

        for kind, pieces in _blocks(text):
            if chars and chars[-1] != " ":
                chars.append(" ")
                raw.append(pieces[0][0])
            start = len(chars)
            for line_start, line, skip in pieces:
                emit(line_start, line, skip)
                if chars and chars[-1] != " ":
                    chars.append(" ")
                    raw.append(line_start + len(line))
            while len(chars) > start and chars[-1] == " ":
                chars.pop()
                raw.pop()
            if len(chars) == start:
                continue
            if kind == "paragraph":
                body = "".join(chars[start:])
                cut = start
                for m in _STOP.finditer(body):
                    before = body[:m.start()].rsplit(" ", 1)[-1]
                    if len(before) == 1 and before.isupper():
                        continue
                    end = start + m.end()
                    self.units.append((cut, end, "sentence"))
                    cut = end + 1
                self.units.append((cut, len(chars), "sentence"))
            else:
                self.units.append((start, len(chars), kind))
        self.norm = "".join(chars)
        self.raw = raw

    def unit_text(self, unit: tuple) -> str:
        return self.norm[unit[0]:unit[1]]

    def find(self, words: str, after: int = 0) -> Optional[tuple[int, int]]:
        """The first (start, end) of `words` (markup-free, whitespace collapsed)
        in `norm` at or after `after`; None where it does not occur."""
        words = normalise(words)
        if not words:
            return None
        i = self.norm.find(words, after)
        return None if i < 0 else (i, i + len(words))

    def find_all(self, words: str) -> list[tuple[int, int]]:
        words = normalise(words)
        out, i = [], self.norm.find(words) if words else -1
        while i >= 0:
            out.append((i, i + len(words)))
            i = self.norm.find(words, i + 1)
        return out

    def raw_span(self, span: tuple[int, int]) -> tuple[int, int]:
        """The span of `text` that a span of `norm` comes from."""
        return self.raw[span[0]], self.raw[span[1] - 1] + 1

    def units_over(self, span: tuple[int, int]) -> list[int]:
        """Indices of the units a span of `norm` overlaps."""
        return [i for i, (s, e, _) in enumerate(self.units) if s < span[1] and span[0] < e]


def _blocks(text: str):
    """(kind, [(line offset, line, markup length at its start)]) per line with
    words, a line ending in two spaces joined with the next."""
    pending: list = []
    kind = None
    offset = 0
    for line in text.split("\n"):
        start = offset
        offset += len(line) + 1
        if not pending:
            if not line.strip() or _RULE.fullmatch(line):
                continue
            m = _START.match(line)
            kind = ("heading" if m.group("head") or _SECTION.match(line)
                    else "bullet" if (m.group("bullet") or m.group("item"))
                    else "table row" if "\t" in line else "paragraph")
            pending.append((start, line, m.end()))
        else:
            pending.append((start, line, 0))
        if not line.endswith("  "):
            yield kind, pending
            pending = []
    if pending:
        yield kind, pending


def normalise(words: str) -> str:
    """A text as it is matched: markup dropped as in a document, whitespace collapsed."""
    return Document(words).norm
