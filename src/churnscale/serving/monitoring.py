"""Live monitoring in the service: recent requests vs the bundle's drift reference.

:class:`LiveWindow` is a ring buffer of the last ``Settings.drift_window_rows`` encoded rows and
their scores (a fixed float64 array: memory is ``rows × (features + 1) × 8`` bytes, 2 MB for
10,000 rows of 24 features). :class:`ModelMonitor` owns it, the prediction log and the live
quality of :mod:`churnscale.serving.feedback`; a :class:`PredictionService` reports every
prediction to it through the observer that :meth:`ModelMonitor.attach` installs.

``GET /v1/monitoring/drift`` compares the window with the reference: 200 with the report (or
``status: insufficient_data`` below ``Settings.drift_min_rows`` rows), 409 when the served
bundle has no reference. ``/metrics`` carries ``churnscale_drift_psi{version,feature}``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Request
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from churnscale.model.reference import DriftReference
from churnscale.monitoring.drift import DriftReport, DriftThresholds, WindowProfile
from churnscale.serving.errors import RequestError
from churnscale.serving.feedback import FeedbackBook

if TYPE_CHECKING:
    from churnscale.config import Settings
    from churnscale.serving.service import PredictionService


class NoReferenceError(RequestError):
    """The served bundle carries no drift reference (409)."""

    http_status = 409
    kind = "no_reference"


class LiveWindow:
    """The last ``capacity`` encoded rows and their probabilities (thread-safe ring buffer).

    Rows are kept as the arrays given (one row each, owned by the window: the prediction log's
    copy is shared with it), so adding one costs a list slot, not a copy into a matrix."""

    def __init__(self, capacity: int, width: int) -> None:
        self.capacity = capacity
        self.width = width
        self._rows: list[np.ndarray | None] = [None] * capacity
        self._scores: list[float] = [0.0] * capacity
        self._next = 0
        self._filled = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._filled

    def add(self, matrix: np.ndarray, probabilities: np.ndarray) -> None:
        """Append rows (the oldest are overwritten once the window is full)."""
        kept = np.array(matrix[-self.capacity :], dtype=np.float64)  # rows of one owned copy
        scores = np.asarray(probabilities[-self.capacity :], dtype=np.float64).tolist()
        with self._lock:
            for row, score in zip(kept, scores, strict=True):
                self._put(row, score)

    def add_one(self, row: np.ndarray, probability: float) -> None:
        """Append one row, kept as given: the caller no longer writes it (the hot path)."""
        with self._lock:  # _put, inlined
            at = self._next
            self._rows[at] = row
            self._scores[at] = probability
            self._next = at + 1 if at + 1 < self.capacity else 0
            if self._filled < self.capacity:
                self._filled += 1

    def _put(self, row: np.ndarray, score: float) -> None:
        at = self._next
        self._rows[at] = row
        self._scores[at] = score
        self._next = at + 1 if at + 1 < self.capacity else 0
        if self._filled < self.capacity:
            self._filled += 1

    def snapshot(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the rows and probabilities held now (order does not matter for drift)."""
        with self._lock:
            filled = self._filled
            rows = self._rows[:filled]
            scores = self._scores[:filled]
        if not filled:
            return np.empty((0, self.width)), np.empty(0)
        return np.stack(rows), np.array(scores, dtype=np.float64)  # type: ignore[arg-type]


