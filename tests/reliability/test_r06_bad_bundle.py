"""R06 (bad bundle never replaces a good one): reloading a corrupt bundle (a file altered after
its manifest), a truncated one, a schema-incompatible one, a missing one, or a name that tries
to leave the model root is refused with a 4xx JSON naming the problem, logged, and the good
model keeps serving with ``/readyz`` green. Real uvicorn server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from reliability_server import ADMIN_KEY, PREDICT_KEY, Bundles, Server, bearer

pytestmark = pytest.mark.integration

REFUSED = [
    ({"bundle": "corrupt"}, 422, "IntegrityError", "corrupt/model.txt: size"),
    ({"bundle": "truncated"}, 422, "IntegrityError", "truncated/model.txt: size"),
    ({"bundle": "incompatible"}, 409, "IncompatibleModelError", "('tenure_months', 'numeric')"),
    ({"bundle": "missing"}, 404, "ModelNotFoundError", "no bundle directory"),
    ({"bundle": "../models/a"}, 400, "UnsafePathError", "path separator"),
    ({"bundle": "%2e%2e"}, 400, "UnsafePathError", "percent-encoded"),
    ({"model": "/etc/passwd"}, 400, "ConfigError", "model reference"),
]


@pytest.mark.parametrize(("request_body", "status", "error", "words"), REFUSED)
def test_a_bad_bundle_is_refused_and_the_good_one_keeps_serving(
    guarded: Server,
    bundles: Bundles,
    customers: list[dict[str, Any]],
    request_body: dict[str, str],
    status: int,
    error: str,
    words: str,
) -> None:
    with httpx.Client(base_url=guarded.url, timeout=60) as client:
        good = client.post("/admin/reload", json={"bundle": "a"}, headers=bearer(ADMIN_KEY))
        assert good.status_code == 200, good.text
        refused = client.post("/admin/reload", json=request_body, headers=bearer(ADMIN_KEY))
        assert refused.status_code == status, refused.text
        body = refused.json()
        assert body["error"] == error
        assert body["detail"].startswith("reload failed; still serving the previous models")
        assert words in body["detail"]
        assert body["serving"]["default"]["version"] == bundles.version_a
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["model_version"] == bundles.version_a
        answer = client.post("/v1/predict", json=customers[0], headers=bearer(PREDICT_KEY))
        assert answer.status_code == 200
        assert answer.headers["x-model-version"] == bundles.version_a
    assert f"reload failed, still serving {{'default': {{'model': '{bundles.root / 'a'}'" in (
        guarded.output()
    )
