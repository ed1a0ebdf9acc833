"""Flags shared by several commands: the schema hints given to ``ingest``, ``train`` and others."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

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
