"""``churnscale tune``: parallel Optuna search, each trial a nested MLflow run, best registered."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.table import Table

    from churnscale.training.search import TrialRecord
    from churnscale.training.tune import TuneResult


def _progress(record: TrialRecord) -> None:
    from churnscale.terminal import stderr_console

    value = f"{record.value:.4f}" if record.value is not None else "-"
    detail = f" ({record.error})" if record.error else ""
    stderr_console().print(
        f"trial {record.number}: {record.state} cv_auc={value} "
        f"folds={len(record.fold_aucs)} {record.seconds:.1f}s{detail}"
    )


def _summary(result: TuneResult) -> Table:
    from rich.table import Table

    table = Table(title=f"study {result.study} — {result.study_trials} trial(s) in storage")
    table.add_column("item")
    table.add_column("value")
    states = [r.state for r in result.records]
    ran = ", ".join(f"{states.count(s)} {s.lower()}" for s in ("COMPLETE", "PRUNED", "FAIL"))
    table.add_row("trials this run", f"{len(result.records)} ({ran})")
    table.add_row("best trial", str(result.best_trial))
    table.add_row("best CV AUC", f"{result.best_value:.4f}")
    for key, value in sorted(result.best_params.items()):
        table.add_row(f"  {key}", f"{value:.4g}" if isinstance(value, float) else str(value))
    table.add_row("hold-out AUC (model trained without it)", f"{result.holdout_auc:.4f}")
    served = result.model.metadata["tuning"]["served"]
    refitted = " (refitted on every row)" if served["all_rows"] else ""
    table.add_row("registered model's rows", f"{served['rows']:,}{refitted}")
    table.add_row("registered", result.version.reference if result.version else "-")
    table.add_row("parent run", result.parent_run_id)
    table.add_row("wall time", f"{result.seconds:.1f} s")
    return table


def register(app: typer.Typer) -> None:
    """Attach ``tune`` to the CLI."""

    @app.command()
    def tune(
        data: Annotated[str, typer.Argument(help="Dataset directory, or a file ingested first.")],
        target: Annotated[str, typer.Option("--target", help="Target (label) column.")],
        trials: Annotated[int, typer.Option("--trials", help="Trials to run now.")] = 20,
        id_column: Annotated[str | None, typer.Option("--id", help="Customer id column.")] = None,
        drop: Annotated[
            list[str] | None, typer.Option("--drop", help="Column to ignore (repeat).")
        ] = None,
        positive_label: Annotated[
            str | None, typer.Option("--positive-label", help="Target value that means churn.")
        ] = None,
        cluster: Annotated[
            str | None, typer.Option("--cluster", help="local:N or tcp://HOST:PORT.")
        ] = None,
        jobs: Annotated[int, typer.Option("--jobs", help="Local worker processes.")] = 1,
        timeout: Annotated[
            float | None, typer.Option("--timeout", help="Start no trial after S seconds.")
        ] = None,
        cv: Annotated[int, typer.Option("--cv", help="Folds per trial.")] = 5,
        study: Annotated[
            str | None, typer.Option("--study", help="Study name (default: from the data).")
        ] = None,
        storage: Annotated[
            str | None, typer.Option("--storage", help="Optuna RDB URL (default SQLite in home).")
        ] = None,
        seed: Annotated[int, typer.Option("--seed", help="Sampler and split seed.")] = 0,
        valid_fraction: Annotated[
            float, typer.Option("--valid-fraction", help="Hold-out share no trial reads.")
        ] = 0.2,
        max_rounds: Annotated[int, typer.Option("--max-rounds", help="Boosting rounds.")] = 2_000,
        name: Annotated[str, typer.Option("--name", help="Registered model name.")] = "churn",
        refit: Annotated[
            bool,
            typer.Option(
                "--refit/--no-refit",
                help="Refit the registered model on every row after its hold-out AUC is "
                "measured (default).",
            ),
        ] = True,
    ) -> None:
        """Search LightGBM parameters with Optuna, then train and register the best model."""
        from churnscale.extras import require

        require("tune", "dask", feature="churnscale tune")
        from churnscale.config import load_settings
        from churnscale.data.cache import stored_dataset
        from churnscale.data.schema import SchemaHints
        from churnscale.terminal import stdout_console
        from churnscale.training.local import TrainParams
        from churnscale.training.tune import TuneSpec
        from churnscale.training.tune import tune as run_tune

        spec = TuneSpec(
            trials=trials,
            cv=cv,
            seed=seed,
            study=study,
            timeout=timeout,
            cluster=cluster,
            jobs=jobs,
            storage=storage,
            valid_fraction=valid_fraction,
            model_name=name,
            base=TrainParams(max_rounds=max_rounds, seed=seed),
            refit=refit,
        )
        spec.validate()
        settings = load_settings()
        hints = SchemaHints(
            target=target, id=id_column, positive_label=positive_label, drop=tuple(drop or ())
        )
        with stored_dataset(data, settings=settings, hints=hints) as dataset:
            result = run_tune(dataset, spec, settings, on_record=_progress)
        stdout_console().print(_summary(result))
