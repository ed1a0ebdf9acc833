"""R31 (bad input is a 4xx naming the problem, on every route): against a real
``churnscale serve`` over HTTP, a JSON body that is not UTF-8, a JSON object that repeats a key,
an MLflow ``dataframe_split`` with non-text column names, and query strings with a repeated
parameter, an empty name or an unknown name are each answered 422 naming the byte, key, field
or parameter, on the fast path and the ASGI path of ``/v1/predict`` and on every JSON route
(batch, Open Inference v2, SageMaker/MLflow, feedback, arms, admin reload). Figure: the number
of such requests and their statuses (all 422), the service still ready and answering after."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import orjson
import pytest
from rel_support import LiveService
from reliability_server import ADMIN_KEY, Server, bearer

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

NOT_UTF8 = b'{"plan":"\xff"}'
JSON_ROUTES = [
    "/v1/predict",
    "/v1/predict?reasons=true",  # a query: the ASGI path
    "/v1/predict/batch",
    "/v2/models/churn/infer",
    "/invocations",
    "/v1/feedback",
    "/v1/arms",
]


def _repeated(customer: dict[str, Any], key: str) -> bytes:
    """``customer`` as JSON with ``key`` sent twice (first a wrong value, then the right one)."""
    body = orjson.dumps(customer)
    return b'{"' + key.encode() + b'":"first",' + body[1:]


def _duplicates(customer: dict[str, Any]) -> list[tuple[str, bytes, str]]:
    """(route, body, the repeated key) for every JSON route."""
    one = _repeated(customer, "contract_type")
    return [
        ("/v1/predict", one, "contract_type"),
        ("/v1/predict?reasons=false", one, "contract_type"),
        ("/v1/predict/batch", b"[" + one + b"]", "contract_type"),
        (
            "/v2/models/churn/infer",
            b'{"inputs":[],"inputs":[{"name":"a","shape":[1],"datatype":"FP64","data":[1]}]}',
            "inputs",
        ),
        ("/invocations", b'{"dataframe_records":[' + one + b"]}", "contract_type"),
        (
            "/v1/feedback",
            b'{"customer_id":"a","customer_id":"b","churned":true,'
            b'"observed_at":"2026-01-01T00:00:00"}',
            "customer_id",
        ),
        ("/v1/arms", b'{"customer_ids":["a"],"customer_ids":["b"]}', "customer_ids"),
    ]


def _detail(response: httpx.Response) -> str:
    """The error text of a 422, whatever its shape (FastAPI's list, v1's text, v2's error)."""
    body = response.json()
    return str(body.get("error", body.get("detail")))


def _query_cases() -> list[tuple[str, str]]:
    """(path and query, the parameter the answer must name)."""
    return [
        ("/v1/predict?reasons=false&reasons=true", "reasons"),
        ("/v1/predict?reasons=true&=", "(empty name)"),
        ("/v1/predict?reason=true", "reason"),
        ("/v1/predict?reasons=%FF", "reasons"),
        ("/v1/models?verbose=1", "verbose"),
        ("/healthz?=x", "(empty name)"),
        ("/v1/predict/batch?reasons=true", "reasons"),
    ]


def test_bad_input_is_a_422_naming_it_on_every_route(
    live_service: LiveService, guarded: Server, customers: list[dict[str, Any]]
) -> None:
    statuses: Counter[int] = Counter()
    good = orjson.dumps(customers[0])
    with httpx.Client(base_url=live_service.url, timeout=30) as client:

        def post(path: str, body: bytes, content_type: str = "application/json") -> httpx.Response:
            answer = client.post(path, content=body, headers={"content-type": content_type})
            statuses[answer.status_code] += 1
            return answer

        for path in JSON_ROUTES:
            answer = post(path, NOT_UTF8)
            assert answer.status_code == 422, (path, answer.text)
            assert "not valid UTF-8 at byte" in _detail(answer), (path, answer.text)
        for path, body, key in _duplicates(customers[0]):
            answer = post(path, body)
            assert answer.status_code == 422, (path, answer.text)
            assert "repeated" in _detail(answer) and key in _detail(answer), (path, answer.text)
        split = b'{"dataframe_split":{"columns":[[1]],"data":[[1]]}}'
        answer = post("/invocations", split)
        assert answer.status_code == 422, answer.text
        assert "dataframe_split.columns" in answer.text
        for path, name in _query_cases():
            answer = post(path, good) if "predict" in path else client.get(path)
            statuses[answer.status_code] += 0 if "predict" in path else 1
            assert answer.status_code == 422, (path, answer.text)
            assert answer.json()["detail"][0]["loc"] == ["query", name], (path, answer.text)
        # a ":" after a quote inside a value is no repeated key; a valid body still answers
        quoted = {**customers[1], "customer_id": 'id":"x'}
        assert post("/v1/predict", orjson.dumps(quoted)).status_code == 200
        assert post("/v1/predict?reasons=true", good).status_code == 200
        assert client.get("/readyz").status_code == 200
    admin = httpx.post(
        f"{guarded.url}/admin/reload",
        content=b'{"model":"a","model":"b"}',
        headers={**bearer(ADMIN_KEY), "content-type": "application/json"},
        timeout=30,
    )
    statuses[admin.status_code] += 1
    print(f"R31: {sum(statuses.values())} requests, statuses {dict(statuses)}")
    assert admin.status_code == 422, admin.text
    assert "model" in admin.text and "repeated" in admin.text
    assert statuses[500] == 0
