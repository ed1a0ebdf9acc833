"""The HTML report of an uplift model: Qini and uplift curves, deciles, targeting, the effect.

Self-contained like the binary report (:mod:`churnscale.evaluation.report`): inline styles,
plots as base64 PNGs drawn by :func:`~churnscale.evaluation.plots.render_png`, text escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from churnscale.artifacts import write_atomically
from churnscale.evaluation import plots
from churnscale.evaluation.report import Plot, page_html
from churnscale.evaluation.uplift import UpliftEvaluation

TEMPLATE = "uplift.html.j2"


def curve_figure(
    evaluation: UpliftEvaluation, name: str, *, ylabel: str
) -> Callable[[Figure], None]:
    """The ``name`` curve (qini or uplift) against random targeting, by rows targeted."""
    curve, random = evaluation.curves[name], evaluation.curves["random"]

    def draw(figure: Figure) -> None:
        ax = figure.subplots()
        total = max(curve["x"][-1], 1.0)
        share = np.asarray(curve["x"]) / total
        ax.plot(share, curve["y"], color=plots.MODEL_COLOUR, linewidth=2, label="model")
        if name == "qini":
            ax.plot(
                np.asarray(random["x"]) / total,
                random["y"],
                linestyle="--",
                color=plots.BASELINE_COLOUR,
                label="random",
            )
        ax.set_title(f"{name.capitalize()} curve")
        ax.set_xlabel("share of customers targeted (highest predicted uplift first)")
        ax.set_ylabel(ylabel)
        ax.legend(loc="best")

    return draw


def deciles_figure(evaluation: UpliftEvaluation) -> Callable[[Figure], None]:
    """Observed uplift by decile of predicted uplift, with the predicted mean beside it."""

    def draw(figure: Figure) -> None:
        ax = figure.subplots()
        deciles = np.arange(1, len(evaluation.deciles) + 1)
        observed = [d["observed"] for d in evaluation.deciles]
        predicted = [d["predicted"] for d in evaluation.deciles]
        ax.bar(deciles - 0.2, observed, width=0.4, color=plots.MODEL_COLOUR, label="observed")
        ax.bar(deciles + 0.2, predicted, width=0.4, color=plots.SECOND_COLOUR, label="predicted")
        ax.axhline(
            evaluation.ate.uplift, linestyle="--", color=plots.ACCENT_COLOUR, label="average effect"
        )
        ax.set_xticks(deciles)
        ax.set_title("Uplift by decile")
        ax.set_xlabel("decile of predicted uplift (1 = highest)")
        ax.set_ylabel("treated rate − control rate")
        ax.legend(loc="best")

    return draw


def render_uplift_report(
    evaluation: UpliftEvaluation,
    *,
    path: Path,
    title: str,
    cv: Mapping[str, list[float]] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write the uplift report of ``evaluation`` to ``path`` (atomically) and return it."""
    figures = [
        Plot(
            "Qini curve",
            plots.render_png(curve_figure(evaluation, "qini", ylabel="incremental outcomes")),
        ),
        Plot(
            "Uplift curve",
            plots.render_png(
                curve_figure(evaluation, "uplift", ylabel="uplift × customers targeted")
            ),
        ),
        Plot(
            "Uplift by decile",
            plots.render_png(deciles_figure(evaluation), size=(12.0, 4.6)),
            wide=True,
        ),
    ]
    cv_rows = [
        (name, float(np.mean(values)), float(np.std(values))) for name, values in (cv or {}).items()
    ]
    page = page_html(
        TEMPLATE, title=title, metadata=metadata, evaluation=evaluation, plots=figures, cv=cv_rows
    )
    write_atomically(path, page)
    return path
