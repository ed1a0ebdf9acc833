"""The shadow model: scores the same customers off the hot path; its scores go to a log only.

The hot path hands each answered customer to a queue bounded in items and in bytes (a full
queue drops the item and counts it, so the shadow can never slow or block answers, nor hold
more than ``max_bytes`` of customers' values); one daemon thread scores it with
the shadow model and appends a JSON line to the log. Shadow scores are never returned.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from churnscale.serving.deployment import ArmService
from churnscale.serving.metrics import ServiceMetrics

log = logging.getLogger("churnscale.serving")
_STOP = None


class ShadowScorer:
    """A bounded queue and one thread that scores queued customers with the shadow model."""

    #: What one queued customer costs besides its text values (dict, tuple, floats), generous.
    ITEM_BYTES = 2_048

    def __init__(
        self,
        path: Path,
        metrics: ServiceMetrics,
        *,
        capacity: int = 10_000,
        max_bytes: int = 64 * 1024**2,
    ) -> None:
        self.path = path
        self.metrics = metrics
        self.max_bytes = max_bytes
        self.queued_bytes = 0  # updated by the event loop and the thread under _lock
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue(maxsize=capacity)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the scoring thread (once)."""
        if self._thread is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._thread = threading.Thread(target=self._run, name="churnscale-shadow", daemon=True)
            self._thread.start()

    def submit(self, shadow: ArmService, x: dict[str, Any], arm: ArmService, score: float) -> None:
        """Queue one answered customer for the shadow (never blocks; drops when full)."""
        size = self.ITEM_BYTES + sum(len(v) for v in x.values() if isinstance(v, str))
        with self._lock:
            if self.queued_bytes + size > self.max_bytes:
                self.metrics.shadow_dropped.inc()
                return
            self.queued_bytes += size
        try:
            self._queue.put_nowait((shadow, x, arm.name, arm.version, score, time.time(), size))
        except queue.Full:
            with self._lock:
                self.queued_bytes -= size
            self.metrics.shadow_dropped.inc()

    def close(self, timeout: float = 5.0) -> None:
        """Score what is queued (up to ``timeout``), then stop the thread."""
        if self._thread is not None:
            try:
                self._queue.put(_STOP, timeout=timeout)
            except queue.Full:
                return
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        with self.path.open("ab") as out:
            while (item := self._queue.get()) is not _STOP:
                with self._lock:
                    self.queued_bytes -= item[-1]
                try:
                    out.write(self._line(item))
                except Exception:  # one bad customer must not stop the shadow
                    log.exception("shadow scoring failed")
                if self._queue.empty():
                    out.flush()

    def _line(self, item: tuple[Any, ...]) -> bytes:
        shadow, x, arm, version, served, at, _ = item
        service = shadow.service
        score = service.predictor.predict_one(service.encode(x))
        self.metrics.shadow_scores.labels(service.version).observe(score)
        record = {
            "time": at,
            "customer_id": None if service.id is None else _text(x.get(service.id)),
            "arm": arm,
            "served_version": version,
            "served_score": served,
            "shadow_version": service.version,
            "shadow_score": score,
        }
        return orjson.dumps(record) + b"\n"


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
