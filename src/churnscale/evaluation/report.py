"""One self-contained HTML evaluation report: metric cards, leakage warnings, embedded plots.

The page has no external references: styles are inline and every plot is a base64 PNG. Text
(feature names, metadata, titles) is HTML-escaped by Jinja2's autoescaping.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from matplotlib.figure import Figure

from churnscale.artifacts import write_atomically
from churnscale.evaluation import plots
from churnscale.evaluation.leakage import LeakageWarning
from churnscale.evaluation.metrics import Evaluation
from churnscale.exceptions import EvaluationError
from churnscale.version import __version__

TEMPLATE = "report.html.j2"

#: Card label and number format of each headline metric.
CARDS = {
    "roc_auc": ("ROC AUC", "{:.3f}"),
    "pr_auc": ("PR AUC (AP)", "{:.3f}"),
    "log_loss": ("Log loss", "{:.4f}"),
    "brier": ("Brier score", "{:.4f}"),
    "ece": ("Calibration error (ECE)", "{:.4f}"),
    "top_decile_lift": ("Top-decile lift", "{:.2f}×"),
    "best_profit": ("Best campaign profit", "{:,.0f}"),
}


@dataclass(frozen=True)
class Plot:
    """One embedded figure."""

    title: str
    png_base64: str
    wide: bool = False


def page_templates(package: str = "churnscale.evaluation") -> Environment:
    """The Jinja2 environment of the HTML pages whose templates are in ``package``
    (autoescaped; an undefined name is an error)."""
    return Environment(
        loader=PackageLoader(package, "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _plot(title: str, draw: Callable[[Figure], None], **kwargs: Any) -> Plot:
    size = kwargs.pop("size", (6.4, 4.6))
    return Plot(title=title, png_base64=plots.render_png(draw, size=size), **kwargs)


def _plots(
    evaluation: Evaluation,
    importance: Mapping[str, float] | None,
    contributions: Mapping[str, float] | None,
) -> list[Plot]:
    figures = [
        _plot("ROC curve", plots.roc_figure(evaluation)),
        _plot("Precision-recall curve", plots.pr_figure(evaluation)),
        _plot("Calibration", plots.calibration_figure(evaluation), size=(6.4, 5.4)),
        _plot("Campaign profit", plots.profit_figure(evaluation), size=(6.4, 5.4)),
        _plot("Gains and lift", plots.gains_figure(evaluation), size=(12.0, 4.6), wide=True),
    ]
    bars = (
        ("Feature importance (gain)", importance, "total gain of splits on the feature"),
        ("Mean |contribution| (SHAP)", contributions, "mean |contribution| to the log-odds"),
    )
    for title, values, xlabel in bars:
        if values:
            draw = plots.bars_figure(values, title=title, xlabel=xlabel)
            figures.append(_plot(title, draw, size=plots.bars_size(len(values))))
    return figures


def _cards(evaluation: Evaluation) -> list[tuple[str, str]]:
    headline = evaluation.headline()
    return [(label, pattern.format(headline[name])) for name, (label, pattern) in CARDS.items()]


def _fold_rows(folds: Mapping[str, tuple[float, float]]) -> list[tuple[str, str, str]]:
    """Label, mean and standard deviation of each cross-validated metric, formatted."""
    rows = []
    for name, (mean, std) in folds.items():
        label, pattern = CARDS.get(name, (name, "{:.4g}"))
        rows.append((label, pattern.format(mean), pattern.format(std).rstrip("×")))
    return rows


def _feature_rows(
    importance: Mapping[str, float] | None, contributions: Mapping[str, float] | None
) -> list[tuple[str, float | None, float | None]]:
    """The top features by importance (or by contribution when there is no importance)."""
    gain, shap = dict(importance or {}), dict(contributions or {})
    ranking = gain or shap
    names = sorted(ranking, key=lambda name: -abs(ranking[name]))[: plots.TOP_FEATURES]
    return [(name, gain.get(name), shap.get(name)) for name in names]


def page_html(
    template: str, *, title: str, metadata: Mapping[str, Any] | None, **context: Any
) -> str:
    """The self-contained HTML page of ``template`` (this package's templates): its title,
    the time it was made, churnscale's version, ``metadata`` sorted and ``context``."""
    return (
        page_templates()
        .get_template(template)
        .render(
            title=title,
            generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            version=__version__,
            metadata=sorted((metadata or {}).items()),
            **context,
        )
    )


def report_html(
    evaluation: Evaluation,
    *,
    title: str,
    importance: Mapping[str, float] | None = None,
    contributions: Mapping[str, float] | None = None,
    folds: dict[str, tuple[float, float]] | None = None,
    warnings: Sequence[LeakageWarning] = (),
    metadata: Mapping[str, Any] | None = None,
) -> str:
    """The self-contained HTML page of ``evaluation`` (what :func:`render_report` writes).

    ``importance`` (gain per feature) and ``contributions`` (mean |SHAP| per feature) add bar
    plots of their top 20; ``folds`` (metric -> mean, std, from
    :func:`~churnscale.evaluation.crossval.summarize_folds`) adds a cross-validation table;
    ``warnings`` are shown in a box above everything else.
    """
    return page_html(
        TEMPLATE,
        title=title,
        metadata=metadata,
        evaluation=evaluation,
        cards=_cards(evaluation),
        plots=_plots(evaluation, importance, contributions),
        folds=_fold_rows(folds or {}),
        warnings=list(warnings),
        features=_feature_rows(importance, contributions),
    )


def render_report(
    evaluation: Evaluation,
    *,
    path: Path,
    title: str,
    importance: Mapping[str, float] | None = None,
    contributions: Mapping[str, float] | None = None,
    folds: dict[str, tuple[float, float]] | None = None,
    warnings: Sequence[LeakageWarning] = (),
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write the HTML report of ``evaluation`` (:func:`report_html`) to ``path`` (atomically)
    and return the path."""
    path = Path(path)
    if path.exists() and path.is_dir():
        raise EvaluationError("path", expected="a file path for the report", received=str(path))
    page = report_html(
        evaluation,
        title=title,
        importance=importance,
        contributions=contributions,
        folds=folds,
        warnings=warnings,
        metadata=metadata,
    )
    write_atomically(path, page)
    return path
