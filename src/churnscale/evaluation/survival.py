"""Survival metrics: concordance, Brier scores, time-dependent AUC and Kaplan–Meier calibration.

The definitions are scikit-survival's (0.28), written here in numpy so the project does not
depend on it at run time; tests hold each one equal to scikit-survival's to 1e-12:

- :func:`harrell_c`: Harrell's concordance (``concordance_index_censored``); with
  ``weights`` it is Uno's (``concordance_index_ipcw``, via :func:`uno_c`).
- :func:`brier_scores`, :func:`integrated_brier_score`: inverse-probability-of-censoring
  weighted Brier scores of the survival probabilities (``brier_score``,
  ``integrated_brier_score``).
- :func:`cumulative_dynamic_auc`: AUC at ``t`` of customers who churned by ``t`` against those
  still there (``cumulative_dynamic_auc``, per time).

The censoring distribution is the reverse Kaplan–Meier of the *training* rows, as there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Risk scores within this of each other count as tied (half concordant).
TIED_TOL = 1e-8
#: Rows of a comparison block in :func:`harrell_c` (bounds memory at block × rows booleans).
BLOCK = 512


@dataclass(frozen=True)
class StepCurve:
    """A right-continuous step function: ``values[k]`` from ``times[k]`` until the next."""

    times: np.ndarray
    values: np.ndarray

    def at(self, t: np.ndarray) -> np.ndarray:
        """The curve at each of ``t`` (1 before the first time)."""
        index = np.searchsorted(self.times, np.asarray(t, np.float64), side="right") - 1
        out = np.ones(len(index), dtype=np.float64)
        known = index >= 0
        out[known] = self.values[index[known]]
        return out


def kaplan_meier(time: np.ndarray, event: np.ndarray, *, reverse: bool = False) -> StepCurve:
    """The Kaplan–Meier survival curve; ``reverse``: of the censoring times (events at a time
    leave the risk set before the censorings there)."""
    time = np.asarray(time, np.float64)
    event = np.asarray(event, bool)
    unique, inverse = np.unique(time, return_inverse=True)
    events: np.ndarray = np.bincount(inverse, weights=event, minlength=len(unique))
    total = np.bincount(inverse, minlength=len(unique)).astype(np.float64)
    at_risk: np.ndarray = total[::-1].cumsum()[::-1]
    if reverse:
        at_risk, events = at_risk - events, total - events
    ratio = np.divide(events, at_risk, out=np.zeros_like(events), where=at_risk != 0)
    return StepCurve(unique, np.cumprod(1.0 - ratio))


def censoring_weights(
    train_time: np.ndarray, train_event: np.ndarray, time: np.ndarray, event: np.ndarray
) -> np.ndarray:
    """1 / G(t_i) for each event (0 for censored rows), G the training rows' censoring curve."""
    g = censoring_curve(train_time, train_event).at(np.asarray(time)[np.asarray(event, bool)])
    if (g == 0.0).any():
        raise ValueError("the censoring curve is zero at an event time; censor the data earlier")
    weights = np.zeros(len(time), dtype=np.float64)
    weights[np.asarray(event, bool)] = 1.0 / g
    return weights


def censoring_curve(train_time: np.ndarray, train_event: np.ndarray) -> StepCurve:
    """G(t), the probability of not being censored by ``t`` (1 everywhere without censoring)."""
    if np.asarray(train_event, bool).all():
        unique = np.unique(np.asarray(train_time, np.float64))
        return StepCurve(unique, np.ones(len(unique)))
    return kaplan_meier(train_time, train_event, reverse=True)


def harrell_c(
    time: np.ndarray, event: np.ndarray, risk: np.ndarray, *, weights: np.ndarray | None = None
) -> float:
    """Share of comparable pairs ordered by risk: an event at ``t_i`` against every customer
    still there after ``t_i`` (or censored at ``t_i``); ties in risk count one half."""
    time = np.asarray(time, np.float64)
    event = np.asarray(event, bool)
    risk = np.asarray(risk, np.float64)
    w = np.ones(len(time)) if weights is None else np.asarray(weights, np.float64)
    cases = np.flatnonzero(event)
    numerator = denominator = 0.0
    for start in range(0, len(cases), BLOCK):
        i = cases[start : start + BLOCK]
        ti, ri = time[i][:, None], risk[i][:, None]
        comparable = (time[None, :] > ti) | ((time[None, :] == ti) & ~event[None, :])
        tied = np.abs(risk[None, :] - ri) <= TIED_TOL
        concordant = (risk[None, :] < ri) & ~tied
        score = (comparable & concordant).sum(1) + 0.5 * (comparable & tied).sum(1)
        numerator += float((w[i] * score).sum())
        denominator += float((w[i] * comparable.sum(1)).sum())
    if denominator == 0:
        raise ValueError("no comparable pairs: the data needs at least one event before others")
    return numerator / denominator


