"""The closed loop against live servers: a randomized arm → the log → export → an uplift model →
a policy arm that keeps an exploration share randomized.

The simulated truth: P(churn | control) = 0.3 for everyone; the offer lowers it by 0.2 for
month-to-month customers and raises it by 0.1 for customers of three years or more.
"""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from live_server import start_server, stop_server

from churnscale.data.synthetic import generate_table
from churnscale.evaluation.experiment import joined_rows, report
from churnscale.model import load_bundle
from churnscale.model.uplift import UpliftModel

WHEN = "2026-07-01T00:00:00Z"


def as_json(row: dict[str, Any]) -> dict[str, Any]:
    """One customer as a client sends it (dates as ISO text)."""
    return {
        k: v.isoformat() if isinstance(v, datetime.date | datetime.datetime) else v
        for k, v in row.items()
    }


def _churn_probability(x: dict[str, Any], arm: str) -> float:
    effect = -0.2 * (x["contract_type"] == "month-to-month") + 0.1 * (x["tenure_months"] >= 36)
    return 0.3 + (effect if arm == "treat" else 0.0)


def _true_effect(customers: list[dict[str, Any]]) -> float:
    return float(np.mean([_churn_probability(x, "treat") - 0.3 for x in customers]))


def _run(url: str, customers: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Ask for every customer, then report the outcome drawn under the arm it was given."""
    rng = np.random.default_rng(seed)
    answers = []
    with httpx.Client(base_url=url, timeout=10) as client:
        for x in customers:
            answer = client.post("/v1/predict", json=as_json(x)).json()
            churned = bool(rng.random() < _churn_probability(x, answer["experiment_arm"]))
            feedback = {"customer_id": x["customer_id"], "churned": churned, "observed_at": WHEN}
            assert client.post("/v1/feedback", json=feedback).status_code in (200, 202)
            answers.append(answer)
    return answers


@pytest.mark.integration
def test_random_arm_export_train_then_policy_arm_with_exploration(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "experiment.jsonl"
    monkeypatch.setenv("CHURNSCALE_EXPERIMENT_LOG", str(log))
    monkeypatch.setenv("CHURNSCALE_HOME", str(tmp_path / "home"))
    customers = generate_table(1_200, 61).drop_columns(["churned"]).to_pylist()
    server = start_server(bundle)  # round 1: a churn model; the arms are random
    try:
        first = _run(server.url, customers, seed=1)
    finally:
        stop_server(server)
    assert {a["propensity"] for a in first} == {0.5}
    found = report(log, treat="treat", control="control", planned=1_200)
    assert found.outcomes == 1_200
    truth = _true_effect(customers)
    assert found.fixed.low < truth < found.fixed.high  # spot check (coverage: benchmark)
    assert found.sequential[1] < truth < found.sequential[2]
    assert found.sequential[2] - found.sequential[1] > found.fixed.high - found.fixed.low

    def churnscale(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "churnscale", *args],
            capture_output=True,
            text=True,
            check=False,
        )

    exported = tmp_path / "round1.parquet"
    done = churnscale("experiment", "export", str(log), "--out", str(exported))
    assert done.returncode == 0, done.stderr
    done = churnscale(
        "train",
        str(exported),
        "--target",
        "churned",
        "--drop",
        "propensity",
        "--treatment-col",
        "arm",
        "--treatment",
        "treat",
        "--control",
        "control",
        "--learner",
        "t",
        "--threads",
        "1",
        "--no-register",
        "--out",
        str(tmp_path / "policy"),
    )
    assert done.returncode == 0, done.stderr
    model = load_bundle(tmp_path / "policy")
    assert isinstance(model, UpliftModel)

    # round 2: the learned policy (churn is bad: value −1 per churner, the offer costs 0.05)
    monkeypatch.setenv("CHURNSCALE_UPLIFT_OUTCOME_VALUE", "-1")
    monkeypatch.setenv("CHURNSCALE_UPLIFT_ACTION_COST", "0.05")
    log.rename(tmp_path / "round1.jsonl")
    fresh = generate_table(300, 62).drop_columns(["churned"]).to_pylist()
    server = start_server(tmp_path / "policy")
    try:
        second = _run(server.url, fresh, seed=2)
    finally:
        stop_server(server)
    modes = [r.mode for r in joined_rows(log)]
    assert 0.03 < modes.count("random") / len(modes) < 0.2  # the 10% exploration share
    for answer in second:
        if answer["propensity"] >= 0.9:  # the policy's own choice (0.95 = 0.9 + 0.1 × 0.5)
            assert answer["experiment_arm"] == answer["action"]
    chosen = {  # the policy's own choices: offered to those the offer keeps, not the others
        x["customer_id"]: a["experiment_arm"] == "treat"
        for x, a in zip(fresh, second, strict=True)
        if a["propensity"] >= 0.9
    }
    monthly = [
        chosen[x["customer_id"]]
        for x in fresh
        if x["customer_id"] in chosen and x["contract_type"] == "month-to-month"
    ]
    loyal = [
        chosen[x["customer_id"]]
        for x in fresh
        if x["customer_id"] in chosen
        and x["contract_type"] != "month-to-month"
        and x["tenure_months"] >= 36
    ]
    assert np.mean(monthly) > 0.7 and np.mean(loyal) < 0.3
