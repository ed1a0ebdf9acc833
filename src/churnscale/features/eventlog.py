"""Read and check an event log, and hash-partition it by customer into buckets on disk.

Events are read as a stream of bounded chunks (any format :func:`read_chunks` knows), conformed
to the event schema, and every row that cannot be read stops the run with its file and line.
Buckets are Arrow IPC files: all events of a customer land in the same bucket, so a log larger
than memory is processed one bucket at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from churnscale.data.conform import conform
from churnscale.data.quarantine import Reject
from churnscale.data.readers import expand, file_format, read_chunks
from churnscale.data.schema import ColumnSpec, Role, Schema
from churnscale.exceptions import SchemaError
from churnscale.features.columns import AMOUNT, ID, TIME, TYPE, EventColumns
from churnscale.features.pointintime import EventArrays
from churnscale.features.spec import FeatureSpec

#: Columns of a typed event batch (as stored in a bucket).
TYPED = pa.schema(
    [
        pa.field(ID, pa.string()),
        pa.field("time", pa.int64()),
        pa.field("kind", pa.int8()),
        pa.field(AMOUNT, pa.float64()),
    ]
)
_BYTES_PER_TEXT_ROW = 32


def event_schema(names: list[str], *, with_id: bool = True) -> Schema:
    """The schema an event source's id, time and amount are conformed to (amount if present)."""
    roles = [(ID, Role.ID)] if with_id else []
    roles += [(TIME, Role.DATETIME)]
    roles += [(AMOUNT, Role.NUMERIC)] if AMOUNT in names else []
    return Schema(columns=tuple(ColumnSpec(n, r) for n, r in roles))


def _fail(flag: str, reject: Reject) -> SchemaError:
    where = f"{flag} {reject.source} line {reject.line}"
    return SchemaError(f"{where}: {reject.reason}, got {reject.value!r}", column=reject.column)


def typed_events(
    batch: pa.RecordBatch,
    *,
    spec: FeatureSpec,
    source: str,
    lines: np.ndarray,
    flag: str = "--events",
    with_id: bool = True,
    columns: EventColumns | None = None,
) -> pa.RecordBatch:
    """Check and convert a raw event batch to :data:`TYPED` columns; bad rows raise.

    The batch's columns are read by ``columns`` (the spec's :class:`EventColumns` if None).
    """
    mapping = spec.columns if columns is None else columns
    batch = mapping.canonical(batch, source=source, lines=lines, flag=flag, with_id=with_id)
    schema = event_schema(batch.schema.names, with_id=with_id)
    typed, rejects = conform(batch, schema, source=source, lines=lines)
    if rejects:
        first = rejects[0]
        raise _fail(flag, replace(first, column=mapping.source_name(first.column or "")))
    kind = _kinds(batch.column(TYPE), spec)
    bad = pc.fill_null(pc.or_(pc.is_null(kind), pc.is_null(typed.column(TIME))), True)
    if pc.any(bad).as_py():
        row = int(np.flatnonzero(bad.to_numpy(zero_copy_only=False))[0])
        value = batch.column(TYPE)[row].as_py()
        time, kinds = mapping.source_name(TIME), mapping.source_name(TYPE)
        reason = (
            f"{time} is missing"
            if value in spec.event_types
            else (f"{kinds} must be one of {', '.join(spec.event_types)}")
        )
        raise _fail(flag, Reject(source, int(lines[row]), reason, kinds, value))
    amount = (
        typed.column(AMOUNT) if AMOUNT in typed.schema.names else pa.nulls(len(typed), pa.float64())
    )
    arrays = [
        typed.column(ID) if with_id else pa.nulls(len(typed), pa.string()),
        typed.column(TIME).cast(pa.int64()),
        kind.cast(pa.int8()),
        pc.fill_null(amount, np.nan),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=TYPED)


def _kinds(column: pa.Array, spec: FeatureSpec) -> pa.Array:
    """Each event's position in ``spec.event_types`` (null if unknown), via its dictionary."""
    encoded = column if pa.types.is_dictionary(column.type) else pc.dictionary_encode(column)
    names = pc.utf8_trim_whitespace(encoded.dictionary.cast(pa.string()))
    return pc.index_in(names, value_set=pa.array(spec.event_types)).take(encoded.indices)


