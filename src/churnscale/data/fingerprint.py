"""An order- and partition-independent content hash of a stream of record batches.

Each row gets a 64-bit hash built from its columns with vectorised numpy arithmetic on the
Arrow buffers (no conversion to pandas or Python objects); the fingerprint is the wrapping
sum of those row hashes, so it is the same whatever the row order or the batch boundaries.
Strings are dictionary-encoded first, so a column of few distinct values is hashed once per
value. This is a lineage id, not a cryptographic digest.
"""

from __future__ import annotations

import functools
import hashlib
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from churnscale.data.schema import Schema

#: Bumped whenever the row hash changes, so old and new fingerprints never compare equal.
HASH_VERSION = 2

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_BYTE_BASE = np.uint64(0x100000001B3)
_NULL = np.uint64(0x6A09E667F3BCC909)
_CANONICAL_NAN = np.float64("nan")


def mix64(values: np.ndarray, scratch: np.ndarray | None = None) -> np.ndarray:
    """The splitmix64 finaliser applied in place to a ``uint64`` array (which it returns).

    ``scratch`` (same shape and type) holds the shifted values instead of a new array each time.
    """
    shifted = np.empty_like(values) if scratch is None else scratch
    for shift, factor in ((30, _M1), (27, _M2), (31, None)):
        np.right_shift(values, np.uint64(shift), out=shifted)
        np.bitwise_xor(values, shifted, out=values)
        if factor is not None:
            np.multiply(values, factor, out=values)
    return values


_INVERSE_BASE = np.uint64(pow(int(_BYTE_BASE), -1, 2**64))
#: Bytes of string data hashed in one step, which bounds the size of the power tables.
_SPAN_BYTES = 1 << 20
#: A column whose sample has more distinct values than this share is hashed value by value.
_DISTINCT_SHARE = 0.5
_SAMPLE = 2_048


def _power_table(base: np.uint64, length: int) -> np.ndarray:
    powers = np.full(max(length, 1), base, dtype=np.uint64)
    powers[0] = np.uint64(1)
    return np.cumprod(powers, dtype=np.uint64)


@functools.cache
def _tables() -> tuple[np.ndarray, np.ndarray]:
    """Powers of the base and of its inverse modulo 2**64, for spans of ``_SPAN_BYTES``."""
    return (
        _power_table(_BYTE_BASE, _SPAN_BYTES + 1),
        _power_table(_INVERSE_BASE, _SPAN_BYTES + 1),
    )


