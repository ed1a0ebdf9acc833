"""Blocks with faulty lines, planned with fields counted only where a quote may span, read
exactly as the plan that counts every line's fields reads them: same rows, lines, rejects
(line, reason, value) and lines left for the next block."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from churnscale.data.csv_block import ParsedBlock, _parse_sparse, parse_planned_block
from churnscale.data.csv_scan import Layout, scan_lines
from churnscale.data.csv_typed import TypedParser
from churnscale.data.schema import ColumnSpec, Role, Schema

LAYOUT = Layout("f.csv", ["a", "b", "c"], b",")
SCHEMA = Schema(
    (ColumnSpec("a", Role.ID), ColumnSpec("b", Role.NUMERIC), ColumnSpec("c", Role.CATEGORICAL))
)
VALUE = st.sampled_from(["x", "1", "2.5", "", '"q"', '"a,b"', '"say ""hi"""', "é", "NA", "nan"])
FAULTS = st.sampled_from(
    [
        b"1,2",  # a field short
        b"1,2,3,4",  # a field over
        b'"open,1,2',  # an unterminated quote
        b'a"b,1,2',  # a quote inside a field
        b'"x"y,1,2',  # text after a closing quote
        b'1,"x\ny",2',  # a quoted line break
        b'1,"x\ny,2',  # an open quote closed on a line of the wrong width
        b"1,\xff\xfe,2",  # invalid UTF-8
        b"p\rq,1,2",  # a carriage return inside a line
        b"",  # a blank line
        b'",",1',
        b'1,"x\n1,2\ny",2',  # a quoted line break over a line of the wrong width
        b'1,"x\n1,2,3\n4,5\ny",2',  # ... over a good line (then the quote is broken)
        b'1,"x\n\n1,2,3,4\n\ny",2',  # ... over blank lines
        b'a,"b',  # opens a quote a later line may close
        b'c",d',
    ]
)


@st.composite
def blocks(draw: st.DrawFn) -> bytes:
    rows = [
        b",".join(draw(VALUE).encode() for _ in range(3)) for _ in range(draw(st.integers(0, 30)))
    ]
    for _ in range(draw(st.integers(1, 6))):
        rows.insert(draw(st.integers(0, len(rows))), draw(FAULTS))
    return b"\n".join(rows) + b"\n"


def _seen(block: ParsedBlock) -> tuple[Any, ...]:
    rejects = [(r.line, r.reason, r.value) for r in block.rejects]
    return block.table.to_pylist(), block.lines.tolist(), rejects, block.consumed, block.carry


@settings(max_examples=300, deadline=None)
@given(body=blocks(), eof=st.booleans(), typed=st.booleans())
def test_sparse_plan_reads_what_the_full_plan_reads(body: bytes, eof: bool, typed: bool) -> None:
    def parser() -> TypedParser | None:
        return TypedParser(SCHEMA, LAYOUT.names, ",") if typed else None

    scan = scan_lines(body, delimiter=b",")
    if scan.clean:
        return
    sparse = _parse_sparse(scan, body, LAYOUT, parser(), eof=eof)
    exact = parse_planned_block(scan_lines(body, delimiter=b","), body, LAYOUT, parser(), eof=eof)
    if sparse is not None:
        assert _seen(sparse) == _seen(exact)


def test_the_faults_of_the_benchmark_take_the_sparse_plan() -> None:
    good = b'"c1",2.5,"basic"'
    body = b"\n".join(
        [good, b"1,2", good, b'"c2",2.5,"bas', good, b'"c3",2.5,"a\nb"', good, b"1,2,3,4", good]
    )
    body += b"\n"
    scan = scan_lines(body, delimiter=b",")
    sparse = _parse_sparse(scan, body, LAYOUT, None, eof=True)
    assert sparse is not None
    exact = parse_planned_block(scan_lines(body, delimiter=b","), body, LAYOUT, None, eof=True)
    assert _seen(sparse) == _seen(exact)
    assert [r.line for r in sparse.rejects] == [1, 3, 5, 8]
    assert sparse.lines.tolist() == [0, 2, 4, 7, 9]
