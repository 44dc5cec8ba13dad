"""The service's OpenAPI document, fuzzed by schemathesis against a running server: never a 500,
and every response (status, media type, body) matches the document."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from solver.service.operations import documented
from test_service import Server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("fuzz"), "--workers", "2")
    yield s
    s.stop()


def test_every_endpoint_answers_as_its_document_says(server):
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(documented())                # the table's rows the document describes
    seen: dict = {}
    plain: list = []
    for op in operations:
        @given(case=op.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case):
            response = case.call(base_url=server.url, timeout=60)
            assert response.status_code != 500, (case.method, case.path, response.text)
            # A FHIR body's validity is more than a JSON Schema can say (FHIR.md): a schema-valid Bundle may
            # still be refused (400, 422).  A plain case and a diff are wholly described: valid ones pass.
            fhir_body = op.path not in ("/diff",)
            case.validate_response(response, excluded_checks=[positive_data_acceptance] if fhir_body else None)
            if op.path in ("/decide", "/explain", "/questionnaire") and isinstance(case.body, dict) \
                    and "resourceType" not in case.body and case.query.get("max_changes", "2") in "1234":
                assert response.status_code == 200, (case.body, response.text)    # the Case schema's cases are valid
                plain.append(case.body)
            seen.setdefault(f"{op.method.upper()} {op.path}", set()).add(response.status_code)
        fuzz()
    assert len(seen) == len(operations)
    assert len(plain) > 10                                      # cases drawn from the schema were decided
