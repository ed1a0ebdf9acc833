"""An uplift model served live: /v1/predict answers uplift and the deploy-time policy's action."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from live_server import start_server, stop_server

from churnscale.config import Settings
from churnscale.data.synthetic import generate_table
from churnscale.model import load_bundle
from churnscale.model.decisions import UpliftDecisions, UpliftPolicy
from churnscale.model.uplift import UpliftModel
from churnscale.training.uplift import UpliftSpec, train_uplift
from churnscale.training.uplift_fit import UpliftParams


def as_json(row: dict[str, Any]) -> dict[str, Any]:
    """One customer as a client sends it (dates as ISO text)."""
    return {
        k: v.isoformat() if isinstance(v, datetime.date | datetime.datetime) else v
        for k, v in row.items()
    }


@pytest.fixture(scope="module")
def uplift_bundle(uplift_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    params = UpliftParams(rounds=40, learning_rate=0.1, min_data_in_leaf=40)
    spec = UpliftSpec("offer", "offer", "no_offer", learner="t", params=params)
    return train_uplift(uplift_dataset, spec).model.save(tmp_path_factory.mktemp("u") / "m")


def test_the_service_answers_uplift_and_the_policy_action(
    uplift_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHURNSCALE_UPLIFT_BUDGET", "0.3")
    monkeypatch.setenv("CHURNSCALE_UPLIFT_ACTION_COST", "0.01")
    server = start_server(uplift_bundle)
    try:
        customers = generate_table(80, 93).drop_columns(["churned"]).to_pylist()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            answers = [client.post("/v1/predict", json=as_json(x)).json() for x in customers]
            info = client.get("/v1/models").json()["models"][0]
    finally:
        stop_server(server)
    model = load_bundle(uplift_bundle)
    assert isinstance(model, UpliftModel)
    policy = UpliftPolicy(action_cost=0.01, budget=0.3)
    assert policy == UpliftPolicy.from_settings(
        Settings(uplift_budget=0.3, uplift_action_cost=0.01)
    )
    decisions = UpliftDecisions(model, policy)
    for x, answer in zip(customers, answers, strict=True):
        expected = decisions.decide_one(model.preprocessor.encode_one(x))
        assert answer["uplift"] == pytest.approx(expected["uplift"], abs=1e-9)
        assert answer["p_treated"] == pytest.approx(expected["p_treated"], abs=1e-9)
        assert answer["churn_probability"] == pytest.approx(expected["p_control"], abs=1e-9)
        assert answer["action"] == expected["action"]
        treat = answer["uplift"] > 0.01 and answer["uplift"] >= decisions.bar
        assert answer["action"] == ("treat" if treat else "control")
    treated = np.mean([a["action"] == "treat" for a in answers])
    assert 0.1 < treated < 0.5  # about the 30% budget of the training customers
    assert info["trees"] == sum(b.num_trees() for b in model.boosters.values())
