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
