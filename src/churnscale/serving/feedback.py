"""Feedback in the service: labels joined with logged predictions, live quality on ``/metrics``.

``POST /v1/feedback`` takes ``{"customer_id": "C17", "churned": true, "observed_at": "…"}``.
It needs a feedback or an admin key once any key is configured (a predict key cannot post
labels; see :class:`~churnscale.serving.security.ApiKeys`).

- The label is joined with the predictions logged for that customer (every model version and
  arm that answered for them, e.g. the champion and a shadow) and each joined pair enters that
  version/arm's live window of the last ``Settings.feedback_window`` labelled predictions.
  A joined prediction leaves the log, so a repeated label is not counted twice.
- **200** ``{"status": "joined", "joined": [{"model_version", "arm", "churn_probability"}]}``
  when a prediction was found; **202** ``{"status": "unmatched", "joined": []}`` when none was
  (never scored by this process, evicted from the bounded log, or already labelled): labels for
  unknown customers are normal in a fleet of replicas, so they are accepted, counted
  (``churnscale_feedback_total{outcome="unmatched"}``) and handed to the hooks, not refused.
- **422** naming the field for a missing or malformed value (FastAPI's validation shape);
  **400** when the body is not JSON at all (FastAPI's answer, documented in the OpenAPI).

The prediction log keeps the latest prediction per customer and version/arm for the most recent
``Settings.feedback_predictions`` customers, within ``Settings.feedback_log_bytes`` of memory
(least recently scored evicted first; ids are at most 256 characters), with the
encoded row, so a feedback hook (an online learner) gets features and label together:
``FeedbackBook.subscribe(hook)``; hooks run after the join, on the request's thread.

``/metrics`` gains, per ``version`` and ``arm`` (computed at scrape time):
``churnscale_live_roc_auc`` (absent while the window holds one class),
``churnscale_live_calibration_error`` (ECE over 10 equal-width bins),
``churnscale_live_mean_prediction``, ``churnscale_live_churn_rate`` and
``churnscale_live_labels`` (labelled predictions in the window).
"""

from __future__ import annotations

import re
import sys
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, NamedTuple

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, WithJsonSchema

from churnscale.evaluation.calibration import calibration_bins, expected_calibration_error
from churnscale.serving.decoded import check_json
from churnscale.serving.errors import InvalidInputError
from churnscale.serving.ids import PydanticId

if TYPE_CHECKING:
    from churnscale.config import Settings


class LoggedPrediction(NamedTuple):
    """One answer given to a customer: by which model version and arm, and on which row (a
    tuple: built on every prediction, where a frozen dataclass costs several times more)."""

    version: str
    arm: str
    probability: float
    row: np.ndarray


@dataclass(frozen=True)
class Feedback:
    """One label as a hook receives it, with the predictions it was joined to."""

    customer_id: str
    churned: bool
    observed_at: datetime
    joined: list[LoggedPrediction] = field(default_factory=list)


FeedbackHook = Callable[[Feedback], None]

#: ``LoggedPrediction`` from a tuple in C (its generated ``__new__`` is Python, ~4x dearer).
_logged: Callable[[tuple[str, str, float, np.ndarray]], LoggedPrediction] = partial(
    tuple.__new__, LoggedPrediction
)


