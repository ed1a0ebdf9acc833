"""One block of CSV lines → its rows, each row's line and the block's rejects.

A block is whole lines (it ends with ``\\n``). It is scanned with numpy
(:mod:`churnscale.data.csv_scan`); a block whose quoting is clean is parsed whole, and a line
pyarrow cannot split into the header's number of fields becomes a reject (its number among the
block's non-empty lines is its place). A block with quoting faults has its bad lines planned out
first, each one a :class:`Reject` with its line and reason, and the rest is parsed the same way.
The plan counts the fields of only the lines a quote may span (records are one line each);
a line of the wrong width elsewhere is one pyarrow skips, as on the clean path, and where
pyarrow and the scan disagree the block is planned again with every line's fields counted.
Rows come back as text, or in the schema's parse types when a
:class:`~churnscale.data.csv_typed.TypedParser` is given. Lines are counted from 0 at the
block's start; the reader adds the block's first line. Blocks do not depend on each other, so
they are parsed on several threads, except that a block may leave its last lines (an open quote
that later lines may close) to the next one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pv

from churnscale.data.csv_scan import (
    BlockPlan,
    Ints,
    Layout,
    LineScan,
    field_count,
    kept_bytes,
    line_break_in_quotes,
    parser_fault,
    plan_block,
    scan_lines,
    span_window_fields,
    wrong_width,
)
from churnscale.data.csv_typed import InvalidRow, TypedParser, TypedTable
from churnscale.data.quarantine import Reject

PREVIEW_CHARS = 200
#: Reason of a line-break reject until its lines are known: the mark, then its last line.
_SPAN_MARK = "\x00span:"


class BlockError(Exception):
    """Records between two lines of a block (counted from 0) that could not be delimited."""

    def __init__(self, first: int, last: int) -> None:
        super().__init__(first, last)
        self.first, self.last = first, last


@dataclass
class ParsedBlock:
    """The rows parsed from one block, their lines, and the block's rejects."""

    table: pa.Table
    lines: Ints
    rejects: list[Reject] = field(default_factory=list)
    #: Lines of the block that are settled; the rest (``carry``) wait for the next block.
    consumed: int = 0
    carry: bytes = b""
    conformed: bool = False
    #: Each conformed row's fingerprint hash (:func:`~churnscale.data.fingerprint.row_hashes`).
    hashes: npt.NDArray[np.uint64] | None = None

    def shifted(self, base: int) -> ParsedBlock:
        """The same block with lines counted from ``base`` instead of 0."""
        rejects = [_shifted(r, base) for r in self.rejects]
        return replace(self, lines=self.lines + base, rejects=rejects)


def _shifted(reject: Reject, base: int) -> Reject:
    first = reject.line + base
    if reject.reason.startswith(_SPAN_MARK):  # a line break in quotes names its lines
        last = int(reject.reason.removeprefix(_SPAN_MARK)) + base
        return replace(reject, line=first, reason=line_break_in_quotes(first, last))
    return replace(reject, line=first)


def parse_block(
    body: bytes, layout: Layout, *, eof: bool, parser: TypedParser | None = None
) -> ParsedBlock:
    """Rows, lines and rejects of ``body``; lines it cannot settle yet come back as ``carry``."""
    scan = scan_lines(body, delimiter=layout.delimiter)
    if scan.clean:
        clean = _parse_clean(scan, body, layout, parser)
        if clean is not None:
            return clean
    elif layout.max_record_lines == 1:
        sparse = _parse_sparse(scan, body, layout, parser, eof=eof)
        if sparse is not None:
            return sparse
    return parse_planned_block(scan, body, layout, parser, eof=eof)


def parse_planned_block(
    scan: LineScan, body: bytes, layout: Layout, parser: TypedParser | None, *, eof: bool
) -> ParsedBlock:
    """The exact path: every line's fields counted, each faulty line settled by the plan."""
    scan.fields = None
    plan = plan_block(scan, body, layout, eof=eof)
    carry = body[scan.starts[plan.cut] :] if plan.cut < len(scan.starts) else b""
    block = _parse_planned(scan, body, plan, layout, parser)
    block.consumed, block.carry = plan.cut, carry
    return block


def read_table(data: bytes | memoryview, layout: Layout, parser: TypedParser | None) -> TypedTable:
    """Every record of ``data``, typed by ``parser`` or as text, and the rows skipped."""
    if len(data) == 0:
        return TypedTable(_empty_table(layout))
    if parser is not None:
        return parser.parse(data)
    invalid: list[InvalidRow] = []

    def on_invalid(row: Any) -> str:
        invalid.append(InvalidRow(int(row.number), str(row.text)))
        return "skip"

    table = pv.read_csv(
        pa.BufferReader(data),
        read_options=pv.ReadOptions(column_names=layout.names, use_threads=False),
        parse_options=pv.ParseOptions(
            delimiter=layout.delimiter.decode(),
            newlines_in_values=layout.max_record_lines > 1,
            invalid_row_handler=on_invalid,
        ),
        convert_options=pv.ConvertOptions(
            column_types=dict.fromkeys(layout.names, pa.string()), strings_can_be_null=False
        ),
    )
    return TypedTable(table, invalid)


