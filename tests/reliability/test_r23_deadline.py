"""R23 (per-request deadline): with every prediction slowed to 3 s (test-only setting
``CHURNSCALE_PREDICT_DELAY_S``) and ``CHURNSCALE_REQUEST_TIMEOUT_S=1``, a real server answers
504 within the 1 s deadline ±10%, and stays healthy."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from reliability_server import Bundles, start, stop

pytestmark = pytest.mark.integration

DEADLINE_S = 1.0


def test_a_slow_prediction_answers_504_at_the_deadline(
    bundles: Bundles, customers: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("deadline-home")
    env = {
        "CHURNSCALE_HOME": str(home),
        "CHURNSCALE_MODEL": str(bundles.root / "a"),
        "CHURNSCALE_PREDICT_DELAY_S": "3",  # test only: a slow model
        "CHURNSCALE_REQUEST_TIMEOUT_S": str(DEADLINE_S),
    }
    server = start(home / "server.log", env)

    def timed(x: dict[str, Any]) -> tuple[int, str, float]:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            client.get("/healthz")  # connected before the clock starts
            started = time.monotonic()
            answer = client.post("/v1/predict", json=x)
            return answer.status_code, answer.json()["detail"], time.monotonic() - started

    try:
        with ThreadPoolExecutor(3) as pool:
            outcomes = list(pool.map(timed, customers[:3]))
        assert httpx.get(f"{server.url}/readyz").status_code == 200
    finally:
        stop(server)
    print(f"504 after {[round(o[2], 3) for o in outcomes]} s")
    for status, detail, elapsed in outcomes:
        assert status == 504
        assert detail == "request exceeded its deadline of 1 s"
        assert 0.9 * DEADLINE_S <= elapsed <= 1.1 * DEADLINE_S
