"""Stream records → typed Arrow batches, with every bad record kept in a quarantine file.

Records are JSON objects, so a column may hold mixed Python types; such a column is read as
strings and :func:`~churnscale.data.conform.conform` decides, row by row, what fits the schema.
A record is quarantined (never dropped) when it is not a JSON object, lacks a usable label or
holds a value its column's role cannot read; its entry names the stream offset and the reason.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
import pyarrow as pa

from churnscale.data.conform import conform
from churnscale.data.schema import Role, Schema, SchemaHints, infer_schema
from churnscale.online.jsonblock import parse_block
from churnscale.online.sources import Entry, Offset, Record, decode_payload

_PLAIN_TYPES = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean, pa.types.is_string)


def learning_schema(schema: Schema) -> Schema:
    """``schema`` without its id column (a stream need not carry ids to be learned from)."""
    columns = tuple(c for c in schema.columns if c.role is not Role.ID)
    return Schema(columns=columns, positive_label=schema.positive_label)


def to_column(values: list[Any]) -> pa.Array:
    """An Arrow array of JSON values: typed when uniform, strings when mixed."""
    try:
        array = pa.array(values)
        if pa.types.is_null(array.type) or any(test(array.type) for test in _PLAIN_TYPES):
            return array
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        pass
    return pa.array([None if v is None else _text(v) for v in values], pa.string())


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


def records_table(records: Sequence[Record], names: Sequence[str]) -> pa.RecordBatch:
    """The ``names`` columns of ``records`` (a missing key reads as null)."""
    arrays = [to_column([r.get(n) for r in records]) for n in names]
    return pa.RecordBatch.from_arrays(arrays, names=list(names))


def infer_stream_schema(records: Sequence[Record], *, target: str | None) -> Schema:
    """Infer a schema from a window of records (keys in order of first appearance)."""
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    sample = pa.Table.from_batches([records_table(records, list(names))])
    return infer_schema(sample, SchemaHints(target=target))


class StreamQuarantine:
    """Append-only JSON Lines file of rejected records, truncated back to a checkpoint's size.

    After a crash the learner re-reads the events after its checkpoint, so the entries written
    for them before the crash are cut off first (:meth:`resume`): each entry is written once.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._handle: IO[bytes] | None = None

    def resume(self, *, size: int, count: int) -> None:
        """Cut the file back to ``size`` bytes holding ``count`` entries."""
        if self.path.exists() and self.path.stat().st_size > size:
            with self.path.open("r+b") as handle:
                handle.truncate(size)
        self.count = count

    def add(self, source: str, offset: Offset, reason: str, value: str | None = None) -> None:
        """Record one rejected event."""
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("ab")
        entry = {"source": source, "offset": offset, "reason": reason, "value": value}
        self._handle.write(orjson.dumps(entry) + b"\n")
        self.count += 1

    def sync(self) -> int:
        """Flush and fsync; returns the file size a checkpoint should record."""
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
        return self.path.stat().st_size if self.path.exists() else 0

    def close(self) -> None:
        """Close the file."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def typed_batch(
    events: Sequence[Entry],
    schema: Schema,
    *,
    quarantine: StreamQuarantine,
    source: str,
) -> tuple[pa.RecordBatch, list[Offset]]:
    """The learnable rows of ``events`` conformed to ``schema``, and their offsets, in order.

    Every other event is written to ``quarantine`` with its offset and the reason. A block of
    JSON texts is parsed at once when it can be (:func:`parse_block`), else record by record.
    """
    texts = [p for _, p in events if isinstance(p, bytes)]
    block = parse_block(texts, schema) if len(texts) == len(events) else None
    offsets: list[Offset] = [o for o, _ in events]
    positions: list[int] = list(range(len(events)))
    bad: list[tuple[int, Offset, str, str | None]] = []
    if block is None:
        good: list[Record] = []
        offsets, positions = [], []
        for position, (offset, payload) in enumerate(events):
            record = decode_payload(payload)
            if isinstance(record, dict):
                good.append(record)
                offsets.append(offset)
                positions.append(position)
            else:
                bad.append((position, offset, record.reason, record.raw))
        block = records_table(good, schema.names)
    typed, rejects = conform(block, schema, source=source, lines=np.arange(len(offsets)))
    for reject in rejects:
        reason = f"{reject.column}: {reject.reason}" if reject.column else reject.reason
        bad.append((positions[reject.line], offsets[reject.line], reason, reject.value))
    for _, offset, reason, value in sorted(bad, key=lambda entry: entry[0]):
        quarantine.add(source, offset, reason, value)
    if rejects:
        dropped = {r.line for r in rejects}
        offsets = [o for i, o in enumerate(offsets) if i not in dropped]
    return typed, offsets
