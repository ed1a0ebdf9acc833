"""R07 (A/B sticky routing, shadow): the shadow model's scores reach its JSON-lines log and
never a response; 100,000 customer ids asked of a real server, then of a
restarted one, land in the same arm 100% of the time and the split is within ±1 pp of the
weights (50/30/20); real ``POST /v1/predict`` requests carry the same arm in ``X-Model-Arm``.
The server uses LightGBM's own predictor (no lleaves compile) to start faster."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from reliability_server import Bundles, Server, start, stop

pytestmark = pytest.mark.integration

WEIGHTS = {"control": 0.5, "treatment": 0.3, "holdout": 0.2}
IDS = [f"C{i:07d}" for i in range(100_000)]


@pytest.fixture(scope="module")
def setup(bundles: Bundles, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("ab-home")
    routing = {
        "experiment": "spring",
        "arms": [
            {"name": "control", "model": str(bundles.root / "a"), "weight": 50},
            {"name": "treatment", "model": str(bundles.root / "b"), "weight": 30},
            {"name": "holdout", "model": str(bundles.root / "a"), "weight": 20},
        ],
        "shadow": str(bundles.root / "b"),
    }
    path = home / "routing.yaml"
    path.write_text(json.dumps(routing))  # JSON is YAML
    env = {
        "CHURNSCALE_HOME": str(home),
        "CHURNSCALE_ROUTING": str(path),
        "CHURNSCALE_PREDICTOR": "lightgbm",
    }
    return {"home": home, "env": env}


@pytest.fixture(scope="module")
def server(setup: dict[str, Any]) -> Iterator[Server]:
    running = start(setup["home"] / "server.log", setup["env"])
    yield running
    stop(running)


def arms_of(url: str, ids: list[str]) -> list[str]:
    with httpx.Client(base_url=url, timeout=60) as client:
        arms: list[str] = []
        for start_at in range(0, len(ids), 10_000):
            answer = client.post(
                "/v1/arms", json={"customer_ids": ids[start_at : start_at + 10_000]}
            )
            assert answer.status_code == 200, answer.text
            arms.extend(answer.json()["arms"])
        return arms


def test_shadow_scores_are_logged_and_never_returned(
    server: Server, setup: dict[str, Any], bundles: Bundles, customers: list[dict[str, Any]]
) -> None:
    log_path = Path(setup["home"]) / "shadow.jsonl"
    before = log_path.read_text().count("\n") if log_path.exists() else 0
    answers = {}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for x in customers[:50]:
            answer = client.post("/v1/predict", json=x)
            assert answer.status_code == 200
            assert set(answer.json()) == {"customer_id", "churn_probability", "model_version"}
            assert answer.headers["x-model-arm"] in WEIGHTS
            answers[x["customer_id"]] = answer
    deadline = time.monotonic() + 30
    lines: list[str] = []
    while time.monotonic() < deadline and len(lines) < 50:
        time.sleep(0.1)
        lines = log_path.read_text().splitlines()[before:] if log_path.exists() else []
    records = {r["customer_id"]: r for r in map(json.loads, lines)}
    assert set(records) == set(answers)
    for customer_id, answer in answers.items():
        record = records[customer_id]
        served = answer.json()["churn_probability"]
        assert record["shadow_version"] == bundles.version_b
        assert record["arm"] == answer.headers["x-model-arm"]
        assert record["served_score"] == served
        if record["arm"] == "treatment":  # the treatment arm serves the shadow's model
            assert record["shadow_score"] == served
        else:  # model a answered; model b's score stays in the log
            assert answer.json()["model_version"] == bundles.version_a
            assert record["shadow_score"] != served
            assert repr(record["shadow_score"]) not in answer.text


def test_arms_are_sticky_across_a_restart_and_split_by_weight(
    server: Server, setup: dict[str, Any], customers: list[dict[str, Any]]
) -> None:
    first = arms_of(server.url, IDS)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        served = {}
        for x in customers[:200]:
            answer = client.post("/v1/predict", json=x)
            assert answer.status_code == 200
            served[x["customer_id"]] = answer.headers["x-model-arm"]
    stop(server)
    restarted = start(setup["home"] / "restarted.log", setup["env"])
    try:
        second = arms_of(restarted.url, IDS)
        again = arms_of(restarted.url, list(served))
    finally:
        stop(restarted)
    agreement = sum(a == b for a, b in zip(first, second, strict=True)) / len(IDS)
    assert agreement == 1.0
    assert again == list(served.values())
    shares = {arm: first.count(arm) / len(IDS) for arm in WEIGHTS}
    print(f"same arm after restart: {agreement:.2%}; shares {shares}")
    for arm, weight in WEIGHTS.items():
        share = shares[arm]
        assert abs(share - weight) <= 0.01, (arm, share)
