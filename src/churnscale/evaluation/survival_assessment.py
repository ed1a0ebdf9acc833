"""A survival model judged on its hold-out: metrics, Kaplan–Meier calibration, leakage, report.

The metrics (:mod:`churnscale.evaluation.survival`) are taken on at most
:data:`METRIC_ROWS` hold-out customers (a seeded sample: Harrell's C compares every pair), the
censoring curve on the training side's durations. The integrated Brier score runs over
:data:`IBS_POINTS` times from the first horizon's tenth to the last horizon.

Leakage: a feature that almost determines the duration makes the model look far better than it
will be (Telco's ``TotalCharges`` ≈ tenure × ``MonthlyCharges`` lifts C from 0.86 to 0.98). A
numeric feature is named when it alone orders the durations (|Spearman| ≥
:data:`RANK_THRESHOLD`), or when it divided by another numeric feature does (``TotalCharges /
MonthlyCharges`` has 0.999 with Telco's tenure).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from matplotlib.figure import Figure

from churnscale.artifacts import write_atomically
from churnscale.evaluation import plots
from churnscale.evaluation import survival as sm
from churnscale.evaluation.leakage import LeakageWarning
from churnscale.evaluation.report import Plot, page_html
from churnscale.model.survival import horizon_label

METRIC_ROWS = 20_000
IBS_POINTS = 60
RANK_THRESHOLD = 0.95
#: Numeric features compared in pairs for the ratio check (the first ones of the schema).
RATIO_FEATURES = 40
TEMPLATE = "survival.html.j2"


@dataclass(frozen=True)
class Outcomes:
    """Durations and whether each ended in churn."""

    time: np.ndarray
    event: np.ndarray

    def sample(self, rows: int, seed: int = 0) -> np.ndarray:
        """Positions of at most ``rows`` of them (sorted; a seeded draw)."""
        if len(self.time) <= rows:
            return np.arange(len(self.time))
        return np.sort(np.random.default_rng(seed).choice(len(self.time), rows, replace=False))


@dataclass
class SurvivalAssessment:
    """What the report and ``--json`` show of a survival model."""

    metrics: dict[str, float]
    horizons: tuple[float, ...]
    calibration: list[sm.CalibrationGroup]
    warnings: list[LeakageWarning] = field(default_factory=list)
    importance: dict[str, float] = field(default_factory=dict)
    holdout_rows: int = 0
    events: int = 0

    def summary(self) -> dict[str, Any]:
        """The JSON-ready figures."""
        return {
            "metrics": {k: round(v, 6) for k, v in self.metrics.items()},
            "horizons": list(self.horizons),
            "km_calibration": [
                {"rows": g.rows, "predicted": g.predicted, "kaplan_meier": g.observed}
                for g in self.calibration
            ],
            "leakage_warnings": [w.message for w in self.warnings],
        }


def survival_metrics(
    train: Outcomes,
    holdout: Outcomes,
    risk: np.ndarray,
    curves: np.ndarray,
    times: np.ndarray,
    horizons: Sequence[float],
) -> dict[str, float]:
    """C (Harrell's, Uno's), IBS over ``times`` (``curves``: S at ``times``) and the AUC at
    each horizon. The IPCW metrics censor the hold-out where the training side's censoring
    curve reaches 0, if it does (their weights are 1 / G)."""
    t, e = holdout.time, holdout.event
    curve = sm.censoring_curve(train.time, train.event)
    ended = curve.times[curve.values <= 0]
    limit = float(ended[0]) if ended.size else float(np.inf)
    t_cut, e_cut = np.minimum(t, limit), e & (t < limit)
    metrics = {
        "c_harrell": sm.harrell_c(t, e, risk),
        "c_uno": sm.uno_c(train.time, train.event, t_cut, e_cut, risk, tau=limit),
        "ibs": sm.integrated_brier_score(train.time, train.event, t_cut, e_cut, curves, times),
    }
    at = np.asarray(horizons, np.float64)
    auc = sm.cumulative_dynamic_auc(train.time, train.event, t_cut, e_cut, risk, at)
    for horizon, value in zip(horizons, auc, strict=True):
        metrics[f"auc_{horizon_label(horizon)}"] = float(value)
    return metrics


def assess_survival(
    train: Outcomes,
    holdout: Outcomes,
    mu: np.ndarray,
    survival_at: Any,
    horizons: Sequence[float],
) -> SurvivalAssessment:
    """Metrics and calibration of predicted locations ``mu`` (``survival_at(mu, times)``
    gives curves) on a sample of the hold-out."""
    rows = holdout.sample(METRIC_ROWS)
    held = Outcomes(holdout.time[rows], holdout.event[rows])
    mu = mu[rows]
    last = float(max(horizons))
    times = np.linspace(min(horizons) / 10.0, last, IBS_POINTS)
    metrics = survival_metrics(train, held, -mu, survival_at(mu, times), times, horizons)
    at_last = survival_at(mu, np.array([last]))[:, 0]
    calibration = sm.km_calibration(held.time, held.event, at_last, last)
    errors = [abs(g.predicted - g.observed) for g in calibration]
    metrics["km_calibration_error"] = float(
        np.average(errors, weights=[g.rows for g in calibration])
    )
    events = int(held.event.sum())
    return SurvivalAssessment(
        metrics, tuple(horizons), calibration, holdout_rows=len(rows), events=events
    )


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 10:
        return 0.0
    ra = np.argsort(np.argsort(a[ok])).astype(np.float64)
    rb = np.argsort(np.argsort(b[ok])).astype(np.float64)
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def duration_leakage(
    sample: pa.Table, numeric: Sequence[str], duration: str
) -> list[LeakageWarning]:
    """Features that alone, or divided by another numeric feature, order the durations."""
    time = np.asarray(sample.column(duration).to_numpy(zero_copy_only=False), np.float64)
    values = {
        n: np.asarray(sample.column(n).to_numpy(zero_copy_only=False), np.float64)
        for n in list(numeric)[:RATIO_FEATURES]
    }
    found: dict[str, LeakageWarning] = {}
    for name, v in values.items():
        rho = abs(_spearman(v, time))
        if rho >= RANK_THRESHOLD:
            found[name] = LeakageWarning(
                name, rho, f"{name} alone orders the duration {duration} (|Spearman| {rho:.3f})"
            )
    for name, v in values.items():
        for other, w in values.items():
            if name == other or name in found:
                continue
            with np.errstate(divide="ignore", invalid="ignore"):
                rho = _spearman(v / w, time)  # the numerator grows with the duration
            if rho >= RANK_THRESHOLD:
                found[name] = LeakageWarning(
                    name,
                    rho,
                    f"{name} / {other} almost determines the duration {duration} "
                    f"(|Spearman| {rho:.3f}): {name} likely leaks it; drop it (--drop {name})",
                )
    return list(found.values())


def _calibration_figure(assessment: SurvivalAssessment) -> Any:
    def draw(fig: Figure) -> None:
        ax = fig.subplots()
        predicted = [g.predicted for g in assessment.calibration]
        observed = [g.observed for g in assessment.calibration]
        ax.plot([0, 1], [0, 1], color="#9ca3af", linestyle="--", label="perfect")
        ax.plot(predicted, observed, marker="o", color="#2563eb", label="risk groups")
        ax.set_xlabel(f"predicted S({horizon_label(assessment.horizons[-1])})")
        ax.set_ylabel("Kaplan–Meier S at the horizon")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(loc="upper left")

    return draw


def _auc_figure(assessment: SurvivalAssessment) -> Any:
    def draw(fig: Figure) -> None:
        ax = fig.subplots()
        labels = [horizon_label(h) for h in assessment.horizons]
        values = [assessment.metrics[f"auc_{h}"] for h in labels]
        ax.bar(labels, values, color="#2563eb")
        ax.set_ylim(0.5, 1.0)
        ax.set_xlabel("horizon")
        ax.set_ylabel("time-dependent AUC")

    return draw


def write_survival_report(
    assessment: SurvivalAssessment, path: Path, *, title: str, metadata: Mapping[str, Any]
) -> Path:
    """The HTML report of a survival model (self-contained, plots embedded)."""
    figures = [
        Plot("KM calibration", plots.render_png(_calibration_figure(assessment))),
        Plot("AUC by horizon", plots.render_png(_auc_figure(assessment))),
    ]
    if assessment.importance:
        top = dict(sorted(assessment.importance.items(), key=lambda kv: -kv[1])[:20])
        draw = plots.bars_figure(top, title="Feature importance (gain)", xlabel="total gain")
        figures.append(Plot("importance", plots.render_png(draw, size=plots.bars_size(len(top)))))
    page = page_html(TEMPLATE, title=title, metadata=metadata, assessment=assessment, plots=figures)
    write_atomically(path, page)
    return path
