"""One self-contained HTML drift report: PSI per feature, the score distribution, every bin.

Same look and machinery as the evaluation report (:mod:`churnscale.evaluation.plots`: Agg
canvas, base64 PNG, no external references; Jinja2 with autoescaping; atomic write).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from churnscale.artifacts import write_atomically
from churnscale.evaluation import plots
from churnscale.evaluation.report import Plot, page_templates
from churnscale.exceptions import ConfigError
from churnscale.monitoring.drift import DriftReport, FeatureDrift
from churnscale.version import __version__

TEMPLATE = "drift.html.j2"
#: Features drawn bin by bin: every drifting one, then the largest PSI, up to this many.
DISTRIBUTION_PLOTS = 6


def psi_figure(report: DriftReport) -> Callable[[Figure], None]:
    """Horizontal PSI bars for every feature, drifting ones in red, the threshold dashed."""
    ranked = sorted(report.features, key=lambda f: f.psi)

    def draw(figure: Figure) -> None:
        ax = figure.subplots()
        positions = np.arange(len(ranked))
        colours = [plots.ACCENT_COLOUR if f.drifted else plots.MODEL_COLOUR for f in ranked]
        ax.barh(positions, [f.psi for f in ranked], color=colours, alpha=0.85)
        ax.axvline(report.thresholds.psi, color=plots.BASELINE_COLOUR, linestyle="--")
        ax.set_yticks(positions, labels=[f.name for f in ranked])
        ax.set_xlabel(f"PSI (threshold {report.thresholds.psi:g}, dashed)")
        ax.set_title("Population stability index by feature")
        ax.grid(axis="y", visible=False)

    return draw


def distribution_figure(feature: FeatureDrift) -> Callable[[Figure], None]:
    """Reference and current share of every bin of one feature, side by side."""

    def draw(figure: Figure) -> None:
        ax = figure.subplots()
        positions = np.arange(len(feature.bins))
        ax.bar(
            positions - 0.2, feature.reference, 0.4, label="reference", color=plots.BASELINE_COLOUR
        )
        colour = plots.ACCENT_COLOUR if feature.drifted else plots.MODEL_COLOUR
        ax.bar(positions + 0.2, feature.current, 0.4, label="current", color=colour)
        ax.set_xticks(positions, labels=feature.bins, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("share of rows")
        ax.set_title(f"{feature.name} — PSI {feature.psi:.3f}")
        ax.legend()

    return draw


def _plots(report: DriftReport) -> list[Plot]:
    height = 1.4 + 0.28 * len(report.features)
    figures = [Plot("PSI", plots.render_png(psi_figure(report), size=(7.0, height)))]
    figures.append(Plot("prediction", plots.render_png(distribution_figure(report.prediction))))
    chosen = sorted(report.features, key=lambda f: (not f.drifted, -f.psi))[:DISTRIBUTION_PLOTS]
    figures += [Plot(f.name, plots.render_png(distribution_figure(f))) for f in chosen]
    return figures


def render_drift_report(
    report: DriftReport, *, path: Path, title: str, metadata: Mapping[str, Any] | None = None
) -> Path:
    """Write the HTML drift report to ``path`` (atomically) and return the path."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError("--report", expected="a file path for the report", received=str(path))
    page = (
        page_templates("churnscale.monitoring")
        .get_template(TEMPLATE)
        .render(
            title=title,
            generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            version=__version__,
            report=report,
            summary=report.summary(),
            plots=_plots(report),
            metadata=sorted((metadata or {}).items()),
        )
    )
    write_atomically(path, page)
    return path
