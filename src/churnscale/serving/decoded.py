"""The decoded size of a request body, bounded before anything is decoded.

A body's bytes are limited while they arrive (:mod:`churnscale.serving.bodies`), but decoding
can multiply them: a 15 KB zstd-compressed Arrow stream holds 480 MB of zeros, a 16 MiB JSON
array of ``{}`` becomes ~570 MB of Python dicts. So every body is sized first, from what it
declares, and refused with 413 naming ``CHURNSCALE_MAX_DECODED_BYTES`` when over it:

- **Arrow IPC** (stream or file): each message's metadata is read (a few lines of FlatBuffers
  below, no decompression): a record or dictionary batch's buffers, with the uncompressed length
  that prefixes every compressed buffer, and :data:`FIELD_BYTES` per schema field. The file
  format's footer names the blocks pyarrow will read; exactly those are sized. Once read,
  dictionary and view columns are sized as they will be expanded, and other encoded or nested
  types refused (:func:`expanded_bytes`): a 456-byte stream of 10,000 string views of one
  shared 1 MiB buffer is 10 GiB once cast.
- **JSON**: an upper bound from the body's length and a count of the tokens that create
  Python objects (:func:`json_bound`, checked against tracemalloc in the tests): a 10,000-row
  batch of customers (~4.5 MB) bounds at ~100 MB, well under the default 256 MiB.
- **CSV**: twice the body (parsed block and string columns) plus offsets per cell and
  :data:`FIELD_BYTES` per header column (:func:`csv_bound`).
"""

from __future__ import annotations

import struct

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from churnscale.serving.errors import InvalidInputError, PayloadTooLargeError

#: What one schema field costs once decoded (pyarrow Field, type and Python objects), generous.
FIELD_BYTES = 1024
#: Fields counted at most (a FlatBuffers schema may share a child between parents: counting
#: stops here, which is already far over any limit).
MAX_FIELDS = 1_000_000
#: The JSON bound: per body byte (the decoders' own buffers: orjson's parse pool is ~13 bytes
#: a byte for one long string) plus per token that makes an object (``,`` ``:`` ``[`` ``{``):
#: measured at most ~59 bytes beyond 14 a byte over ten shapes and three decoders
#: (``tests/serving/test_decoded.py`` checks the bound against tracemalloc).
JSON_BYTE_BYTES = 16
JSON_TOKEN_BYTES = 72
#: v2 binary tensor data: a BYTES element of two characters (6 bytes) becomes ~100 bytes of
#: Python objects (measured 17 a byte), so 24 a byte bounds it.
BINARY_BYTE_BYTES = 24
_MAGIC = b"ARROW1"
_HEADER_SCHEMA, _HEADER_DICTIONARY, _HEADER_BATCH = 1, 2, 3


def too_large(size: int, limit: int, what: str) -> PayloadTooLargeError:
    """The 413 for a body that would decode to ``size`` bytes."""
    return PayloadTooLargeError(
        f"{what} would decode to {size} bytes, over the limit of {limit} bytes "
        "(CHURNSCALE_MAX_DECODED_BYTES)",
        field="body",
    )


def check_json(body: bytes, limit: int, *, binary: int = 0) -> None:
    """Refuse a JSON body whose decoded Python objects could pass ``limit`` bytes; ``binary``
    bytes of tensor data may follow it (v2's binary extension, :data:`BINARY_BYTE_BYTES`)."""
    size = json_bound(body) + BINARY_BYTE_BYTES * binary
    if size > limit:
        raise too_large(size, limit, "the JSON body")


def json_bound(body: bytes) -> int:
    """An upper bound of the memory ``body`` takes once decoded into Python objects."""
    tokens = body.count(b",") + body.count(b":") + body.count(b"[") + body.count(b"{") + 1
    return JSON_TOKEN_BYTES * tokens + JSON_BYTE_BYTES * len(body)


def csv_bound(body: bytes) -> int:
    """An upper bound of the memory pyarrow takes to read ``body`` as string columns."""
    header = body.split(b"\n", 1)[0]
    columns = header.count(b",") + 1
    rows = body.count(b"\n") + 1
    return 2 * len(body) + 12 * rows * columns + FIELD_BYTES * columns


