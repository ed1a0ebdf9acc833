"""R10 (registry down): a server told to serve ``churn@champion`` while the registry is
unreachable starts from the verified cached bundle: liveness answers 200 at once, readiness 503
until the model is loaded and warm, then 200, and predictions carry ``X-Model-Version:
churn/1``; watching the alias with the registry still down keeps serving. Real uvicorn server,
real MLflow SQLite registry."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from reliability_server import Bundles, launch, stop, wait_ready

from churnscale.config import Settings
from churnscale.registry import Registry

pytestmark = pytest.mark.integration


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def health_until_ready(url: str, timeout: float = 120.0) -> list[tuple[int, int]]:
    """(liveness, readiness) statuses polled from the first answer until ready."""
    seen: list[tuple[int, int]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            live = httpx.get(f"{url}/healthz", timeout=2).status_code
            ready = httpx.get(f"{url}/readyz", timeout=2).status_code
        except httpx.TransportError:
            time.sleep(0.02)
            continue
        seen.append((live, ready))
        if ready == 200:
            return seen
        time.sleep(0.02)
    raise AssertionError(f"never ready: {seen[-3:]}")


def test_serving_continues_from_the_cache_when_the_registry_is_down(
    bundles: Bundles, customers: list[dict[str, Any]], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    registry = Registry(Settings(home=home))
    with registry.run(experiment="churn") as run:
        run.register_bundle(bundles.root / "a", name="churn")
    registry.promote("churn", 1, alias="champion")
    registry.resolve("churn@champion")  # the verified cached copy the outage falls back to
    env = {
        "CHURNSCALE_HOME": str(home),
        "CHURNSCALE_TRACKING_URI": f"http://127.0.0.1:{closed_port()}",
        "CHURNSCALE_MODEL": "churn@champion",
        "CHURNSCALE_RELOAD_POLL_S": "0.5",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    }
    server = launch(home / "server.log", env)
    try:
        seen = health_until_ready(server.url)
        wait_ready(server)
        time.sleep(1.5)  # a few alias polls against the unreachable registry
        with httpx.Client(base_url=server.url, timeout=30) as client:
            answers = [client.post("/v1/predict", json=x) for x in customers[:20]]
            ready = client.get("/readyz")
    finally:
        stop(server)
    print(f"health polls before ready: {len(seen)}; first {seen[0]}")
    assert all(live == 200 for live, _ in seen)
    assert seen[0][1] == 503 and seen[-1][1] == 200
    assert ready.status_code == 200 and ready.json()["model_version"] == "churn/1"
    assert {a.status_code for a in answers} == {200}
    assert {a.headers["x-model-version"] for a in answers} == {"churn/1"}
    assert "unreachable; using cached bundle churn/1 (churn@champion" in server.output()
