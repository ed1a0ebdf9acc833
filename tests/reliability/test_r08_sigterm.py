"""R08 (graceful SIGTERM drain): 50 slow requests in flight (every prediction slowed to 3 s by
the test-only setting ``CHURNSCALE_PREDICT_DELAY_S``) when the server gets SIGTERM: all 50
complete with 200 and the process exits (uvicorn re-raises the SIGTERM once drained) within
``CHURNSCALE_DRAIN_TIMEOUT_S`` (15 s). Real uvicorn server."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import httpx
import pytest
from reliability_server import Bundles, start, stop

pytestmark = pytest.mark.integration

DRAIN_S = 15.0
DELAY_S = 3.0


def test_sigterm_drains_fifty_slow_requests(
    bundles: Bundles, customers: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("drain-home")
    env = {
        "CHURNSCALE_HOME": str(home),
        "CHURNSCALE_MODEL": str(bundles.root / "a"),
        "CHURNSCALE_PREDICT_DELAY_S": str(DELAY_S),  # test only: a slow model
        "CHURNSCALE_DRAIN_TIMEOUT_S": str(DRAIN_S),
        "CHURNSCALE_MAX_IN_FLIGHT": "64",
    }
    server = start(home / "server.log", env)
    results: list[Any] = []
    sent = threading.Barrier(51)

    def slow_request(x: dict[str, Any]) -> None:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            client.get("/healthz")  # connect first, so all 50 are in before the signal
            sent.wait()
            try:
                results.append(client.post("/v1/predict", json=x).status_code)
            except Exception as exc:
                results.append(repr(exc))

    threads = [threading.Thread(target=slow_request, args=(x,)) for x in customers[:50]]
    try:
        for thread in threads:
            thread.start()
        sent.wait()
        time.sleep(1.0)  # the 50 requests reach the server and sleep in the model
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        code = server.process.wait(timeout=DRAIN_S + 10)
        exited = time.monotonic() - signalled
        for thread in threads:
            thread.join()
    finally:
        stop(server)
    print(f"drained 50 requests; exit {exited:.2f} s after SIGTERM")
    assert results == [200] * 50
    assert code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it drained on
    assert exited < DRAIN_S
