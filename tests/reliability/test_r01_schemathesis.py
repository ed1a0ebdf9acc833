"""R1: schemathesis over the live service's whole OpenAPI document, positive and negative.

Every operation of a real ``churnscale serve`` on 127.0.0.1 gets generated requests: valid
ones (positive) and ones that break the documented schema (negative); every positive case with
a JSON body is also sent once more as a mutant the schema cannot express, alternately with a
repeated key and with bytes that are not UTF-8 (R31). Pass figure: >= 10,000 requests in all;
0 responses 5xx; 0 responses off the document (status, content type, body schema); every
negative case and every mutant answered 4xx. 700 examples per operation and mode (~16,000
requests) is the default, so CI runs the row's size; ``CHURNSCALE_R1_EXAMPLES`` changes it
(1,000 gives the >= 20,000 of docs/reliability.md). Generation is random: the seed is printed,
and ``CHURNSCALE_R1_SEED`` replays a run. (Schemathesis' pytest plugin does not load under this
pytest, so each operation's strategy is driven by hypothesis directly.)
"""

from __future__ import annotations

import os
import random
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jsonschema
import orjson
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis.errors import Unsatisfiable
from rel_support import LiveService
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation import GenerationMode

pytestmark = [pytest.mark.reliability, pytest.mark.slow, pytest.mark.integration]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
#: Examples asked of each operation and mode with inputs (16 such pairs; operations without
#: inputs give one case each), each positive JSON one also sent as a mutant: 700 gives ~16,000
#: requests, over the row's 10,000.
EXAMPLES = int(os.environ.get("CHURNSCALE_R1_EXAMPLES", "700"))
TARGET = 15 * EXAMPLES  # 10 operation-mode pairs reach EXAMPLES, and 5 operations' mutants
SEED = int(os.environ.get("CHURNSCALE_R1_SEED") or random.SystemRandom().randrange(2**32))


def _fuzz(
    operation: Any,
    mode: GenerationMode,
    session: requests.Session,
    found: Found,
) -> None:
    """Run ``EXAMPLES`` generated cases of one operation in one mode, recording each answer."""
    label = operation.label

    @seed(SEED)
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case: schemathesis.Case) -> None:
        response = case.call_and_validate(session=session, checks=CHECKS)
        found.cases[(label, mode.value)] += 1
        found.statuses[(mode.value, response.status_code)] += 1
        if mode is GenerationMode.POSITIVE and case.media_type == "application/json":
            _send_mutant(case, session, found)
        if (
            mode is GenerationMode.NEGATIVE
            and not 400 <= response.status_code < 500
            and not (_broken_only_in_query(case) and _valid_on_the_wire(operation, response))
        ):
            why = case.meta.phase.data.description if case.meta is not None else "?"
            found.accepted_negative.append(
                f"{label}: {response.status_code} ({why}; query {case.query}) for "
                f"{case.as_curl_command()}"[:600]
            )

    try:
        check()
    except Unsatisfiable:  # nothing to break in an operation without inputs
        assert mode is GenerationMode.NEGATIVE
        found.unbreakable.append(label)


def _send_mutant(case: schemathesis.Case, session: requests.Session, found: Found) -> None:
    """Send ``case`` once more with a JSON body it cannot be valid with: a key repeated (with
    another value) or a string that is not UTF-8, alternately; it must be a documented 4xx."""
    try:
        body = orjson.dumps(case.body)
    except TypeError:  # no body generated
        return
    kind = "duplicate key" if found.mutants["duplicate key"] <= found.mutants["not UTF-8"] else ""
    raw = _repeat_a_key(case.body, body) if kind else None
    if raw is None:
        kind, raw = "not UTF-8", _not_utf8(body)
    found.mutants[kind] += 1
    headers = {**(case.headers or {}), "content-type": "application/json"}
    response = session.request(
        case.method, found.base_url + case.formatted_path, data=raw, headers=headers,
        params=case.query,
    )  # fmt: skip
    found.statuses[("mutant", response.status_code)] += 1
    case.validate_response(response, checks=CHECKS)
    if not 400 <= response.status_code < 500:
        found.accepted_negative.append(
            f"{case.operation.label}: {response.status_code} for a {kind} body {raw[:200]!r}"
        )


def _repeat_a_key(document: Any, body: bytes) -> bytes | None:
    """``body`` with the first key of its (first) object sent twice, first as ``null``."""
    first = document[0] if isinstance(document, list) and document else document
    if not isinstance(first, dict) or not first:
        return None
    key = orjson.dumps(next(iter(first)))
    start = 1 if first is document else body.index(b"{")
    return body[: start + 1] + key + b":null," + body[start + 1 :]