def arrow_bound(body: pa.Buffer, *, file: bool) -> int:
    """The decoded size of an Arrow IPC stream or file, from its metadata alone."""
    try:
        if file:
            schema, messages = _file_messages(body)
            return FIELD_BYTES * _field_count(schema) + sum(map(_message_bytes, messages))
        return sum(map(_message_bytes, _stream_messages(body)))
    except (pa.ArrowInvalid, OSError, struct.error, IndexError, ValueError) as exc:
        kind = "file" if file else "stream"
        raise InvalidInputError(f"unreadable Arrow IPC {kind}: {exc}", field="body") from None


def expanded_bytes(table: pa.Table) -> int:
    """Bytes the columns of ``table`` take once cast to plain values (what ``conform`` does):
    dictionary columns expanded, view columns (whose entries may share one buffer) at their
    logical length. Any other encoded or nested type (run-end encoded, list views, lists,
    structs, ...) is refused with 422 naming the column: a request needs flat columns only."""
    total = 0
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        for chunk in column.chunks:
            if pa.types.is_dictionary(kind):
                widths = _widths(chunk.dictionary, name)
                total += (pc.sum(pc.take(widths, chunk.indices)).as_py() or 0) + 8 * len(chunk)
            elif _is_view(kind):
                total += int(_view_lengths(chunk).sum()) + 8 * len(chunk)
            elif not _is_flat(kind):
                raise InvalidInputError(f"columns of type {kind} are not accepted", field=name)
    return total


def _is_view(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string_view(kind) or pa.types.is_binary_view(kind))


def _is_flat(kind: pa.DataType) -> bool:
    checks = (
        pa.types.is_null,
        pa.types.is_boolean,
        pa.types.is_integer,
        pa.types.is_floating,
        pa.types.is_decimal,
        pa.types.is_temporal,
        pa.types.is_string,
        pa.types.is_large_string,
        pa.types.is_binary,
        pa.types.is_large_binary,
        pa.types.is_fixed_size_binary,
    )
    return any(check(kind) for check in checks)


def _widths(values: pa.Array, name: str) -> pa.Array:
    """The width in bytes of each value of a dictionary."""
    kind = values.type
    if _is_view(kind):
        return pa.array(_view_lengths(values), pa.int64())
    if not _is_flat(kind):
        raise InvalidInputError(f"dictionaries of type {kind} are not accepted", field=name)
    if pa.types.is_fixed_size_binary(kind):
        return pa.array(np.full(len(values), kind.byte_width, dtype=np.int64))
    variable = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary)
    if any(check(kind) for check in variable) or pa.types.is_large_binary(kind):
        return pc.binary_length(values).cast(pa.int64())
    return pa.array(np.full(len(values), 8, dtype=np.int64))


def _view_lengths(array: pa.Array) -> np.ndarray:
    """Each entry's length from a view array's 16-byte views (the first 4 bytes)."""
    views = array.buffers()[1]
    if views is None:
        return np.zeros(len(array), dtype=np.int64)
    start, stop = 4 * array.offset, 4 * (array.offset + len(array))
    lengths = np.frombuffer(views, dtype="<i4")[start:stop:4]
    return np.clip(lengths.astype(np.int64), 0, None)


# ---- Arrow IPC metadata --------------------------------------------------------------------


def _stream_messages(body: pa.Buffer) -> list[pa.ipc.Message]:
    reader = ipc.MessageReader.open_stream(pa.BufferReader(body))
    messages = []
    while True:
        try:
            messages.append(reader.read_next_message())
        except StopIteration:
            return messages


def _file_messages(body: pa.Buffer) -> tuple[_Table, list[pa.ipc.Message]]:
    """The footer's schema, and the dictionary and record batch messages it points to."""
    data = memoryview(body)
    if len(data) < 2 * len(_MAGIC) + 4 or bytes(data[-6:]) != _MAGIC:
        raise ValueError("not an Arrow IPC file (no ARROW1 trailer)")
    (length,) = struct.unpack_from("<i", data, len(data) - 10)
    start = len(data) - 10 - length
    if length <= 0 or start < 8:
        raise ValueError(f"footer length {length} out of range")
    footer = _Table.root(bytes(data[start : start + length]))
    schema = footer.table(1)
    if schema is None:
        raise ValueError("the footer has no schema")
    messages = []
    for field in (2, 3):  # dictionaries, record batches: Block {offset, metaDataLength, bodyLength}
        for offset, meta, _, size in footer.structs(field, "<qiiq", 24):
            if offset < 0 or meta < 0 or size < 0 or offset + meta + size > len(data):
                raise ValueError(f"block at {offset} lies outside the file")
            block = body.slice(offset, meta + size)
            messages.append(ipc.read_message(pa.BufferReader(block)))
    return schema, messages


