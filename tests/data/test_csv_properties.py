"""Properties of the CSV reader: batching never changes what is read, quoted values round-trip."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import fsspec
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnscale.data.csv_reader import read_csv_chunks
from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest
from churnscale.data.writers import write_batches

#: What a read gives: rows, their physical lines, and (line, reason) of every reject.
Read = tuple[list[dict[str, str]], list[int], list[tuple[int, str]]]

VALUE = st.text(alphabet='ab ,"é\t;', max_size=6)
MULTILINE_VALUE = st.text(alphabet='ab ,"é\n', max_size=6)
FAULT_LINES = st.sampled_from(
    [
        b"x,y,z,w,v,u",
        b"",
        b"only",
        b'"open,1',
        b"1,\xff\xfe",
        b'a"b,c',
        b"\r",
        b'"x\ny",2',
        b'"x"y,1',
        b'a,"b\r\nc"',
        b"p\rq,1",
        b'"",""""',
    ]
)


def encode(rows: list[list[str]], width: int) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow([f"c{i}" for i in range(width)])
    writer.writerows(rows)
    return text.getvalue().encode()


def read(path: Path, *, batch_rows: int, block_bytes: int, max_record_lines: int = 1) -> Read:
    rows: list[dict[str, str]] = []
    lines: list[int] = []
    rejects: list[tuple[int, str]] = []
    fs = fsspec.filesystem("file")
    for chunk in read_csv_chunks(
        fs,
        str(path),
        delimiter=",",
        batch_rows=batch_rows,
        block_bytes=block_bytes,
        max_record_lines=max_record_lines,
    ):
        rows += chunk.batch.to_pylist()
        lines += chunk.lines.tolist()
        rejects += [(r.line, r.reason) for r in chunk.rejects]
    return rows, lines, rejects


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """A CSV of quoted, multi-line and odd values, with raw faulty lines mixed in."""
    width = draw(st.integers(2, 4))
    values = st.one_of(VALUE, MULTILINE_VALUE)
    rows = draw(st.lists(st.lists(values, min_size=width, max_size=width), max_size=25))
    lines = encode(rows, width).split(b"\n")
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(1, len(lines)))
        lines.insert(at, draw(FAULT_LINES))
    return b"\n".join(lines)


@settings(max_examples=80, deadline=None)
@given(
    content=csv_files(),
    batch_rows=st.integers(1, 30),
    block_bytes=st.integers(1, 300),
    max_record_lines=st.sampled_from([1, 3]),
)
def test_reading_in_batches_equals_reading_whole(
    content: bytes, batch_rows: int, block_bytes: int, max_record_lines: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "d.csv"
        path.write_bytes(content)
        whole = read(path, batch_rows=10**6, block_bytes=1 << 20, max_record_lines=max_record_lines)
        parts = read(
            path, batch_rows=batch_rows, block_bytes=block_bytes, max_record_lines=max_record_lines
        )
    assert parts == whole
    assert len(whole[0]) == len(whole[1])
    assert whole[1] == sorted(set(whole[1]))


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.lists(VALUE, min_size=3, max_size=3), min_size=1, max_size=30),
    block_bytes=st.integers(1, 200),
)
def test_quoted_delimiters_and_escaped_quotes_round_trip(
    rows: list[list[str]], block_bytes: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "d.csv"
        path.write_bytes(encode(rows, 3))
        got, lines, rejects = read(path, batch_rows=7, block_bytes=block_bytes)
    assert [[r["c0"], r["c1"], r["c2"]] for r in got] == rows
    assert lines == list(range(2, len(rows) + 2)) and rejects == []


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.lists(MULTILINE_VALUE, min_size=2, max_size=2), min_size=1, max_size=20),
    block_bytes=st.integers(1, 200),
)
def test_multi_line_values_round_trip_when_allowed(rows: list[list[str]], block_bytes: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "d.csv"
        path.write_bytes(encode(rows, 2))
        got, lines, rejects = read(path, batch_rows=5, block_bytes=block_bytes, max_record_lines=16)
    assert [[r["c0"], r["c1"]] for r in got] == rows and rejects == []
    starts = [2]
    for row in rows[:-1]:
        starts.append(starts[-1] + 1 + sum(v.count("\n") for v in row))
    assert lines == starts


@pytest.fixture(scope="module")
def faulty_csv(tmp_path_factory: pytest.TempPathFactory, small_table: pa.Table) -> tuple[Path, str]:
    """A CSV with three bad rows, and the fingerprint of its dataset read in one batch."""
    path = tmp_path_factory.mktemp("csv") / "customers.csv"
    write_batches(small_table.slice(0, 600).to_batches(), path, fmt="csv")
    lines = path.read_bytes().split(b"\n")
    lines[40] += b",extra"
    lines[90] = lines[90].replace(b'"', b"", 1)
    lines[300] = lines[300][:-1] + b"maybe"
    path.write_bytes(b"\n".join(lines))
    hints = SchemaHints(target="churned")
    _, whole = ingest(str(path), path.parent / "whole", hints=hints, batch_rows=10**6)
    assert (whole.rows, whole.rejected) == (597, 3)
    return path, whole.fingerprint


@settings(max_examples=8, deadline=None)
@given(batch_rows=st.integers(1, 700))
def test_fingerprint_does_not_depend_on_batch_size(
    faulty_csv: tuple[Path, str], batch_rows: int
) -> None:
    path, fingerprint = faulty_csv
    with tempfile.TemporaryDirectory() as tmp:
        hints = SchemaHints(target="churned")
        _, parts = ingest(str(path), Path(tmp) / "ds", hints=hints, batch_rows=batch_rows)
    assert (parts.rows, parts.rejected) == (597, 3)
    assert parts.fingerprint == fingerprint