def _parse_clean(
    scan: LineScan, body: bytes, layout: Layout, parser: TypedParser | None
) -> ParsedBlock | None:
    """A block with balanced, usual quotes and valid UTF-8: one line is one record.

    A line pyarrow skips for its width is rejected; None when pyarrow and the scan disagree
    about where records are (then the block is planned line by line).
    """
    records = np.flatnonzero(~scan.empty)
    parsed = read_table(body, layout, parser)
    if parsed.table.num_rows + len(parsed.invalid) != len(records):
        return None
    rejects = []
    for row in parsed.invalid:
        line = int(records[row.number - 1])
        width = field_count(body[scan.starts[line] : scan.stops[line]], layout.delimiter)
        if width == layout.width:
            return None
        rejects.append(_reject(scan, body, layout, (line, line, wrong_width(layout.width, width))))
    if rejects:
        records = np.delete(records, [row.number - 1 for row in parsed.invalid])
    return ParsedBlock(parsed.table, records, rejects, consumed=len(scan.starts))


def _parse_sparse(
    scan: LineScan, body: bytes, layout: Layout, parser: TypedParser | None, *, eof: bool
) -> ParsedBlock | None:
    """A block with faulty lines, planned with fields counted only where the plan looks at
    them (the lines a quote may span); a line of the wrong width elsewhere is found by pyarrow,
    as on the clean path. None where pyarrow and the scan disagree (then the exact path runs).
    """
    scan.fields = span_window_fields(scan, body, layout)
    plan = plan_block(scan, body, layout, eof=eof)
    records = np.flatnonzero(plan.record)
    parsed = read_table(kept_bytes(scan, body, plan.keep), layout, parser)
    if parsed.table.num_rows + len(parsed.invalid) != len(records):
        return None
    rejects = [_reject(scan, body, layout, r) for r in plan.rejects]
    if parsed.invalid:
        for row in parsed.invalid:
            line = int(records[row.number - 1])
            width = field_count(body[scan.starts[line] : scan.stops[line]], layout.delimiter)
            if width == layout.width or scan.unusual[line]:
                return None
            rejects.append(
                _reject(scan, body, layout, (line, line, wrong_width(layout.width, width)))
            )
        records = np.delete(records, [row.number - 1 for row in parsed.invalid])
        rejects.sort(key=lambda r: r.line)
    carry = body[scan.starts[plan.cut] :] if plan.cut < len(scan.starts) else b""
    return ParsedBlock(parsed.table, records, rejects, consumed=plan.cut, carry=carry)


def _parse_planned(
    scan: LineScan, body: bytes, plan: BlockPlan, layout: Layout, parser: TypedParser | None
) -> ParsedBlock:
    rejects = [_reject(scan, body, layout, r) for r in plan.rejects]
    parsed = read_table(kept_bytes(scan, body, plan.keep), layout, parser)
    starts = np.flatnonzero(plan.record)
    if parsed.invalid or parsed.table.num_rows != len(starts):
        rejects += _recheck_widths(scan, body, plan, layout)
        rejects.sort(key=lambda r: r.line)
        parsed = read_table(kept_bytes(scan, body, plan.keep), layout, parser)
        starts = np.flatnonzero(plan.record)
        if parsed.invalid or parsed.table.num_rows != len(starts):
            raise BlockError(0, plan.cut - 1)
    return ParsedBlock(parsed.table, starts, rejects)


def _reject(
    scan: LineScan, body: bytes, layout: Layout, fault: tuple[int, int, str | None]
) -> Reject:
    first, last, reason = fault
    if reason is None:
        reason = f"{_SPAN_MARK}{last}"
    raw = body[scan.starts[first] : min(scan.stops[last], scan.starts[first] + 4 * PREVIEW_CHARS)]
    preview = raw.decode("utf-8", errors="replace")[:PREVIEW_CHARS]
    return Reject(layout.name, first, reason, value=preview)


def _recheck_widths(scan: LineScan, body: bytes, plan: BlockPlan, layout: Layout) -> list[Reject]:
    """Count fields the way the parser does (quotes only open a field) where the scan erred."""
    rejects: list[Reject] = []
    starts = np.flatnonzero(plan.record)
    kept = np.flatnonzero(plan.keep)
    nexts = np.append(starts[1:], len(plan.keep))
    lasts = kept[np.searchsorted(kept, nexts) - 1]
    for first, last in zip(starts.tolist(), lasts.tolist(), strict=True):
        reason = parser_fault(body[scan.starts[first] : scan.stops[last]], layout)
        if reason is not None:
            plan.keep[first : last + 1] = False
            plan.record[first] = False
            rejects.append(_reject(scan, body, layout, (first, last, reason)))
    return rejects


def empty_batch(layout: Layout) -> pa.RecordBatch:
    """A batch of no rows with the file's columns as text."""
    arrays = [pa.array([], pa.string()) for _ in layout.names]
    return pa.RecordBatch.from_arrays(arrays, names=layout.names)


def _empty_table(layout: Layout) -> pa.Table:
    return pa.Table.from_batches([empty_batch(layout)])
