"""`pa-solver audit`: the decisions the service recorded, each checked against its digests."""

from __future__ import annotations

import json
import os

from solver.rules.declared import Choices


def store_name(spec: str) -> str:
    from solver.service.records import is_url, shown

    return shown(spec) if is_url(spec) else os.path.abspath(spec)


def cmd_audit(args) -> int:
    from solver.commands.io import Out, error
    from solver.service.records import StoreError, is_url, shown
    from solver.service.store import open_store

    if not is_url(args.store) and not os.path.isfile(args.store):
        error(f"--store {args.store}: no such file (start the service with --store PATH first)")
        return 2
    try:
        store = open_store(args.store)
        pages = store.damaged_pages()           # what `serve` refuses at its start (an index may be all)
        rows = store.list(since=args.since, plan=args.plan, kind=args.kind, verify=True)
        store.close()
    except StoreError as err:
        error(str(err))
        return 2
    damaged = [r["seq"] for r in rows if r["integrity"] == "damaged"]
    out = Out()
    if args.json:
        for r in rows:
            out.line(json.dumps(r, sort_keys=True, ensure_ascii=False))
        if pages:
            error(f"--store {shown(args.store)}: the file is damaged; PRAGMA quick_check says: {pages}")
    else:
        from solver.text.words import safe

        out.line(f"{len(rows)} decision{'s' * (len(rows) != 1)} recorded in {safe(shown(args.store))}")
        for r in rows:
            if r["kind"] is None:                   # a row the database could not read at all
                out.line(f"{r['seq']:>6}  {'?':<19}  {'damaged':<10}  {safe(r['damage'])}")
                continue
            decided = ", ".join(f"{p} {d}" for p, d in sorted(r["decisions"].items())) or "no plan decided"
            # a submission's key is "system|value" (its value shown); a CRD call's, its hookInstance
            sub = f" {safe(str(r['submission']).split('|', 1)[-1])}" if r["submission"] else ""
            why = f"  ({safe(r['damage'])})" if r["damage"] else ""
            out.line(f"{r['seq']:>6}  {safe(str(r['decided_at'])[:19])}  {r['integrity']:<10}  {safe(r['kind'])}{sub}  "
                     f"{safe(decided)}  rules {safe(str(r['rules_version']))}{why}")
        unverified = sum(r["integrity"] == "unverified" for r in rows)
        if unverified:
            out.line(f"{unverified} unverified: recorded before answers' digests were kept")
        if damaged:
            out.line(f"{len(damaged)} damaged (never sent; restore them from a backup): "
                     + ", ".join(f"#{s}" for s in damaged))
        if pages:
            out.line(f"the file is damaged (serve refuses it); PRAGMA quick_check says: {safe(pages)}")
    out.flush()
    return 1 if damaged or pages else 0


def add(sub) -> None:
    a = sub.add_parser("audit", help="list the decisions the service recorded (--store), each checked against "
                                     "its digests; exit 1 when any is damaged",
                       description="List the decisions `pa-solver serve` recorded, oldest first, each read whole "
                                   "and checked against the SHA-256 of its request and answer: ok, damaged (what "
                                   "is wrong; its bytes are never sent) or unverified (recorded before answers' "
                                   "digests were kept); a SQLite file's pages are checked too (PRAGMA quick_check, "
                                   "as serve does at its start). Exit status: 0 nothing listed is damaged, 1 at "
                                   "least one record (or the file) is, 2 the store cannot be opened or read.")
    a.add_argument("--store", default="decisions.sqlite", metavar="PATH|URL",
                   help="the record `serve --store` writes: a SQLite file (default decisions.sqlite) or a "
                        "PostgreSQL database, postgresql://user@host/db")
    a.add_argument("--since", default=None, metavar="WHEN", help="from this UTC date or time on (YYYY-MM-DD[THH:MM])")
    a.add_argument("--plan", choices=Choices("plans"), default=None, metavar="PLAN",
                   help="only the records that decided this plan (%(choices)s)")
    a.add_argument("--kind", choices=("submit", "crd"), default=None,
                   help="only PAS $submit records, or only CRD (CDS Hooks) records")
    a.add_argument("--json", action="store_true", help="one JSON object per line")
    a.set_defaults(func=cmd_audit)
