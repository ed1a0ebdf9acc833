"""Read CSV, TSV, Parquet and JSON Lines, local or ``s3://``, as a stream of bounded chunks.

A source is a file, a directory or a glob. Each :class:`Chunk` holds at most ``batch_rows``
rows plus the physical line number of each row, so later stages can quarantine bad rows with
their exact place; peak memory is a few chunks whatever the file size.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import fsspec
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from churnscale.data.chunk import SAMPLE_ROWS, Chunk, SchemaSlot
from churnscale.data.quarantine import Reject
from churnscale.exceptions import SourceError

CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json", ".jsonl.gz")
DEFAULT_BATCH_ROWS = 262_144


def file_format(path: str) -> str:
    """``csv``, ``tsv``, ``parquet`` or ``jsonl``, from a path's suffix."""
    lower = path.lower()
    if lower.endswith((".tsv", ".tsv.gz")):
        return "tsv"
    if lower.endswith(CSV_SUFFIXES):
        return "csv"
    if lower.endswith(PARQUET_SUFFIXES) or "." not in lower.rsplit("/", 1)[-1]:
        return "parquet"
    if lower.endswith(JSONL_SUFFIXES):
        return "jsonl"
    raise SourceError(path, "unknown format; expected .csv, .tsv, .parquet or .jsonl")


def expand(path: str, storage_options: dict[str, Any] | None = None) -> tuple[Any, list[str]]:
    """The filesystem and the sorted data files that ``path`` (file, directory, glob) names."""
    try:
        fs, _, paths = fsspec.get_fs_token_paths(path, storage_options=storage_options or {})
        files = _list_files(fs, paths)
    except (ImportError, ValueError) as exc:
        raise SourceError(path, f"cannot open: {exc}") from exc
    except _remote_errors() as exc:
        raise SourceError(path, f"cannot list: {type(exc).__name__}: {exc}") from exc
    if not files:
        raise SourceError(path, "no such file, or no data files in it")
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    prefix = "" if protocol in ("file", "local") else f"{protocol}://"
    return fs, [prefix + f if prefix and not f.startswith(prefix) else f for f in files]


def _list_files(fs: Any, paths: list[str]) -> list[str]:
    files: list[str] = []
    for p in paths:
        if fs.isdir(p):
            found = [f for f in fs.find(p) if _is_data_file(f)]
            files.extend(sorted(found))
        elif fs.exists(p):
            files.append(p)
    return files


def _remote_errors() -> tuple[type[Exception], ...]:
    """What a filesystem raises for a store it cannot reach or may not read (no credentials)."""
    errors: tuple[type[Exception], ...] = (OSError,)
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover - botocore comes with s3fs
        return errors
    return (*errors, BotoCoreError, ClientError)


def _is_data_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    if name.startswith((".", "_")):
        return False
    return name.lower().endswith(CSV_SUFFIXES + PARQUET_SUFFIXES + JSONL_SUFFIXES)


def read_chunks(
    path: str,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    storage_options: dict[str, Any] | None = None,
    columns: list[str] | None = None,
    read_dictionary: list[str] | None = None,
    schema: SchemaSlot | None = None,
) -> Iterator[Chunk]:
    """Stream every file of ``path`` as chunks of at most ``batch_rows`` rows.

    Parquet string columns named in ``read_dictionary`` come back dictionary-encoded. With a
    ``schema`` slot, CSV files come back conformed to it (see :class:`SchemaSlot`).
    """
    for chunk in _file_chunks(path, batch_rows, storage_options, columns, read_dictionary, schema):
        if schema is not None and not chunk.conformed:
            schema.raw_rows += chunk.batch.num_rows
        yield chunk


def _file_chunks(
    path: str,
    batch_rows: int,
    storage_options: dict[str, Any] | None,
    columns: list[str] | None,
    read_dictionary: list[str] | None,
    schema: SchemaSlot | None,
) -> Iterator[Chunk]:
    fs, files = expand(path, storage_options)
    for name in files:
        kind = file_format(name)
        if kind in ("csv", "tsv"):
            from churnscale.data.csv_reader import read_csv_chunks

            yield from read_csv_chunks(
                fs,
                name,
                delimiter="\t" if kind == "tsv" else ",",
                batch_rows=batch_rows,
                schema=schema,
            )
        elif kind == "parquet":
            yield from _parquet_chunks(
                fs, name, batch_rows=batch_rows, columns=columns, dictionary=read_dictionary
            )
        else:
            yield from _jsonl_chunks(fs, name, batch_rows=batch_rows)


