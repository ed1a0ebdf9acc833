"""Stored datasets and Parquet sources as lazy Dask DataFrames, for work on a cluster.

Every Parquet row group becomes one partition, read on a worker with page checksums
verified; a raw Parquet source is conformed to the schema there too. Dtypes follow the
schema's roles (see :func:`pandas_dtypes`), so a partition on a cluster has exactly the
columns and types that the streamed reader gives on one machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from churnscale.data.conform import conform
from churnscale.data.readers import expand, file_format
from churnscale.data.schema import Schema
from churnscale.data.store import is_dataset, load_info, resolve_schema
from churnscale.exceptions import SchemaError, SourceError

if TYPE_CHECKING:
    import dask.dataframe as dd

#: One Parquet row group of one file: ``(path, row group index)``.
Piece = tuple[str, int]


_PANDAS_TYPES: dict[pa.DataType, Any] = {
    pa.bool_(): pd.BooleanDtype(),
    pa.string(): pd.StringDtype("pyarrow"),
    pa.large_string(): pd.StringDtype("pyarrow"),
}


def pandas_dtypes(schema: Schema) -> dict[str, Any]:
    """The pandas dtype each column of ``schema`` has in a partition."""
    empty = pa.Table.from_batches([], schema=schema.arrow_schema())
    return {str(name): dtype for name, dtype in to_pandas(empty).dtypes.items()}


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """A conformed table as pandas: float64, int8, boolean, string[pyarrow], datetime64[us]."""
    frame: pd.DataFrame = table.to_pandas(
        types_mapper=_PANDAS_TYPES.get, coerce_temporal_nanoseconds=False, split_blocks=True
    )
    return frame


def to_dask(
    path: str | Path,
    *,
    schema: Schema | None = None,
    storage_options: dict[str, Any] | None = None,
    columns: list[str] | None = None,
) -> dd.DataFrame:
    """A lazy Dask DataFrame over a stored dataset or a Parquet source (file, dir, glob, s3)."""
    import dask.dataframe as dd

    source = str(path)
    stored, pieces = source_pieces(source, storage_options=storage_options)
    if stored:
        schema = schema or load_info(Path(source))[0]
    else:
        schema = resolve_schema(source, schema=schema, storage_options=storage_options)
    if columns is not None:
        schema = _select(schema, columns)
    frame: dd.DataFrame = dd.from_map(  # type: ignore[no-untyped-call]
        read_piece,
        pieces,
        meta=to_pandas(pa.Table.from_batches([], schema=schema.arrow_schema())),
        schema=schema.to_dict(),
        storage_options=storage_options or {},
        stored=stored,
        label="churnscale-parquet",
        enforce_metadata=False,
    )
    return frame


def source_pieces(
    path: str | Path, *, storage_options: dict[str, Any] | None = None
) -> tuple[bool, list[Piece]]:
    """Whether ``path`` is a stored dataset, and its Parquet row groups (one task each)."""
    source = str(path)
    if is_dataset(source):
        _, info = load_info(Path(source))
        files = [str(Path(source) / name) for name in info.files]
        return True, _pieces(files, storage_options)
    return False, _pieces(_parquet_files(source, storage_options), storage_options)


def read_row_group(
    piece: Piece,
    *,
    columns: list[str] | None,
    storage_options: dict[str, Any] | None = None,
    read_dictionary: list[str] | None = None,
) -> tuple[pa.Table, int]:
    """Row group ``piece`` (page checksums verified) and the file row number of its first row."""
    name, group = piece
    try:
        with _open(name, storage_options) as handle:
            parquet = pq.ParquetFile(
                handle, page_checksum_verification=True, read_dictionary=read_dictionary
            )
            table = parquet.read_row_group(group, columns=columns)
            first_row = 1 + sum(parquet.metadata.row_group(g).num_rows for g in range(group))
    except (OSError, pa.ArrowException) as exc:
        raise SourceError(name, f"corrupt data in row group {group}: {exc}") from exc
    return table, first_row


def _select(schema: Schema, columns: list[str]) -> Schema:
    unknown = [c for c in columns if c not in schema.names]
    if unknown:
        raise SchemaError("columns are not in the schema", unknown=unknown)
    keep = tuple(c for c in schema.columns if c.name in columns)
    return Schema(keep, positive_label=schema.positive_label, metadata=schema.metadata)


def _parquet_files(source: str, storage_options: dict[str, Any] | None) -> list[str]:
    _, files = expand(source, storage_options)
    other = [f for f in files if file_format(f) != "parquet"]
    if other:
        raise SourceError(source, f"the Dask path reads Parquet only; not Parquet: {other[0]}")
    return files


def _pieces(files: list[str], storage_options: dict[str, Any] | None) -> list[Piece]:
    pieces: list[Piece] = []
    for name in files:
        with _open(name, storage_options) as handle:
            groups = pq.ParquetFile(handle).num_row_groups
        pieces.extend((name, group) for group in range(groups))
    if not pieces:
        raise SourceError(files[0] if files else "", "no row groups to read")
    return pieces


def _open(name: str, storage_options: dict[str, Any] | None) -> Any:
    import fsspec

    return fsspec.open(name, "rb", **(storage_options or {})).open()


def read_piece(
    piece: Piece, *, schema: dict[str, Any], storage_options: dict[str, Any], stored: bool
) -> pd.DataFrame:
    """One partition: row group ``piece`` of a file, conformed to ``schema``, as pandas."""
    name, group = piece
    spec = Schema.from_dict(schema)
    columns = spec.names if stored else None
    table, first_row = read_row_group(piece, columns=columns, storage_options=storage_options)
    if stored:
        return to_pandas(table.select(spec.names).cast(spec.arrow_schema()))
    batch = table.combine_chunks().to_batches()[0] if table.num_rows else None
    if batch is None:
        return to_pandas(pa.Table.from_batches([], schema=spec.arrow_schema()))
    lines = np.arange(first_row, first_row + batch.num_rows, dtype=np.int64)
    require_target = spec.target is not None
    typed, rejects = conform(batch, spec, source=name, lines=lines, require_target=require_target)
    if rejects:
        bad = rejects[0]
        raise SchemaError(
            f"{name} row {bad.line}: {bad.reason} ({bad.value!r}); "
            f"{len(rejects)} bad row(s) in row group {group}; ingest the source to quarantine them",
        )
    return to_pandas(pa.Table.from_batches([typed]))


__all__ = [
    "pandas_dtypes",
    "read_piece",
    "read_row_group",
    "source_pieces",
    "to_dask",
    "to_pandas",
]
