"""What the store keeps and how a read checks it (SERVICE.md, "Nothing lost"): a `Record`, the
errors a store raises, the checks of a row against the SHA-256 digests kept with it, and a
store's name and errors as a message may say them.  Plain functions of a row's values: the same
for SQLite and PostgreSQL (solver/service/store.py).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Iterable, Optional


class StoreError(RuntimeError):
    """The store cannot be opened or written (a full disk, a read-only file, not a database).
    `damage`: why, when the cause is damage to what is stored (else None: a lock, a lost connection)."""

    def __init__(self, message: str, damage: Optional[str] = None):
        super().__init__(message)
        self.damage = damage


class DamagedRecord(StoreError):
    """A record that is there but cannot be given back as written: its bytes do not match the
    SHA-256 kept with them, or the database cannot read it.  `seq` is None where the damage kept
    even the row's number from being read; `reason` says what is wrong, in a few words."""

    def __init__(self, seq: Optional[int], reason: str):
        super().__init__(f"record #{seq if seq is not None else '?'} is damaged: {reason}", reason)
        self.seq, self.reason = seq, reason


class Record:
    __slots__ = ("kind", "submission", "request", "answer", "media_type", "rules_version", "decisions")

    def __init__(self, kind: str, request: bytes, answer: bytes, media_type: str, rules_version: str,
                 decisions: dict, submission: Optional[str] = None):
        self.kind, self.submission, self.request, self.answer = kind, submission, request, answer
        self.media_type, self.rules_version, self.decisions = media_type, rules_version, decisions


def submission_key(identifiers: Iterable[dict]) -> Optional[str]:
    """The key a Claim's first identifier with a value gives: "system|value" ("|value" without a system)."""
    for ident in identifiers or []:
        if isinstance(ident, dict) and isinstance(ident.get("value"), str) and ident["value"]:
            system = ident.get("system") if isinstance(ident.get("system"), str) else ""
            return f"{system}|{ident['value']}"
    return None


# ------------------------------------------------------------------ a row, checked

MEDIA_TYPE = re.compile(r"[\w!#$&^.+-]+/[\w!#$&^.+-]+")


def decisions_of(text) -> Optional[dict]:
    """A record's decisions ({plan: decision}), or None when they are not what was written (damaged)."""
    try:
        dec = json.loads(text)
    except (TypeError, ValueError):
        return None
    return dec if isinstance(dec, dict) else None


def _is_bytes(value) -> bool:
    return isinstance(value, (bytes, bytearray, memoryview))


def answer_damage(answer, digest: Optional[str]) -> Optional[str]:
    """What is wrong with a recorded answer, or None.  One recorded before digests were kept is
    at least JSON (the service answers nothing else)."""
    if not _is_bytes(answer):
        return "its answer is not the bytes recorded"
    if digest is None:
        try:
            json.loads(bytes(answer))
        except ValueError:
            return "its answer is not JSON; it was recorded before answers' digests were kept"
        return None
    if hashlib.sha256(answer).hexdigest() != digest:
        return "its answer does not match the SHA-256 recorded with it"
    return None


def request_damage(request, digest: Optional[str]) -> Optional[str]:
    if not _is_bytes(request) or hashlib.sha256(request).hexdigest() != digest:
        return "its request does not match the SHA-256 recorded with it"
    return None


def media_damage(media) -> Optional[str]:
    return None if isinstance(media, str) and MEDIA_TYPE.fullmatch(media) else "its media type is not one"


def submitted(key: str, row: tuple) -> tuple[bytes, str]:
    """The answer of the row a submission's key found: (bytes, media type), or DamagedRecord."""
    seq, sub, answer, digest, media = row
    # a damaged index can lead to another submission's row, whose answer matches its own digest
    damage = ("the index of submissions leads to another record" if sub != key else None) or \
        answer_damage(answer, digest) or media_damage(media)
    if damage:
        raise DamagedRecord(seq, damage)
    return bytes(answer), media


