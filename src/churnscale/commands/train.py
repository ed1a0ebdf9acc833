"""``churnscale train``: a model from data, evaluated on rows it never saw, and registered."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from churnscale.commands.options import (
    DropOpt,
    IdOpt,
    PositiveOpt,
    SchemaOpt,
    TargetOpt,
    TimeOpt,
    schema_arguments,
)
from churnscale.commands.output import print_json, print_leakage, print_places
from churnscale.commands.survival import (
    DistributionOpt,
    DurationOpt,
    EventLabelOpt,
    EventOpt,
    HorizonsOpt,
    SigmaOpt,
    survival_flags_alone,
)
from churnscale.commands.train_options import (
    binary_only,
    given_params,
    mlp_flags,
    require_extras,
)
from churnscale.commands.uplift import (
    ControlOpt,
    LearnerOpt,
    PropensityOpt,
    RecordFlags,
    TreatmentColOpt,
    TreatmentOpt,
    UpliftFlags,
)
from churnscale.exceptions import ConfigError
from churnscale.terminal import stderr_console, stdout_console

if TYPE_CHECKING:
    from churnscale.evaluation.assessment import Assessment


ContactOpt = Annotated[
    float, typer.Option("--contact-cost", help="Cost of contacting one customer.")
]
RetentionOpt = Annotated[
    float, typer.Option("--retention-value", help="Value of retaining one churner.")
]
SuccessOpt = Annotated[
    float, typer.Option("--success-rate", help="Share of contacted churners retained.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")]
ReportOpt = Annotated[Path | None, typer.Option("--report", help="HTML report to write.")]


@contextmanager
def _progress() -> Iterator[tuple[Callable[[int], None], Callable[[str, int, float], None]]]:
    """One live display for a training run: the rows ingested (a raw source), then a bar of
    boosting rounds with the validation AUC per fold; yields ``(advance, on_round)``."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    err = stderr_console()
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=err,
        disable=not err.is_terminal,
    )
    tasks: dict[str, Any] = {}

    def advance(rows: int) -> None:
        if "ingest" not in tasks:
            tasks["ingest"] = progress.add_task("ingest", total=None, status="")
        task = tasks["ingest"]
        progress.advance(task, rows)
        done = progress.tasks[task].completed
        progress.update(task, status=f"{done:>12,.0f} rows")

    def on_round(stage: str, round_: int, auc: float) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(f"train {stage}", total=None, status="")
        status = f"round {round_:>5}  valid AUC {auc:.4f}"
        progress.update(tasks[stage], completed=round_, status=status)

    with progress:
        yield advance, on_round


def print_summary(assessment: Assessment, title: str) -> None:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("hold-out", justify="right")
    folds = assessment.folds or {}
    if folds:
        table.add_column("cv mean ± std", justify="right")
    for name, value in assessment.evaluation.headline().items():
        row = [name, f"{value:.4f}"]
        if folds and name in folds:
            mean, std = folds[name]
            row.append(f"{mean:.4f} ± {std:.4f}")
        table.add_row(*row)
    stdout_console().print(table)
    print_leakage(assessment.warnings)


