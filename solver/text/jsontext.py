"""Reading JSON that people and programs hand us, whatever its bytes.

Every input of the project (a case file, a line of a batch, an upload on a
page, a result line of a report) is read here, from bytes, and every way it
can fail becomes one `NotJSON` (a `CaseError`) saying why:

- bytes that are not UTF-8 (a UTF-8 byte-order mark is accepted and dropped);
- text that is not JSON, or nests deeper than `MAX_DEPTH`;
- an integer of more digits than Python converts (`sys.get_int_info`);
- an object that names the same key twice (the key is named: taking the last
  one silently would decide a case the sender did not write);
- a number too large for a float (1e309) is read as infinity and left to the
  case model, which refuses it naming the field.

`case_id_hint` finds a case id in a line that could not be read, for the error
line written in its place.
"""

from __future__ import annotations

import json
import re
from typing import Any, Optional, Union

import orjson

from solver.base.contract import CaseError

MAX_DEPTH = 64                   # a case nests 3 deep; results about 8


class NotJSON(CaseError):
    """Input that is not a JSON text we can read."""


BOM = b"\xef\xbb\xbf"


def _pairs(pairs: list) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen = set()
        for k, _ in pairs:
            if k in seen:
                raise _Duplicate(k)
            seen.add(k)
    return out


class _Duplicate(Exception):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


_DECODER = json.JSONDecoder(object_pairs_hook=_pairs)


def _fast(data: Union[bytes, str]) -> Any:
    """orjson's reading of `data` where it is plainly what the careful reader
    below would give; `_SLOW` where the careful reader must decide (orjson
    refuses it, or an object may name a key twice: orjson keeps the last one
    silently).  orjson is strict JSON, so what it reads the careful reader
    reads the same; it is about ten times faster on a FHIR bundle."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if _LONG_RUN in raw.translate(_DIGIT_RUNS):     # 19 digits in a row: orjson reads an integer past
        return _SLOW                                   # 64 bits as a float; Python does not
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return _SLOW
    return value if same_members(raw, value) else _SLOW


def same_members(raw: bytes, value: Any) -> bool:
    """Whether orjson's reading `value` of the JSON text `raw` kept every
    member (orjson keeps the last of a key named twice, silently); False means
    perhaps not, and the careful reader must decide.  A text that is orjson's
    own encoding of `value` (as `pa-solver batch` writes) kept them all;
    otherwise colons are counted: each member has one outside strings, the
    re-encoding one per member kept, and strings keep theirs (a colon escaped
    as \\u003a counts as one)."""
    out = orjson.dumps(value)
    if raw.startswith(out) and (len(raw) == len(out) or raw[len(out):].isspace()):
        return True
    colons = raw.count(b":")
    if b"\\u" in raw:
        colons += raw.count(b"\\u003a") + raw.count(b"\\u003A")
    return colons == out.count(b":")


_SLOW = object()
# Every digit as 0, every other byte as a space: then a search for 19 zeros finds 19 digits in a row,
# six times faster than the regular expression [0-9]{19} on a 6 KB bundle.
_DIGIT_RUNS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_RUN = b"0" * 19


def loads(data: Union[bytes, bytearray, memoryview, str]) -> Any:
    """The JSON value in `data`, or `NotJSON` saying why there is none."""
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if isinstance(data, bytes):
        if data.startswith(BOM):
            data = data[len(BOM):]
    elif isinstance(data, str):
        if data.startswith("\ufeff"):
            data = data[1:]
        try:
            data.encode("utf-8")
        except UnicodeEncodeError as err:
            raise NotJSON(f"not valid JSON: not text (a lone surrogate at {err.start})") from None
    else:
        raise TypeError(f"expected bytes or str, got {type(data).__name__}")
    value = _fast(data)
    if value is not _SLOW:
        _check_depth(value, data)
        return value
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise NotJSON(f"not valid JSON: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start})",
                          case_id_hint(data)) from None
    else:
        text = data
    try:
        value = _DECODER.decode(text)
    except _Duplicate as dup:
        raise NotJSON(f"not valid JSON: the key {dup.key!r} appears twice in one object", case_id_hint(text)) from None
    except json.JSONDecodeError as err:
        raise NotJSON(f"not valid JSON: {err}", case_id_hint(text)) from None
    except ValueError as err:             # an integer past the conversion limit
        raise NotJSON(f"not valid JSON: {_int_limit(err)}", case_id_hint(text)) from None
    except RecursionError:                # json's C scanner stops at the interpreter's recursion limit
        raise NotJSON(f"not valid JSON: nested more than {MAX_DEPTH} deep", case_id_hint(text)) from None
    _check_depth(value, text)
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        raise NotJSON("not valid JSON: a string holds a lone UTF-16 surrogate (\\ud800-\\udfff), "
                      "which is not text", case_id_hint(text))
    return value


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def not_text_at(s: str) -> Optional[int]:
    """Where `s` holds a lone UTF-16 surrogate (no text: it cannot be UTF-8), or None."""
    if s.isascii():
        return None
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as err:
        return err.start
    return None


def _has_lone_surrogate(value) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if not_text_at(v) is not None:
                return True
        elif isinstance(v, dict):
            stack.extend(v)
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return False


def _int_limit(err: ValueError) -> str:
    msg = str(err)
    if "integer string conversion" in msg or "digits" in msg:
        return "a number has too many digits"
    return msg


def _check_depth(value: Any, data: Union[bytes, str]) -> None:
    """NotJSON when a decoded value nests deeper than MAX_DEPTH (the walk only
    where the text has enough brackets to)."""
    opening = ("[", "{") if isinstance(data, str) else (b"[", b"{")
    if data.count(opening[0]) + data.count(opening[1]) > MAX_DEPTH and not _shallow(data) and _too_deep(value):
        raise NotJSON(f"not valid JSON: nested more than {MAX_DEPTH} deep", case_id_hint(data))


_BRACKETS = bytes(range(256)).translate(None, b"[]{}")


def _shallow(data: Union[bytes, str]) -> bool:
    """True when the text surely nests at most MAX_DEPTH deep, found at C speed: of its
    brackets alone, each replace of innermost pairs of one kind that changes anything
    lowers the nesting by at most one, so a text that empties in MAX_DEPTH such
    replaces nests at most that deep (brackets inside strings can only make it look
    deeper or unbalanced: then False, and the decoded value is walked)."""
    if isinstance(data, str):
        return False
    s = data.translate(None, _BRACKETS)
    steps = 0
    while s and steps < MAX_DEPTH:
        before = len(s)
        for pair in (b"[]", b"{}"):
            t = s.replace(pair, b"")
            if len(t) != len(s):
                steps += 1
                s = t
        if len(s) == before:
            return False
    return not s and steps <= MAX_DEPTH


def _too_deep(value) -> bool:
    """Whether a decoded value nests deeper than MAX_DEPTH (without recursion)."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        if isinstance(v, dict):
            stack.extend((x, depth + 1) for x in v.values() if isinstance(x, (dict, list)))
        elif isinstance(v, list):
            stack.extend((x, depth + 1) for x in v if isinstance(x, (dict, list)))
    return False