def _span_hash(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Polynomial hash of ``data[starts[i]:ends[i]]`` for every i, from one prefix sum."""
    size = len(data)
    if size <= _SPAN_BYTES:
        powers, inverse = _tables()
    else:  # one value longer than a span
        powers, inverse = _power_table(_BYTE_BASE, size), _power_table(_INVERSE_BASE, size + 1)
    powers = powers[:size]
    terms = (data.astype(np.uint64) + np.uint64(1)) * powers
    prefix = np.concatenate([np.zeros(1, dtype=np.uint64), np.cumsum(terms, dtype=np.uint64)])
    spans: np.ndarray = (prefix[ends] - prefix[starts]) * inverse[starts]
    return spans


def _string_values_hash(array: pa.Array) -> np.ndarray:
    """Hash of each value of a string array (nulls hash as empty strings; masked later)."""
    offset_type = np.int64 if pa.types.is_large_string(array.type) else np.int32
    buffers = array.buffers()
    offsets = np.frombuffer(buffers[1], dtype=offset_type)[
        array.offset : array.offset + len(array) + 1
    ].astype(np.int64)
    lengths = np.diff(offsets)
    hashes = np.zeros(len(array), dtype=np.uint64)
    first = 0
    while first < len(array):
        last = int(np.searchsorted(offsets, offsets[first] + _SPAN_BYTES, side="right")) - 1
        last = min(max(last, first + 1), len(array))
        low, high = int(offsets[first]), int(offsets[last])
        data = (
            np.frombuffer(buffers[2], np.uint8)[low:high] if high > low else np.empty(0, np.uint8)
        )
        starts, ends = offsets[first:last] - low, offsets[first + 1 : last + 1] - low
        hashes[first:last] = _span_hash(data, starts, ends)
        first = last
    return mix64(hashes ^ (lengths.astype(np.uint64) * _GOLDEN))


def _few_distinct(array: pa.Array) -> bool:
    sample = array.slice(0, _SAMPLE)
    return len(pc.unique(sample)) <= _DISTINCT_SHARE * max(len(sample), 1)


def _string_hash(array: pa.Array) -> np.ndarray:
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        array = array.cast(pa.large_string())
    if not _few_distinct(array):
        return _string_values_hash(array)
    encoded = pc.dictionary_encode(array)
    value_hash = _string_values_hash(encoded.dictionary)
    indices = pc.fill_null(encoded.indices, 0).to_numpy(zero_copy_only=False)
    return value_hash[indices] if len(value_hash) else np.zeros(len(array), dtype=np.uint64)


def _fixed_width_bits(array: pa.Array) -> np.ndarray:
    """The values of a numeric, boolean or temporal array as ``uint64`` bit patterns."""
    if pa.types.is_date32(array.type):
        array = array.view(pa.int32())
    elif pa.types.is_timestamp(array.type) or pa.types.is_date64(array.type):
        array = array.view(pa.int64())
    if pa.types.is_floating(array.type):
        values = array.cast(pa.float64()).to_numpy(zero_copy_only=False) + 0.0  # no -0.0
        nan = np.isnan(values)
        if nan.any():  # one NaN bit pattern (nulls are NaN here too and are masked later)
            values[nan] = _CANONICAL_NAN
        floats: np.ndarray = values.view(np.uint64)
        return floats
    if array.null_count:
        array = pc.fill_null(array, pa.scalar(0 if array.type != pa.bool_() else False))
    bits: np.ndarray = np.asarray(array.to_numpy(zero_copy_only=False)).astype(np.uint64)
    return bits


def _dictionary_hash(array: pa.DictionaryArray) -> np.ndarray:
    """Each row's value hashed once per distinct value: the same codes as the decoded rows."""
    dictionary = array.dictionary
    if dictionary.null_count or not len(dictionary):
        return column_hash(array.cast(array.type.value_type))
    value_hash = _string_values_hash(dictionary)
    indices = array.indices
    hashed: np.ndarray = value_hash[pc.fill_null(indices, 0).to_numpy(zero_copy_only=False)]
    if indices.null_count:
        valid = np.asarray(indices.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        hashed = np.where(valid, hashed, _NULL)
    return hashed


def column_hash(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A 64-bit code of every value of ``array`` (raw bits for numbers, a hash for text)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type) and pa.types.is_string(array.type.value_type):
        return _dictionary_hash(array)
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    kind = array.type
    numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind) or kind == pa.bool_()
    if numeric or pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        hashed = _fixed_width_bits(array)
    else:
        hashed = _string_hash(array)
    if array.null_count:
        valid = np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        hashed = np.where(valid, hashed, _NULL)
    return hashed


def row_hashes(batch: pa.RecordBatch | pa.Table) -> np.ndarray:
    """A 64-bit hash of every row of ``batch``, combining its columns in order."""
    rows = np.zeros(batch.num_rows, dtype=np.uint64)
    scratch = np.empty_like(rows)
    for index in range(batch.num_columns):
        rows *= _GOLDEN
        rows += column_hash(batch.column(index))
        rows += np.uint64(index + 1)
        mix64(rows, scratch)
    return rows


class Fingerprint:
    """An order- and partition-independent content hash: the sum of 64-bit row hashes."""

    def __init__(self) -> None:
        self.total = np.uint64(0)
        self.rows = 0

    def update(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Add ``batch``'s rows."""
        self.add_hashes(row_hashes(batch))

    def add_hashes(self, hashes: np.ndarray) -> None:
        """Add rows by their :func:`row_hashes` (computed elsewhere, e.g. on another thread)."""
        with np.errstate(over="ignore"):
            self.total = np.uint64(self.total + hashes.sum(dtype=np.uint64))
        self.rows += len(hashes)

    def hexdigest(self, schema: Schema) -> str:
        """The fingerprint, covering the schema as well as the rows."""
        digest = hashlib.sha256(json.dumps(schema.to_dict(), sort_keys=True).encode())
        digest.update(f"v{HASH_VERSION}:{self.rows}:{int(self.total)}".encode())
        return digest.hexdigest()[:32]
