"""Buffered prediction metrics: folded in bulk, they read exactly as one update per request."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import numpy as np
from prometheus_client import generate_latest

from churnscale.serving.metrics import BUCKETS, SCORE_BUCKETS, PredictionTally, ServiceMetrics


def _arm(metrics: ServiceMetrics, name: str) -> SimpleNamespace:
    return SimpleNamespace(
        requests=metrics.arm_requests.labels(name, "v1"),
        latency=metrics.arm_latency.labels(name),
        scores=metrics.arm_scores.labels(name),
    )


def _observations(n: int) -> list[tuple[int, float, float]]:
    rng = np.random.default_rng(3)
    seconds = np.concatenate([[0.0001, 0.00025, 1.0, 5.0], rng.exponential(0.003, n - 4)])
    scores = np.concatenate([[0.05, 0.0, 1.0, 0.5], rng.random(n - 4)])
    return [
        (int(rng.integers(0, 2)), float(s), float(p)) for s, p in zip(seconds, scores, strict=True)
    ]


def _figures(text: bytes) -> list[str]:
    """Exposition lines without the ``_created`` timestamps (two registries differ there),
    sums to 12 significant digits (a bulk sum adds in another order)."""
    lines = []
    for line in text.decode().splitlines():
        if "_created" in line:
            continue
        if "_sum{" in line:
            name, value = line.rsplit(" ", 1)
            line = f"{name} {float(value):.12g}"
        lines.append(line)
    return lines


def test_bulk_fold_equals_one_update_per_prediction() -> None:
    one, bulk = ServiceMetrics(), ServiceMetrics()
    arms_one = [_arm(one, "a"), _arm(one, "b")]
    arms_bulk = [_arm(bulk, "a"), _arm(bulk, "b")]
    ok_one = one.requests.labels("/v1/predict", "200")
    latency_one = one.latency.labels("/v1/predict")
    tally = PredictionTally(
        bulk.requests.labels("/v1/predict", "200"), bulk.latency.labels("/v1/predict"), size=97
    )
    bulk.before_render.append(tally.flush)
    for arm, seconds, score in _observations(1_000):  # bucket edges included
        ok_one.inc()
        latency_one.observe(seconds)
        arms_one[arm].requests.inc()
        arms_one[arm].latency.observe(seconds)
        arms_one[arm].scores.observe(score)
        tally.add(arms_bulk[arm], seconds, score)
    assert 0 < len(tally.pending) < 97  # folded every 97 entries; the rest at render
    assert _figures(bulk.render()) == _figures(generate_latest(one.registry))
    assert tally.pending == []
    assert len(BUCKETS) and len(SCORE_BUCKETS)


def test_a_lone_prediction_is_folded_in_after_the_delay() -> None:
    metrics = ServiceMetrics()
    ok = metrics.requests.labels("/v1/predict", "200")
    tally = PredictionTally(ok, metrics.latency.labels("/v1/predict"), delay=0.05)

    async def one_then_wait() -> None:
        tally.add(_arm(metrics, "a"), 0.001, 0.3)
        await asyncio.sleep(0.2)

    asyncio.run(one_then_wait())
    assert tally.pending == []
    assert b'churnscale_requests_total{route="/v1/predict",status="200"} 1.0' in (
        generate_latest(metrics.registry)
    )
