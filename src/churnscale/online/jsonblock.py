"""A block of JSON-text events parsed straight into Arrow columns (``pyarrow.json``).

Decoding each event into a dict and rebuilding columns from the dicts costs several times the
learning itself (measured in ``benchmarks/online.py``). When every payload of a block is a
one-line JSON object whose values have the plain JSON type of their column's role, the block is
parsed at once into the same raw columns :func:`~churnscale.online.records.records_table` would
build from the dicts. Anything else (a line that is not an object, invalid UTF-8 or JSON, a
string in a numeric column, a multi-line payload, a missing column) makes this return None,
and the block is read record by record, which quarantines each bad event with its reason.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import orjson
import pyarrow as pa
import pyarrow.json as pj

from churnscale.data.schema import Role, Schema

#: Roles whose JSON type is fixed; the target's (0/1, true/false or text) is the first event's.
_EXPLICIT = {
    Role.NUMERIC: pa.float64(),
    Role.CATEGORICAL: pa.string(),
    Role.BOOLEAN: pa.bool_(),
    Role.DATETIME: pa.string(),
    Role.ID: pa.string(),
}
_LABEL_TYPES: dict[type, pa.DataType] = {
    bool: pa.bool_(),
    int: pa.int64(),
    float: pa.float64(),
    str: pa.string(),
}
_BLOCK_BYTES = 1 << 24


def parse_block(payloads: Sequence[bytes], schema: Schema) -> pa.RecordBatch | None:
    """The ``schema`` columns of a block of JSON texts, or None when it must be read one by one."""
    if not payloads or any(b"\n" in p or b"\r" in p or not p.strip() for p in payloads):
        return None
    fields = []
    for column in schema.columns:
        kind = _EXPLICIT.get(column.role) or _label_type(payloads[0], column.name)
        if kind is None:
            return None
        fields.append(pa.field(column.name, kind))
    text = b"\n".join(payloads)
    options = pj.ParseOptions(explicit_schema=pa.schema(fields), unexpected_field_behavior="ignore")
    reading = pj.ReadOptions(use_threads=False, block_size=max(len(text) + 1, _BLOCK_BYTES))
    try:
        table = pj.read_json(io.BytesIO(text), read_options=reading, parse_options=options)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    if table.num_rows != len(payloads):
        return None
    columns = [table.column(name).combine_chunks() for name in schema.names]
    return pa.RecordBatch.from_arrays(columns, names=list(schema.names))


def _label_type(payload: bytes, name: str) -> pa.DataType | None:
    """The Arrow type of the first event's label (one decode a block), None if it has none."""
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return _LABEL_TYPES.get(type(value.get(name))) if isinstance(value, dict) else None
