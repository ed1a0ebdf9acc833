"""CSV and TSV files as chunks of rows, every row with its exact physical line number.

The file (plain or gzip) is read in byte blocks cut at line ends, so memory stays bounded by a
few blocks. Blocks are parsed on a pool of threads (:mod:`churnscale.data.csv_block`: a numpy
scan, then pyarrow; faulty lines cut out first, each one a :class:`Reject` with its line and
reason) and put back in file order. Without a schema, rows are text. With a
:class:`~churnscale.data.chunk.SchemaSlot`, blocks are parsed straight into the schema's types
(:mod:`churnscale.data.csv_typed`) and conformed on the pool, so chunks come back conformed; a
reader holding the stream's first :data:`~churnscale.data.chunk.SAMPLE_ROWS` rows infers the
schema from them first. The quarantine rule for quoting is in :mod:`churnscale.data.csv_scan`.
"""

from __future__ import annotations

import csv
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa

from churnscale.data.chunk import SAMPLE_ROWS, Chunk, SchemaSlot
from churnscale.data.conform import conform
from churnscale.data.csv_block import BlockError, ParsedBlock, empty_batch, parse_block
from churnscale.data.csv_scan import Layout
from churnscale.data.csv_typed import TypedParser
from churnscale.data.fingerprint import row_hashes
from churnscale.data.schema import Schema
from churnscale.exceptions import ConfigError, SourceError

BLOCK_BYTES = 8 << 20
MAX_RECORD_BYTES = 64 << 20
BOM = b"\xef\xbb\xbf"
#: Threads parsing blocks (one a core, at most 4); blocks in flight are one more than this.
WORKERS = max(1, min(4, os.cpu_count() or 1))


class _NoLineEnd(Exception):
    """The bytes after the last line end grew past :data:`MAX_RECORD_BYTES`."""


def read_csv_chunks(
    fs: Any,
    name: str,
    *,
    delimiter: str,
    batch_rows: int,
    block_bytes: int = BLOCK_BYTES,
    max_record_lines: int = 1,
    schema: SchemaSlot | None = None,
) -> Iterator[Chunk]:
    """Stream ``name`` as chunks of at most ``batch_rows`` rows (text, or conformed to ``schema``).

    ``max_record_lines`` > 1 accepts records whose quoted fields hold line breaks.
    """
    for option, value in (
        ("batch_rows", batch_rows),
        ("block_bytes", block_bytes),
        ("max_record_lines", max_record_lines),
    ):
        if value < 1:
            raise ConfigError(option, expected="a positive integer", received=value)
    path = name.split("://", 1)[1] if "://" in name else name
    compression = "gzip" if name.endswith(".gz") else None
    with fs.open(path, "rb", compression=compression) as handle:
        names, rest = _read_header(handle, name, delimiter, block_bytes)
        layout = Layout(name, names, delimiter.encode(), max_record_lines)
        reader = _BlockReader(layout, schema)
        bodies = _bodies(handle, rest, block_bytes)
        yield from _chunks(reader.blocks(bodies), reader, batch_rows)


def _read_header(
    handle: Any, name: str, delimiter: str, block_bytes: int
) -> tuple[list[str], bytes]:
    buf = b""
    while b"\n" not in buf:
        data = handle.read(block_bytes)
        if not data:
            break
        buf += data
        _check_record_size(buf, name, 1)
    buf = buf.removeprefix(BOM)
    if not buf.strip():
        raise SourceError(name, "empty file: expected a header line naming the columns")
    line, _, rest = buf.partition(b"\n")
    try:
        text = line.decode("utf-8").rstrip("\r")
    except UnicodeDecodeError as exc:
        raise SourceError(name, "line 1 (header): invalid UTF-8 encoding") from exc
    if "\r" in text:
        raise SourceError(
            name,
            "line 1 (header): carriage return inside the line; lines must end with \\n or \\r\\n",
        )
    if text.count('"') % 2:
        raise SourceError(name, "line 1 (header): broken quoting")
    if not text.strip():
        raise SourceError(name, "line 1 (header) is blank: expected the column names")
    try:
        names = next(csv.reader([text], delimiter=delimiter))
    except csv.Error as exc:
        raise SourceError(name, f"line 1 (header): {exc}") from exc
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SourceError(name, f"line 1 (header): repeated column names: {', '.join(repeated)}")
    return names, rest