def _message_bytes(message: pa.ipc.Message) -> int:
    root = _Table.root(message.metadata.to_pybytes())
    header_type, header = root.scalar(1, "<B", 0), root.table(2)
    if header is None:
        return 0
    if header_type == _HEADER_SCHEMA:
        return FIELD_BYTES * _field_count(header)
    if header_type == _HEADER_DICTIONARY:
        header = header.table(1)
        if header is None:
            return 0
    if header_type in (_HEADER_DICTIONARY, _HEADER_BATCH):
        return _batch_bytes(header, message.body)
    return 0


def _field_count(schema: _Table) -> int:
    """Fields of a schema, nested children included."""
    pending = list(schema.tables(1))
    count = 0
    while pending and count < MAX_FIELDS:
        field = pending.pop()
        count += 1
        pending.extend(field.tables(5))
    return count


def _batch_bytes(batch: _Table, body: pa.Buffer | None) -> int:
    """A record batch's buffers as pyarrow will allocate them (decompressed)."""
    data = memoryview(body) if body is not None else memoryview(b"")
    compressed = batch.table(3) is not None
    total = 0
    for offset, length in batch.structs(2, "<qq", 16):
        if offset < 0 or length < 0 or offset + length > len(data):
            raise ValueError(f"buffer at {offset} lies outside the batch body")
        if compressed and length >= 8:
            (decoded,) = struct.unpack_from("<q", data, offset)
            if decoded < -1:
                raise ValueError(f"buffer at {offset} declares {decoded} bytes")
            total += length - 8 if decoded == -1 else decoded
        else:
            total += length
    return total


class _Table:
    """One FlatBuffers table: just what reading Arrow's message metadata needs."""

    __slots__ = ("buf", "pos", "vsize", "vtable")

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf = buf
        self.pos = pos
        (soffset,) = struct.unpack_from("<i", buf, pos)
        self.vtable = pos - soffset
        (self.vsize,) = struct.unpack_from("<H", buf, self.vtable)

    @classmethod
    def root(cls, buf: bytes) -> _Table:
        (offset,) = struct.unpack_from("<I", buf, 0)
        return cls(buf, offset)

    def _field(self, index: int) -> int:
        """The position of field ``index``, or 0 when absent."""
        slot = 4 + 2 * index
        if slot >= self.vsize:
            return 0
        (offset,) = struct.unpack_from("<H", self.buf, self.vtable + slot)
        return self.pos + offset if offset else 0

    def _target(self, index: int) -> int:
        at = self._field(index)
        if not at:
            return 0
        offset: int = struct.unpack_from("<I", self.buf, at)[0]
        return at + offset

    def scalar(self, index: int, fmt: str, default: int) -> int:
        at = self._field(index)
        value: int = struct.unpack_from(fmt, self.buf, at)[0] if at else default
        return value

    def table(self, index: int) -> _Table | None:
        at = self._target(index)
        return _Table(self.buf, at) if at else None

    def tables(self, index: int) -> list[_Table]:
        at = self._target(index)
        if not at:
            return []
        (count,) = struct.unpack_from("<I", self.buf, at)
        if at + 4 + 4 * count > len(self.buf):
            raise ValueError("vector runs past the metadata")
        items = []
        for i in range(count):
            slot = at + 4 + 4 * i
            (offset,) = struct.unpack_from("<I", self.buf, slot)
            items.append(_Table(self.buf, slot + offset))
        return items

    def structs(self, index: int, fmt: str, size: int) -> list[tuple[int, ...]]:
        at = self._target(index)
        if not at:
            return []
        (count,) = struct.unpack_from("<I", self.buf, at)
        if at + 4 + count * size > len(self.buf):
            raise ValueError("vector runs past the metadata")
        return [struct.unpack_from(fmt, self.buf, at + 4 + i * size) for i in range(count)]
