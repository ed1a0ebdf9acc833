"""``churnscale backtest``: out-of-time metrics per as-of date of a point-in-time dataset."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from churnscale.exceptions import ConfigError, SchemaError

if TYPE_CHECKING:
    from churnscale.data.schema import Schema
    from churnscale.evaluation.backtest import Backtest, BacktestStep
    from churnscale.training.local import TrainParams


def parse_params(text: str | None) -> TrainParams:
    """``TrainParams`` from a JSON object or a JSON file; unknown keys are refused by name."""
    from churnscale.training.local import TrainParams

    if not text:
        return TrainParams()
    path = Path(text)
    source = path.read_text() if not text.lstrip().startswith("{") and path.is_file() else text
    try:
        values = json.loads(source)
    except json.JSONDecodeError:
        values = None
    if not isinstance(values, dict):
        raise ConfigError("--params", expected="a JSON object or a JSON file", received=text)
    names = {f.name for f in fields(TrainParams)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError("--params", expected=f"keys among {sorted(names)}", received=unknown)
    params = replace(TrainParams(), **values)
    try:
        params.validate()
    except TypeError:  # a comparison with a value of the wrong type (a string for a number)
        expected = "numbers for numeric keys"
        raise ConfigError("--params", expected=expected, received=values) from None
    return params


def check_roles(schema: Schema, *, target: str | None, id_column: str | None) -> None:
    """Refuse ``--target`` / ``--id`` values that are not the stored schema's (one line)."""
    for flag, given, stored in (
        ("--target", target, schema.target),
        ("--id", id_column, schema.id),
    ):
        if given is not None and given != stored:
            raise SchemaError(
                f"{flag} {given!r}: the dataset stores {stored!r} in that role; "
                "rebuild the dataset to change it"
            )


def print_table(backtest: Backtest) -> None:
    """The steps as a rich table on stdout."""
    from rich.table import Table

    from churnscale.evaluation.backtest_report import HEADERS, step_row
    from churnscale.terminal import stdout_console

    mode = f"rolling {backtest.window}" if backtest.window else "expanding"
    table = Table(title=f"backtest of {backtest.dataset} ({mode} window)")
    for name in HEADERS:
        table.add_column(name, justify="left" if name in ("as-of", "note") else "right")
    for step in backtest.steps:
        table.add_row(*step_row(step))
    console = stdout_console()
    console.print(table)
    mean = backtest.mean("roc_auc")
    if mean is not None:
        console.print(f"mean ROC-AUC {mean:.4f}, mean PR-AUC {backtest.mean('pr_auc'):.4f}")


def report_step(step: BacktestStep) -> None:
    """One line on stderr as each as-of date is done."""
    from churnscale.terminal import stderr_console

    done = step.skipped or f"ROC-AUC {step.roc_auc:.4f}, {step.train_rows:,} training rows"
    stderr_console().print(f"{step.as_of}: {done}")


def register(app: typer.Typer) -> None:
    """Attach ``backtest`` to the CLI."""

    @app.command()
    def backtest(
        dataset: Annotated[Path, typer.Argument(help="Point-in-time dataset (features build).")],
        params: Annotated[
            str | None, typer.Option("--params", help="TrainParams as JSON or a JSON file.")
        ] = None,
        window: Annotated[
            int | None, typer.Option("--window", help="Rolling: train on the last K dates.")
        ] = None,
        gap: Annotated[
            str, typer.Option("--gap", help="Leave out training dates this close (e.g. 90d).")
        ] = "0d",
        target: Annotated[str | None, typer.Option("--target", help="Target column.")] = None,
        id_column: Annotated[str | None, typer.Option("--id", help="Customer id column.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON, not a table.")] = False,
        report: Annotated[
            Path | None, typer.Option("--report", help="Write an HTML report here.")
        ] = None,
    ) -> None:
        """Train on earlier as-of dates, score each later one: metrics per as-of date."""
        from churnscale.data.store import load_info
        from churnscale.features.spec import parse_duration
        from churnscale.training.backtest import run_backtest

        gap_days = 0 if gap.strip() in ("0", "0d", "0w") else parse_duration(gap, flag="--gap")
        schema, _ = load_info(dataset)
        check_roles(schema, target=target, id_column=id_column)
        result = run_backtest(
            dataset,
            schema=schema,
            params=parse_params(params),
            window=window,
            gap_days=gap_days,
            on_step=report_step,
        )
        if as_json:
            typer.echo(json.dumps(result.to_dict(), indent=2, allow_nan=False))
        else:
            print_table(result)
        if report is not None:
            from churnscale.evaluation.backtest_report import render_backtest

            render_backtest(result, path=report)