def _check_record_size(buf: bytes, name: str, line: int) -> None:
    """Refuse a last line of ``buf`` (which starts on ``line``) that has grown past the limit."""
    last = buf.rfind(b"\n") + 1
    if len(buf) - last > MAX_RECORD_BYTES:
        line += buf.count(b"\n", 0, last)
        raise SourceError(
            name, f"line {line}: no line end within {MAX_RECORD_BYTES:,} bytes; not a CSV file?"
        )


def _bodies(handle: Any, tail: bytes, block_bytes: int) -> Iterator[tuple[bytes, bool]]:
    """Whole lines of about ``block_bytes`` each, and whether they end the file (last: always)."""
    cut = tail.rfind(b"\n") + 1
    if cut:
        yield tail[:cut], False
        tail = tail[cut:]
    while True:
        data = handle.read(block_bytes)
        if not data:
            yield (tail + b"\n" if tail and not tail.endswith(b"\n") else tail), True
            return
        cut = data.rfind(b"\n") + 1
        if not cut:
            tail += data
            if len(tail) > MAX_RECORD_BYTES:
                raise _NoLineEnd
            continue
        yield (b"".join((tail, memoryview(data)[:cut])) if tail else data[:cut]), False
        tail = data[cut:]


class _BlockReader:
    """Parses one file's blocks on a thread pool and returns them in order, lines counted."""

    def __init__(self, layout: Layout, slot: SchemaSlot | None) -> None:
        self.layout = layout
        self.slot = slot
        self._parser: TypedParser | None = None

    @property
    def schema(self) -> Schema | None:
        """The schema, once known."""
        return None if self.slot is None else self.slot.schema

    def _job(self) -> tuple[Schema | None, TypedParser | None]:
        """What the next block is parsed with: the schema and its parser, once known."""
        schema = self.schema
        if schema is not None and self._parser is None:
            self._parser = TypedParser(schema, self.layout.names, self.layout.delimiter.decode())
        return schema, self._parser

    def _ahead(self) -> int:
        """Blocks parsed ahead of the one returned next: none while this reader may still
        infer the schema (so that only the rows it infers from are parsed as text)."""
        slot = self.slot
        learning = slot is not None and slot.schema is None and not slot.raw_rows
        return 0 if learning else WORKERS

    def _work(
        self, body: bytes, eof: bool, job: tuple[Schema | None, TypedParser | None]
    ) -> ParsedBlock:
        """Parse one block (on a pool thread); conformed when the schema is known."""
        schema, parser = job
        block = parse_block(body, self.layout, eof=eof, parser=parser)
        return block if schema is None else conform_block(block, schema, self.layout.name)

    def blocks(self, bodies: Iterator[tuple[bytes, bool]]) -> Iterator[ParsedBlock]:
        """Every block of ``bodies``, in order, with physical line numbers."""
        line, carry = 2, b""
        waiting: deque[tuple[bytes, bool, Future[ParsedBlock]]] = deque()
        pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="churnscale-csv")
        try:
            for body, eof in _guarded(bodies):
                if body is not None:
                    waiting.append((body, eof, pool.submit(self._work, body, eof, self._job())))
                while len(waiting) > (self._ahead() if body is not None else 0):
                    block, line, carry = self._settle(waiting.popleft(), line, carry)
                    yield block
                if body is None:  # no line end in sight
                    line += carry.count(b"\n")
                    raise SourceError(
                        self.layout.name,
                        f"line {line}: no line end within {MAX_RECORD_BYTES:,} bytes; "
                        "not a CSV file?",
                    )
            while waiting:
                block, line, carry = self._settle(waiting.popleft(), line, carry)
                yield block
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _settle(
        self, item: tuple[bytes, bool, Future[ParsedBlock]], line: int, carry: bytes
    ) -> tuple[ParsedBlock, int, bytes]:
        """A block's result with its lines counted from ``line``; lines left to the next block.

        A block parsed without the lines its predecessor left over is parsed again with them.
        """
        body, eof, future = item
        try:
            if carry:
                future.cancel()
                block = self._work(carry + body, eof, self._job())
            else:
                block = future.result()
        except BlockError as exc:
            raise SourceError(
                self.layout.name,
                f"lines {line + exc.first}–{line + exc.last}: records could not be delimited",
            ) from exc
        if len(block.carry) > MAX_RECORD_BYTES:
            last = line + block.consumed + block.carry.count(b"\n")
            raise SourceError(
                self.layout.name,
                f"line {last}: no line end within {MAX_RECORD_BYTES:,} bytes; not a CSV file?",
            )
        return block.shifted(line), line + block.consumed, block.carry