class PredictionLog:
    """The latest predictions of the most recently scored customers, thread-safe and bounded
    twice: at most ``capacity`` customers and about ``max_bytes`` of memory (each entry costs
    its id, its rows and a fixed overhead, :data:`ENTRY_BYTES` and :data:`PREDICTION_BYTES`,
    measured as upper bounds in the tests); the least recently scored leave first."""

    #: Memory of one customer's entry besides its id and predictions (ordered-dict node, dict).
    ENTRY_BYTES: ClassVar[int] = 512
    #: Memory of one logged prediction besides its row's data (tuple, float, array, dict slot).
    PREDICTION_BYTES: ClassVar[int] = 384

    def __init__(self, capacity: int, max_bytes: int = 128 * 1024**2) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[str, dict[tuple[str, str], LoggedPrediction]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def record(
        self, customer_id: str, version: str, arm: str, probability: float, row: np.ndarray
    ) -> np.ndarray:
        """Log one prediction (replacing the customer's earlier one from the same version/arm);
        returns the copy of ``row`` it keeps (the drift window shares it)."""
        kept = row.copy()
        key = (version, arm)
        logged = _logged((version, arm, probability, kept))
        cost = kept.nbytes + self.PREDICTION_BYTES
        entries = self._entries
        with self._lock:
            entry = entries.get(customer_id)
            if entry is None:
                entries[customer_id] = {key: logged}
                cost += sys.getsizeof(customer_id) + self.ENTRY_BYTES
            else:
                entries.move_to_end(customer_id)
                replaced = entry.get(key)
                if replaced is not None:
                    cost -= replaced.row.nbytes + self.PREDICTION_BYTES
                entry[key] = logged
            self.bytes += cost
            if self.bytes > self.max_bytes or len(entries) > self.capacity:
                self._evict()
        return kept

    def _evict(self) -> None:
        """The least recently scored customers leave until both bounds hold (lock held)."""
        entries = self._entries
        while len(entries) > self.capacity or self.bytes > self.max_bytes:
            self.bytes -= self._cost(*entries.popitem(last=False))

    def take(self, customer_id: str) -> list[LoggedPrediction]:
        """Remove and return every logged prediction of ``customer_id``."""
        with self._lock:
            entry = self._entries.pop(customer_id, None)
            if entry is not None:
                self.bytes -= self._cost(customer_id, entry)
        return list(entry.values()) if entry else []

    def _cost(self, customer_id: str, entry: dict[tuple[str, str], LoggedPrediction]) -> int:
        rows = 0
        for prediction in entry.values():
            rows += prediction.row.nbytes
        return (
            sys.getsizeof(customer_id)
            + self.ENTRY_BYTES
            + rows
            + len(entry) * self.PREDICTION_BYTES
        )


class LiveQuality:
    """The last ``window`` labelled predictions of one version/arm."""

    def __init__(self, window: int) -> None:
        self.labels: deque[int] = deque(maxlen=window)
        self.scores: deque[float] = deque(maxlen=window)

    def add(self, churned: bool, probability: float) -> None:
        """Fold in one labelled prediction."""
        self.labels.append(int(churned))
        self.scores.append(probability)

    def figures(self) -> dict[str, float]:
        """Labels, churn rate, mean prediction, ECE and (with both classes) ROC-AUC."""
        from sklearn.metrics import roc_auc_score

        y = np.fromiter(self.labels, dtype=np.int64)
        p = np.fromiter(self.scores, dtype=np.float64)
        if y.size == 0:
            return {"labels": 0.0}
        out = {
            "labels": float(y.size),
            "churn_rate": float(y.mean()),
            "mean_prediction": float(p.mean()),
            "calibration_error": expected_calibration_error(calibration_bins(y, p)),
        }
        if 0 < y.sum() < y.size:
            out["roc_auc"] = float(roc_auc_score(y, p))
        return out


class FeedbackBook:
    """The prediction log, live quality per version/arm, counters and the feedback hooks."""

    def __init__(self, settings: Settings, registry: CollectorRegistry) -> None:
        self.log = PredictionLog(settings.feedback_predictions, settings.feedback_log_bytes)
        self.window = settings.feedback_window
        self.quality: dict[tuple[str, str], LiveQuality] = {}
        self.hooks: list[FeedbackHook] = []
        self._lock = threading.Lock()
        self.received = Counter(
            "churnscale_feedback",
            "Feedback labels received, by outcome (joined or unmatched).",
            ["outcome"],
            registry=registry,
        )
        registry.register(_QualityCollector(self))

    def subscribe(self, hook: FeedbackHook) -> None:
        """Call ``hook`` with every label received (after it is joined); e.g. an online learner."""
        self.hooks.append(hook)

    def receive(self, customer_id: str, churned: bool, observed_at: datetime) -> Feedback:
        """Join one label with the customer's logged predictions and update live quality."""
        joined = self.log.take(customer_id)
        with self._lock:
            for logged in joined:
                key = (logged.version, logged.arm)
                quality = self.quality.setdefault(key, LiveQuality(self.window))
                quality.add(churned, logged.probability)
        self.received.labels("joined" if joined else "unmatched").inc()
        feedback = Feedback(customer_id, churned, observed_at, joined)
        for hook in self.hooks:
            hook(feedback)
        return feedback

    def figures(self) -> dict[tuple[str, str], dict[str, float]]:
        """Live quality figures of every version/arm that received labels."""
        with self._lock:
            return {key: q.figures() for key, q in self.quality.items()}


class _QualityCollector(Collector):
    """The live quality gauges, computed from the windows at scrape time."""

    NAMES: ClassVar[dict[str, str]] = {
        "roc_auc": "ROC-AUC of the labelled predictions in the live window.",
        "calibration_error": "Expected calibration error (10 bins) in the live window.",
        "mean_prediction": "Mean predicted churn probability in the live window.",
        "churn_rate": "Observed churn rate in the live window.",
        "labels": "Labelled predictions in the live window.",
    }

    def __init__(self, book: FeedbackBook) -> None:
        self.book = book

    def collect(self) -> Iterator[GaugeMetricFamily]:
        figures = self.book.figures()
        for name, description in self.NAMES.items():
            family = GaugeMetricFamily(
                f"churnscale_live_{name}", description, labels=["version", "arm"]
            )
            for (version, arm), values in figures.items():
                if name in values:
                    family.add_metric([version, arm], values[name])
            yield family


_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}")


