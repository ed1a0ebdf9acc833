"""Prometheus metrics of the service: requests, latency, errors, the model in use.

Metrics are **per process**: each worker keeps its own registry and ``/metrics`` answers with
the figures of the process that served the scrape. With ``--workers N`` (N > 1) scrape each
worker, or set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory before start-up to switch
prometheus_client to its multiprocess mode, in which ``/metrics`` sums every worker.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class ServiceMetrics:
    """The service's collectors, in their own registry (one per app)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "churnscale_requests",
            "HTTP requests answered, by route and status code.",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "churnscale_request_seconds",
            "Time from request start to response end, by route.",
            ["route"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "churnscale_errors",
            "Requests answered with an error, by route and kind.",
            ["route", "kind"],
            registry=self.registry,
        )
        #: Called before every render, to fold buffered observations in (see PredictionTally).
        self.before_render: list[Callable[[], None]] = []
        self.model = Gauge(
            "churnscale_model_info",
            "The model this process serves (value 1).",
            ["version", "predictor"],
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self.ready = Gauge(
            "churnscale_ready",
            "1 while this process has a model loaded and warmed (answers /readyz), else 0.",
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self._add_experiment_metrics()

    def _add_experiment_metrics(self) -> None:
        """Per-arm traffic, latency and scores; shadow scores; reloads."""
        self.arm_requests = Counter(
            "churnscale_arm_requests",
            "Predictions answered, by A/B arm and model version.",
            ["arm", "version"],
            registry=self.registry,
        )
        self.arm_latency = Histogram(
            "churnscale_arm_request_seconds",
            "Time to answer a prediction, by A/B arm.",
            ["arm"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.arm_scores = Histogram(
            "churnscale_arm_score",
            "Churn probabilities returned, by A/B arm.",
            ["arm"],
            buckets=SCORE_BUCKETS,
            registry=self.registry,
        )
        self.shadow_scores = Histogram(
            "churnscale_shadow_score",
            "Churn probabilities of the shadow model (logged, never returned), by version.",
            ["version"],
            buckets=SCORE_BUCKETS,
            registry=self.registry,
        )
        self.shadow_dropped = Counter(
            "churnscale_shadow_dropped",
            "Requests the shadow model skipped because its queue was full.",
            registry=self.registry,
        )
        self.reloads = Counter(
            "churnscale_reloads",
            "Model reloads, by outcome (swapped, unchanged, failed).",
            ["outcome"],
            registry=self.registry,
        )

    def observe(self, route: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def render(self) -> bytes:
        """The exposition text (all workers' figures in multiprocess mode)."""
        for flush in self.before_render:
            flush()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return bytes(generate_latest(registry))
        return bytes(generate_latest(self.registry))


def observe_many(histogram: Any, values: Sequence[float] | np.ndarray) -> None:
    """``histogram.observe(v)`` for every value, in one pass: each bucket and the sum are
    incremented once. Uses prometheus_client's child internals (``_upper_bounds``,
    ``_buckets``, ``_sum``); a test holds the result equal to one ``observe`` per value."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return
    bounds = np.asarray(histogram._upper_bounds, dtype=np.float64)
    counts = np.bincount(np.searchsorted(bounds, data, side="left"), minlength=len(bounds))
    for bucket, count in zip(histogram._buckets, counts.tolist(), strict=False):
        if count:
            bucket.inc(count)
    histogram._sum.inc(float(data.sum()))


class PredictionTally:
    """Answered predictions buffered and folded into the Prometheus metrics in bulk.

    Five metric updates a prediction (two counters, three histograms) cost more than the
    prediction; here a prediction is one list append, and the buffer is folded in when it
    holds ``size`` entries, when ``/metrics`` renders, and at the latest ``delay`` seconds
    after its first entry (so a worker's figures are at most that old in multiprocess mode).
    """

    def __init__(self, ok: Any, latency: Any, *, size: int = 256, delay: float = 1.0) -> None:
        self.ok = ok
        self.latency = latency
        self.size = size
        self.delay = delay
        self.pending: list[tuple[Any, float, float]] = []
        self._timer: Any = None

    def add(self, arm: Any, seconds: float, score: float) -> None:
        """Buffer one prediction answered by ``arm`` (its counters and histograms)."""
        pending = self.pending
        pending.append((arm, seconds, score))
        if len(pending) >= self.size:
            self.flush()
        elif len(pending) == 1 and self._timer is None:
            self._timer = _later(self.delay, self.flush)

    def flush(self) -> None:
        """Fold every buffered prediction into the metrics."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self.pending = self.pending, []
        if not pending:
            return
        self.ok.inc(len(pending))
        observe_many(self.latency, [seconds for _, seconds, _ in pending])
        by_arm: dict[int, list[tuple[Any, float, float]]] = {}
        for entry in pending:
            by_arm.setdefault(id(entry[0]), []).append(entry)
        for entries in by_arm.values():
            arm = entries[0][0]
            arm.requests.inc(len(entries))
            observe_many(arm.latency, [seconds for _, seconds, _ in entries])
            observe_many(arm.scores, [score for _, _, score in entries])


def _later(delay: float, callback: Callable[[], None]) -> Any:
    """``loop.call_later`` on the running loop; None outside one (the caller flushes later)."""
    import asyncio

    try:
        return asyncio.get_running_loop().call_later(delay, callback)
    except RuntimeError:
        return None
