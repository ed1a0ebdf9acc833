"""``churnscale train``: a model from data, evaluated on rows it never saw, and registered."""

from __future__ import annotations

import json
import sys
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
    schema_inputs,
)
from churnscale.commands.survival import (
    DistributionOpt,
    DurationOpt,
    EventLabelOpt,
    EventOpt,
    HorizonsOpt,
    SigmaOpt,
    survival_flags_alone,
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
def _round_progress() -> Iterator[Callable[[str, int, float], None]]:
    """A bar of boosting rounds with the validation AUC, one task per fold."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    err = stderr_console()
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("round {task.completed:>5.0f}  valid AUC {task.fields[auc]:.4f}"),
        TimeElapsedColumn(),
        console=err,
        disable=not err.is_terminal,
    )
    tasks: dict[str, Any] = {}

    def advance(stage: str, round_: int, auc: float) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(f"train {stage}", total=None, auc=0.0)
        progress.update(tasks[stage], completed=round_, auc=auc)

    with progress:
        yield advance


def print_summary(assessment: Assessment, title: str) -> None:
    from rich.table import Table
    from rich.text import Text

    from churnscale.terminal import styled

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
    for warning in assessment.warnings:
        stderr_console().print(
            Text.assemble(("leakage warning:", "yellow"), " ", styled(warning.message, ""))
        )


def _params(params_file: Path | None, overrides: dict[str, Any], seed: int, threads: int) -> Any:
    from dataclasses import fields

    from churnscale.training.local import TrainParams

    known = {f.name for f in fields(TrainParams)}
    given: dict[str, Any] = {}
    if params_file is not None:
        import yaml

        try:
            loaded = yaml.safe_load(params_file.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(
                "--params", expected="a readable YAML/JSON file", received=str(exc)
            ) from None
        if not isinstance(loaded, dict):
            raise ConfigError("--params", expected="a mapping of parameters", received=loaded)
        unknown = sorted(set(loaded) - known)
        if unknown:
            raise ConfigError("--params", expected=f"fields of {sorted(known)}", received=unknown)
        given.update(loaded)
    given.update({k: v for k, v in overrides.items() if v is not None})
    given.update(seed=seed, threads=threads)
    return TrainParams(**given)


def _mlp_flags(model: str, **flags: Any) -> dict[str, Any]:
    """The ``MlpParams`` fields the MLP flags set, checked before any data is read (a
    ``--device cuda`` without a GPU fails here, in one line)."""
    given = {k: v for k, v in flags.items() if v is not None}
    if model != "mlp" and given:
        flag = "--" + next(iter(given)).replace("_", "-")
        raise ConfigError(flag, expected="--model mlp", received=f"--model {model}")
    if not given:
        return given
    from churnscale.neural.device import check_precision, resolve_device

    kind = resolve_device(given.get("device", "auto"))
    check_precision(given.get("precision", "fp32"), kind)
    if given.get("batch_size", 1) < 1:
        raise ConfigError("--batch-size", expected="at least 1", received=given["batch_size"])
    return given


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
    ) -> None:
        """Train LightGBM out of core (or on Dask), evaluate it, and register it in MLflow."""
        from churnscale.config import load_settings
        from churnscale.data.cache import stored_dataset
        from churnscale.data.store import load_info
        from churnscale.evaluation.assessment import ProfitSettings
        from churnscale.progress import row_progress
        from churnscale.training.job import TrainJob, run_training
        from churnscale.training.plan import SplitSpec, time_split_for

        settings = load_settings()
        survival = {"--horizons": horizons, "--distribution": distribution, "--sigma": sigma}
        survival_flags_alone(duration_col, event_col, survival)
        if duration_col is not None:
            binary_only: dict[str, Any] = {"--cv": cv, "--cluster": cluster}
            binary_only.update({"--init-model": init_model, "--time-budget": time_budget})
            binary_only["--model"] = None if model == "lightgbm" else model
            for flag, value in binary_only.items():
                if value is not None:
                    raise ConfigError(flag, expected="not with --duration-col", received=value)
            target, positive_label = event_col or target, event_label or positive_label
        hints, schema = schema_inputs(
            target=target,
            id_column=id_column,
            positive_label=positive_label,
            drop=drop,
            schema_file=schema_file,
            time_column=time_column,
        )
        overrides = {
            "learning_rate": learning_rate,
            "num_leaves": num_leaves,
            "max_rounds": max_rounds,
            "early_stopping_rounds": early_stopping,
            "class_weight": class_weight,
            "monotone": monotone,
        }
        params = _params(params_file, overrides, seed, threads)
        mlp = _mlp_flags(model, device=device, precision=precision, batch_size=batch_size)
        if split not in ("random", "time"):
            raise ConfigError("--split", expected="random or time", received=split)
        with ExitStack() as stack:
            with row_progress("ingest") as advance:  # a no-op for a stored dataset
                dataset = stack.enter_context(
                    stored_dataset(
                        data, settings=settings, hints=hints, schema=schema, on_progress=advance
                    )
                )
            if split == "time":  # an as-of dataset holds out its latest date whole
                spec = time_split_for(
                    load_info(dataset)[0],
                    time_column=time_column,
                    valid_fraction=valid_fraction,
                    seed=seed,
                )
            else:
                spec = SplitSpec(valid_fraction=valid_fraction, seed=seed)
            if duration_col is not None:  # time to churn: a survival model
                from churnscale.commands import survival as survival_command

                common = {"params": params, "split": spec, "name": name, "report": report}
                common.update(experiment=experiment, register=not no_register, out=out)
                survival_command.run(
                    dataset,
                    settings,
                    duration=duration_col,
                    horizons=horizons,
                    distribution=distribution,
                    sigma=sigma,
                    common=common,
                    as_json=as_json,
                )
                return
            job = TrainJob(
                dataset=dataset,
                params=params,
                split=spec,
                cv=cv,
                cluster=cluster,
                time_out_minutes=time_out,
                init_model=init_model,
                name=name,
                experiment=experiment,
                register=not no_register,
                out=out,
                report=report,
                profit=ProfitSettings(contact_cost, retention_value, success_rate),
                model=model,
                workers=workers,
                mlp=mlp,
                refit=refit,
                time_budget=time_budget,
            )
            with _round_progress() as on_round:
                if model == "mlp":
                    from churnscale.neural.job import run_mlp_training

                    outcome = run_mlp_training(job, settings)
                else:
                    outcome = run_training(job, settings, on_round=on_round)
        if outcome is None:  # a torchrun rank other than 0: it trained its shard, nothing else
            stdout_console().print(
                "this rank trained its shard; rank 0 assesses, reports and registers"
            )
            return
        if as_json:
            sys.stdout.write(json.dumps(outcome.summary(), indent=2, default=str) + "\n")
            return
        print_summary(outcome.assessment, f"{outcome.version or outcome.bundle}")
        served = outcome.summary()["served_model"]
        stdout_console().print(
            f"hold-out figures: {outcome.rows['test']:,} rows the evaluated model never saw; "
            f"served model: {served['rows']:,} rows"
            + (" (refitted on every row)" if served["all_rows"] else "")
        )
        stdout_console().print(f"report: {outcome.report}")
        if outcome.version:
            stdout_console().print(f"registered: {outcome.version} (run {outcome.run_id})")
        if outcome.bundle:
            stdout_console().print(f"bundle: {outcome.bundle}")