def _date_time(value: Any) -> Any:
    """Only an ISO 8601 / RFC 3339 date-time text (pydantic alone also takes "0" as epoch)."""
    if not isinstance(value, str) or not _DATE_TIME.match(value):
        raise ValueError("expected an ISO 8601 date-time such as 2026-07-31T12:00:00Z")
    return value


def _label(value: Any) -> bool:
    """``true``/``false`` or ``1``/``0``, nothing else (no "yes", no 0.5)."""
    if isinstance(value, bool):
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    raise ValueError(f"expected true, false, 1 or 0, got {value!r}")


class FeedbackRequest(BaseModel):
    """One observed outcome."""

    model_config = ConfigDict(extra="forbid")

    customer_id: PydanticId
    churned: Annotated[
        bool,
        BeforeValidator(_label),
        # documented as accepted: true/false or 1/0 (R01 generated 1 as a "violation")
        WithJsonSchema({"anyOf": [{"type": "boolean"}, {"type": "integer", "enum": [0, 1]}]}),
    ]
    observed_at: Annotated[datetime, BeforeValidator(_date_time)]


class JoinedPrediction(BaseModel):
    """A logged prediction the label was joined with."""

    model_version: str
    arm: str
    churn_probability: float


class FeedbackResponse(BaseModel):
    """What happened to the label."""

    status: str
    customer_id: str
    joined: list[JoinedPrediction]


def _book(request: Request) -> FeedbackBook:
    book: FeedbackBook = request.app.state.monitor.feedback
    return book


BookDep = Annotated[FeedbackBook, Depends(_book)]
router = APIRouter(tags=["monitoring"])


@router.post(
    "/v1/feedback",
    response_model=FeedbackResponse,
    responses={
        202: {"model": FeedbackResponse, "description": "No logged prediction to join"},
        400: {"description": "The body is not valid JSON"},
        413: {"description": "The body would decode to more than the decoded-size limit"},
        422: {"description": "Invalid feedback (the field is named)"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": FeedbackRequest.model_json_schema()}},
        }
    },
)
async def feedback(request: Request, book: BookDep) -> JSONResponse:
    """Record an observed outcome: joined with the customer's logged predictions if any."""
    label = _label_of(await request.body(), request.app.state.max_decoded_bytes)
    customer = str(label.customer_id)
    result = book.receive(customer, bool(label.churned), label.observed_at)
    joined = [
        {"model_version": p.version, "arm": p.arm, "churn_probability": p.probability}
        for p in result.joined
    ]
    content: dict[str, Any] = {
        "status": "joined" if joined else "unmatched",
        "customer_id": customer,
        "joined": joined,
    }
    return JSONResponse(content, status_code=200 if joined else 202)


def _label_of(body: bytes, max_decoded: int) -> FeedbackRequest:
    """The body as a label, sized before it is decoded; the first problem is a 422 naming
    its field (FastAPI's shape)."""
    check_json(body, max_decoded)
    try:
        return FeedbackRequest.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise InvalidInputError(first["msg"], field=field) from None
