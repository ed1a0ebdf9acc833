"""The canonical store: a directory of Parquet parts with ``schema.json`` and ``dataset.json``.

``ingest`` streams any source into it in bounded memory: rows are conformed to the schema,
rejects go to the quarantine, parts are written with page checksums, and the directory only
appears (by an atomic rename) once it is complete. The content fingerprint is the lineage id
that runs and models record; it does not depend on row order or on how the data was split.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from churnscale.artifacts import sha256_file
from churnscale.data.chunk import Chunk, SchemaSlot
from churnscale.data.conform import conform
from churnscale.data.fingerprint import Fingerprint
from churnscale.data.pipeline import ThreadedSink
from churnscale.data.quarantine import Quarantine
from churnscale.data.readers import peek_sample, read_chunks, read_sample
from churnscale.data.schema import Schema, SchemaHints, infer_schema
from churnscale.exceptions import (
    ChurnscaleError,
    QuarantineLimitError,
    SchemaError,
    SourceError,
    StorageError,
)

PART_ROWS = 1_048_576
SCHEMA_FILE = "schema.json"
INFO_FILE = "dataset.json"
QUARANTINE_FILE = "quarantine.jsonl"


@dataclass
class DatasetInfo:
    """What ``dataset.json`` records about a stored dataset."""

    rows: int
    rejected: int
    files: list[str]
    fingerprint: str
    sources: list[str]
    created: str
    extra: dict[str, Any] = field(default_factory=dict)
    #: SHA-256 of every part, checked before a part is read (empty for older datasets).
    checksums: dict[str, str] = field(default_factory=dict)


def is_dataset(path: str | Path) -> bool:
    """Whether ``path`` is a dataset written by :func:`ingest`."""
    p = Path(str(path))
    return "://" not in str(path) and (p / SCHEMA_FILE).is_file() and (p / INFO_FILE).is_file()


def load_info(path: Path) -> tuple[Schema, DatasetInfo]:
    """The schema and info of a stored dataset."""
    if not is_dataset(path):
        raise SourceError(str(path), f"not a churnscale dataset (no {SCHEMA_FILE}/{INFO_FILE})")
    info = DatasetInfo(**json.loads((path / INFO_FILE).read_text()))
    return Schema.load(path / SCHEMA_FILE), info


class PartWriter:
    """Writes conformed batches into numbered Parquet parts of at most ``PART_ROWS`` rows."""

    def __init__(self, directory: Path, schema: pa.Schema, *, part_rows: int = PART_ROWS) -> None:
        self.directory = directory
        self.schema = schema
        self.part_rows = part_rows
        self.files: list[str] = []
        self._writer: pq.ParquetWriter | None = None
        self._rows_in_part = 0

    def write(self, batch: pa.RecordBatch) -> None:
        """Append ``batch``, starting a new part when the current one is full."""
        while batch.num_rows:
            if self._writer is None or self._rows_in_part >= self.part_rows:
                self._open()
            assert self._writer is not None
            take = min(batch.num_rows, self.part_rows - self._rows_in_part)
            self._writer.write_batch(batch.slice(0, take))
            self._rows_in_part += take
            batch = batch.slice(take)

    def _open(self) -> None:
        self.close()
        name = f"part-{len(self.files):05d}.parquet"
        self._writer = pq.ParquetWriter(
            self.directory / name,
            self.schema,
            compression="zstd",
            write_page_checksum=True,
        )
        self.files.append(name)
        self._rows_in_part = 0

    def close(self) -> None:
        """Finish the current part."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def resolve_schema(
    source: str,
    *,
    hints: SchemaHints | None = None,
    schema: Schema | None = None,
    storage_options: dict[str, Any] | None = None,
) -> Schema:
    """The schema to read ``source`` with: the one given, a stored one, or inferred."""
    if schema is not None:
        return schema
    if is_dataset(source):
        return load_info(Path(source))[0]
    return infer_schema(read_sample(source, storage_options=storage_options), hints)


