"""``churnscale evaluate``: a model judged on labelled data (metrics, lift, profit, leakage)."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

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
        from churnscale.config import load_settings
        from churnscale.evaluation.assessment import ProfitSettings, assess, write_report
        from churnscale.evaluation.labelled import score_labelled
        from churnscale.model.loading import load_model
        from churnscale.progress import row_progress

        settings = load_settings()
        loaded = load_model(model, settings)
        if report is not None and report.is_dir():
            raise ConfigError("--report", expected="a file path", received=str(report))
        quarantine = (report or settings.home / "evaluate").with_suffix(".quarantine.jsonl")
        with row_progress("evaluate") as advance:
            scored = score_labelled(
                data,
                loaded,
                settings=settings,
                quarantine_path=quarantine,
                value_column=value_column,
                on_progress=advance,
            )
        assessment = assess(
            loaded,
            scored.y_true,
            scored.scores,
            scored.sample,
            profit=ProfitSettings(contact_cost, retention_value, success_rate),
            value=scored.value,
        )
        if report is not None:
            write_report(
                assessment,
                report,
                title=f"{model} on {data}",
                metadata={"model": model, "data": data, "rejected rows": scored.rejected},
            )
        summary = {
            "model": model,
            "data": data,
            "report": str(report) if report else None,
            "rejected": scored.rejected,
            **assessment.summary(),
        }
        if scored.rejected:
            summary["quarantine"] = str(scored.quarantine)
        if as_json:
            sys.stdout.write(json.dumps(summary, indent=2, default=str) + "\n")
            return
        print_summary(assessment, f"{model} on {data}")
        if report is not None:
            stdout_console().print(f"report: {report}")
        if scored.rejected:
            stderr_console().print(f"{scored.rejected:,} row(s) quarantined: {scored.quarantine}")
