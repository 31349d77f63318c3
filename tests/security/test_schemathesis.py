"""A bounded schemathesis run over the hub's OpenAPI document: no 5xx, answers as documented.

schemathesis generates requests from each operation's schema (valid and invalid ones: wrong types, huge
numbers, odd strings) and checks every answer: not a server error, a documented status code, a
documented content type, a body matching the documented schema. Bounded (a few examples per operation)
to stay in ``make test``; longer runs: ``st run http://HOST/openapi.json`` against a server.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from fmhub.store import AddFile, Store

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_the_hub_answers_as_its_openapi_says(hub_url: str, local_store: Store, tokens) -> None:
    local_store.create_repo("alice/r")
    blob = local_store.put_bytes(b"data")
    local_store.commit("alice/r", [AddFile("sub/f.txt", blob.sha256, blob.size)], title="t", author="alice")
    schema = schemathesis.openapi.from_url(f"{hub_url}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        # schemathesis's pytest plugin does not run under pytest 9 here; one hypothesis run per operation
        @given(case=operation.as_strategy())
        @settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def run(case) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {tokens.alice}"}
            try:
                case.call_and_validate(checks=CHECKS)
            except Exception as error:  # noqa: BLE001 - collected for one report over every operation
                failures.append(f"{operation.method.upper()} {operation.path}: {str(error)[:300]}")

        run()
    assert operations >= 40
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:25])
