"""Data in: ``churnscale.ingest`` and ``churnscale.generate``, and the stored dataset that
``train`` reads, whatever it was given (a path, a stored dataset or a table in memory)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, overload

import pyarrow as pa

from churnscale.api.inputs import Data, is_path, schema_inputs, to_arrow
from churnscale.config import Settings, load_settings
from churnscale.data.schema import Schema, SchemaHints
from churnscale.exceptions import ConfigError

if TYPE_CHECKING:
    from churnscale.data.store import DatasetInfo

#: Called with the number of rows just read (a progress bar's ``advance``).
Progress = Callable[[int], None]
#: The file formats ``generate`` writes.
Format = Literal["parquet", "csv", "jsonl"]


@dataclass(frozen=True)
class Generated:
    """What :func:`generate` wrote: customers, and their event log when asked for."""

    out: Path
    rows: int
    events: Path | None = None
    event_rows: int = 0


@contextmanager
def source_path(data: Data, scratch: Path) -> Iterator[str]:
    """``data``'s path, or a table in memory written once as Parquet under ``scratch``."""
    if is_path(data):
        yield os.fspath(data)  # type: ignore[arg-type]
        return
    import pyarrow.parquet as pq

    table = to_arrow(data, argument="data")
    path = scratch / "frame.parquet"
    pq.write_table(table.replace_schema_metadata(None), path)
    yield str(path)


@contextmanager
def stored(
    data: Data,
    *,
    settings: Settings,
    hints: SchemaHints | None = None,
    schema: Schema | None = None,
    on_progress: Progress | None = None,
) -> Iterator[Path]:
    """A stored dataset of ``data``: itself if it is one, a cached ingest of a local source
    (as ``churnscale train`` makes), or a table in memory ingested into a temporary dataset
    that is removed on exit."""
    from churnscale.data.cache import stored_dataset

    if is_path(data):
        with stored_dataset(
            os.fspath(data),  # type: ignore[arg-type]
            settings=settings,
            hints=hints,
            schema=schema,
            on_progress=on_progress,
        ) as path:
            yield path
        return
    settings.home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.home, prefix=".frame-") as scratch:
        with source_path(data, Path(scratch)) as source:
            yield _ingest(source, Path(scratch) / "dataset", hints, schema, settings, on_progress)


def _ingest(
    source: str,
    out: Path,
    hints: SchemaHints | None,
    schema: Schema | None,
    settings: Settings,
    on_progress: Progress | None,
    max_bad_fraction: float | None = None,
) -> Path:
    from churnscale.data.store import ingest as ingest_source

    ingest_source(
        source,
        out,
        hints=hints,
        schema=schema,
        storage_options=settings.storage_options(),
        batch_rows=settings.batch_rows,
        max_bad_fraction=settings.max_bad_fraction
        if max_bad_fraction is None
        else max_bad_fraction,
        on_progress=on_progress,
    )
    return out


def ingest(
    data: Data,
    out: str | os.PathLike[str],
    *,
    target: str | None = None,
    id: str | None = None,
    positive_label: str | None = None,
    drop: Sequence[str] = (),
    schema: Schema | str | os.PathLike[str] | None = None,
    time_column: str | None = None,
    max_bad_fraction: float = 0.01,
    settings: Settings | None = None,
    on_progress: Progress | None = None,
) -> DatasetInfo:
    """Store ``data`` (any source, or a table in memory) as a checksummed Parquet dataset.

    Column roles are inferred unless given (``target``, ``id``, ``positive_label``, ``drop``,
    ``time_column``) or a full ``schema`` is; rows that cannot be read go to
    ``out/quarantine.jsonl`` and the run stops above ``max_bad_fraction`` of them
    (``churnscale ingest``).

    >>> import churnscale
    >>> customers = churnscale.generate(rows=500, seed=1)
    >>> info = churnscale.ingest(customers, home / "ds", target="churned")
    >>> info.rows, info.rejected
    (500, 0)
    """
    if not 0.0 <= max_bad_fraction <= 1.0:
        raise ConfigError(
            "max_bad_fraction", expected="a number in [0, 1]", received=max_bad_fraction
        )
    settings = settings or load_settings()
    hints, given = schema_inputs(
        target=target,
        id=id,
        positive_label=positive_label,
        drop=drop,
        schema=schema,
        time_column=time_column,
    )
    target_dir = Path(out)
    target_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target_dir.parent, prefix=".frame-") as scratch:
        with source_path(data, Path(scratch)) as source:
            _ingest(source, target_dir, hints, given, settings, on_progress, max_bad_fraction)
    from churnscale.data.store import load_info

    return load_info(target_dir)[1]


@overload
def generate(
    out: None = None,
    *,
    rows: int = ...,
    seed: int = ...,
    fmt: Format = ...,
    threads: int = ...,
    events: None = None,
    treatment: bool = ...,
    on_progress: Progress | None = ...,
) -> pa.Table: ...
@overload
def generate(
    out: str | os.PathLike[str],
    *,
    rows: int = ...,
    seed: int = ...,
    fmt: Format = ...,
    threads: int = ...,
    events: str | os.PathLike[str] | None = None,
    treatment: bool = ...,
    on_progress: Progress | None = ...,
) -> Generated: ...
def generate(
    out: str | os.PathLike[str] | None = None,
    *,
    rows: int = 100_000,
    seed: int = 0,
    fmt: Format = "parquet",
    threads: int = 2,
    events: str | os.PathLike[str] | None = None,
    treatment: bool = False,
    on_progress: Progress | None = None,
) -> pa.Table | Generated:
    """Realistic synthetic customers with a ``churned`` label (``churnscale generate``).

    Without ``out``, the customers come back as a pyarrow Table; with it, they are written
    there (``fmt``: parquet, csv or jsonl), and with ``events`` their activity event log too.
    ``treatment`` adds a randomized offer with a known effect (columns ``offer`` and
    ``true_uplift``; the outcome is then ``retained``).

    >>> import churnscale
    >>> table = churnscale.generate(rows=1_000, seed=3)
    >>> table.num_rows, "churned" in table.column_names
    (1000, True)
    """
    from churnscale.data.synthetic import GeneratorSpec, generate_table

    if rows < 1:
        raise ConfigError("rows", expected="at least 1", received=rows)
    if out is None:
        if events is not None:
            raise ConfigError("events", expected="an out path beside it", received=events)
        return generate_table(rows, seed, treatment=treatment)
    from churnscale.data.events import generate_events
    from churnscale.data.synthetic import generate as generate_batches
    from churnscale.data.writers import write_batches

    spec = GeneratorSpec(rows, seed, treatment=treatment)
    batches = generate_batches(spec, threads=threads)
    written = write_batches(batches, Path(out), fmt=fmt, on_batch=on_progress)
    if events is None:
        return Generated(Path(out), written)
    logged = write_batches(
        generate_events(spec, threads=threads), Path(events), fmt=fmt, on_batch=on_progress
    )
    return Generated(Path(out), written, Path(events), logged)