_ID = re.compile(r'"case_id"\s*:\s*"((?:[^"\\\x00-\x1f]|\\.){0,200})"')


def case_id_hint(data: Union[bytes, str]) -> Any:
    """The case id of a line that could not be read as a whole, where one can
    be read in it (the first `"case_id": "..."`), else None."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", errors="replace")
    m = _ID.search(data[:100_000])
    if not m:
        return None
    try:
        value = json.loads('"' + m.group(1) + '"')
    except ValueError:
        return None
    # bytes that were not text, or a lone surrogate (no text either): no id to trust
    return None if "\ufffd" in value or not_text_at(value) is not None else value


# ---------------------------------------------------------------- writing

_ORJSON_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
# orjson writes a float under 1e-4 its own way (0.00001, 1e-7) where Python writes 1e-05, 1e-07;
# every other finite float, every string, integer and key order it writes as `json.dumps` does.


def _refuse(_):
    """orjson asks about a type it does not write itself (a datetime...): json.dumps decides."""
    raise ValueError


def fast_dump(data: Any) -> Optional[bytes]:
    """orjson's canonical bytes of `data` where they are exactly `json.dumps`'s, else None."""
    try:
        out = orjson.dumps(data, default=_refuse, option=_ORJSON_OPTS)
    except (TypeError, ValueError):      # a lone surrogate, a key that is not a string, an integer past 64 bits...
        return None
    return None if _small_float(out) else out


def _small_float(out: bytes) -> bool:
    """Whether orjson's text `out` may hold a float under 1e-4: 0.0000d... or de-N (True also for
    such text inside a string, which costs only time).  Two scans led by literals: one regular
    expression with both alternatives is ten times slower on a decided case's 59 KB."""
    return b"0.0000" in out or _EXPONENT(out) is not None


_EXPONENT = re.compile(rb"e-(?<=[0-9]e-)").search


def dump_text(data: Any) -> str:
    """Canonical JSON (sorted keys, compact separators, not ASCII-escaped): byte-stable.
    orjson writes it where that is the same text as `json.dumps` (tests/text/test_json_write.py), about ten times faster
    on a decided case; anything it might write differently is written by `json.dumps`.
    The one value the two disagree on silently is a number that is not finite (orjson: null,
    `json.dumps`: NaN, which is not JSON); no result holds one (the case model refuses them)."""
    out = fast_dump(data)
    return out.decode("utf-8") if out is not None else _canonical(data)


def dump_bytes(data: Any) -> bytes:
    """`dump_text(data)` as UTF-8 (a lone surrogate as its escape, solver/text/words.py's OUT_ERRORS)."""
    out = fast_dump(data)
    if out is not None:
        return out
    from solver.text.words import utf8

    return utf8(_canonical(data))


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
