"""R2: oversized requests to a live ``churnscale serve`` are refused quickly, in bounded memory.

Pass figure: a body one byte over the limit (declared or chunked) → 413; a 100 MB chunked upload
→ 413 after the client sent < 25% of it; 20 KB of headers → 431; a batch one row over the row
limit → 413; 0 responses 5xx; the server's RSS grows < 10 MB over the whole row.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil
import pytest
from rel_support import LIMITS, LiveService

pytestmark = [pytest.mark.reliability, pytest.mark.integration]
LIMIT = int(LIMITS["CHURNSCALE_MAX_BODY_BYTES"])
ROW_LIMIT = int(LIMITS["CHURNSCALE_MAX_BATCH_ROWS"])
CHUNK = 64 * 1024
ROUTES = ("/v1/predict", "/v1/predict/batch")


@dataclass
class Upload:
    """A chunked request body that counts what the client managed to hand over."""

    total: int
    sent: int = field(default=0)

    def __iter__(self) -> Iterator[bytes]:
        block = b" " * CHUNK
        while self.sent < self.total:
            piece = block[: min(CHUNK, self.total - self.sent)]
            self.sent += len(piece)
            yield piece


class PeakRss:
    """Samples a process's resident memory every 5 ms while it runs."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.baseline = self.peak = self.process.memory_info().rss
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(0.005):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def _batch(customers: list[dict[str, Any]], rows: int) -> bytes:
    return json.dumps([customers[i % len(customers)] for i in range(rows)]).encode()


@pytest.fixture(scope="module")
def customers(live_service: LiveService) -> list[dict[str, Any]]:
    schema = httpx.get(f"{live_service.url}/v1/models").json()["models"][0]["schema"]
    from churnscale.data.schema import Schema
    from churnscale.data.synthetic import generate_table

    names = Schema.from_dict(schema).names
    table = generate_table(50, 91).select([n for n in names if n != "churned"])
    return [
        {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}
        for row in table.to_pylist()
    ]


def test_oversized_requests_are_refused_in_bounded_memory(
    live_service: LiveService, customers: list[dict[str, Any]]
) -> None:
    url = live_service.url
    statuses: list[tuple[str, int, float]] = []

    def record(what: str, response: httpx.Response, started: float) -> int:
        statuses.append((what, response.status_code, time.perf_counter() - started))
        return response.status_code

    # warm the server's buffers with requests at the limit before measuring memory
    ok = httpx.post(f"{url}/v1/predict/batch", content=_batch(customers, ROW_LIMIT), timeout=30)
    assert ok.status_code == 200
    for route in ROUTES:
        httpx.post(f"{url}{route}", content=Upload(LIMIT), timeout=30)
    with PeakRss(live_service.server.process.pid) as rss, httpx.Client(timeout=60) as client:
        for route in ROUTES:
            started = time.perf_counter()
            response = client.post(f"{url}{route}", content=b" " * (LIMIT + 1))
            assert record(f"{route} Content-Length +1", response, started) == 413
            assert str(LIMIT) in response.json()["detail"]
            started = time.perf_counter()
            response = client.post(f"{url}{route}", content=Upload(LIMIT + 1))
            assert record(f"{route} chunked +1", response, started) == 413
            upload = Upload(100 * 1024 * 1024)
            started = time.perf_counter()
            response = client.post(f"{url}{route}", content=upload)
            assert record(f"{route} chunked 100 MB", response, started) == 413
            assert upload.sent < upload.total // 4, f"{route}: client sent {upload.sent} bytes"
        for route in ("/v1/predict", "/v1/predict/batch", "/healthz", "/v2/models/churn"):
            started = time.perf_counter()
            padding = {"x-padding": "p" * 20_000}
            if route in ROUTES:
                response = client.post(f"{url}{route}", content=b"{}", headers=padding)
            else:
                response = client.get(f"{url}{route}", headers=padding)
            assert record(f"{route} 20 KB headers", response, started) == 431
        started = time.perf_counter()
        response = client.post(f"{url}/v1/predict/batch", content=_batch(customers, ROW_LIMIT + 1))
        assert record("batch rows +1", response, started) == 413
        assert str(ROW_LIMIT) in response.text
    growth = rss.peak - rss.baseline
    for what, status, seconds in statuses:
        print(f"R2: {what}: {status} in {seconds * 1000:.0f} ms")
    print(f"R2: server RSS {rss.baseline / 2**20:.1f} MiB, peak growth {growth / 2**20:.2f} MiB")
    assert not [s for s in statuses if s[1] >= 500]
    assert growth < 10 * 2**20
    assert httpx.get(f"{url}/readyz").status_code == 200
