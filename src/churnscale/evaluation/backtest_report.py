"""The backtest's table rows (shared by the terminal table) and its self-contained HTML page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from matplotlib.figure import Figure

from churnscale.artifacts import write_atomically
from churnscale.evaluation import plots
from churnscale.evaluation.backtest import Backtest, BacktestStep
from churnscale.evaluation.report import page_templates
from churnscale.version import __version__

HEADERS = (
    "as-of", "train dates", "train rows", "rows", "churn rate",
    "ROC-AUC", "PR-AUC", "top-decile lift", "note",
)  # fmt: skip


def _number(value: float | None, pattern: str) -> str:
    return "—" if value is None else pattern.format(value)


def step_row(step: BacktestStep) -> list[str]:
    """One step formatted as the table's cells."""
    dates = step.train_dates
    span = f"{dates[0]}..{dates[-1]} ({len(dates)})" if dates else "—"
    return [
        step.as_of,
        span,
        f"{step.train_rows:,}",
        f"{step.rows:,}",
        f"{step.churn_rate:.4f}",
        _number(step.roc_auc, "{:.4f}"),
        _number(step.pr_auc, "{:.4f}"),
        _number(step.top_decile_lift, "{:.2f}"),
        step.skipped or "",
    ]


def _figure(backtest: Backtest) -> Callable[[Figure], None]:
    scored = [s for s in backtest.steps if s.roc_auc is not None and s.pr_auc is not None]
    lines = (
        ("ROC-AUC", [s.roc_auc or 0.0 for s in scored], plots.MODEL_COLOUR, "o", "-"),
        ("PR-AUC", [s.pr_auc or 0.0 for s in scored], plots.SECOND_COLOUR, "s", "-"),
        ("churn rate", [s.churn_rate for s in scored], plots.BASELINE_COLOUR, "", "--"),
    )

    def draw(figure: Figure) -> None:
        ax = figure.add_subplot()
        days = [s.as_of for s in scored]
        for label, values, colour, marker, style in lines:
            ax.plot(days, values, marker=marker, color=colour, linestyle=style, label=label)
        ax.set_ylim(0, 1)
        ax.set_xlabel("as-of date (tested)")
        ax.set_title("Out-of-time metrics per as-of date")
        ax.tick_params(axis="x", labelrotation=30)
        ax.legend(loc="lower left")

    return draw


def render_backtest(backtest: Backtest, *, path: Path) -> Path:
    """Write the backtest's HTML page (table and a metrics-over-time plot) to ``path``."""
    mode = f"rolling, {backtest.window} date(s)" if backtest.window else "expanding window"
    subtitle = f"{backtest.dataset} · {mode} · gap {backtest.gap_days} day(s)"
    page = (
        page_templates()
        .get_template("backtest.html.j2")
        .render(
            title="Out-of-time backtest",
            subtitle=subtitle,
            plot=plots.render_png(_figure(backtest), size=(10.0, 4.6)),
            headers=HEADERS,
            rows=[step_row(s) for s in backtest.steps],
            version=__version__,
            generated=datetime.now(UTC).isoformat(timespec="seconds"),
        )
    )
    write_atomically(path, page)
    return path