def register(app: typer.Typer) -> None:
    """Attach ``train``."""

    @app.command()
    def train(
        data: Annotated[
            str, typer.Argument(help="Stored dataset, or a file, directory, glob or s3:// path.")
        ],
        target: TargetOpt = None,
        id_column: IdOpt = None,
        positive_label: PositiveOpt = None,
        drop: DropOpt = None,
        schema_file: SchemaOpt = None,
        time_column: TimeOpt = None,
        split: Annotated[str, typer.Option("--split", help="random or time.")] = "random",
        valid_fraction: Annotated[
            float, typer.Option("--valid-fraction", help="Hold-out share of the rows.")
        ] = 0.2,
        cv: Annotated[int | None, typer.Option("--cv", help="K-fold cross-validation.")] = None,
        cluster: Annotated[
            str | None, typer.Option("--cluster", help="local:N or tcp://HOST:8786 (Dask).")
        ] = None,
        time_out: Annotated[
            int, typer.Option("--time-out", help="Minutes before a lost worker fails the run.")
        ] = 5,
        init_model: Annotated[
            str | None, typer.Option("--init-model", help="Model to continue training (REF).")
        ] = None,
        model: Annotated[
            str, typer.Option("--model", help="lightgbm, or mlp (PyTorch, DDP over --workers).")
        ] = "lightgbm",
        workers: Annotated[
            int,
            typer.Option(
                "--workers",
                help="Processes for --model mlp (DDP); under torchrun its ranks are the workers.",
            ),
        ] = 1,
        device: Annotated[
            str | None,
            typer.Option(
                "--device", help="For --model mlp: auto (CUDA when present), cpu or cuda."
            ),
        ] = None,
        precision: Annotated[
            str | None,
            typer.Option("--precision", help="For --model mlp: fp32, or bf16 autocast."),
        ] = None,
        batch_size: Annotated[
            int | None,
            typer.Option(
                "--batch-size",
                help="For --model mlp: global batch rows per step (1,024; a GPU wants 65,536).",
            ),
        ] = None,
        name: Annotated[str, typer.Option("--name", help="Registered model name.")] = "churn",
        experiment: Annotated[str, typer.Option("--experiment")] = "churnscale",
        out: Annotated[
            Path | None, typer.Option("--out", help="Also keep the bundle here.")
        ] = None,
        no_register: Annotated[
            bool, typer.Option("--no-register", help="Do not track or register (needs --out).")
        ] = False,
        report: ReportOpt = None,
        params_file: Annotated[
            Path | None, typer.Option("--params", help="YAML/JSON file of LightGBM parameters.")
        ] = None,
        learning_rate: Annotated[float | None, typer.Option("--learning-rate")] = None,
        num_leaves: Annotated[int | None, typer.Option("--num-leaves")] = None,
        max_rounds: Annotated[int | None, typer.Option("--max-rounds")] = None,
        early_stopping: Annotated[int | None, typer.Option("--early-stopping-rounds")] = None,
        class_weight: Annotated[
            str | None, typer.Option("--class-weight", help="none or balanced.")
        ] = None,
        monotone: Annotated[
            bool | None,
            typer.Option(
                "--monotone/--no-monotone",
                help="Constrain point-in-time features with a known sign (recency, activity, "
                "spend) to move churn risk one way only (default: on).",
            ),
        ] = None,
        refit: Annotated[
            bool,
            typer.Option(
                "--refit/--no-refit",
                help="After evaluation, refit the saved model on every row with the rounds "
                "found on validation (default); --no-refit keeps the evaluated model.",
            ),
        ] = True,
        time_budget: Annotated[
            float | None,
            typer.Option(
                "--time-budget",
                help="Seconds for a quality preset: search, then a weighted ensemble of "
                "LightGBM models served as one model.",
            ),
        ] = None,
        seed: Annotated[int, typer.Option("--seed")] = 0,
        threads: Annotated[int, typer.Option("--threads", help="0 = all cores.")] = 0,
        contact_cost: ContactOpt = 1.0,
        retention_value: RetentionOpt = 10.0,
        success_rate: SuccessOpt = 1.0,
        as_json: JsonOpt = False,
        duration_col: DurationOpt = None,
        event_col: EventOpt = None,
        event_label: EventLabelOpt = None,
        horizons: HorizonsOpt = None,
        distribution: DistributionOpt = None,
        sigma: SigmaOpt = None,
        treatment_col: TreatmentColOpt = None,
        treatment: TreatmentOpt = None,
        control: ControlOpt = None,
        learner: LearnerOpt = "auto",
        propensity: PropensityOpt = "share",
    ) -> None:
        """Train LightGBM out of core (or on Dask), evaluate it, and register it in MLflow."""
        require_extras(model=model, cluster=cluster, time_budget=time_budget)
        from churnscale.api.training import TrainOptions, prepared, run_training, train_params
        from churnscale.config import load_settings

        settings = load_settings()
        survival = {"--horizons": horizons, "--distribution": distribution, "--sigma": sigma}
        survival_flags_alone(duration_col, event_col, survival)
        if duration_col is not None:
            binary_only(
                cv=cv, cluster=cluster, init_model=init_model, time_budget=time_budget, model=model
            )
            target, positive_label = event_col or target, event_label or positive_label
        overrides = {
            "learning_rate": learning_rate,
            "num_leaves": num_leaves,
            "max_rounds": max_rounds,
            "early_stopping_rounds": early_stopping,
            "class_weight": class_weight,
            "monotone": monotone,
        }
        params = train_params(
            given_params(params_file, overrides, seed, threads), source="--params"
        )
        mlp = mlp_flags(
            model, workers=workers, device=device, precision=precision, batch_size=batch_size
        )
        if split not in ("random", "time"):
            raise ConfigError("--split", expected="random or time", received=split)
        uplift = UpliftFlags(treatment_col, treatment, control, learner, propensity)
        is_uplift = uplift.check(model)  # before any data is read
        if is_uplift and duration_col is not None:
            raise ConfigError(
                "--treatment-col", expected="not with --duration-col", received=treatment_col
            )
        if no_register and out is None:
            raise ConfigError("--out", expected="a bundle path when --no-register", received=None)
        options = TrainOptions(
            **schema_arguments(target, id_column, positive_label, drop, schema_file, time_column),
            split=split,  # type: ignore[arg-type]
            valid_fraction=valid_fraction,
            cv=cv,
            refit=refit,
            time_budget=time_budget,
            init_model=init_model,
            cluster=cluster,
            time_out=time_out,
            model=model,  # type: ignore[arg-type]
            workers=workers,
            mlp=mlp,
            name=name,
            experiment=experiment,
            register=not no_register,
            out=out,
            report=report,
            contact_cost=contact_cost,
            retention_value=retention_value,
            success_rate=success_rate,
        )
        if is_uplift:  # an uplift model: its own job, report and summary
            from churnscale.commands.uplift import print_uplift, run_uplift

            record = RecordFlags(name, experiment, not no_register, out, report)
            with ExitStack() as stack:
                with _progress() as (advance, _):  # the ingest of a raw source
                    dataset, _split = stack.enter_context(
                        prepared(data, options, params.seed, settings=settings, on_progress=advance)
                    )
                done = run_uplift(
                    uplift,
                    dataset,
                    settings,
                    cv=cv,
                    valid_fraction=valid_fraction,
                    seed=seed,
                    threads=threads,
                    record=record,
                )
            print_uplift(done, as_json=as_json)
            return
        if duration_col is not None:  # time to churn: a survival model
            from churnscale.commands import survival as survival_command

            common: dict[str, Any] = {"name": name, "report": report, "experiment": experiment}
            common.update(out=out, params=params, register=not no_register)
            with ExitStack() as stack:
                with _progress() as (advance, _):  # the ingest of a raw source
                    dataset, spec = stack.enter_context(
                        prepared(data, options, params.seed, settings=settings, on_progress=advance)
                    )
                survival_command.run(
                    dataset,
                    settings,
                    duration=duration_col,
                    horizons=horizons,
                    distribution=distribution,
                    sigma=sigma,
                    common={**common, "split": spec},
                    as_json=as_json,
                )
            return
        with _progress() as (advance, on_round):
            outcome = run_training(
                data, options, params, settings=settings, on_round=on_round, on_progress=advance
            )
        if outcome is None:  # a torchrun rank other than 0: it trained its shard, nothing else
            stdout_console().print(
                "this rank trained its shard; rank 0 assesses, reports and registers"
            )
            return
        if as_json:
            print_json(outcome.summary())
            return
        print_summary(outcome.assessment, f"{outcome.version or outcome.bundle}")
        served = outcome.summary()["served_model"]
        stdout_console().print(
            f"hold-out figures: {outcome.rows['test']:,} rows the evaluated model never saw; "
            f"served model: {served['rows']:,} rows"
            + (" (refitted on every row)" if served["all_rows"] else "")
        )
        print_places(outcome)
