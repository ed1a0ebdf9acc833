"""Vectorised facts about the lines of a CSV block, and the plan that settles its faulty lines.

A block is scanned with numpy: line ends, quote parity (a running count of ``"``), fields
outside quotes and UTF-8 validity, one array entry a line. Only lines with a fault take a
Python step, so a clean block costs a few passes over its bytes.

Quarantine rule: a record is one physical line, so a quoted field may not hold a line break
unless ``max_record_lines`` allows records to span that many lines. A line whose quotes do not
balance opens a quoted field; when a later line within :data:`SPAN_LOOKAHEAD` lines closes it
into a record of the right width, with no good row between, the whole record is one reject
("line break inside a quoted field (lines A–B)"); otherwise only that line is rejected as
broken quoting and reading resumes on the next line. A quote must open a field, close one or
be doubled inside one, and a carriage return may only end a line; a line breaking either is
read the way a strict CSV parser reads it (Python's :mod:`csv`, ``strict=True``), or rejected.
Blank lines hold no record.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

SPAN_LOOKAHEAD = 16
NEWLINE, RETURN, QUOTE = 10, 13, 34

Ints = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

BAD_UTF8 = "invalid UTF-8 encoding"
BROKEN_QUOTING = "broken quoting: unterminated quoted field or stray quote"
STRAY_RETURN = "carriage return inside a line"


def wrong_width(expected: int, got: int) -> str:
    """The reason for a record with ``got`` fields where the header names ``expected``."""
    return f"wrong number of fields: expected {expected}, got {got}"


def line_break_in_quotes(first: int, last: int) -> str:
    """The reason for a record whose quoted field runs over lines ``first`` to ``last``."""
    return f"line break inside a quoted field (lines {first}–{last})"


@dataclass
class LineScan:
    """Per-line facts about a block that ends with a newline (all arrays one entry a line)."""

    starts: Ints
    stops: Ints  # end of the content, before ``\\r\\n`` or ``\\n``
    ends: Ints  # just after the newline
    empty: Mask
    odd: Mask  # an odd number of quote characters
    bad_utf8: Mask
    unusual: Mask  # a quote in an odd place, or a carriage return inside the line
    fields: Ints | None = None  # fields outside quotes (meaningless where ``odd``)

    @property
    def clean(self) -> bool:
        """Whether every line has balanced, usual quotes and valid UTF-8 (widths unchecked)."""
        return not (self.odd.any() or self.bad_utf8.any() or self.unusual.any())

    def good(self, width: int) -> Mask:
        """Lines that are a whole, valid record on their own (after :func:`count_fields`)."""
        assert self.fields is not None, "count_fields first"
        right_width: Mask = self.fields == width
        return ~self.empty & ~self.odd & ~self.bad_utf8 & ~self.unusual & right_width


def scan_lines(buf: bytes, *, delimiter: bytes) -> LineScan:
    """Line bounds, quote parity, odd quotes and UTF-8 validity of every line of ``buf``.

    ``buf`` ends with ``\\n``. Quotes before each newline give each line's parity.
    """
    arr = np.frombuffer(buf, dtype=np.uint8)
    newline = np.flatnonzero(arr == NEWLINE)
    ends = newline + 1
    starts = np.concatenate((np.zeros(1, np.int64), ends[:-1]))
    line_cr = (newline > starts) & (arr[newline - 1] == RETURN)
    stops = newline - line_cr
    odd = np.zeros(len(newline), dtype=bool)
    unusual = np.zeros(len(newline), dtype=bool)
    if buf.find(b'"') >= 0:
        quotes = np.flatnonzero(arr == QUOTE)
        per_line = np.diff(np.searchsorted(quotes, newline), prepend=0)
        odd = (per_line & 1).astype(bool)
        found = _unusual_quotes(arr, quotes, newline, per_line, odd, delimiter)
        unusual[np.searchsorted(newline, found)] = True
    if buf.find(b"\r") >= 0:
        returns = np.flatnonzero(arr == RETURN)
        unusual[np.searchsorted(newline, returns[arr[returns + 1] != NEWLINE])] = True
    bad_utf8 = _bad_utf8_lines(buf, arr, newline, starts, ends)
    return LineScan(starts, stops, ends, stops == starts, odd, bad_utf8, unusual)


def _unusual_quotes(
    arr: npt.NDArray[np.uint8],
    quotes: Ints,
    newline: Ints,
    per_line: Ints,
    odd: Mask,
    delimiter: bytes,
) -> Ints:
    """Quotes that neither open a field, close one nor pair with another: there the scan's
    parity and a parser's reading may differ, so their lines are checked one by one."""
    if odd.any():  # parity restarts on each line: shift it by the quotes before the line
        before = (np.cumsum(per_line) - per_line) & 1
        opening = (np.arange(len(quotes)) & 1) == np.repeat(before, per_line)
        openers, closers = quotes[opening], quotes[~opening]
    else:  # every line even: quotes alternate open, close through the block
        openers, closers = quotes[0::2], quotes[1::2]
    starts_field = np.zeros(256, dtype=bool)
    starts_field[[delimiter[0], NEWLINE, QUOTE]] = True
    ends_field = np.zeros(256, dtype=bool)
    ends_field[[delimiter[0], NEWLINE, RETURN, QUOTE]] = True
    return np.concatenate(
        (openers[~starts_field[arr[openers - 1]]], closers[~ends_field[arr[closers + 1]]])
    )


