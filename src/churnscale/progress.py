"""Progress bars for long commands (rich), written to stderr."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


@contextmanager
def row_progress(label: str, *, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """A progress bar counting rows; yields ``advance(rows)``."""
    from churnscale.terminal import stderr_console

    console = stderr_console()
    progress = Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    with progress:
        task = progress.add_task(label, total=total)
        yield lambda rows: progress.advance(task, rows)
