"""Schemathesis against the live service's own OpenAPI document, positive and negative cases.

Every operation gets generated requests (valid ones and ones that break the schema); none may
be answered with a 5xx, an undocumented status, a wrong content type or a body that breaks the
documented response schema. (Schemathesis' pytest plugin does not load under this pytest, so
each operation's strategy is driven by hypothesis directly.)
"""

from __future__ import annotations

from collections import Counter

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from live_server import Server
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode

pytestmark = [pytest.mark.slow, pytest.mark.integration]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 300


def test_no_5xx_and_no_schema_violation(server: Server) -> None:
    api = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    statuses: Counter[int] = Counter()
    unbreakable: list[str] = []
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 14
    with requests.Session() as session:
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                @given(case=operation.as_strategy(generation_mode=mode))
                @settings(
                    max_examples=EXAMPLES,
                    deadline=None,
                    suppress_health_check=list(HealthCheck),
                    derandomize=True,
                    database=None,
                )
                def check(case: schemathesis.Case) -> None:
                    response = case.call_and_validate(session=session, checks=CHECKS)
                    statuses[response.status_code] += 1

                try:
                    check()
                except Unsatisfiable:  # nothing to break in an operation without inputs
                    assert mode is GenerationMode.NEGATIVE
                    unbreakable.append(operation.label)
    assert sum(statuses.values()) >= 2_000
    assert not [code for code in statuses if code >= 500]
    assert statuses[200] > 0 and statuses[422] > 0
    assert all(label.startswith("GET") for label in unbreakable)
    print(f"schemathesis: {sum(statuses.values())} cases, statuses {dict(statuses)}")
