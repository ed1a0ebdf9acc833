"""R28 (feedback key scope): a predict key cannot post labels to ``/v1/feedback`` (they move
the live ROC-AUC and calibration figures); feedback takes a ``CHURNSCALE_FEEDBACK_API_KEYS``
key or an admin key, and is disabled (403) while keys are set but no feedback or admin key is.
A feedback key cannot predict. Real uvicorn servers, real HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from reliability_server import ADMIN_KEY, PREDICT_KEY, Bundles, Server, bearer, start, stop

pytestmark = [pytest.mark.reliability, pytest.mark.integration]
FEEDBACK_KEY = "feedback-key-0123456789abcdef"
LABEL = {"customer_id": "C-r28", "churned": True, "observed_at": "2026-07-31T12:00:00"}


@pytest.fixture(scope="module")
def scoped(bundles: Bundles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with predict and feedback keys and no admin key."""
    home = tmp_path_factory.mktemp("r28-home")
    env = {
        "CHURNSCALE_HOME": str(home),
        "CHURNSCALE_MODEL": str(bundles.root / "a"),
        "CHURNSCALE_API_KEYS": PREDICT_KEY,
        "CHURNSCALE_FEEDBACK_API_KEYS": FEEDBACK_KEY,
        "CHURNSCALE_PREDICTOR": "lightgbm",
    }
    server = start(home / "server.log", env)
    yield server
    stop(server)


def _post(server: Server, key: str | None, path: str = "/v1/feedback", **body: Any) -> int:
    headers = bearer(key) if key else {}
    answer = httpx.post(f"{server.url}{path}", json=body or LABEL, headers=headers, timeout=30)
    return answer.status_code


def test_feedback_has_its_own_key_scope(
    scoped: Server, guarded: Server, customers: list[dict[str, Any]]
) -> None:
    seen = {
        "scoped: no key": _post(scoped, None),
        "scoped: predict key": _post(scoped, PREDICT_KEY),
        "scoped: feedback key": _post(scoped, FEEDBACK_KEY),
        "scoped: feedback key predicting": _post(
            scoped, FEEDBACK_KEY, "/v1/predict", **customers[0]
        ),
        "scoped: predict key predicting": _post(scoped, PREDICT_KEY, "/v1/predict", **customers[0]),
        "no feedback keys: predict key": _post(guarded, PREDICT_KEY),
        "no feedback keys: admin key": _post(guarded, ADMIN_KEY),
    }
    print(f"R28: {seen}")
    assert seen == {
        "scoped: no key": 401,
        "scoped: predict key": 403,
        "scoped: feedback key": 202,
        "scoped: feedback key predicting": 403,
        "scoped: predict key predicting": 200,
        "no feedback keys: predict key": 403,
        "no feedback keys: admin key": 202,
    }
    detail = httpx.post(f"{scoped.url}/v1/feedback", json=LABEL, headers=bearer(PREDICT_KEY))
    assert detail.json()["detail"] == "API key not valid for feedback"
