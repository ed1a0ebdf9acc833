"""The shadow queue is bounded in bytes as well as in items: long values are dropped and
counted, never held past ``max_bytes``."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from churnscale.serving.metrics import ServiceMetrics
from churnscale.serving.shadow import ShadowScorer


def test_the_shadow_queue_drops_what_would_pass_its_byte_bound(tmp_path: Path) -> None:
    metrics = ServiceMetrics()
    scorer = ShadowScorer(tmp_path / "shadow.jsonl", metrics, max_bytes=10 * 1024**2)
    arm: Any = SimpleNamespace(name="a", version="v1")
    for i in range(30):  # never started: nothing leaves the queue
        scorer.submit(arm, {"customer_id": f"C{i}", "plan": "p" * 1024**2}, arm, 0.5)
    assert scorer.queued_bytes <= 10 * 1024**2
    assert scorer._queue.qsize() == 9
    assert metrics.shadow_dropped._value.get() == 21
    scorer.submit(arm, {"customer_id": "small", "plan": "p"}, arm, 0.5)
    assert scorer._queue.qsize() == 10