class ModelMonitor:
    """Everything the service watches about the model it serves (one per process)."""

    def __init__(self, settings: Settings, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.thresholds = DriftThresholds.from_settings(settings)
        self.feedback = FeedbackBook(settings, registry)
        self.window: LiveWindow | None = None
        self.reference: DriftReference | None = None
        self.version = ""
        registry.register(_DriftCollector(self))

    def attach(
        self, service: PredictionService, *, arm: str | None = None, primary: bool = True
    ) -> None:
        """Watch ``service``: its predictions feed the prediction log, and the drift window
        when it is the ``primary`` model (the one clients are answered by).

        With several models (A/B arms, shadow) attach each service with its ``arm`` and
        ``primary=False`` for all but one. Attaching a new primary (a hot reload) starts a new
        window against the new model's reference.
        """
        if primary:
            width = len(service.model.feature_names)
            self.window = LiveWindow(self.settings.drift_window_rows, width)
            self.reference = service.model.reference
            self.version = service.version
        service.observer = MonitorObserver(
            self, version=service.version, arm=arm or "", window=self.window if primary else None
        )

    def drift(self) -> DriftReport | None:
        """The window against the reference (None below ``drift_min_rows`` rows)."""
        if self.reference is None or self.window is None:
            raise NoReferenceError(
                "the served bundle has no drift reference (reference.json); "
                "retrain, or use `churnscale drift --reference DATA`",
                field="model",
            )
        if len(self.window) < self.settings.drift_min_rows:
            return None
        matrix, scores = self.window.snapshot()
        profile = WindowProfile(self.reference)
        profile.add(matrix, scores)
        return profile.report(self.thresholds, model_version=self.version)


class MonitorObserver:
    """The :class:`~churnscale.serving.service.PredictionObserver` a monitor installs: each
    prediction into the drift window (primary model only) and the prediction log."""

    def __init__(
        self, monitor: ModelMonitor, *, version: str, arm: str, window: LiveWindow | None
    ) -> None:
        self.monitor = monitor
        self.version = version
        self.arm = arm
        self.window = window

    def observe_one(self, customer_id: str | None, row: np.ndarray, probability: float) -> None:
        """Record one answered customer."""
        window = self.window
        if customer_id is not None:
            kept = self.monitor.feedback.log.record(
                customer_id, self.version, self.arm, probability, row
            )
            if window is not None:
                window.add_one(kept, probability)  # the log's copy, shared
        elif window is not None:
            window.add_one(row.copy(), probability)

    def observe_many(
        self, ids: Sequence[Any], matrix: np.ndarray, probabilities: np.ndarray
    ) -> None:
        """Record a batch of answered customers."""
        if self.window is not None:
            self.window.add(matrix, probabilities)
        log = self.monitor.feedback.log
        for i, customer in enumerate(ids):
            if customer is not None:
                log.record(
                    str(customer), self.version, self.arm, float(probabilities[i]), matrix[i]
                )


class _DriftCollector(Collector):
    """``churnscale_drift_psi``: each feature's PSI over the live window, at scrape time."""

    def __init__(self, monitor: ModelMonitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "churnscale_drift_psi",
            "PSI of each feature (and churn_probability) over the live request window.",
            labels=["version", "feature"],
        )
        monitor = self.monitor
        if monitor.reference is not None and monitor.window is not None:
            if len(monitor.window) >= monitor.settings.drift_min_rows:
                matrix, scores = monitor.window.snapshot()
                profile = WindowProfile(monitor.reference)
                profile.add(matrix, scores)
                for name, value in profile.psi().items():
                    family.add_metric([monitor.version, name], value)
        yield family


def _monitor(request: Request) -> ModelMonitor:
    monitor: ModelMonitor = request.app.state.monitor
    return monitor


MonitorDep = Annotated[ModelMonitor, Depends(_monitor)]
router = APIRouter(tags=["monitoring"])


@router.get(
    "/v1/monitoring/drift",
    responses={409: {"description": "The served bundle has no drift reference"}},
)
async def live_drift(monitor: MonitorDep) -> dict[str, Any]:
    """Drift of the recent requests against the training reference, feature by feature."""
    report = monitor.drift()
    rows = len(monitor.window) if monitor.window is not None else 0
    if report is None:
        return {
            "status": "insufficient_data",
            "window_rows": rows,
            "needed_rows": monitor.settings.drift_min_rows,
        }
    return {"status": "ok", "window_rows": rows, "summary": report.summary(), **report.to_dict()}
