"""How well an uplift model ranks customers by the effect of an action, on randomized rows.

:func:`evaluate_uplift` takes the observed outcome, the arm and the predicted uplift of hold-out
rows of a randomized experiment and gives an :class:`UpliftEvaluation`: the normalised Qini and
uplift-curve areas (:mod:`churnscale.evaluation.uplift_curves`), the observed uplift of the top
30%, the observed uplift by decile of predicted uplift, the average effect with its confidence
interval, and what targeting the top *k*% is worth against treating everyone and no one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from churnscale.evaluation.uplift_curves import (
    Curve,
    qini_auc,
    qini_curve,
    uplift_auc,
    uplift_curve,
)

#: Shares of customers whose targeting value is reported.
TARGET_SHARES = (0.1, 0.2, 0.3, 0.5)
#: Points kept per curve for the report's plots.
CURVE_POINTS = 200
Z_95 = 1.959963984540054


@dataclass(frozen=True)
class Effect:
    """Observed difference in outcome rate, treated minus control, with a 95% interval."""

    rows: int
    rate_treated: float
    rate_control: float
    uplift: float
    low: float
    high: float


@dataclass(frozen=True)
class Targeting:
    """Incremental outcomes (per 1,000 customers) of treating the top ``share`` by predicted
    uplift, against treating everyone and no one (0)."""

    share: float
    incremental_top: float
    incremental_all: float
    uplift_top: float


@dataclass
class UpliftEvaluation:
    """An uplift model's ranking quality on randomized hold-out rows."""

    qini: float
    auuc: float
    uplift_at_30: float
    ate: Effect
    deciles: list[dict[str, float]]
    targeting: list[Targeting]
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def headline(self) -> dict[str, float]:
        """The figures tracked per run: normalised Qini, AUUC, top-30% uplift, average effect."""
        return {
            "qini": self.qini,
            "auuc": self.auuc,
            "uplift_at_30": self.uplift_at_30,
            "ate": self.ate.uplift,
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (without the curve points)."""
        return {
            **self.headline(),
            "ate_interval": [self.ate.low, self.ate.high],
            "ate_detail": asdict(self.ate),
            "deciles": self.deciles,
            "targeting": [asdict(t) for t in self.targeting],
        }


def effect(y: np.ndarray, treated: np.ndarray) -> Effect:
    """Difference in outcome rate between the arms with a normal-approximation 95% interval."""
    y, t = np.asarray(y, dtype=np.float64), np.asarray(treated).astype(bool)
    yt, yc = y[t], y[~t]
    if yt.size == 0 or yc.size == 0:
        nan = float("nan")
        return Effect(int(y.size), nan, nan, nan, nan, nan)
    diff = float(yt.mean() - yc.mean())
    se = (
        float(np.sqrt(yt.var(ddof=1) / yt.size + yc.var(ddof=1) / yc.size))
        if min(yt.size, yc.size) > 1
        else float("nan")
    )
    return Effect(
        int(y.size), float(yt.mean()), float(yc.mean()), diff, diff - Z_95 * se, diff + Z_95 * se
    )


def _best_first(uplift: np.ndarray) -> np.ndarray:
    """Row order by predicted uplift, highest first (ties in reverse row order, as
    scikit-uplift ranks them)."""
    return np.argsort(np.asarray(uplift, dtype=np.float64), kind="mergesort")[::-1]


def uplift_at(y: np.ndarray, uplift: np.ndarray, treated: np.ndarray, share: float) -> float:
    """Observed uplift of the top ``share`` of rows by predicted uplift (scikit-uplift's
    ``uplift_at_k`` with the ``overall`` strategy)."""
    order = _best_first(uplift)
    top = order[: int(share * order.size)]
    return effect(np.asarray(y)[top], np.asarray(treated)[top]).uplift


def by_decile(y: np.ndarray, uplift: np.ndarray, treated: np.ndarray) -> list[dict[str, float]]:
    """Observed and mean predicted uplift in each tenth of the rows, best predicted first."""
    order = _best_first(uplift)
    rows = []
    for decile, part in enumerate(np.array_split(order, 10), start=1):
        observed = effect(np.asarray(y)[part], np.asarray(treated)[part])
        rows.append(
            {
                "decile": float(decile),
                "rows": float(part.size),
                "predicted": float(np.mean(np.asarray(uplift)[part])) if part.size else 0.0,
                "observed": observed.uplift,
                "rate_treated": observed.rate_treated,
                "rate_control": observed.rate_control,
            }
        )
    return rows


def _thin(curve: Curve) -> dict[str, list[float]]:
    keep = np.unique(np.linspace(0, curve.x.size - 1, min(CURVE_POINTS, curve.x.size)).round())
    index = keep.astype(np.int64)
    return {"x": curve.x[index].tolist(), "y": curve.y[index].tolist()}


def evaluate_uplift(y: np.ndarray, uplift: np.ndarray, treated: np.ndarray) -> UpliftEvaluation:
    """Everything the report and ``--json`` show for predicted ``uplift`` on randomized rows."""
    ate = effect(y, treated)
    targeting = []
    for share in TARGET_SHARES:
        top = uplift_at(y, uplift, treated, share)
        targeting.append(Targeting(share, 1000.0 * share * top, 1000.0 * ate.uplift, top))
    qini = qini_curve(y, uplift, treated)
    random = Curve(np.array([0.0, qini.x[-1]]), np.array([0.0, qini.y[-1]]))
    return UpliftEvaluation(
        qini=qini_auc(y, uplift, treated),
        auuc=uplift_auc(y, uplift, treated),
        uplift_at_30=uplift_at(y, uplift, treated, 0.3),
        ate=ate,
        deciles=by_decile(y, uplift, treated),
        targeting=targeting,
        curves={
            "qini": _thin(qini),
            "uplift": _thin(uplift_curve(y, uplift, treated)),
            "random": _thin(random),
        },
    )
