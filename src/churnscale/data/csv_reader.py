"""CSV and TSV files as chunks of string columns, every row with its exact physical line number.

The file (plain or gzip) is read in byte blocks cut at line ends, so memory stays bounded by a
few blocks. Each block is scanned with numpy (:mod:`churnscale.data.csv_scan`); a clean block
is parsed whole by pyarrow, a block with faults has its bad lines cut out first, each one a
:class:`Reject` with its line and reason, and the rest is parsed the same way. The quarantine
rule for quoting is in :mod:`churnscale.data.csv_scan`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv

from churnscale.data.chunk import Chunk
from churnscale.data.csv_scan import (
    BlockPlan,
    Ints,
    Layout,
    LineScan,
    kept_bytes,
    line_break_in_quotes,
    parser_fault,
    plan_block,
    scan_lines,
)
from churnscale.data.quarantine import Reject
from churnscale.exceptions import ConfigError, SourceError

BLOCK_BYTES = 8 << 20
MAX_RECORD_BYTES = 64 << 20
PREVIEW_CHARS = 200
BOM = b"\xef\xbb\xbf"


@dataclass
class ParsedBlock:
    """The rows pyarrow read from one block, their physical lines and the block's rejects."""

    table: pa.Table
    lines: Ints
    rejects: list[Reject]


