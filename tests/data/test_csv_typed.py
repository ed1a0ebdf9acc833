"""Typed CSV parsing gives exactly what reading text and conforming it gives.

The reference is the text path: every column read as text, then ``conform``; the typed path
(pyarrow parsing numbers, dictionaries for the rest, conformed per block on a thread pool) must
give the same rows, lines and rejects for any values, and byte-identical Parquet parts and the
same fingerprint when ingesting.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnscale.data import store
from churnscale.data.chunk import Chunk, SchemaSlot
from churnscale.data.conform import conform
from churnscale.data.csv_reader import read_csv_chunks
from churnscale.data.readers import read_chunks
from churnscale.data.schema import ColumnSpec, Role, Schema, SchemaHints
from churnscale.data.synthetic import GeneratorSpec, generate
from churnscale.data.writers import write_batches

SCHEMA = Schema(
    (
        ColumnSpec("id", Role.ID),
        ColumnSpec("x", Role.NUMERIC),
        ColumnSpec("y", Role.NUMERIC),
        ColumnSpec("flag", Role.BOOLEAN),
        ColumnSpec("day", Role.DATETIME),
        ColumnSpec("plan", Role.CATEGORICAL),
        ColumnSpec("churned", Role.TARGET),
    )
)
HEADER = b"id,x,y,flag,day,plan,churned,extra\n"
NUMBERS = [
    "1", "-2.5", "+.5", "1e5", "1E-3", " 7 ", "\t8", "0x10", "1_0", "abc", "", "NA", "n/a",
    "Null", "NONE", "?", "-", " NA", "nan", "NaN", "-nan", "nan(1)", "inf", "-Infinity",
    "1e400", "1\u00a0", '"3"', '""', '"NA"', "1.", ".", "١",
]  # fmt: skip
FLAGS = ["yes", "No", "TRUE", "f", "1", "0.0", "", "NA", "maybe", " y ", '"t"']
#: (Not here: a well-formed but impossible date, or one with a zone, which ``conform`` cannot
#: cast today on either path.)
DAYS = ["2025-01-02", "2025-01-02 10:11", "2025-01-02T10:11:12.5", "2025-01-02 10", "", "NA",
        "x", " 2025-01-02 ", "2025-1-2"]  # fmt: skip
PLANS = ["basic", " basic ", "NA", "none", "Premium", "", "é", '"a,b"', '"say ""hi"""']
LABELS = ["1", "0", "yes", "no", "2", "", "NA", "True"]
FAULTS = [b"1,2", b'"open,1,2,3,4,5,6,7', b"a,1,2,y,2025-01-01,p,1,e,9", b"a,1\xff,2,y,,,1,e"]


def _row(draw: st.DrawFn, number: int) -> bytes:
    fields = [
        draw(st.sampled_from(["c", " ", ""])) + str(number),
        draw(st.sampled_from(NUMBERS)),
        draw(st.sampled_from(NUMBERS[:8])),
        draw(st.sampled_from(FLAGS)),
        draw(st.sampled_from(DAYS)),
        draw(st.sampled_from(PLANS)),
        draw(st.sampled_from(LABELS)),
        "e",
    ]
    return ",".join(fields).encode("utf-8")


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """Rows of odd but readable values, with faulty lines and blank lines mixed in."""
    lines = [_row(draw, i) for i in range(draw(st.integers(0, 40)))]
    for _ in range(draw(st.integers(0, 4))):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from([*FAULTS, b""])))
    return HEADER + b"\n".join(lines) + b"\n"


def _text_path(path: Path, batch_rows: int) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
    """What reading every column as text and conforming each chunk gives (the reference)."""
    rows: list[dict[str, Any]] = []
    rejects: list[tuple[Any, ...]] = []
    for chunk in read_chunks(str(path), batch_rows=batch_rows):
        typed, bad = conform(chunk.batch, SCHEMA, source=chunk.source, lines=chunk.lines)
        rows += typed.to_pylist()
        rejects += [(r.line, r.reason, r.column, r.value) for r in chunk.rejects + bad]
    return rows, sorted(rejects)


def _typed_path(
    path: Path, batch_rows: int, block_bytes: int
) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
    rows: list[dict[str, Any]] = []
    rejects: list[tuple[Any, ...]] = []
    slot = SchemaSlot(SCHEMA)
    fs = fsspec.filesystem("file")
    for chunk in read_csv_chunks(
        fs, str(path), delimiter=",", batch_rows=batch_rows, block_bytes=block_bytes, schema=slot
    ):
        assert chunk.conformed and chunk.batch.schema == SCHEMA.arrow_schema()
        assert chunk.row_hashes is not None and len(chunk.row_hashes) == chunk.batch.num_rows
        rows += chunk.batch.to_pylist()
        rejects += [(r.line, r.reason, r.column, r.value) for r in chunk.rejects]
    return rows, sorted(rejects)


def _same_rows(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> bool:
    """Equal rows, NaN equal to NaN (and of the same sign)."""
    return json.dumps(got, default=str) == json.dumps(want, default=str)


@settings(max_examples=25, deadline=None)
@given(
    content=csv_files(),
    batch_rows=st.integers(1, 50),
    block_bytes=st.sampled_from([64, 300, 1 << 20]),
)
def test_typed_reading_equals_text_then_conform(
    content: bytes, batch_rows: int, block_bytes: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("typed") / "d.csv"
    path.write_bytes(content)
    want_rows, want_rejects = _text_path(path, batch_rows)
    got_rows, got_rejects = _typed_path(path, batch_rows, block_bytes)
    assert got_rejects == want_rejects
    assert _same_rows(got_rows, want_rows)


def test_a_numeric_column_with_text_is_read_as_text_from_then_on(tmp_path: Path) -> None:
    lines = [f"c{i},{i},1,yes,2025-01-01,basic,0,e" for i in range(400)]
    lines[7] = "c7,oops,1,yes,2025-01-01,basic,0,e"
    path = tmp_path / "d.csv"
    path.write_bytes(HEADER + "\n".join(lines).encode() + b"\n")
    rows, rejects = _typed_path(path, 100, 2_000)
    assert rejects == [(9, "not a number", "x", "oops")]
    assert [r["x"] for r in rows] == [float(i) for i in range(400) if i != 7]


def _raw_chunks(source: str, **options: Any) -> Iterator[Chunk]:
    """``read_chunks`` without the schema slot: text chunks, conformed by the store."""
    options.pop("schema")
    return read_chunks(source, **options)


def test_ingest_writes_the_same_parts_and_fingerprint_as_the_text_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "d.csv"
    write_batches(generate(GeneratorSpec(60_000, seed=3)), path, fmt="csv")
    hints = SchemaHints(target="churned")
    _, typed = store.ingest(str(path), tmp_path / "typed", hints=hints, batch_rows=50_000)
    monkeypatch.setattr(store, "read_chunks", _raw_chunks)
    _, text = store.ingest(str(path), tmp_path / "text", hints=hints, batch_rows=50_000)
    assert typed.rows == text.rows == 60_000
    assert typed.fingerprint == text.fingerprint
    assert typed.checksums == text.checksums and len(typed.checksums) == 1
    assert (tmp_path / "typed" / "schema.json").read_bytes() == (
        tmp_path / "text" / "schema.json"
    ).read_bytes()


def test_dictionary_rows_hash_like_their_decoded_values() -> None:
    from churnscale.data.fingerprint import column_hash

    codes = pa.DictionaryArray.from_arrays(pa.array([1, 0, None, 1], pa.int32()), ["a", "bc"])
    assert column_hash(codes).tolist() == column_hash(codes.cast(pa.string())).tolist()
