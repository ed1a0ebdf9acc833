"""R03 (auth): with keys configured, every non-health route answers 401 without a key and 403
with a wrong one; admin routes refuse predict keys; health probes stay open. Real uvicorn."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from reliability_server import ADMIN_KEY, PREDICT_KEY, Server, bearer

pytestmark = pytest.mark.integration

HEALTH = {"/healthz", "/readyz", "/ping", "/v2/health/live", "/v2/health/ready"}
WRONG = "wrong-key-0123456789abcdef000"


def routes(client: httpx.Client) -> list[tuple[str, str]]:
    """Every (method, path) of the OpenAPI document, path parameters filled in, plus the docs."""
    document = client.get("/openapi.json", headers=bearer(PREDICT_KEY)).json()
    found = [("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/redoc")]
    for path, operations in document["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "churn", path)
        found.extend((method.upper(), concrete) for method in operations)
    return found


def test_every_non_health_route_needs_the_right_key(guarded: Server) -> None:
    with httpx.Client(base_url=guarded.url, timeout=30) as client:
        checked: dict[str, Any] = {"open": 0, "predict": 0, "admin": 0}
        all_routes = routes(client)
        assert ("POST", "/admin/reload") in all_routes
        assert ("POST", "/v1/predict") in all_routes
        for method, path in all_routes:
            if path in HEALTH:
                assert client.request(method, path).status_code == 200, path
                checked["open"] += 1
                continue
            missing = client.request(method, path)
            assert missing.status_code == 401, (method, path)
            assert missing.headers["www-authenticate"] == "Bearer"
            assert missing.json()["detail"].startswith("missing API key")
            wrong = client.request(method, path, headers={"X-API-Key": WRONG})
            assert wrong.status_code == 403, (method, path)
            if path.startswith("/admin") or path == "/v1/feedback":  # R28: its own scope
                refused = client.request(method, path, headers=bearer(PREDICT_KEY))
                assert refused.status_code == 403, (method, path)
                checked["admin"] += 1
            else:
                allowed = client.request(method, path, headers=bearer(PREDICT_KEY))
                assert allowed.status_code not in (401, 403), (method, path)
                checked["predict"] += 1
        assert checked["open"] == len(HEALTH)
        assert checked["predict"] >= 11
        assert checked["admin"] >= 2


def test_admin_key_reloads_and_unknown_paths_are_guarded_too(guarded: Server) -> None:
    with httpx.Client(base_url=guarded.url, timeout=60) as client:
        assert client.get("/no/such/route").status_code == 401
        assert client.get("/no/such/route", headers=bearer(PREDICT_KEY)).status_code == 404
        reloaded = client.post("/admin/reload", headers=bearer(ADMIN_KEY))
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json()["status"] in ("unchanged", "swapped")
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
