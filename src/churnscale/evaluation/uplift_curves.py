"""Qini and uplift curves and their normalised areas, as scikit-uplift defines them.

Every function takes the observed outcome ``y`` (0/1), the predicted ``uplift`` and the arm
``treated`` (0/1) of the same rows. Customers are ranked by predicted uplift, highest first;
ties are one step (their rows enter the curve together), so the result does not depend on the
order of tied rows. At each step *n* (rows targeted so far):

- the **Qini curve** is ``Y_t(n) − Y_c(n) · N_t(n) / N_c(n)``: the treated responders in the
  top *n* minus the control responders scaled to the treated count (incremental responders);
- the **uplift curve** is ``(Y_t/N_t − Y_c/N_c) · n``: the uplift of the top *n* times *n*.

The normalised areas (``qini_auc``, ``uplift_auc``) divide the area between a curve and the
random-targeting diagonal by the same area of the perfect ranking (scikit-uplift's
``qini_auc_score`` with negative effects, and ``uplift_auc_score``): 1 is perfect, 0 random.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from churnscale.exceptions import ConfigError


@dataclass(frozen=True)
class Curve:
    """Points of a curve: rows targeted (``x``, from 0) and the curve's value there (``y``)."""

    x: np.ndarray
    y: np.ndarray

    def area(self) -> float:
        """Trapezoidal area under the curve."""
        return float(np.trapezoid(self.y, self.x))


def _binary(name: str, values: np.ndarray) -> np.ndarray:
    array = np.asarray(values)
    if array.size and not np.isin(array, (0, 1)).all():
        raise ConfigError(name, expected="0/1 values", received=sorted(set(array.tolist()))[:5])
    return array.astype(np.float64)


def _cumulative(y: np.ndarray, uplift: np.ndarray, treated: np.ndarray) -> tuple[np.ndarray, ...]:
    """Counts at each distinct predicted uplift, best first: rows, treated, treated and
    control responders."""
    y, t = _binary("outcome", y), _binary("treatment", treated)
    score = np.asarray(uplift, dtype=np.float64)
    if not (y.shape == t.shape == score.shape):
        raise ConfigError("uplift", expected=f"{y.shape[0]} rows", received=score.shape[0])
    order = np.argsort(score, kind="mergesort")[::-1]
    y, t, score = y[order], t[order], score[order]
    steps = np.r_[np.flatnonzero(np.diff(score)), score.size - 1]
    n_all = (steps + 1).astype(np.float64)
    n_t = np.cumsum(t)[steps]
    y_t = np.cumsum(y * t)[steps]
    y_c = np.cumsum(y * (1.0 - t))[steps]
    return n_all, n_t, y_t, y_c


def _from_origin(x: np.ndarray, y: np.ndarray) -> Curve:
    if x.size == 0 or x[0] != 0 or y[0] != 0:
        x, y = np.r_[0.0, x], np.r_[0.0, y]
    return Curve(x, y)


def qini_curve(y: np.ndarray, uplift: np.ndarray, treated: np.ndarray) -> Curve:
    """Incremental responders among the top *n* (control scaled to the treated count)."""
    n_all, n_t, y_t, y_c = _cumulative(y, uplift, treated)
    n_c = n_all - n_t
    ratio = np.divide(n_t, n_c, out=np.zeros_like(n_t), where=n_c != 0)
    return _from_origin(n_all, y_t - y_c * ratio)


def uplift_curve(y: np.ndarray, uplift: np.ndarray, treated: np.ndarray) -> Curve:
    """Uplift of the top *n* times *n*."""
    n_all, n_t, y_t, y_c = _cumulative(y, uplift, treated)
    n_c = n_all - n_t
    rate_t = np.divide(y_t, n_t, out=np.zeros_like(y_t), where=n_t != 0)
    rate_c = np.divide(y_c, n_c, out=np.zeros_like(y_c), where=n_c != 0)
    return _from_origin(n_all, (rate_t - rate_c) * n_all)


def _normalised(actual: Curve, perfect: Curve) -> float:
    diagonal = Curve(np.array([0.0, perfect.x[-1]]), np.array([0.0, perfect.y[-1]])).area()
    best = perfect.area() - diagonal
    return float((actual.area() - diagonal) / best) if best != 0 else float("nan")


def qini_auc(y: np.ndarray, uplift: np.ndarray, treated: np.ndarray) -> float:
    """Normalised area under the Qini curve (perfect ranking = 1, random = 0)."""
    yy, tt = np.asarray(y, dtype=np.float64), np.asarray(treated, dtype=np.float64)
    perfect = qini_curve(yy, yy * tt - yy * (1.0 - tt), tt)
    return _normalised(qini_curve(yy, uplift, tt), perfect)


def uplift_auc(y: np.ndarray, uplift: np.ndarray, treated: np.ndarray) -> float:
    """Normalised area under the uplift curve (perfect ranking = 1, random = 0)."""
    yy, tt = np.asarray(y, dtype=np.float64), np.asarray(treated, dtype=np.float64)
    control_responders = np.sum((yy == 1) & (tt == 0))
    treated_non_responders = np.sum((yy == 0) & (tt == 1))
    summand = yy if control_responders > treated_non_responders else tt
    perfect = uplift_curve(yy, 2.0 * (yy == tt) + summand, tt)
    return _normalised(uplift_curve(yy, uplift, tt), perfect)
