"""``churnscale retrain``: challenger from new data, promoted only if it beats the champion."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Attach ``retrain`` to the CLI."""

    @app.command()
    def retrain(
        data: Annotated[
            str, typer.Option("--data", help="New labelled data: dataset, file, glob or s3://.")
        ],
        model: Annotated[
            str, typer.Option("--model", help="The champion, as NAME@ALIAS.")
        ] = "churn@champion",
        margin: Annotated[
            float, typer.Option("--margin", help="ROC-AUC gain needed to promote.")
        ] = 0.005,
        time_column: Annotated[
            str | None,
            typer.Option("--time-col", help="Date column ordering the data (default: schema's)."),
        ] = None,
        holdout_fraction: Annotated[
            float, typer.Option("--holdout-fraction", help="Latest share of rows held out.")
        ] = 0.2,
        mode: Annotated[
            str, typer.Option("--mode", help="continue (the champion's trees) or refit.")
        ] = "continue",
        experiment: Annotated[
            str, typer.Option("--experiment", help="MLflow experiment.")
        ] = "churnscale-retrain",
    ) -> None:
        """Train a challenger on DATA, judge it against the champion on the latest rows of DATA,
        register it, and promote it only if it is better by --margin."""
        from churnscale.config import load_settings
        from churnscale.exceptions import ConfigError
        from churnscale.registry import Registry
        from churnscale.terminal import stderr_console
        from churnscale.training.retrain import RetrainSpec
        from churnscale.training.retrain import retrain as run_retrain

        if mode not in ("continue", "refit"):
            raise ConfigError("--mode", expected="continue or refit", received=mode)
        settings = load_settings()
        spec = RetrainSpec(
            model=model,
            data=data,
            margin=margin,
            time_column=time_column,
            holdout_fraction=holdout_fraction,
            mode="continue" if mode == "continue" else "refit",
            experiment=experiment,
        )
        outcome = run_retrain(spec, settings=settings, registry=Registry(settings))
        console = stderr_console()
        if outcome.drifted_features:
            console.print(f"drifted features: {', '.join(outcome.drifted_features)}")
        console.print(outcome.summary)
        console.print(f"MLflow run {outcome.run_id}")
