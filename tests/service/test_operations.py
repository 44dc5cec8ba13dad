"""The table of the service's operations (solver/service/operations.py) is what the service serves:
its routes, a worker's dispatch, the OpenAPI document's paths and the CapabilityStatement's operations."""

from __future__ import annotations

import json
import re

from solver.service import work
from solver.service.app import Config, Service, create_app
from solver.service.metadata import capability_statement
from solver.service.openapi import document
from solver.service.operations import OPERATIONS, documented


def test_the_routes_are_the_tables_rows():
    app = create_app(Config(store=":memory:", workers=1))
    got = [(r.path, sorted(r.methods - {"HEAD"})) for r in app.routes]
    assert got == [(o.path, sorted(o.methods)) for o in OPERATIONS]


def test_every_row_is_answered_by_something_that_exists():
    names = [o.name for o in OPERATIONS]
    assert len(set(names)) == len(names) and len({o.path for o in OPERATIONS}) == len(OPERATIONS)
    for o in OPERATIONS:
        assert o.work or o.endpoint, o.name                   # someone answers it
        if o.endpoint:
            assert callable(getattr(Service, o.endpoint)), o.endpoint
        if o.work:
            assert callable(getattr(work, o.work)), o.work


def test_the_openapi_paths_and_the_capability_statement_come_from_the_table():
    doc = json.loads(document())
    got = [(m.upper(), p) for p, item in doc["paths"].items() for m in item]
    assert sorted(got) == sorted((m, re.sub(r":[^}]*", "", o.path)) for m, o in documented())
    cs = json.loads(capability_statement("x"))
    ops = [op["name"] for r in cs["rest"][0]["resource"] for op in r["operation"]]
    assert ops == [o.capability.name for o in OPERATIONS if o.capability]


def test_an_unknown_operation_is_refused_in_a_worker():
    a = work.handle("no-such-operation", b"", {})
    assert a.status == 404 and json.loads(a.body) == {"error": "no operation 'no-such-operation'"}
