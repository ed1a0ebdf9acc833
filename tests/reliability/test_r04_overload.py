"""R04 (overload): a real server whose capacity is made small and known — 4 requests in flight,
no queue (a request that cannot start at once is shed), every prediction slowed to 500 ms
through the test-only setting ``CHURNSCALE_PREDICT_DELAY_S`` (~8 answers/s, a rate the test's
own clients reach even on a loaded machine) — is measured with 4 closed-loop clients (one per
slot), its unloaded p99 with one client, then it is offered 3× the capacity open-loop for 60 s
(``CHURNSCALE_R4_SECONDS``). It answers only 200 or 503 with ``Retry-After``; no client sees a
socket error or timeout; the accepted requests' p99 stays within 2× the unloaded p99; the
server's RSS stays within 64 MiB of where it started."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from reliability_server import Bundles, Server, start, stop

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def slow(bundles: Bundles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("overload-home")
    env = {
        "CHURNSCALE_HOME": str(home),
        "CHURNSCALE_MODEL": str(bundles.root / "a"),
        "CHURNSCALE_MAX_IN_FLIGHT": "4",
        "CHURNSCALE_MAX_QUEUE": "0",
        "CHURNSCALE_PREDICT_DELAY_S": "0.5",  # test only: a slow model
    }
    server = start(home / "server.log", env)
    yield server
    stop(server)


SECONDS = float(os.environ.get("CHURNSCALE_R4_SECONDS", "60"))


async def capacity(url: str, customer: dict[str, Any], seconds: float = 4.0) -> float:
    """Answers per second with 4 closed-loop clients (one per slot: all admitted)."""
    done: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        await asyncio.gather(*(http.get("/healthz") for _ in range(4)))  # connections first
        started = time.monotonic()

        async def client() -> None:
            while time.monotonic() < started + seconds:
                assert (await http.post("/v1/predict", json=customer)).status_code == 200
                done.append(time.monotonic())

        await asyncio.gather(*(client() for _ in range(4)))
    return sum(t <= started + seconds for t in done) / seconds


def unloaded_p99(url: str, customer: dict[str, Any], count: int = 20) -> float:
    """p99 latency (s) of ``count`` predictions sent one at a time."""
    seconds = []
    with httpx.Client(base_url=url, timeout=30) as http:
        for _ in range(count):
            began = time.perf_counter()
            assert http.post("/v1/predict", json=customer).status_code == 200
            seconds.append(time.perf_counter() - began)
    return float(np.quantile(seconds, 0.99))


async def offer(url: str, customer: dict[str, Any], rate: float, seconds: float) -> list[Any]:
    """Open loop: one request every 1/rate s for ``seconds``, whatever the answers."""
    outcomes: list[Any] = []
    limits = httpx.Limits(max_connections=1_000, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:

        async def one() -> None:
            try:
                began = time.perf_counter()
                answer = await http.post("/v1/predict", json=customer)
                took = time.perf_counter() - began
                outcomes.append((answer.status_code, answer.headers.get("retry-after"), took))
            except Exception as exc:  # a socket error or timeout fails the test
                outcomes.append(("error", repr(exc), 0.0))

        tasks = []
        started = time.monotonic()
        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return outcomes


def test_three_times_capacity_is_shed_with_503_and_retry_after(
    slow: Server, customers: list[dict[str, Any]]
) -> None:
    measured = asyncio.run(capacity(slow.url, customers[0]))
    quiet = unloaded_p99(slow.url, customers[0])
    rss_before = slow.rss_bytes()
    outcomes = asyncio.run(offer(slow.url, customers[0], 3 * measured, SECONDS))
    rss_after = slow.rss_bytes()
    statuses = Counter(o[0] for o in outcomes)
    loaded = float(np.quantile([took for status, _, took in outcomes if status == 200], 0.99))
    print(
        f"capacity {measured:.1f}/s; unloaded p99 {quiet:.3f} s; at 3x for {SECONDS:.0f} s: "
        f"{dict(statuses)}; accepted p99 {loaded:.3f} s; rss {rss_before}->{rss_after}"
    )
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[200] > 0 and statuses[503] > 0
    assert all(int(retry) >= 1 for status, retry, _ in outcomes if status == 503)
    assert loaded <= 2 * quiet
    assert rss_after - rss_before < 64 * 2**20
    assert httpx.get(f"{slow.url}/readyz").status_code == 200
