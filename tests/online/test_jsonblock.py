"""A block of JSON texts parsed at once gives exactly what record-by-record decoding gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnscale.data.schema import ColumnSpec, Role, Schema
from churnscale.online.jsonblock import parse_block
from churnscale.online.records import StreamQuarantine, typed_batch
from churnscale.online.sources import Entry, decode_json

SCHEMA = Schema(
    columns=(
        ColumnSpec("x", Role.NUMERIC),
        ColumnSpec("c", Role.CATEGORICAL),
        ColumnSpec("b", Role.BOOLEAN),
        ColumnSpec("d", Role.DATETIME),
        ColumnSpec("y", Role.TARGET),
    )
)
CLEAN = {
    "x": st.one_of(st.none(), st.integers(-(10**6), 10**6), st.floats(-1e6, 1e6)),
    "c": st.one_of(st.none(), st.sampled_from(["a", " b ", "NA", "", "ü"])),
    "b": st.one_of(st.none(), st.booleans()),
    "d": st.one_of(st.none(), st.sampled_from(["2026-01-02", "2026-01-02T03:04:05", "soon"])),
    "y": st.sampled_from([0, 1]),
}
#: Values a real stream also carries: wrong JSON types for the role, nested values, bad labels.
ODD = {
    "x": st.sampled_from(["12", "n/a", True, "abc", [1], {"k": 1}]),
    "c": st.sampled_from([3, 2.5, False, ["a"]]),
    "b": st.sampled_from(["yes", 0, "maybe"]),
    "d": st.sampled_from([20260102, None]),
    "y": st.sampled_from(["yes", True, 2, None, "?"]),
}


@st.composite
def records(draw: st.DrawFn, odd: bool) -> dict[str, Any]:
    record = {name: draw(values) for name, values in CLEAN.items()}
    if odd and draw(st.booleans()):
        name = draw(st.sampled_from(sorted(ODD)))
        record[name] = draw(ODD[name])
    if draw(st.integers(0, 9)) == 0:  # a missing key reads as null (a missing label is odd)
        record.pop(draw(st.sampled_from(sorted(record) if odd else ["x", "c", "b", "d"])))
    if draw(st.booleans()):
        record["extra"] = draw(st.one_of(st.integers(-(2**40), 2**40), st.text(max_size=3)))
    return record


def _texts(rows: list[dict[str, Any]], bad_lines: list[bytes]) -> list[bytes]:
    texts = [orjson.dumps(r) for r in rows]
    for position, raw in enumerate(bad_lines):
        texts.insert(position * 3 % (len(texts) + 1), raw)
    return texts


def _run(events: list[Entry], tmp: Path, name: str) -> tuple[pa.RecordBatch, list[Any], bytes]:
    quarantine = StreamQuarantine(tmp / f"{name}.jsonl")
    typed, offsets = typed_batch(events, SCHEMA, quarantine=quarantine, source="s")
    quarantine.close()
    path = tmp / f"{name}.jsonl"
    return typed, offsets, path.read_bytes() if path.exists() else b""


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(records(odd=True), min_size=1, max_size=40),
    bad=st.lists(st.sampled_from([b"{oops", b"[1, 2]", b"7", b'"text"', b"\xff\xfe"]), max_size=2),
)
def test_block_parse_equals_record_by_record(
    rows: list[dict[str, Any]], bad: list[bytes], tmp_path_factory: Any
) -> None:
    tmp = tmp_path_factory.mktemp("block")
    texts = _texts(rows, bad)
    as_texts: list[Entry] = [(i + 1, t) for i, t in enumerate(texts)]
    as_records: list[Entry] = [(i + 1, decode_json(t)) for i, t in enumerate(texts)]
    fast = _run(as_texts, tmp, "fast")
    slow = _run(as_records, tmp, "slow")  # decoded records never take the block parser
    assert fast[0].equals(slow[0]), (fast[0].to_pylist(), slow[0].to_pylist())
    assert fast[1] == slow[1]
    assert fast[2] == slow[2]
    assert fast[0].num_rows + fast[2].count(b"\n") == len(texts)  # every event learned or kept


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(records(odd=False), min_size=1, max_size=40))
def test_clean_blocks_take_the_block_parser(
    rows: list[dict[str, Any]], tmp_path_factory: Any
) -> None:
    texts = [orjson.dumps(r) for r in rows]
    block = parse_block(texts, SCHEMA)
    assert block is not None and block.num_rows == len(rows)
    assert block.schema.names == SCHEMA.names
    tmp = tmp_path_factory.mktemp("clean")
    fast = _run([(i, t) for i, t in enumerate(texts)], tmp, "fast")
    slow = _run([(i, decode_json(t)) for i, t in enumerate(texts)], tmp, "slow")
    assert fast[0].equals(slow[0]) and fast[1:] == slow[1:]


def test_blocks_it_cannot_read_whole_are_left_to_record_by_record() -> None:
    good = orjson.dumps({"x": 1, "c": "a", "b": True, "d": "2026-01-01", "y": 1})
    for odd in (b"{oops", b"[1]", b'{"x": "12", "y": 1}', b'{"x": 1,\n "y": 0}', b"", b"\xff"):
        assert parse_block([good, odd], SCHEMA) is None, odd
    assert parse_block([b'{"x": 1}'], SCHEMA) is None  # the first event has no label