def _parquet_chunks(
    fs: Any,
    name: str,
    *,
    batch_rows: int,
    columns: list[str] | None,
    dictionary: list[str] | None = None,
) -> Iterator[Chunk]:
    with fs.open(_strip(name), "rb") as handle:
        try:
            parquet = pq.ParquetFile(handle, page_checksum_verification=True)
            if dictionary:
                strings = _string_columns(parquet.schema_arrow, dictionary)
                parquet = pq.ParquetFile(
                    handle,
                    metadata=parquet.metadata,
                    page_checksum_verification=True,
                    read_dictionary=strings,
                )
        except (pa.ArrowInvalid, OSError) as exc:
            raise SourceError(name, f"not a readable Parquet file: {exc}") from exc
        start = 1
        try:
            for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
                lines = np.arange(start, start + batch.num_rows, dtype=np.int64)
                start += batch.num_rows
                yield Chunk(batch, name, lines)
        except (pa.ArrowInvalid, OSError) as exc:
            raise SourceError(name, f"corrupt Parquet data near row {start}: {exc}") from exc


def _string_columns(schema: pa.Schema, names: list[str]) -> list[str]:
    """Those of ``names`` that are plain string columns of ``schema``."""
    return [n for n in names if n in schema.names and pa.types.is_string(schema.field(n).type)]


def _strip(name: str) -> str:
    return name.split("://", 1)[1] if "://" in name else name


def _jsonl_chunks(fs: Any, name: str, *, batch_rows: int) -> Iterator[Chunk]:
    compression = "gzip" if name.endswith(".gz") else None
    with fs.open(_strip(name), "rb", compression=compression) as handle:
        rows: list[dict[str, Any]] = []
        lines: list[int] = []
        rejects: list[Reject] = []
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            record = _parse_json_line(raw, name, number, rejects)
            if record is not None:
                rows.append(record)
                lines.append(number)
            if len(rows) >= batch_rows:
                yield _jsonl_chunk(rows, lines, rejects, name)
                rows, lines, rejects = [], [], []
        if rows or rejects:
            yield _jsonl_chunk(rows, lines, rejects, name)


def _parse_json_line(
    raw: bytes, name: str, number: int, rejects: list[Reject]
) -> dict[str, Any] | None:
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        rejects.append(Reject(name, number, f"invalid JSON: {exc}", value=_preview(raw)))
        return None
    if not isinstance(record, dict):
        rejects.append(Reject(name, number, "not a JSON object", value=_preview(raw)))
        return None
    return {k: (None if v is None else str(v)) for k, v in record.items()}


def _jsonl_chunk(
    rows: list[dict[str, Any]], lines: list[int], rejects: list[Reject], name: str
) -> Chunk:
    names = list(dict.fromkeys(k for row in rows for k in row))
    arrays = [pa.array([row.get(n) for row in rows], type=pa.string()) for n in names]
    batch = pa.RecordBatch.from_arrays(arrays, names=names)
    return Chunk(batch, name, np.asarray(lines, dtype=np.int64), rejects)


def _preview(raw: bytes) -> str:
    return raw[:200].decode("utf-8", errors="replace").rstrip("\r\n")


def read_sample(
    path: str, *, rows: int = SAMPLE_ROWS, storage_options: dict[str, Any] | None = None
) -> pa.Table:
    """The first ``rows`` readable rows of ``path``, for schema inference."""
    chunks = read_chunks(path, batch_rows=rows, storage_options=storage_options)
    return peek_sample(chunks, path, rows=rows)[0]


def peek_sample(
    chunks: Iterator[Chunk], path: str, *, rows: int = SAMPLE_ROWS
) -> tuple[pa.Table, Iterator[Chunk]]:
    """The first ``rows`` rows of a chunk stream, and the whole stream again (head replayed).

    Inferring a schema from the head of the stream that is then stored reads the source once.
    """
    head: list[Chunk] = []
    seen = 0
    for chunk in chunks:
        head.append(chunk)
        seen += chunk.batch.num_rows
        if seen >= rows:
            break
    if not head:
        raise SourceError(path, "no readable rows")
    sample = pa.Table.from_batches(_unify([c.batch for c in head])).slice(0, rows)
    return sample, _replay(head, chunks)


def _replay(head: list[Chunk], rest: Iterator[Chunk]) -> Iterator[Chunk]:
    head.reverse()
    while head:  # pop, so a replayed chunk is not kept alive for the rest of the stream
        yield head.pop()
    yield from rest


def _unify(batches: list[pa.RecordBatch]) -> list[pa.RecordBatch]:
    names = list(dict.fromkeys(n for b in batches for n in b.schema.names))
    out = []
    for b in batches:
        arrays = [b.column(n) if n in b.schema.names else pa.nulls(b.num_rows) for n in names]
        out.append(pa.RecordBatch.from_arrays(arrays, names=names))
    first = out[0].schema
    return [b.cast(first) if b.schema != first else b for b in out]