def read_events(
    source: str,
    *,
    spec: FeatureSpec,
    batch_rows: int = 262_144,
    storage_options: dict[str, Any] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream ``source`` as checked :data:`TYPED` batches."""
    for chunk in read_chunks(source, batch_rows=batch_rows, storage_options=storage_options):
        if chunk.rejects:
            raise _fail("--events", chunk.rejects[0])
        yield typed_events(chunk.batch, spec=spec, source=chunk.source, lines=chunk.lines)


def arrays_of(table: pa.Table | pa.RecordBatch, code: np.ndarray) -> EventArrays:
    """Typed events as :class:`EventArrays`, with ``code`` as each row's customer code."""
    return EventArrays(
        code=code,
        time=np.asarray(table.column("time").to_numpy(), dtype=np.int64),
        kind=np.asarray(table.column("kind").to_numpy(), dtype=np.int8),
        amount=np.asarray(table.column(AMOUNT).to_numpy(), dtype=np.float64),
    )


def customer_arrays(
    events: list[dict[str, Any]] | pa.Table,
    *,
    spec: FeatureSpec,
    columns: EventColumns | None = None,
) -> EventArrays:
    """One customer's events (dicts or a table) as checked :class:`EventArrays`; their fields
    are named by ``columns`` (None: the canonical ``timestamp``, ``event_type``, ``amount``)."""
    table = events if isinstance(events, pa.Table) else pa.Table.from_pylist(list(events))
    if table.num_rows == 0:
        return arrays_of(TYPED.empty_table(), np.empty(0, dtype=np.int64))
    batch = table.combine_chunks().to_batches()[0]
    lines = np.arange(1, batch.num_rows + 1)
    typed = typed_events(
        batch,
        spec=spec,
        source="(request)",
        lines=lines,
        flag="events",
        with_id=False,
        columns=columns or EventColumns(),
    )
    return arrays_of(typed, np.zeros(typed.num_rows, dtype=np.int64))


def bucket_of(ids: pa.Array | pa.ChunkedArray, buckets: int) -> np.ndarray:
    """Bucket number of each customer id: a stable 64-bit hash modulo ``buckets``."""
    if buckets == 1:
        return np.zeros(len(ids), dtype=np.int64)
    encoded = pc.dictionary_encode(ids.cast(pa.string()))
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    names = encoded.dictionary.to_numpy(zero_copy_only=False)
    import pandas as pd  # here: the service reads events without pandas installed

    hashed = pd.util.hash_array(np.asarray(names, dtype=object)) % np.uint64(buckets)
    positions = encoded.indices.to_numpy(zero_copy_only=False)
    result: np.ndarray = hashed.astype(np.int64)[positions]
    return result


def bucket_count(source: str, *, bucket_rows: int, storage_options: dict[str, Any] | None) -> int:
    """How many buckets keep each near ``bucket_rows`` rows (from Parquet metadata or size)."""
    import pyarrow.parquet as pq

    fs, files = expand(source, storage_options)
    rows = 0
    for name in files:
        path = name.split("://", 1)[-1]
        if file_format(name) == "parquet":
            with fs.open(path, "rb") as handle:
                rows += pq.ParquetFile(handle).metadata.num_rows
        else:
            rows += int(fs.size(path)) // _BYTES_PER_TEXT_ROW
    return max(1, -(-rows // bucket_rows))


class Buckets:
    """Arrow IPC files, one per bucket, that batches are split into by customer id hash."""

    def __init__(self, directory: Path, schema: pa.Schema, *, count: int, id_column: str) -> None:
        self.directory = directory
        self.schema = schema
        self.count = count
        self.id_column = id_column
        self.rows = 0
        directory.mkdir(parents=True, exist_ok=True)
        self._writers: dict[int, pa.ipc.RecordBatchFileWriter] = {}

    def path(self, bucket: int) -> Path:
        """File of ``bucket``."""
        return self.directory / f"bucket-{bucket:05d}.arrow"

    def write(self, batch: pa.RecordBatch) -> None:
        """Split ``batch`` by bucket and append each part to its file."""
        bucket = bucket_of(batch.column(self.id_column), self.count)
        if self.count == 1:
            self._writer(0).write_batch(batch)
            self.rows += batch.num_rows
            return
        order = np.argsort(bucket.astype(np.int32), kind="stable")
        bounds = np.searchsorted(bucket[order], np.arange(self.count + 1))
        ordered = batch.take(pa.array(order))
        for b in np.flatnonzero(np.diff(bounds)).tolist():
            part = ordered.slice(int(bounds[b]), int(bounds[b + 1] - bounds[b]))
            self._writer(b).write_batch(part)
        self.rows += batch.num_rows

    def _writer(self, bucket: int) -> pa.ipc.RecordBatchFileWriter:
        if bucket not in self._writers:
            self._writers[bucket] = pa.ipc.new_file(self.path(bucket), self.schema)
        return self._writers[bucket]

    def close(self) -> None:
        """Finish every file."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def read(self, bucket: int) -> pa.Table:
        """All rows of ``bucket`` (an empty table when none were written)."""
        path = self.path(bucket)
        if not path.exists():
            return self.schema.empty_table()
        with pa.memory_map(str(path)) as source:
            return pa.ipc.open_file(source).read_all()
