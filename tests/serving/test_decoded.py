"""Decoded sizes are known before decoding: the JSON bound holds against tracemalloc, the Arrow
metadata reader sizes what pyarrow allocates and never crashes on damaged metadata."""

from __future__ import annotations

import io
import json
import struct
import tracemalloc
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnscale.serving.bodies import ARROW, ARROW_FILE, CSV, read_table
from churnscale.serving.decoded import arrow_bound, csv_bound, expanded_bytes, json_bound
from churnscale.serving.errors import InvalidInputError, PayloadTooLargeError

N = 50_000
SHAPES = {
    "empty objects": b"[" + b",".join([b"{}"] * N) + b"]",
    "empty lists": b"[" + b",".join([b"[]"] * N) + b"]",
    "one-key objects": b"[" + b",".join([b'{"a":0}'] * N) + b"]",
    "records": b"[" + b",".join([b'{"a":1.5,"b":"x","c":true}'] * N) + b"]",
    "short strings": b"[" + b",".join([b'"ab"'] * N) + b"]",
    "floats": b"[" + b",".join([b"1.5"] * N) + b"]",
    "large ints": b"[" + b",".join([b"123456789012"] * N) + b"]",
    "distinct keys": b"{" + b",".join(b'"k%d":0' % i for i in range(N)) + b"}",
    "deep nesting": b"[" * 10_000 + b"]" * 10_000,
    "long string": b'"' + b"x" * N + b'"',
}
DECODERS: dict[str, Callable[[bytes], Any]] = {
    "orjson": orjson.loads,
    "json": json.loads,
    "msgspec": msgspec.json.decode,
}


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("shape", SHAPES)
def test_the_json_bound_is_above_what_decoding_takes(shape: str, decoder: str) -> None:
    body = SHAPES[shape]
    tracemalloc.start()
    try:
        decoded = DECODERS[decoder](body)
        peak = tracemalloc.get_traced_memory()[1]
    except (RecursionError, ValueError):  # a decoder's depth limit: what it took still counts
        peak = tracemalloc.get_traced_memory()[1]
        decoded = None
    finally:
        tracemalloc.stop()
    del decoded
    assert peak <= json_bound(body), (shape, decoder, peak, json_bound(body))


def _stream(table: pa.Table, *, compression: str | None, file: bool = False) -> bytes:
    sink = io.BytesIO()
    options = ipc.IpcWriteOptions(compression=compression)
    opened = ipc.new_file if file else ipc.new_stream
    with opened(sink, table.schema, options=options) as writer:
        writer.write_table(table, max_chunksize=700)
    return sink.getvalue()


TABLE = pa.table(
    {
        "a": pa.array(np.arange(2_000, dtype=np.int64)),
        "s": pa.array([f"value {i}" * (i % 7) for i in range(2_000)]),
        "d": pa.array([["p", "q", "r"][i % 3] for i in range(2_000)]).dictionary_encode(),
        "n": pa.array([None if i % 5 else float(i) for i in range(2_000)]),
    }
)


@pytest.mark.parametrize("file", [False, True])
@pytest.mark.parametrize("compression", [None, "lz4", "zstd"])
def test_arrow_bound_sizes_the_buffers_pyarrow_reads(compression: str | None, file: bool) -> None:
    body = _stream(TABLE, compression=compression, file=file)
    reader = ipc.open_file(pa.py_buffer(body)) if file else ipc.open_stream(pa.py_buffer(body))
    table = reader.read_all()
    buffers = sum(b.size for c in table.columns for ch in c.chunks for b in ch.buffers() if b)
    bound = arrow_bound(pa.py_buffer(body), file=file)
    assert buffers <= bound <= buffers + 64 * 1024, (buffers, bound)


