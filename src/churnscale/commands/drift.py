"""``churnscale drift``: drift of a data source against a model's training reference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from churnscale.monitoring.drift import DriftReport


def register(app: typer.Typer) -> None:
    """Attach ``drift`` to the CLI."""

    @app.command()
    def drift(
        data: Annotated[str, typer.Argument(help="Dataset directory, file, glob or s3:// path.")],
        model: Annotated[
            str, typer.Option("--model", help="Bundle directory or registry reference.")
        ],
        report: Annotated[
            Path | None, typer.Option("--report", help="Write an HTML report here.")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
        reference: Annotated[
            str | None,
            typer.Option("--reference", help="Data to profile when the bundle has no reference."),
        ] = None,
        fail_on_drift: Annotated[
            bool, typer.Option("--fail-on-drift", help="Exit 1 when any feature drifted.")
        ] = False,
    ) -> None:
        """Compare DATA with the model's training reference: PSI and KS / chi-squared per
        feature and for the predicted probability; drifting features are named."""
        from churnscale.config import load_settings
        from churnscale.exceptions import ConfigError
        from churnscale.model.loading import load_model
        from churnscale.monitoring.dataset import source_drift, source_reference
        from churnscale.monitoring.report import render_drift_report
        from churnscale.terminal import stderr_console

        settings = load_settings()

        loaded = load_model(model, settings)
        profile = loaded.reference
        if reference is not None:
            profile = source_reference(loaded, reference, settings=settings)
        if profile is None:
            raise ConfigError(
                "--reference",
                expected="reference data: the model bundle has no reference.json",
                received=None,
            )
        result = source_drift(loaded, profile, data, settings=settings)
        console = stderr_console()
        if report is not None:
            meta = {"model": model, "data": data, "reference": reference or "bundle"}
            render_drift_report(result, path=report, title=f"Drift of {data}", metadata=meta)
            console.print(f"report: {report}")
        if as_json:
            typer.echo(json.dumps(result.to_dict(), indent=1))
        else:
            _print_table(result)
        console.print(result.summary())
        if fail_on_drift and result.drifted:
            raise typer.Exit(1)


def _print_table(result: DriftReport) -> None:
    from rich.table import Table

    from churnscale.terminal import stdout_console

    table = Table(title=f"drift: {result.current_rows:,} rows vs {result.reference_rows:,}")
    for name in ("feature", "kind", "PSI", "test", "statistic", "p-value", "drifted"):
        table.add_column(name, justify="left" if name in ("feature", "kind", "test") else "right")
    for f in [result.prediction, *sorted(result.features, key=lambda f: -f.psi)]:
        table.add_row(
            f.name,
            f.kind,
            f"{f.psi:.4f}",
            f.test,
            f"{f.statistic:.4f}",
            f"{f.p_value:.3g}",
            "yes" if f.drifted else "",
            style="red" if f.drifted else None,
        )
    stdout_console().print(table)