def read_csv_chunks(
    fs: Any,
    name: str,
    *,
    delimiter: str,
    batch_rows: int,
    block_bytes: int = BLOCK_BYTES,
    max_record_lines: int = 1,
) -> Iterator[Chunk]:
    """Stream ``name`` as string-typed chunks of at most ``batch_rows`` rows.

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
        yield from _chunks(_parsed_blocks(handle, rest, layout, block_bytes), layout, batch_rows)


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


def _parsed_blocks(
    handle: Any, tail: bytes, layout: Layout, block_bytes: int
) -> Iterator[ParsedBlock]:
    line_base, eof = 2, False
    while not eof:
        data = handle.read(block_bytes)
        eof = not data
        if eof and tail and not tail.endswith(b"\n"):
            tail += b"\n"
        cut = data.rfind(b"\n") + 1
        if not cut and not eof:
            tail += data
            _check_record_size(tail, layout.name, line_base)
            continue
        body = b"".join((tail, memoryview(data)[:cut])) if tail else data[:cut]
        tail = data[cut:]
        if not body:
            continue
        scan = scan_lines(body, delimiter=layout.delimiter)
        fast = _parse_clean(scan, body, layout, line_base)
        if fast is not None:
            yield fast
            line_base += len(scan.starts)
            continue
        plan = plan_block(scan, body, layout, eof=eof)
        if plan.cut < len(scan.starts):
            tail = body[scan.starts[plan.cut] :] + tail
            _check_record_size(tail, layout.name, line_base + plan.cut)
        yield _parse_block(scan, body, plan, layout, line_base)
        line_base += plan.cut


def _parse_clean(scan: LineScan, buf: bytes, layout: Layout, line_base: int) -> ParsedBlock | None:
    """The fast path: a block with balanced quotes and valid UTF-8 that pyarrow reads whole."""
    if not scan.clean:
        return None
    table, skipped = _read_table(buf, layout)
    records = np.flatnonzero(~scan.empty)
    if skipped or table.num_rows != len(records):
        return None
    return ParsedBlock(table, records + line_base, [])


def _parse_block(
    scan: LineScan, buf: bytes, plan: BlockPlan, layout: Layout, line_base: int
) -> ParsedBlock:
    rejects = [_reject(scan, buf, layout, line_base, r) for r in plan.rejects]
    table, skipped = _read_table(kept_bytes(scan, buf, plan.keep), layout)
    starts = np.flatnonzero(plan.record)
    if skipped or table.num_rows != len(starts):
        rejects += _recheck_widths(scan, buf, plan, layout, line_base)
        rejects.sort(key=lambda r: r.line)
        table, skipped = _read_table(kept_bytes(scan, buf, plan.keep), layout)
        starts = np.flatnonzero(plan.record)
        if skipped or table.num_rows != len(starts):
            raise SourceError(
                layout.name,
                f"lines {line_base}–{line_base + plan.cut - 1}: records could not be delimited",
            )
    return ParsedBlock(table, starts + line_base, rejects)


def _reject(
    scan: LineScan, buf: bytes, layout: Layout, line_base: int, fault: tuple[int, int, str | None]
) -> Reject:
    first, last, reason = fault
    if reason is None:
        reason = line_break_in_quotes(line_base + first, line_base + last)
    raw = buf[scan.starts[first] : min(scan.stops[last], scan.starts[first] + 4 * PREVIEW_CHARS)]
    preview = raw.decode("utf-8", errors="replace")[:PREVIEW_CHARS]
    return Reject(layout.name, line_base + first, reason, value=preview)


def _read_table(data: bytes | memoryview, layout: Layout) -> tuple[pa.Table, int]:
    """Every record of ``data`` as string columns, and how many rows pyarrow could not split."""
    if len(data) == 0:
        return _empty_table(layout), 0
    skipped: list[int] = []

    def on_invalid(row: Any) -> str:
        skipped.append(1)
        return "skip"

    table = pv.read_csv(
        pa.BufferReader(data),
        read_options=pv.ReadOptions(column_names=layout.names),
        parse_options=pv.ParseOptions(
            delimiter=layout.delimiter.decode(),
            newlines_in_values=layout.max_record_lines > 1,
            invalid_row_handler=on_invalid,
        ),
        convert_options=pv.ConvertOptions(
            column_types=dict.fromkeys(layout.names, pa.string()), strings_can_be_null=False
        ),
    )
    return table, len(skipped)


def _recheck_widths(
    scan: LineScan, buf: bytes, plan: BlockPlan, layout: Layout, line_base: int
) -> list[Reject]:
    """Count fields the way the parser does (quotes only open a field) where the scan erred."""
    rejects: list[Reject] = []
    starts = np.flatnonzero(plan.record)
    kept = np.flatnonzero(plan.keep)
    nexts = np.append(starts[1:], len(plan.keep))
    lasts = kept[np.searchsorted(kept, nexts) - 1]
    for first, last in zip(starts.tolist(), lasts.tolist(), strict=True):
        reason = parser_fault(buf[scan.starts[first] : scan.stops[last]], layout)
        if reason is not None:
            plan.keep[first : last + 1] = False
            plan.record[first] = False
            rejects.append(_reject(scan, buf, layout, line_base, (first, last, reason)))
    return rejects


def _chunks(blocks: Iterator[ParsedBlock], layout: Layout, batch_rows: int) -> Iterator[Chunk]:
    """Regroup the blocks' rows into chunks of ``batch_rows`` (the last may be smaller)."""
    pending = ParsedBlock(_empty_table(layout), np.zeros(0, np.int64), [])
    for block in blocks:
        pending.rejects += block.rejects
        if block.table.num_rows:
            pending.table = pa.concat_tables([pending.table, block.table])
            pending.lines = np.concatenate((pending.lines, block.lines))
        while pending.table.num_rows >= batch_rows:
            yield _take(pending, layout, batch_rows)
    if pending.table.num_rows or pending.rejects:
        yield _take(pending, layout, batch_rows)


def _take(pending: ParsedBlock, layout: Layout, rows: int) -> Chunk:
    """The first ``rows`` rows of ``pending`` and all its rejects, removed from it."""
    table = pending.table.slice(0, rows).combine_chunks()
    batch = table.to_batches()[0] if table.num_rows else _empty_batch(layout)
    chunk = Chunk(batch, layout.name, pending.lines[:rows], pending.rejects)
    pending.table, pending.lines, pending.rejects = (
        pending.table.slice(rows),
        pending.lines[rows:],
        [],
    )
    return chunk


def _empty_batch(layout: Layout) -> pa.RecordBatch:
    arrays = [pa.array([], pa.string()) for _ in layout.names]
    return pa.RecordBatch.from_arrays(arrays, names=layout.names)


def _empty_table(layout: Layout) -> pa.Table:
    return pa.Table.from_batches([_empty_batch(layout)])