def test_read_table_refuses_before_decoding() -> None:
    zeros = pa.table({"x": pa.array(np.zeros(2_000_000, dtype=np.int64))})
    body = _stream(zeros, compression="zstd")
    with pytest.raises(PayloadTooLargeError, match="CHURNSCALE_MAX_DECODED_BYTES"):
        read_table(body, ARROW, max_decoded=8_000_000)
    assert read_table(body, ARROW, max_decoded=17_000_000).num_rows == 2_000_000
    with pytest.raises(PayloadTooLargeError, match="the CSV body"):
        read_table(b",".join([b"a"] * 100_000), CSV, max_decoded=10_000_000)


def test_dictionary_columns_are_sized_as_expanded() -> None:
    indices = pa.array(np.zeros(1_000, dtype=np.int32))
    column = pa.DictionaryArray.from_arrays(indices, pa.array(["z" * 10_000]))
    table = pa.table({"plan": column})
    assert expanded_bytes(table) == 1_000 * 10_000 + 8 * 1_000
    body = _stream(table, compression="zstd", file=True)
    with pytest.raises(PayloadTooLargeError, match="expanded"):
        read_table(body, ARROW_FILE, max_decoded=5_000_000)


def _shared_views(rows: int, width: int) -> pa.Array:
    """``rows`` string views all pointing at one shared buffer of ``width`` bytes."""
    view = struct.pack("<i4sii", width, b"xxxx", 0, 0)
    buffers = [None, pa.py_buffer(view * rows), pa.py_buffer(b"x" * width)]
    return pa.Array.from_buffers(pa.string_view(), rows, buffers)


def test_view_columns_are_sized_as_cast() -> None:
    table = pa.table({"plan": _shared_views(1_000, 10_000)})
    assert expanded_bytes(table) == 1_000 * 10_000 + 8 * 1_000
    body = _stream(table, compression="zstd")
    assert len(body) < 2_000
    with pytest.raises(PayloadTooLargeError, match="expanded"):
        read_table(body, ARROW, max_decoded=5_000_000)


def test_encoded_and_nested_columns_are_refused_naming_them() -> None:
    runs = pa.RunEndEncodedArray.from_arrays(pa.array([1_000], pa.int32()), pa.array(["z" * 100]))
    for name, column in {
        "runs": runs,
        "lists": pa.array([[1.0], [2.0]]),
        "structs": pa.array([{"a": 1}]),
    }.items():
        body = _stream(pa.table({name: column}), compression=None)
        with pytest.raises(InvalidInputError, match="not accepted") as refused:
            read_table(body, ARROW, max_decoded=5_000_000)
        assert refused.value.field == name


def test_csv_bound_grows_with_cells() -> None:
    small, wide = b"a,b\n1,2\n", b",".join([b"a"] * 1_000) + b"\n"
    assert csv_bound(wide) > 1_000 * 1_024 > csv_bound(small)


BODY = _stream(TABLE, compression="zstd")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(BODY) - 1), st.integers(0, 255)), max_size=8))
def test_damaged_metadata_is_a_422_never_a_crash(flips: list[tuple[int, int]]) -> None:
    damaged = bytearray(BODY)
    for at, value in flips:
        damaged[at] = value
    try:
        size = arrow_bound(pa.py_buffer(bytes(damaged)), file=False)
    except InvalidInputError:
        return
    assert size >= 0


@pytest.mark.parametrize("element", [b"", b"a", b"ab", b"abc", b"\xc3\xa9", b"x" * 40])
def test_binary_tensor_bytes_decode_within_the_per_byte_bound(element: bytes) -> None:
    from churnscale.serving.decoded import BINARY_BYTE_BYTES
    from churnscale.serving.v2_binary import from_raw

    raw = b"".join(struct.pack("<I", len(element)) + element for _ in range(100_000))
    tracemalloc.start()
    tensor = from_raw("plan", "BYTES", [100_000], memoryview(raw), max_rows=100_000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del tensor
    assert peak <= BINARY_BYTE_BYTES * len(raw), (element, peak, len(raw))
