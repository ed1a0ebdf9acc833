"""Prometheus metrics of the service: requests, latency, errors, the model in use.

Metrics are **per process**: each worker keeps its own registry and ``/metrics`` answers with
the figures of the process that served the scrape. With ``--workers N`` (N > 1) scrape each
worker, or set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory before start-up to switch
prometheus_client to its multiprocess mode, in which ``/metrics`` sums every worker.
"""

from __future__ import annotations

import os

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
        self.model = Gauge(
            "churnscale_model_info",
            "The model this process serves (value 1).",
            ["version", "predictor"],
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
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return bytes(generate_latest(registry))
        return bytes(generate_latest(self.registry))
