"""Write a stream of record batches to Parquet, CSV or JSON Lines in bounded memory."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq

from churnscale.exceptions import ConfigError

FORMATS = ("parquet", "csv", "jsonl")
ROW_GROUP_ROWS = 1_048_576


def _plain(batch: pa.RecordBatch) -> pa.RecordBatch:
    arrays = [
        c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in batch.columns
    ]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def write_batches(
    batches: Iterable[pa.RecordBatch],
    out: Path,
    *,
    fmt: str = "parquet",
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Write ``batches`` to ``out`` in ``fmt``; returns the number of rows written."""
    if fmt not in FORMATS:
        raise ConfigError("--format", expected=" or ".join(FORMATS), received=fmt)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    pending: list[pa.RecordBatch] = []
    writer: pq.ParquetWriter | pv.CSVWriter | None = None
    with out.open("wb") as sink:
        for batch in batches:
            if fmt != "parquet":
                batch = _plain(batch)
            if fmt == "jsonl":
                sink.write(_jsonl(batch))
            elif fmt == "csv":
                writer = writer or pv.CSVWriter(sink, batch.schema)
                writer.write_batch(batch)
            else:
                pending.append(batch)
                if sum(b.num_rows for b in pending) >= ROW_GROUP_ROWS:
                    writer = writer or pq.ParquetWriter(sink, batch.schema, compression="zstd")
                    writer.write_table(pa.Table.from_batches(pending), ROW_GROUP_ROWS)
                    pending = []
            rows += batch.num_rows
            if on_batch is not None:
                on_batch(batch.num_rows)
        if pending:
            writer = writer or pq.ParquetWriter(sink, pending[0].schema, compression="zstd")
            writer.write_table(pa.Table.from_batches(pending), ROW_GROUP_ROWS)
        if writer is not None:
            writer.close()
    return rows


def _jsonl(batch: pa.RecordBatch) -> bytes:
    rows = batch.to_pylist()
    return b"".join(orjson.dumps(r, default=str) + b"\n" for r in rows)
