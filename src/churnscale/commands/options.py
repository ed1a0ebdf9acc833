"""Flags shared by several commands: the schema hints given to ``ingest``, ``train`` and others."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from churnscale.exceptions import ConfigError

TargetOpt = Annotated[str | None, typer.Option("--target", help="Target (label) column.")]
IdOpt = Annotated[str | None, typer.Option("--id", help="Customer id column.")]
PositiveOpt = Annotated[
    str | None, typer.Option("--positive-label", help="Target value that means churn.")
]
DropOpt = Annotated[list[str] | None, typer.Option("--drop", help="Column to ignore (repeat).")]
SchemaOpt = Annotated[Path | None, typer.Option("--schema", help="Schema file (YAML or JSON).")]
TimeOpt = Annotated[str | None, typer.Option("--time-col", help="Date column for time splits.")]


@contextmanager
def as_flags() -> Iterator[None]:
    """Name the Python API's arguments as the command's flags in errors (``as_of`` →
    ``--as-of``), so a command that calls the API reports the flag the user typed."""
    try:
        yield
    except ConfigError as exc:
        if not exc.name.isidentifier():
            raise
        flag = "--" + exc.name.replace("_", "-")
        raise ConfigError(flag, expected=exc.expected, received=exc.received) from None


def schema_arguments(
    target: str | None,
    id_column: str | None,
    positive_label: str | None,
    drop: list[str] | None,
    schema_file: Path | None,
    time_column: str | None,
) -> dict[str, Any]:
    """The schema-hint flags as the API's keyword arguments (``target=``, ``id=``, ...)."""
    return {
        "target": target,
        "id": id_column,
        "positive_label": positive_label,
        "drop": drop or (),
        "schema": schema_file,
        "time_column": time_column,
    }
