"""``churnscale generate``, ``ingest`` and ``profile``: data in, stored, described."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
from churnscale.exceptions import ConfigError


def generate(
    out: Annotated[Path, typer.Option("--out", help="Output file.")],
    rows: Annotated[int, typer.Option("--rows", min=1, help="Number of customers.")] = 100_000,
    fmt: Annotated[str, typer.Option("--format", help="parquet, csv or jsonl.")] = "parquet",
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    threads: Annotated[int, typer.Option("--threads", min=1)] = 2,
    events: Annotated[
        Path | None, typer.Option("--events", help="Also write the customers' event log here.")
    ] = None,
    treatment: Annotated[
        bool,
        typer.Option(
            "--treatment",
            help="Add a randomized offer (column offer) with a known heterogeneous effect: the "
            "outcome is retained, and true_uplift is each customer's true effect.",
        ),
    ] = False,
) -> None:
    """Write a realistic synthetic churn snapshot (the embedded default data)."""
    from churnscale.api import generate as generate_data
    from churnscale.progress import row_progress
    from churnscale.terminal import stderr_console

    with row_progress("generate") as advance:
        made = generate_data(  # type: ignore[call-overload]
            out,
            rows=rows,
            fmt=fmt,
            seed=seed,
            threads=threads,
            events=events,
            treatment=treatment,
            on_progress=advance,
        )
    console = stderr_console()
    console.print(f"wrote {made.rows:,} rows to {out}")
    if made.events is not None:
        console.print(f"wrote {made.event_rows:,} events to {made.events}")


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
    from churnscale.api import ingest as ingest_data
    from churnscale.config import load_settings
    from churnscale.progress import row_progress
    from churnscale.terminal import stderr_console

    if not 0.0 <= max_bad_fraction <= 1.0:
        raise ConfigError(
            "--max-bad-fraction", expected="a number in [0, 1]", received=max_bad_fraction
        )
    with row_progress("ingest") as advance:
        info = ingest_data(
            source,
            out,
            **schema_arguments(target, id_column, positive_label, drop, schema_file, time_column),
            max_bad_fraction=max_bad_fraction,
            settings=load_settings(),
            on_progress=advance,
        )
    console = stderr_console()
    console.print(
        f"stored {info.rows:,} rows in {len(info.files)} part(s) at {out} "
        f"(fingerprint {info.fingerprint}); {info.rejected:,} row(s) quarantined"
    )
    if info.rejected:
        console.print(f"quarantine: {out / 'quarantine.jsonl'}")


def profile(dataset: Annotated[Path, typer.Argument(help="Dataset made by ingest.")]) -> None:
    """Print per-column statistics and the target rate of a stored dataset."""
    from rich.table import Table

    from churnscale.data.profile import profile_dataset
    from churnscale.terminal import stdout_console

    summaries, rate, rows = profile_dataset(dataset)
    headers = ("column", "role", "missing", "mean", "std", "min", "max", "distinct", "top")
    table = Table(title=f"{dataset} — {rows:,} rows")
    for name in headers:
        left = name in ("column", "role", "top")
        table.add_column(name, justify="left" if left else "right", no_wrap=name != "top")
    for s in summaries:
        table.add_row(*(_cell(s.get(k)) for k in headers))
    stdout = stdout_console()
    stdout.print(table)
    if rate is not None:
        stdout.print(f"target rate: {rate:.4f}")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def register(app: typer.Typer) -> None:
    """Attach ``generate``, ``ingest`` and ``profile``."""
    app.command()(generate)
    app.command()(ingest)
    app.command()(profile)
