"""The prediction log behind /v1/feedback is bounded in bytes as well as in entries."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from churnscale.serving.feedback import PredictionLog


def _fill(log: PredictionLog, n: int, *, id_length: int, width: int = 24) -> None:
    row = np.arange(width, dtype=np.float64)
    for i in range(n):
        customer = f"{i:0{id_length}d}"
        log.record(customer, "v1", "a", 0.5, row)
        log.record(customer, "v2", "b", 0.25, row)


@pytest.mark.parametrize("id_length", [8, 256])
def test_the_byte_count_is_an_upper_bound_of_the_memory_held(id_length: int) -> None:
    log = PredictionLog(capacity=10**6, max_bytes=10**9)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    _fill(log, 5_000, id_length=id_length)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(log) == 5_000
    assert held <= log.bytes <= 3 * held, (held, log.bytes)


def test_a_log_filled_past_its_byte_bound_evicts_the_oldest() -> None:
    log = PredictionLog(capacity=10**6, max_bytes=1024**2)
    _fill(log, 10_000, id_length=200)
    assert log.bytes <= 1024**2
    assert 0 < len(log) < 10_000
    assert log.take(f"{0:0200d}") == []  # the oldest left first
    newest = log.take(f"{9_999:0200d}")
    assert [p.version for p in newest] == ["v1", "v2"]
    before = log.bytes
    assert log.take(f"{9_998:0200d}") and log.bytes < before  # take gives its bytes back


def test_replacing_a_prediction_keeps_the_count_steady() -> None:
    log = PredictionLog(capacity=10, max_bytes=10**6)
    row = np.zeros(24)
    log.record("C1", "v1", "a", 0.1, row)
    once = log.bytes
    for _ in range(100):
        log.record("C1", "v1", "a", 0.2, row)
    assert log.bytes == once
    log.take("C1")
    assert log.bytes == 0