def whole(seq: int, row: tuple) -> dict:
    """One record whole, its bytes checked against their digests, or DamagedRecord."""
    kind, sub, at, version, digest, decisions, request, answer, answer_digest, media = row
    dec = decisions_of(decisions)
    damage = (answer_damage(answer, answer_digest) or request_damage(request, digest)
              or (None if dec is not None else "its decisions are not JSON") or media_damage(media))
    if damage:
        raise DamagedRecord(seq, damage)
    return {"seq": seq, "kind": kind, "submission": sub, "decided_at": at, "rules_version": version,
            "request_sha256": digest, "decisions": dec, "request": bytes(request),
            "answer": bytes(answer), "media_type": media, "answer_sha256": answer_digest,
            "integrity": "unverified" if answer_digest is None else "ok"}


def listed(row: tuple, plan: Optional[str], path: str) -> Optional[dict]:
    """A listed record (None: not one of `plan`'s), or StoreError when its decisions are damaged."""
    seq, k, sub, at, version, digest, decisions = row
    dec = decisions_of(decisions)
    if dec is None:
        raise StoreError(f"cannot read {shown(path)}: record #{seq} is damaged (its decisions are not "
                         f"JSON); pa-solver audit lists the damaged records", "its decisions are not JSON")
    if plan is not None and plan not in dec:        # LIKE's "_" matches any one character
        return None
    return {"seq": seq, "kind": k, "submission": sub, "decided_at": at, "rules_version": version,
            "request_sha256": digest, "decisions": dec}


def checked(row: tuple, plan: Optional[str]) -> Optional[dict]:
    """A listed record with its integrity (ok / damaged / unverified) and what is damaged, if anything."""
    seq, kind, sub, at, version, digest, decisions, request, answer, answer_digest = row
    dec = decisions_of(decisions)
    if plan is not None and dec is not None and plan not in dec:
        return None
    damage = (answer_damage(answer, answer_digest) or request_damage(request, digest)
              or (None if dec is not None else "its decisions are not JSON"))
    return {"seq": seq, "kind": kind, "submission": sub, "decided_at": at, "rules_version": version,
            "request_sha256": digest, "decisions": dec or {}, "answer_sha256": answer_digest,
            "integrity": "damaged" if damage else "unverified" if answer_digest is None else "ok", "damage": damage}


def unreadable(seq: int, damage: str) -> dict:
    """A checked listing's entry for a record the database cannot read at all."""
    return {"seq": seq, "kind": None, "submission": None, "decided_at": None, "rules_version": None,
            "request_sha256": None, "decisions": {}, "answer_sha256": None, "integrity": "damaged",
            "damage": damage}


# ------------------------------------------------------------------ the store in messages

def is_url(spec: str) -> bool:
    """A --store that names a PostgreSQL database rather than a file."""
    return spec.startswith(("postgresql://", "postgres://"))


def shown(spec: str) -> str:
    """A --store as it may be printed: a URL's password replaced by ***."""
    # up to the last "@": a password may hold one (unencoded); better to hide the host too than a part of it
    return re.sub(r"^(postgres(?:ql)?://[^:/@]*):.*@", r"\1:***@", spec) if is_url(spec) else spec


def redacted(text: str, url: str) -> str:
    """A driver's message without the URL's password (drivers echo a URL they cannot parse)."""
    text = text.replace(url, shown(url))
    text = re.sub(r"(postgres(?:ql)?://[^:/@\s\"']*):[^\s\"']*@", r"\1:***@", text)
    return re.sub(r"(password\s*=\s*)\S+", r"\1***", text)


def one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def said(err: BaseException) -> str:
    """A store error in one line (text that is not UTF-8 is a damaged row, not a codec's matter)."""
    return "a record's text is not UTF-8 (damaged)" if isinstance(err, UnicodeDecodeError) else one_line(err)