def _guarded(bodies: Iterator[tuple[bytes, bool]]) -> Iterator[tuple[bytes | None, bool]]:
    """``bodies``, with a line too long to hold turned into one ``(None, True)`` item."""
    try:
        yield from bodies
    except _NoLineEnd:
        yield None, True


def conform_block(block: ParsedBlock, schema: Schema, source: str) -> ParsedBlock:
    """``block``'s rows conformed to ``schema`` and hashed; rows that do not fit are rejects.

    Categories stay dictionary-encoded until they are hashed (once per distinct value).
    """
    table = block.table.combine_chunks()
    batch = table.to_batches()[0] if table.num_rows else _empty(table)
    typed, rejects = conform(batch, schema, source=source, lines=block.lines, keep_dictionary=True)
    hashes = row_hashes(typed)
    lines = block.lines
    if rejects:
        lines = lines[~np.isin(lines, [r.line for r in rejects])]
        rejects = sorted(block.rejects + rejects, key=lambda r: r.line)
    else:
        rejects = block.rejects
    arrays = [
        c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in typed.columns
    ]
    return ParsedBlock(
        pa.Table.from_arrays(arrays, schema=schema.arrow_schema()),
        lines,
        rejects,
        consumed=block.consumed,
        carry=block.carry,
        conformed=True,
        hashes=hashes,
    )


def _empty(table: pa.Table) -> pa.RecordBatch:
    arrays = [pa.array([], f.type) for f in table.schema]
    return pa.RecordBatch.from_arrays(arrays, schema=table.schema)


def _chunks(
    blocks: Iterator[ParsedBlock], reader: _BlockReader, batch_rows: int
) -> Iterator[Chunk]:
    """Regroup the blocks' rows into chunks of ``batch_rows`` (the last may be smaller).

    Rows parsed as text before the schema was known are conformed here once it is; the schema
    is inferred here from the stream's first rows when no rows went out as text before.
    """
    layout, slot = reader.layout, reader.slot
    pending = ParsedBlock(pa.Table.from_batches([empty_batch(layout)]), np.zeros(0, np.int64))
    for block in blocks:
        schema = reader.schema
        if schema is not None and not block.conformed:
            block = conform_block(block, schema, layout.name)
        if block.conformed and not pending.conformed:
            pending = conform_block(pending, block_schema(reader), layout.name)
        _append(pending, block)
        if slot is not None and schema is None and not slot.raw_rows:
            if pending.table.num_rows >= SAMPLE_ROWS:
                slot.infer(pending.table.slice(0, SAMPLE_ROWS))
                pending = conform_block(pending, block_schema(reader), layout.name)
        while pending.table.num_rows >= batch_rows:
            yield _take(pending, layout, batch_rows)
    if pending.table.num_rows or pending.rejects:
        yield _take(pending, layout, batch_rows)


def block_schema(reader: _BlockReader) -> Schema:
    """The reader's schema, which is known once any block came back conformed."""
    schema = reader.schema
    assert schema is not None, "a conformed block implies a schema"
    return schema


def _append(pending: ParsedBlock, block: ParsedBlock) -> None:
    pending.rejects += block.rejects
    if block.table.num_rows:
        pending.table = pa.concat_tables([pending.table, block.table])
        pending.lines = np.concatenate((pending.lines, block.lines))
        if pending.hashes is not None and block.hashes is not None:
            pending.hashes = np.concatenate((pending.hashes, block.hashes))


def _take(pending: ParsedBlock, layout: Layout, rows: int) -> Chunk:
    """The first ``rows`` rows of ``pending`` and all its rejects, removed from it."""
    table = pending.table.slice(0, rows).combine_chunks()
    batch = table.to_batches()[0] if table.num_rows else _empty(table)
    hashes = None if pending.hashes is None else pending.hashes[:rows]
    chunk = Chunk(
        batch, layout.name, pending.lines[:rows], pending.rejects, pending.conformed, hashes
    )
    pending.table, pending.lines, pending.rejects = (
        pending.table.slice(rows),
        pending.lines[rows:],
        [],
    )
    if pending.hashes is not None:
        pending.hashes = pending.hashes[rows:]
    return chunk