def uno_c(
    train_time: np.ndarray,
    train_event: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    risk: np.ndarray,
    *,
    tau: float | None = None,
) -> float:
    """Uno's concordance: Harrell's with pairs weighted by 1 / G(t_i)², events before ``tau``."""
    time = np.asarray(time, np.float64)
    event = np.asarray(event, bool)
    keep = np.ones(len(time), bool) if tau is None else time < tau
    weights = np.zeros(len(time))
    weights[keep] = censoring_weights(train_time, train_event, time[keep], event[keep])
    return harrell_c(time, event, risk, weights=np.square(weights))


def brier_scores(
    train_time: np.ndarray,
    train_event: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    survival: np.ndarray,
    times: np.ndarray,
) -> np.ndarray:
    """The weighted Brier score of ``survival`` (rows × ``times``) at each of ``times``."""
    curve = censoring_curve(train_time, train_event)
    g_t = curve.at(times)
    g_y = curve.at(time)
    g_t[g_t == 0] = np.inf
    g_y[g_y == 0] = np.inf
    time = np.asarray(time, np.float64)[:, None]
    event = np.asarray(event, bool)[:, None]
    case = (time <= times[None, :]) & event
    control = time > times[None, :]
    terms = np.square(survival) * case / g_y[:, None] + np.square(1 - survival) * control / g_t
    return np.asarray(terms.mean(axis=0), dtype=np.float64)


def integrated_brier_score(
    train_time: np.ndarray,
    train_event: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    survival: np.ndarray,
    times: np.ndarray,
) -> float:
    """The Brier score averaged over ``times`` (trapezoids, divided by their span)."""
    times = np.asarray(times, np.float64)
    scores = brier_scores(train_time, train_event, time, event, survival, times)
    return float(np.trapezoid(scores, times) / (times[-1] - times[0]))


def cumulative_dynamic_auc(
    train_time: np.ndarray,
    train_event: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    risk: np.ndarray,
    times: np.ndarray,
) -> np.ndarray:
    """AUC at each ``t``: churned by ``t`` (weighted 1 / G(t_i)) against still there after
    ``t``; ``risk`` is one score per row or one column per time."""
    time = np.asarray(time, np.float64)
    event = np.asarray(event, bool)
    weights = censoring_weights(train_time, train_event, time, event)
    risk = np.asarray(risk, np.float64)
    columns = risk if risk.ndim == 2 else np.repeat(risk[:, None], len(times), axis=1)
    out = np.empty(len(times), dtype=np.float64)
    for k, t in enumerate(np.asarray(times, np.float64)):
        case = (time <= t) & event
        controls = np.sort(columns[time > t, k])
        r = columns[case, k]
        below = np.searchsorted(controls, r - TIED_TOL, side="left")
        tied = np.searchsorted(controls, r + TIED_TOL, side="right") - below
        wins = (below + 0.5 * tied) * weights[case]
        out[k] = wins.sum() / (weights[case].sum() * len(controls))
    return out


@dataclass(frozen=True)
class CalibrationGroup:
    """One risk group: its size, mean predicted and Kaplan–Meier survival at the horizon."""

    rows: int
    predicted: float
    observed: float


def km_calibration(
    time: np.ndarray, event: np.ndarray, survival_at: np.ndarray, horizon: float, groups: int = 10
) -> list[CalibrationGroup]:
    """Predicted against Kaplan–Meier survival at ``horizon`` in ``groups`` groups of equal
    size by predicted survival (lowest first)."""
    order = np.argsort(survival_at, kind="stable")
    out = []
    for part in np.array_split(order, min(groups, len(order))):
        curve = kaplan_meier(time[part], event[part])
        observed = float(curve.at(np.array([horizon]))[0])
        out.append(CalibrationGroup(len(part), float(survival_at[part].mean()), observed))
    return out
