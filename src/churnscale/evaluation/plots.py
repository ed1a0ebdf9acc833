"""Evaluation plots drawn with matplotlib's Agg canvas and returned as base64 PNG.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot), so drawing keeps
no global figure state and needs no display. Text never goes through mathtext, so a feature
named ``$x$`` is drawn as written.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Mapping
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import StrMethodFormatter

from churnscale.evaluation.metrics import Evaluation

MODEL_COLOUR = "#2563eb"
BASELINE_COLOUR = "#9ca3af"
ACCENT_COLOUR = "#dc2626"
SECOND_COLOUR = "#0d9488"
#: Bars shown in the importance and contribution plots.
TOP_FEATURES = 20

STYLE: dict[Any, Any] = {
    "font.size": 11,
    "axes.titlesize": 13,
    "axes.titleweight": "bold",
    "axes.labelsize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#e5e7eb",
    "grid.linewidth": 0.8,
    "legend.frameon": False,
    "legend.fontsize": 10,
    "figure.dpi": 110,
    "savefig.dpi": 110,
    "text.parse_math": False,
}


def render_png(draw: Callable[[Figure], None], *, size: tuple[float, float] = (6.4, 4.6)) -> str:
    """Call ``draw`` on a fresh figure and return the PNG as base64 text."""
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=size, layout="constrained")
        draw(figure)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", facecolor="white")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _diagonal(ax: Axes, label: str) -> None:
    ax.plot([0, 1], [0, 1], linestyle="--", color=BASELINE_COLOUR, linewidth=1.2, label=label)


def _unit_square(ax: Axes) -> None:
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)


def roc_figure(evaluation: Evaluation) -> Callable[[Figure], None]:
    """ROC curve with the chance diagonal."""

    def draw(figure: Figure) -> None:
        ax = figure.subplots()
        curve = evaluation.roc_curve
        ax.plot(curve.x, curve.y, color=MODEL_COLOUR, linewidth=2.2, label="model")
        ax.fill_between(curve.x, curve.y, color=MODEL_COLOUR, alpha=0.08)
        _diagonal(ax, "chance (AUC 0.5)")
        _unit_square(ax)
        ax.set_title(f"ROC curve · AUC {evaluation.roc_auc:.3f}")
        ax.set_xlabel("false positive rate (stayers flagged)")
        ax.set_ylabel("true positive rate (churners found)")
        ax.legend(loc="lower right")

    return draw


def pr_figure(evaluation: Evaluation) -> Callable[[Figure], None]:
    """Precision-recall curve with the base-rate line."""

    def draw(figure: Figure) -> None:
        ax = figure.subplots()
        curve = evaluation.pr_curve
        ax.plot(curve.x, curve.y, color=MODEL_COLOUR, linewidth=2.2, label="model")
        rate = evaluation.base_rate
        ax.axhline(rate, linestyle="--", color=BASELINE_COLOUR, label=f"base rate {rate:.1%}")
        _unit_square(ax)
        ax.set_title(f"Precision-recall · AP {evaluation.pr_auc:.3f}")
        ax.set_xlabel("recall (share of churners found)")
        ax.set_ylabel("precision (share of flagged who churn)")
        ax.legend(loc="upper right")

    return draw


def calibration_figure(evaluation: Evaluation) -> Callable[[Figure], None]:
    """Reliability diagram over a histogram of the scores."""

    def draw(figure: Figure) -> None:
        top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1])
        bins = evaluation.calibration
        predicted = [b.mean_predicted for b in bins]
        observed = [b.observed_rate for b in bins]
        _diagonal(top, "perfectly calibrated")
        top.plot(predicted, observed, marker="o", color=MODEL_COLOUR, linewidth=2, label="model")
        _unit_square(top)
        top.set_title(f"Calibration · ECE {evaluation.ece:.3f}")
        top.set_ylabel("observed churn rate")
        top.legend(loc="upper left")
        lower = [b.lower for b in bins]
        widths = [b.upper - b.lower for b in bins]
        counts = [b.count for b in bins]
        bottom.bar(lower, counts, width=widths, align="edge", color=MODEL_COLOUR, alpha=0.35)
        bottom.set_xlabel("mean predicted probability")
        bottom.set_ylabel("customers")
        bottom.grid(axis="x", visible=False)

    return draw


def gains_figure(evaluation: Evaluation) -> Callable[[Figure], None]:
    """Cumulative gains curve beside lift by decile."""

    def draw(figure: Figure) -> None:
        gains, lift = figure.subplots(1, 2)
        rows = evaluation.deciles
        share = [0.0] + [d.cumulative_customers / evaluation.rows for d in rows]
        gain = [0.0] + [d.cumulative_gain for d in rows]
        rate = evaluation.base_rate
        gains.plot(share, gain, marker="o", color=MODEL_COLOUR, linewidth=2.2, label="model")
        gains.plot([0, rate, 1], [0, 1, 1], color=SECOND_COLOUR, linestyle=":", label="perfect")
        _diagonal(gains, "random")
        _unit_square(gains)
        gains.set_title("Cumulative gains")
        gains.set_xlabel("share of customers contacted")
        gains.set_ylabel("share of churners found")
        gains.legend(loc="lower right")
        numbers = [d.decile for d in rows]
        lift.bar(numbers, [d.lift for d in rows], color=MODEL_COLOUR, alpha=0.85)
        lift.axhline(1.0, linestyle="--", color=BASELINE_COLOUR, label="random (lift 1)")
        lift.set_xticks(numbers)
        lift.set_title(f"Lift by decile · top {evaluation.top_decile_lift:.2f}×")
        lift.set_xlabel("decile (1 = highest scores)")
        lift.set_ylabel("churn rate ÷ base rate")
        lift.grid(axis="x", visible=False)
        lift.legend(loc="upper right")

    return draw


def profit_figure(evaluation: Evaluation) -> Callable[[Figure], None]:
    """Campaign profit against the score threshold, with the best threshold marked."""

    def draw(figure: Figure) -> None:
        ax = figure.subplots()
        curve = evaluation.profit
        ax.plot(curve.thresholds, curve.profit, color=MODEL_COLOUR, linewidth=2.2)
        ax.axhline(0.0, color=BASELINE_COLOUR, linewidth=1.0)
        if curve.best_threshold is not None:
            best = curve.best_threshold
            ax.axvline(best, color=ACCENT_COLOUR, linestyle="--", linewidth=1.2)
            ax.plot([best], [curve.best_profit], "o", color=ACCENT_COLOUR, markersize=8)
            note = (
                f"best threshold {best:.3f}\nprofit {curve.best_profit:,.0f}\n"
                f"contact {curve.best_share_contacted:.1%}"
            )
            right = best < 0.5  # put the note on the side away from the peak
            ax.text(
                0.97 if right else 0.03,
                0.95,
                note,
                transform=ax.transAxes,
                ha="right" if right else "left",
                va="top",
                color=ACCENT_COLOUR,
                bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": ACCENT_COLOUR},
            )
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
        ax.set_xlim(0, 1)
        ax.set_title("Campaign profit by threshold")
        ax.set_xlabel("contact customers with score ≥ threshold")
        ax.set_ylabel("expected profit")

    return draw


def bars_figure(
    values: Mapping[str, float], *, title: str, xlabel: str
) -> Callable[[Figure], None]:
    """Horizontal bars of the :data:`TOP_FEATURES` largest values, largest at the top."""
    top = sorted(values.items(), key=lambda item: -abs(item[1]))[:TOP_FEATURES]

    def draw(figure: Figure) -> None:
        ax = figure.subplots()
        names = [name for name, _ in reversed(top)]
        positions = np.arange(len(names))
        ax.barh(positions, [v for _, v in reversed(top)], color=MODEL_COLOUR, alpha=0.85)
        ax.set_yticks(positions, labels=names)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.grid(axis="y", visible=False)

    return draw


def bars_size(count: int) -> tuple[float, float]:
    """Figure size that gives each of ``count`` bars room for its label."""
    return (7.0, 1.4 + 0.28 * min(count, TOP_FEATURES))