def count_fields(scan: LineScan, buf: bytes, *, delimiter: bytes) -> None:
    """Fill ``scan.fields``: delimiters outside quotes, quote parity restarting on each line."""
    arr = np.frombuffer(buf, dtype=np.uint8)
    marks = np.flatnonzero((arr == NEWLINE) | (arr == QUOTE) | (arr == delimiter[0]))
    values = arr[marks]
    is_newline = values == NEWLINE
    inside = np.bitwise_xor.accumulate((values == QUOTE).view(np.uint8)).view(bool)
    if scan.odd.any():  # compare with the parity at the end of the previous line
        newlines = np.flatnonzero(is_newline)
        at_start = np.concatenate((np.zeros(1, bool), inside[newlines[:-1]]))
        inside = inside != np.repeat(at_start, np.diff(newlines, prepend=-1))
    outside = np.flatnonzero((values == delimiter[0]) & ~inside)
    counts = np.searchsorted(outside, np.flatnonzero(is_newline))
    scan.fields = np.diff(counts, prepend=0) + 1


def span_window_fields(scan: LineScan, buf: bytes, layout: Layout) -> Ints:
    """Fields of the lines that a quote opened on an odd line may span (the plan's window
    after each odd line), counted as :func:`count_fields` would; every other line is taken to
    have the header's width (a line that has not is then found by the parser)."""
    fields = np.full(len(scan.starts), layout.width, dtype=np.int64)
    window = max(SPAN_LOOKAHEAD, layout.max_record_lines - 1)
    done = -1
    for i in np.flatnonzero(scan.odd).tolist():
        for k in range(max(i + 1, done + 1), min(i + window + 1, len(fields))):
            fields[k] = field_count(buf[scan.starts[k] : scan.stops[k]], layout.delimiter)
            done = k
    return fields


def _bad_utf8_lines(
    buf: bytes, arr: npt.NDArray[np.uint8], newline: Ints, starts: Ints, ends: Ints
) -> Mask:
    bad = np.zeros(len(newline), dtype=bool)
    if buf.isascii():
        return bad
    try:
        buf.decode("utf-8")
        return bad
    except UnicodeDecodeError:
        pass
    suspects = np.unique(np.searchsorted(newline, np.flatnonzero(arr >= 0x80)))
    for i in suspects.tolist():
        try:
            buf[starts[i] : ends[i]].decode("utf-8")
        except UnicodeDecodeError:
            bad[i] = True
    return bad


def field_count(record: bytes, delimiter: bytes) -> int:
    """Fields of one record, counting delimiters outside quotes (the scan's rule)."""
    return 1 + sum(part.count(delimiter) for part in record.split(b'"')[0::2])


def parser_fault(record: bytes, layout: Layout) -> str | None:
    """Why a strict parser (quotes open only at a field's start) cannot read ``record``, if so."""
    if b"\r" in record.replace(b"\r\n", b"\n"):
        return STRAY_RETURN
    text = record.decode("utf-8", errors="replace")
    try:
        fields = list(csv.reader([text], delimiter=layout.delimiter.decode(), strict=True))
    except csv.Error:
        return BROKEN_QUOTING
    if len(fields) != 1:
        return BROKEN_QUOTING
    width = len(fields[0])
    return None if width == layout.width else wrong_width(layout.width, width)


