"""The live drift window keeps exactly the last ``capacity`` rows and scores, whichever way they
arrive (one by one, sharing the prediction log's copy, or as batches), and never a caller's
buffer that is written again."""

from __future__ import annotations

import numpy as np

from churnscale.serving.feedback import PredictionLog
from churnscale.serving.monitoring import LiveWindow


def _held(window: LiveWindow) -> list[tuple[float, ...]]:
    rows, scores = window.snapshot()
    return sorted((*row, score) for row, score in zip(rows.tolist(), scores.tolist(), strict=True))


def test_an_empty_window_is_an_empty_snapshot() -> None:
    rows, scores = LiveWindow(4, 3).snapshot()
    assert rows.shape == (0, 3) and scores.shape == (0,)


def test_the_last_rows_are_kept_across_singles_and_batches() -> None:
    window = LiveWindow(5, 2)
    sent: list[tuple[float, ...]] = []
    batch = np.arange(6, dtype=np.float64).reshape(3, 2)
    window.add(batch, np.array([0.1, 0.2, 0.3]))
    sent += [(0.0, 1.0, 0.1), (2.0, 3.0, 0.2), (4.0, 5.0, 0.3)]
    batch[:] = -1  # the caller writes its matrix again: the window kept its own copy
    for i in range(4):
        window.add_one(np.array([10.0 + i, 20.0 + i]), 0.5 + i / 10)
        sent.append((10.0 + i, 20.0 + i, 0.5 + i / 10))
    assert len(window) == 5
    assert _held(window) == sorted(sent[-5:])
    big = np.arange(14, dtype=np.float64).reshape(7, 2)  # more rows than the window holds
    window.add(big, np.linspace(0, 1, 7))
    expected = [
        (*row, s) for row, s in zip(big.tolist(), np.linspace(0, 1, 7).tolist(), strict=True)
    ]
    assert _held(window) == sorted(expected[-5:])


def test_one_copy_is_shared_by_the_log_and_the_window() -> None:
    log, window = PredictionLog(capacity=10), LiveWindow(10, 3)
    row = np.array([1.0, 2.0, 3.0])  # the service's reused row buffer
    kept = log.record("C1", "v1", "a", 0.4, row)
    window.add_one(kept, 0.4)
    row[:] = 0.0  # the next request's encoding
    assert _held(window) == [(1.0, 2.0, 3.0, 0.4)]
    assert log.take("C1")[0].row is kept