def _not_utf8(body: bytes) -> bytes:
    """``body`` with a byte that is never UTF-8 in its first string (or a string of it)."""
    quote = body.find(b'"')
    return body[: quote + 1] + b"\xff" + body[quote + 1 :] if quote >= 0 else b'["\xff"]'


def _wire_value(value: str) -> Any:
    """What the service reads back from one query string value (booleans and numbers as such)."""
    literals = {"true": True, "false": False}
    if value in literals:
        return literals[value]
    try:
        return float(value) if any(c in value for c in ".eE") else int(value)
    except ValueError:
        return value


def _broken_only_in_query(case: schemathesis.Case) -> bool:
    """Whether the query string is the one part of ``case`` generated to break the schema."""
    components = case.meta.components if case.meta is not None else {}
    broken = {where for where, info in components.items() if info.mode is GenerationMode.NEGATIVE}
    return broken == {ParameterLocation.QUERY}


def _valid_on_the_wire(operation: Any, response: Any) -> bool:
    """Whether the query string the request really carried is valid after all.

    Schemathesis breaks a query by turning a scalar into a list or adding a parameter the
    document does not name, but ``requests`` flattens lists on the way out: a list of one is
    ``name=value`` (the scalar's very bytes) and an empty list, or one holding only empty
    lists and objects, sends nothing at all (``{"x": [[], {}]}`` adds no parameter). The
    server sees only the bytes, so the case is judged by the query in the URL that was sent:
    each parameter named by the document, none repeated, every required one present, each
    value valid for its schema.
    """
    sent = parse_qsl(urlsplit(response.request.url).query, keep_blank_values=True)
    params = {param.name: param.definition for param in operation.query}
    names = [name for name, _ in sent]
    if len(set(names)) != len(names) or not set(names) <= params.keys():
        return False
    if any(d.get("required") and name not in names for name, d in params.items()):
        return False
    for name, text in sent:
        try:
            jsonschema.validate(_wire_value(text), params[name].get("schema", {}))
        except jsonschema.ValidationError:
            return False
    return True


def test_a_query_is_judged_as_it_is_sent() -> None:
    """The shapes above, judged by the URL ``requests`` builds from the generated query."""

    class Param:
        def __init__(self, name: str, schema: dict[str, Any]) -> None:
            self.name, self.definition = name, {"schema": schema}

    op = SimpleNamespace(query=[Param("reasons", {"type": "boolean"})])

    def valid(query: dict[str, Any]) -> bool:
        sent = requests.Request("POST", "http://x/", params=query).prepare()
        return _valid_on_the_wire(op, SimpleNamespace(request=sent))

    assert valid({"reasons": "true", "": []})  # sent as ?reasons=true
    assert valid({"reasons": ["false"]})
    assert valid({"reasons": "false", "x\x00y": [[], []]})  # seed 3495287803: nothing sent
    assert valid({"reasons": "false", "x": [[], {}]})
    assert not valid({"reasons": "true", "": ["x"]})  # `=x`: refused
    assert not valid({"reasons": ["true", "false"]})  # repeated
    assert not valid({"reasons": ["maybe"]})
    assert not valid({"reasons": [["maybe"]]})  # flattened to ?reasons=maybe
    assert not valid({"reasons": "true", "other": "1"})
    assert not valid({"reasons": ""})  # ?reasons= is no boolean


@dataclass
class Found:
    """What the generated cases got: counts per operation and mode, statuses, odd answers."""

    base_url: str
    cases: Counter[tuple[str, str]] = field(default_factory=Counter)
    mutants: Counter[str] = field(default_factory=Counter)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    accepted_negative: list[str] = field(default_factory=list)
    unbreakable: list[str] = field(default_factory=list)


def test_ten_thousand_cases_no_5xx_no_schema_violation(live_service: LiveService) -> None:
    api = schemathesis.openapi.from_url(f"{live_service.url}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    found = Found(live_service.url)
    print(f"R1: seed {SEED} (CHURNSCALE_R1_SEED={SEED} replays this run)")
    with requests.Session() as session:
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _fuzz(operation, mode, session, found)
    total = sum(found.cases.values()) + sum(found.mutants.values())
    print(f"R1: {total} requests over {len(operations)} operations, seed {SEED}")
    print(f"R1: statuses {dict(found.statuses)}; mutants {dict(found.mutants)}")
    print(f"R1: cases per operation and mode {dict(found.cases)}")
    print(f"R1: operations with no input to break: {found.unbreakable}")
    print(f"R1: negative cases not answered 4xx: {found.accepted_negative}")
    assert total >= TARGET
    assert not [code for _, code in found.statuses if code >= 500], f"seed {SEED}"
    assert found.accepted_negative == [], f"seed {SEED}"
    assert all(label.startswith("GET") for label in found.unbreakable)
