"""Checks on the arrays and settings the evaluation functions receive.

Each check returns a clean numpy array (or number) or raises
:class:`~churnscale.exceptions.EvaluationError` naming the argument, what was expected and what
was received, with the index of the first offending value.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from churnscale.exceptions import EvaluationError

FloatArray = npt.NDArray[np.float64]


def _one_dimensional(values: Any, *, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise EvaluationError(name, expected="a 1-D array", received=f"shape {array.shape}")
    if array.size == 0:
        raise EvaluationError(name, expected="at least one value", received="an empty array")
    return array


def _same_length(array: np.ndarray, *, name: str, rows: int | None) -> None:
    if rows is not None and array.size != rows:
        raise EvaluationError(
            name, expected=f"{rows} values (one per row of y_true)", received=f"{array.size}"
        )


def _first_bad(mask: np.ndarray, array: np.ndarray) -> str:
    index, count = int(np.flatnonzero(mask)[0]), int(mask.sum())
    value = array[index]
    shown = value.item() if isinstance(value, np.generic) else value
    return f"{count} bad value{'s' if count > 1 else ''} (first at index {index}: {shown!r})"


def check_labels(values: Any, *, name: str = "y_true", rows: int | None = None) -> np.ndarray:
    """Binary labels as int8 0/1; both classes must be present."""
    array = _one_dimensional(values, name=name)
    _same_length(array, name=name, rows=rows)
    if array.dtype == bool:
        array = array.astype(np.int8)
    if array.dtype.kind not in "iuf":
        raise EvaluationError(
            name, expected="numeric or boolean labels 0/1", received=f"dtype {array.dtype}"
        )
    bad = ~np.isin(array, (0, 1))
    if bad.any():
        raise EvaluationError(name, expected="labels in {0, 1}", received=_first_bad(bad, array))
    labels = array.astype(np.int8)
    positives = int(labels.sum())
    if positives in (0, labels.size):
        only = "1 (churned)" if positives else "0 (stayed)"
        raise EvaluationError(
            name, expected="both classes present", received=f"only label {only}, {labels.size} rows"
        )
    return labels


def check_probabilities(
    values: Any, *, name: str = "y_score", rows: int | None = None
) -> FloatArray:
    """Scores as float64 probabilities: finite and within [0, 1]."""
    array = _one_dimensional(values, name=name)
    _same_length(array, name=name, rows=rows)
    if array.dtype.kind not in "iufb":
        raise EvaluationError(name, expected="numeric scores", received=f"dtype {array.dtype}")
    scores: FloatArray = array.astype(np.float64)
    bad = ~np.isfinite(scores)
    if bad.any():
        raise EvaluationError(name, expected="finite scores", received=_first_bad(bad, scores))
    bad = (scores < 0.0) | (scores > 1.0)
    if bad.any():
        raise EvaluationError(
            name, expected="probabilities in [0, 1]", received=_first_bad(bad, scores)
        )
    return scores


def check_amounts(values: Any, *, name: str, rows: int) -> FloatArray:
    """A finite float64 amount per customer (for example the value of retaining them)."""
    array = _one_dimensional(values, name=name)
    _same_length(array, name=name, rows=rows)
    if array.dtype.kind not in "iuf":
        raise EvaluationError(name, expected="numeric amounts", received=f"dtype {array.dtype}")
    amounts: FloatArray = array.astype(np.float64)
    bad = ~np.isfinite(amounts)
    if bad.any():
        raise EvaluationError(name, expected="finite amounts", received=_first_bad(bad, amounts))
    return amounts


def check_number(
    value: float, *, name: str, low: float | None = None, high: float | None = None
) -> float:
    """A finite number, optionally within ``[low, high]``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise EvaluationError(name, expected="a number", received=repr(value)) from None
    too_low = low is not None and number < low
    too_high = high is not None and number > high
    if not math.isfinite(number) or too_low or too_high:
        bounds = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        raise EvaluationError(name, expected=f"a finite number in {bounds}", received=repr(value))
    return number