def ingest(
    source: str,
    out: Path,
    *,
    hints: SchemaHints | None = None,
    schema: Schema | None = None,
    storage_options: dict[str, Any] | None = None,
    batch_rows: int = 262_144,
    max_bad_fraction: float = 0.01,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[Schema, DatasetInfo]:
    """Convert ``source`` (any readable format) into a stored dataset at ``out``."""
    if schema is None and is_dataset(source):
        schema = load_info(Path(source))[0]
    slot = SchemaSlot(schema, hints)
    chunks = read_chunks(
        source, batch_rows=batch_rows, storage_options=storage_options, schema=slot
    )
    if slot.schema is None:  # infer from the head of the same stream: the source is read once
        sample, chunks = peek_sample(chunks, source)  # (a CSV reader infers on the way)
        schema = slot.schema or slot.infer(sample)
        del sample  # it shares the head chunk's buffers; let them go once that is stored
    assert slot.schema is not None
    schema = slot.schema
    if out.exists():
        raise SourceError(str(out), "already exists; choose a new output directory")
    staging = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        staging.mkdir(parents=True)
    except OSError as exc:
        raise StorageError.from_os_error(str(out), exc) from exc
    try:
        info = _write_dataset(source, chunks, staging, schema, max_bad_fraction, on_progress)
        os.replace(staging, out)
    except BaseException as exc:
        if isinstance(exc, QuarantineLimitError):
            kept = out.parent / f"{out.name}.quarantine.jsonl"
            os.replace(staging / QUARANTINE_FILE, kept)
            exc.quarantine = str(kept)
            exc.message = exc.message.rsplit("; see ", 1)[0] + f"; see {kept}"
            exc.args = (exc.message,)
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, ChurnscaleError):
            raise StorageError.from_os_error(str(out), exc) from exc
        raise
    return schema, info


def _write_dataset(
    source: str,
    chunks: Iterator[Chunk],
    staging: Path,
    schema: Schema,
    max_bad_fraction: float,
    on_progress: Callable[[int], None] | None,
) -> DatasetInfo:
    writer = PartWriter(staging, schema.arrow_schema())
    fingerprint = Fingerprint()
    seen = 0

    def store(item: tuple[pa.RecordBatch, np.ndarray | None]) -> None:
        batch, hashes = item
        writer.write(batch)
        if hashes is None:
            fingerprint.update(batch)
        else:
            fingerprint.add_hashes(hashes)

    with (
        Quarantine(staging / QUARANTINE_FILE, max_bad_fraction=max_bad_fraction) as quarantine,
        ThreadedSink(store) as sink,
    ):
        for typed, hashes, rows_read in _conformed(chunks, schema, quarantine):
            sink.put((typed, hashes))
            seen += rows_read
            if on_progress is not None:
                on_progress(rows_read)
        sink.close()
        writer.close()
        quarantine.check(seen)
    if fingerprint.rows == 0:
        raise SchemaError(f"{source}: no valid rows to store")
    schema.save(staging / SCHEMA_FILE)
    info = DatasetInfo(
        rows=fingerprint.rows,
        rejected=quarantine.count,
        files=writer.files,
        fingerprint=fingerprint.hexdigest(schema),
        sources=[source],
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        checksums={name: sha256_file(staging / name) for name in writer.files},
    )
    (staging / INFO_FILE).write_text(json.dumps(info.__dict__, indent=2) + "\n")
    return info


def _conformed(
    chunks: Iterator[Chunk], schema: Schema, quarantine: Quarantine
) -> Iterator[tuple[pa.RecordBatch, np.ndarray | None, int]]:
    """Each chunk's rows in the schema's types, their row hashes if known, and rows read."""
    for chunk in chunks:
        quarantine.add(chunk.rejects)
        if chunk.conformed:
            yield chunk.batch, chunk.row_hashes, chunk.batch.num_rows + len(chunk.rejects)
            continue
        typed, rejects = conform(chunk.batch, schema, source=chunk.source, lines=chunk.lines)
        quarantine.add(rejects)
        yield typed, None, chunk.batch.num_rows + len(chunk.rejects)


def check_part(path: Path, name: str, info: DatasetInfo) -> None:
    """Refuse a part whose bytes changed since it was stored (any byte, footer included)."""
    expected = info.checksums.get(name)
    if expected is None:
        return
    try:
        found = sha256_file(path / name)
    except OSError as exc:
        raise SourceError(str(path / name), f"cannot read a stored part: {exc}") from exc
    if found != expected:
        raise SourceError(str(path / name), f"corrupt data: SHA-256 does not match {INFO_FILE}")


def iter_dataset(
    path: Path,
    *,
    columns: list[str] | None = None,
    batch_rows: int = 262_144,
    read_dictionary: list[str] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream a stored dataset's rows, part by part, with page checksums verified.

    Columns named in ``read_dictionary`` come back dictionary-encoded (cheap for categories).
    """
    _, info = load_info(path)
    for name in info.files:
        check_part(path, name, info)
        try:
            parquet = pq.ParquetFile(
                path / name, page_checksum_verification=True, read_dictionary=read_dictionary
            )
            yield from parquet.iter_batches(batch_size=batch_rows, columns=columns)
        except (OSError, pa.ArrowException) as exc:
            raise SourceError(str(path / name), f"corrupt data: {exc}") from exc
