"""Static customer attributes joined to point-in-time rows as of each date.

A static source (any readable format) is conformed to its inferred schema and hash-partitioned
into the same buckets as the events. Without a time column each customer has one row, used
as given; with ``--static-time`` a row dated on or after the as-of date is never used, and the
latest earlier row wins. The target column of a static source is always dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from churnscale.data.conform import conform
from churnscale.data.readers import read_chunks
from churnscale.data.schema import ColumnSpec, Role
from churnscale.data.store import resolve_schema
from churnscale.exceptions import SchemaError
from churnscale.features.eventlog import Buckets
from churnscale.features.sources import BuildSources


@dataclass
class StaticTable:
    """One bucket's static rows, sorted by id (then time)."""

    id_column: str
    time_column: str | None
    table: pa.Table
    columns: list[ColumnSpec]

    def __post_init__(self) -> None:
        keys = [(self.id_column, "ascending")]
        keys += [(self.time_column, "ascending")] if self.time_column else []
        self.table = self.table.take(pc.sort_indices(self.table, sort_keys=keys))
        if self.time_column is None:
            ids = self.table.column(self.id_column).combine_chunks()
            if len(ids) > 1 and pc.any(pc.equal(ids[1:], ids[:-1])).as_py():
                raise SchemaError(
                    "--static: a customer id appears more than once; name the date column "
                    "with --static-time",
                    column=self.id_column,
                )

    def at(self, customers: pa.Array, instant_us: int) -> dict[str, pa.Array]:
        """Each customer's attributes as of ``instant_us`` (null where none is known)."""
        rows = self.table
        if self.time_column is not None:
            times = rows.column(self.time_column).cast(pa.int64())
            rows = rows.filter(pc.less(times, instant_us))
            ids = rows.column(self.id_column).combine_chunks()
            last = np.ones(len(ids), dtype=bool)
            if len(ids) > 1:
                last[:-1] = pc.not_equal(ids[1:], ids[:-1]).to_numpy(zero_copy_only=False)
            rows = rows.filter(pa.array(last))
        position = pc.index_in(customers, value_set=rows.column(self.id_column).combine_chunks())
        return {c.name: rows.column(c.name).take(position).combine_chunks() for c in self.columns}


@dataclass
class StaticBuckets:
    """A partitioned static source and the columns it contributes."""

    buckets: Buckets
    id_column: str
    time_column: str | None
    columns: list[ColumnSpec]

    def table(self, bucket: int) -> StaticTable:
        """The static rows of ``bucket``."""
        rows = self.buckets.read(bucket)
        return StaticTable(self.id_column, self.time_column, rows, self.columns)


def partition_static(sources: BuildSources, directory: Path, *, count: int) -> StaticBuckets | None:
    """Read, check and partition the static source of ``sources`` (None when there is none)."""
    if sources.static is None:
        return None
    schema = resolve_schema(sources.static, storage_options=sources.storage_options)
    if schema.id is None:
        raise SchemaError(f"--static {sources.static}: no customer id column (e.g. customer_id)")
    if sources.static_time and sources.static_time not in schema.names:
        raise SchemaError(
            "--static-time names a column --static lacks", missing=[sources.static_time]
        )
    if sources.static_time and schema.role_of(sources.static_time) is not Role.DATETIME:
        raise SchemaError("--static-time: not a date column", column=sources.static_time)
    kept = [c for c in schema.columns if c.role is not Role.TARGET]
    arrow = pa.schema([pa.field(c.name, c.arrow_type) for c in kept])
    buckets = Buckets(directory, arrow, count=count, id_column=schema.id)
    for chunk in read_chunks(sources.static, storage_options=sources.storage_options):
        typed, rejects = conform(
            chunk.batch, schema, source=chunk.source, lines=chunk.lines, require_target=False
        )
        bad = chunk.rejects + rejects
        if bad:
            where = f"--static {bad[0].source} line {bad[0].line}"
            raise SchemaError(
                f"{where}: {bad[0].reason}, got {bad[0].value!r}", column=bad[0].column
            )
        buckets.write(typed)
    buckets.close()
    columns = [c for c in kept if c.name not in (schema.id, sources.static_time)]
    return StaticBuckets(buckets, schema.id, sources.static_time, columns)
