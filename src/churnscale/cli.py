"""The ``churnscale`` command line: thin wiring from flags to the library.

Every :class:`ChurnscaleError` becomes one line on stderr and exit code 2; nothing a user types
produces a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from churnscale.commands.options import (
    DropOpt,
    IdOpt,
    PositiveOpt,
    SchemaOpt,
    TargetOpt,
    TimeOpt,
    schema_inputs,
)
from churnscale.config import Settings
from churnscale.data.schema import Role
from churnscale.exceptions import ChurnscaleError, ConfigError
from churnscale.progress import row_progress

app = typer.Typer(
    name="churnscale",
    help="Customer churn prediction at any scale.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)
stdout = Console(width=160)


@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", help="Output file.")],
    rows: Annotated[int, typer.Option("--rows", min=1, help="Number of customers.")] = 100_000,
    fmt: Annotated[str, typer.Option("--format", help="parquet, csv or jsonl.")] = "parquet",
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    threads: Annotated[int, typer.Option("--threads", min=1)] = 2,
    events: Annotated[
        Path | None, typer.Option("--events", help="Also write the customers' event log here.")
    ] = None,
) -> None:
    """Write a realistic synthetic churn snapshot (the embedded default data)."""
    from churnscale.data.synthetic import GeneratorSpec, generate
    from churnscale.data.writers import write_batches

    spec = GeneratorSpec(rows, seed)
    with row_progress("generate", total=rows) as advance:
        written = write_batches(generate(spec, threads=threads), out, fmt=fmt, on_batch=advance)
    console.print(f"wrote {written:,} rows to {out}")
    if events is not None:
        from churnscale.data.events import generate_events

        with row_progress("events") as advance:
            logged = write_batches(
                generate_events(spec, threads=threads), events, fmt=fmt, on_batch=advance
            )
        console.print(f"wrote {logged:,} events to {events}")


@app.command()
def ingest(
    source: Annotated[str, typer.Argument(help="File, directory, glob or s3:// path.")],
    out: Annotated[Path, typer.Option("--out", help="Dataset directory to create.")],
    target: TargetOpt = None,
    id_column: IdOpt = None,
    positive_label: PositiveOpt = None,
    drop: DropOpt = None,
    schema_file: SchemaOpt = None,
    time_column: TimeOpt = None,
    max_bad_fraction: Annotated[
        float, typer.Option("--max-bad-fraction", help="Abort above this share of bad rows.")
    ] = 0.01,
) -> None:
    """Convert any source into a checksummed, partitioned Parquet dataset."""
    from churnscale.data.store import ingest as ingest_source

    if not 0.0 <= max_bad_fraction <= 1.0:
        raise ConfigError(
            "--max-bad-fraction", expected="a number in [0, 1]", received=max_bad_fraction
        )
    settings = Settings()
    hints, schema = schema_inputs(
        target=target,
        id_column=id_column,
        positive_label=positive_label,
        drop=drop,
        schema_file=schema_file,
        time_column=time_column,
    )
    with row_progress("ingest") as advance:
        schema, info = ingest_source(
            source,
            out,
            hints=hints,
            schema=schema,
            storage_options=settings.storage_options(),
            batch_rows=settings.batch_rows,
            max_bad_fraction=max_bad_fraction,
            on_progress=advance,
        )
    console.print(
        f"stored {info.rows:,} rows in {len(info.files)} part(s) at {out} "
        f"(fingerprint {info.fingerprint}); {info.rejected:,} row(s) quarantined"
    )
    if info.rejected:
        console.print(f"quarantine: {out / 'quarantine.jsonl'}")


@app.command()
def profile(dataset: Annotated[Path, typer.Argument(help="Dataset made by ingest.")]) -> None:
    """Print per-column statistics and the target rate of a stored dataset."""
    from churnscale.data.profile import profile_dataset

    summaries, rate, rows = profile_dataset(dataset)
    headers = ("column", "role", "missing", "mean", "std", "min", "max", "distinct", "top")
    table = Table(title=f"{dataset} — {rows:,} rows")
    for name in headers:
        left = name in ("column", "role", "top")
        table.add_column(name, justify="left" if left else "right", no_wrap=name != "top")
    for s in summaries:
        table.add_row(*(_cell(s.get(k)) for k in headers))
    stdout.print(table)
    if rate is not None:
        stdout.print(f"target rate: {rate:.4f}")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _register_commands() -> None:
    """Attach the command groups that live in ``churnscale.commands``; one line per area."""
    # Each area module defines ``register(app)``; keep this list sorted.
    from churnscale.commands import backtest

    backtest.register(app)
    from churnscale.commands import export

    export.register(app)
    from churnscale.commands import models

    models.register(app)
    from churnscale.commands import drift, retrain

    drift.register(app)
    retrain.register(app)
    from churnscale.commands import features

    features.register(app)
    from churnscale.commands import learn

    learn.register(app)
    from churnscale.commands import score, serve

    score.register(app)
    serve.register(app)
    from churnscale.commands import train, tune

    train.register(app)
    tune.register(app)


_register_commands()


def main() -> None:
    """Console-script entry point: run the app, mapping churnscale errors to one line."""
    try:
        code = app(standalone_mode=False)
    except ChurnscaleError as exc:
        console.print(f"error: {exc}", style="red", highlight=False, soft_wrap=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        console.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    if isinstance(code, int) and code:
        sys.exit(code)


__all__ = ["Role", "app", "main"]
