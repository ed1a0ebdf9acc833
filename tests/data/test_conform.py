"""conform on dictionary-encoded categories: cleaned once per value, equal to plain strings."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from churnscale.data.conform import conform
from churnscale.data.schema import ColumnSpec, Role, Schema

SCHEMA = Schema((ColumnSpec("id", Role.ID), ColumnSpec("plan", Role.CATEGORICAL)))


def _dictionary_batch() -> pa.RecordBatch:
    values = pa.array([" basic", "NA", "premium ", "unused", None])
    indices = pa.array([0, 1, None, 2, 4, 0], pa.int32())
    plan = pa.DictionaryArray.from_arrays(indices, values)
    ids = pa.array([f"c{i}" for i in range(len(indices))])
    return pa.RecordBatch.from_arrays([ids, plan], names=["id", "plan"])


def test_dictionary_categories_equal_their_plain_string_conform() -> None:
    batch = _dictionary_batch()
    lines = np.arange(1, batch.num_rows + 1)
    plain = batch.set_column(1, "plan", batch.column(1).cast(pa.string()))
    want, _ = conform(plain, SCHEMA, source="s", lines=lines)
    kept, _ = conform(batch, SCHEMA, source="s", lines=lines, keep_dictionary=True)
    decoded, _ = conform(batch, SCHEMA, source="s", lines=lines)
    assert pa.types.is_dictionary(kept.column(1).type)
    assert kept.column(1).cast(pa.string()).to_pylist() == want.column(1).to_pylist()
    assert want.column(1).to_pylist() == ["basic", None, None, "premium", None, "basic"]
    assert decoded.schema == want.schema and decoded.equals(want)


def test_dictionary_without_null_tokens_keeps_its_indices() -> None:
    plan = pa.DictionaryArray.from_arrays(pa.array([1, 0, 1], pa.int32()), pa.array(["a ", "b"]))
    batch = pa.RecordBatch.from_arrays([pa.array(["x", "y", "z"]), plan], names=["id", "plan"])
    kept, rejects = conform(batch, SCHEMA, source="s", lines=np.arange(3), keep_dictionary=True)
    column = kept.column(1)
    assert rejects == [] and column.indices.to_pylist() == [1, 0, 1]
    assert column.dictionary.to_pylist() == ["a", "b"]
