"""``churnscale evaluate``: a model judged on labelled data (metrics, lift, profit, leakage)."""

from __future__ import annotations

from typing import Annotated

import typer

from churnscale.commands.output import print_json
from churnscale.commands.train import (
    ContactOpt,
    JsonOpt,
    ReportOpt,
    RetentionOpt,
    SuccessOpt,
    print_summary,
)
from churnscale.exceptions import ConfigError
from churnscale.terminal import stderr_console, stdout_console


def register(app: typer.Typer) -> None:
    """Attach ``evaluate``."""

    @app.command()
    def evaluate(
        model: Annotated[str, typer.Argument(help="Bundle path or NAME@ALIAS / NAME/VERSION.")],
        data: Annotated[str, typer.Argument(help="Labelled dataset, file, glob or s3:// path.")],
        report: ReportOpt = None,
        contact_cost: ContactOpt = 1.0,
        retention_value: RetentionOpt = 10.0,
        success_rate: SuccessOpt = 1.0,
        value_column: Annotated[
            str | None, typer.Option("--value-col", help="Per-customer value column.")
        ] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Judge a model on labelled data: metrics, lift, profit, leakage, explanations."""
        from dataclasses import replace

        from churnscale.api import load_model
        from churnscale.config import load_settings
        from churnscale.progress import row_progress

        settings = load_settings()
        loaded = load_model(model, settings=settings)
        if report is not None and report.is_dir():
            raise ConfigError("--report", expected="a file path", received=str(report))
        quarantine = (report or settings.home / "evaluate").with_suffix(".quarantine.jsonl")
        with row_progress("evaluate") as advance:
            judged = loaded.evaluate(
                data,
                contact_cost=contact_cost,
                retention_value=retention_value,
                success_rate=success_rate,
                value=value_column,
                quarantine=quarantine,
                settings=settings,
                on_progress=advance,
            )
        title = f"{model} on {data}"
        details = {"model": model, "data": data, "rejected rows": judged.rejected}
        judged = replace(judged, title=title, details=details)
        if report is not None:
            judged.to_html(report)
        summary = {
            "model": model,
            "data": data,
            "report": str(report) if report else None,
            **judged.summary(),
        }
        if as_json:
            print_json(summary)
            return
        print_summary(judged.assessment, title)
        if report is not None:
            stdout_console().print(f"report: {report}")
        if judged.rejected:
            stderr_console().print(f"{judged.rejected:,} row(s) quarantined: {judged.quarantine}")