@dataclass
class BlockPlan:
    """What to do with the lines of one block: which to parse, which start records, rejects."""

    keep: Mask
    record: Mask
    rejects: list[tuple[int, int, str | None]] = field(default_factory=list)  # first, last, reason
    cut: int = 0  # lines before this index are settled; the rest wait for more data


@dataclass
class Layout:
    """The file's layout: its columns and the rules for records."""

    name: str
    names: list[str]
    delimiter: bytes
    max_record_lines: int = 1

    @property
    def width(self) -> int:
        """Number of fields a record must have."""
        return len(self.names)


def plan_block(scan: LineScan, buf: bytes, layout: Layout, *, eof: bool) -> BlockPlan:
    """Decide each line's fate; only lines with a fault take a Python step."""
    if scan.fields is None:
        count_fields(scan, buf, delimiter=layout.delimiter)
    good = scan.good(layout.width)
    total = len(good)
    plan = BlockPlan(good.copy(), good.copy(), cut=total)
    bad = np.flatnonzero(~good & ~scan.empty)
    if len(bad) == 0:
        return plan
    odd_lines = np.flatnonzero(scan.odd)
    window = max(SPAN_LOOKAHEAD, layout.max_record_lines - 1)
    settled = -1
    for i in bad.tolist():
        if i <= settled:
            continue
        if scan.bad_utf8[i]:
            plan.rejects.append((i, i, BAD_UTF8))
        elif scan.unusual[i] and not scan.odd[i]:
            _settle_unusual(scan, buf, layout, plan, i)
        elif not scan.odd[i]:
            width = field_count(buf[scan.starts[i] : scan.stops[i]], layout.delimiter)
            plan.rejects.append((i, i, wrong_width(layout.width, width)))
        else:
            nxt = int(np.searchsorted(odd_lines, i, side="right"))
            j = int(odd_lines[nxt]) if nxt < len(odd_lines) else total
            if j >= total and i + window >= total and not eof:
                plan.cut = i
                break
            settled = _settle_quoted(scan, buf, layout, plan, good, i, j)
    plan.keep[plan.cut :] = False
    plan.record[plan.cut :] = False
    return plan


def _settle_unusual(scan: LineScan, buf: bytes, layout: Layout, plan: BlockPlan, i: int) -> None:
    """Read a line with odd quotes or a carriage return the way the parser would, or reject it."""
    reason = parser_fault(buf[scan.starts[i] : scan.stops[i]], layout)
    if reason is None:
        plan.keep[i] = plan.record[i] = True
    else:
        plan.rejects.append((i, i, reason))


def _settle_quoted(
    scan: LineScan, buf: bytes, layout: Layout, plan: BlockPlan, good: Mask, i: int, j: int
) -> int:
    """Settle a line whose quotes do not balance; return the last line it consumed."""
    window = max(SPAN_LOOKAHEAD, layout.max_record_lines - 1)
    spans = j < len(good) and j - i <= window
    if spans:
        record = buf[scan.starts[i] : scan.stops[j]]
        spans = field_count(record, layout.delimiter) == layout.width
    allowed = j - i < layout.max_record_lines
    if spans and allowed:
        spans = parser_fault(buf[scan.starts[i] : scan.stops[j]], layout) is None
    if spans and not allowed:
        spans = not good[i + 1 : j].any()
    if not spans:
        plan.rejects.append((i, i, BROKEN_QUOTING))
        return i
    plan.keep[i : j + 1] = allowed
    plan.record[i : j + 1] = False
    if allowed and not scan.bad_utf8[i : j + 1].any():
        plan.record[i] = True
    elif allowed:
        plan.keep[i : j + 1] = False
        plan.rejects.append((i, j, BAD_UTF8))
    else:
        plan.rejects.append((i, j, None))  # a line break in quotes
    return j


def kept_bytes(scan: LineScan, buf: bytes, keep: Mask) -> bytes | memoryview:
    """The bytes of the kept lines, in order (no copy when every line is kept)."""
    if keep.all():
        return memoryview(buf)[: int(scan.ends[-1])] if len(keep) else b""
    edges = np.flatnonzero(np.diff(keep.astype(np.int8), prepend=0, append=0))
    firsts, lasts = edges[0::2], edges[1::2] - 1
    view = memoryview(buf)
    return b"".join(
        view[scan.starts[a] : scan.ends[b]]
        for a, b in zip(firsts.tolist(), lasts.tolist(), strict=True)
    )
