"""R26 (customer ids and in-memory logs): an id longer than 256 characters (or an integer
outside 64 bits) is a 422 naming the field on every route and protocol, so no log keeps it;
the prediction log behind ``/v1/feedback`` is bounded in bytes (``CHURNSCALE_FEEDBACK_LOG_BYTES``)
as well as in entries. Live server with the default 16 MiB body limit.

Pass figure: 30 predictions with unique 8 MiB ids → 30 × 422 naming ``customer_id``, server
RSS growth < 50 MiB (on 866115b each id was kept: +240 MiB); a log of 1 MiB filled by 3,000
customers no longer holds the first, still holds the last.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import httpx
import psutil
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pytest
from reliability_server import Bundles, Server, start, stop

pytestmark = [pytest.mark.reliability, pytest.mark.integration]
EIGHT_MIB = 8 * 1024 * 1024
LABEL = {"churned": True, "observed_at": "2026-07-31T12:00:00"}


@pytest.fixture(scope="module")
def small_log(bundles: Bundles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose prediction log may hold 1 MiB (default body limit, 16 MiB)."""
    home = tmp_path_factory.mktemp("r26-home")
    env = {
        "CHURNSCALE_HOME": str(home),
        "CHURNSCALE_MODEL": str(bundles.root / "a"),
        "CHURNSCALE_PREDICTOR": "lightgbm",
        "CHURNSCALE_FEEDBACK_LOG_BYTES": str(1024**2),
    }
    server = start(home / "server.log", env)
    yield server
    stop(server)


def _arrow(rows: list[dict[str, Any]]) -> bytes:
    sink = io.BytesIO()
    table = pa.Table.from_pylist(rows)
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _csv(rows: list[dict[str, Any]]) -> bytes:
    sink = io.BytesIO()
    pacsv.write_csv(pa.Table.from_pylist(rows), sink)
    return sink.getvalue()


def _v2(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": k, "shape": [1], "datatype": "BYTES", "data": [v]} for k, v in row.items()
        ]
    }


def _named(answer: httpx.Response) -> str:
    """The field a 422 names (FastAPI's shape or a v2 error text)."""
    body = answer.json()
    if "error" in body:
        return str(body["error"])
    return str(body["detail"][0]["loc"][-1])


def test_long_ids_are_refused_everywhere_and_never_kept(
    small_log: Server, customers: list[dict[str, Any]]
) -> None:
    base = customers[0]
    headers = {"content-type": "application/json"}
    with httpx.Client(base_url=small_log.url, timeout=60) as client:
        long_id = {**base, "customer_id": "x" * 257}
        requests = {
            "/v1/predict": client.post("/v1/predict", json=long_id),
            "batch JSON": client.post("/v1/predict/batch", json=[base, long_id]),
            "batch CSV": client.post(
                "/v1/predict/batch", content=_csv([long_id]), headers={"content-type": "text/csv"}
            ),
            "batch Arrow": client.post(
                "/v1/predict/batch",
                content=_arrow([long_id]),
                headers={"content-type": "application/vnd.apache.arrow.stream"},
            ),
            "v2 infer": client.post("/v2/models/churn/infer", json=_v2(long_id)),
            "invocations": client.post("/invocations", json={"dataframe_records": [long_id]}),
            "feedback": client.post("/v1/feedback", json={"customer_id": "x" * 257, **LABEL}),
            "arms": client.post("/v1/arms", json={"customer_ids": ["x" * 257]}),
            "int over 64 bits": client.post("/v1/predict", json={**base, "customer_id": 2**63}),
        }
        statuses = {what: (a.status_code, _named(a)) for what, a in requests.items()}
        print(f"R26: 257-character ids: {statuses}")
        for what, answer in requests.items():
            assert answer.status_code == 422, (what, answer.text[:300])
            assert "customer_id" in _named(answer), (what, answer.text[:300])
        ok = client.post("/v1/predict", json={**base, "customer_id": 2**63 - 1})
        assert ok.status_code == 200 and ok.json()["customer_id"] == str(2**63 - 1)
        assert (
            client.post("/v1/predict", json={**base, "customer_id": "y" * 256}).status_code == 200
        )

        process = psutil.Process(small_log.process.pid)
        for i in range(2):  # warm the server's buffers for 8 MiB bodies
            client.post("/v1/predict", json={**base, "customer_id": f"{i}" * EIGHT_MIB})
        before = process.memory_info().rss
        refused = 0
        for i in range(30):
            body = {**base, "customer_id": f"{i:02d}" + "z" * EIGHT_MIB}
            answer = client.post("/v1/predict", json=body, headers=headers)
            refused += answer.status_code == 422 and _named(answer) == "customer_id"
        growth = (process.memory_info().rss - before) / 1024**2
        print(f"R26: 30 unique 8 MiB ids: {refused} × 422; RSS growth {growth:.1f} MiB")
        assert refused == 30
        assert growth < 50
        assert client.get("/readyz").status_code == 200


def test_the_prediction_log_is_bounded_in_bytes(
    small_log: Server, customers: list[dict[str, Any]]
) -> None:
    with httpx.Client(base_url=small_log.url, timeout=60) as client:
        for start_at in range(0, 3_000, 1_000):
            rows = [
                {**customers[i % len(customers)], "customer_id": f"R26-{start_at + i:05d}"}
                for i in range(1_000)
            ]
            assert client.post("/v1/predict/batch", json=rows).status_code == 200
        first = client.post("/v1/feedback", json={"customer_id": "R26-00000", **LABEL})
        last = client.post("/v1/feedback", json={"customer_id": "R26-02999", **LABEL})
        seen = f"first {first.status_code}, last {last.status_code}"
        print(f"R26: 1 MiB log after 3,000 customers: {seen}")
        assert first.status_code == 202 and first.json()["status"] == "unmatched"
        assert last.status_code == 200 and last.json()["status"] == "joined"
