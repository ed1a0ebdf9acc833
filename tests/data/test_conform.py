"""conform on dictionary-encoded categories: cleaned once per value, equal to plain strings."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

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


#: Characters around ids: ASCII and Unicode spaces that trimming removes, and ones it keeps.
_ID_CHARS = ["a", "7", "é", "中", " ", "\t", "\r", "\x0b", "\x1c", "\x1f", "\x85", "\u00a0",
             "\u2003", "\u3000", "\u200b", "\x00"]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), st.text(st.sampled_from(_ID_CHARS), max_size=4))),
    start=st.integers(0, 2),
)
def test_ids_are_trimmed_and_blank_ids_rejected(values: list[str | None], start: int) -> None:
    """The shortcut for ids that need no trimming gives what trimming every value gives."""
    schema = Schema((ColumnSpec("id", Role.ID),))
    batch = pa.RecordBatch.from_arrays([pa.array(values, pa.string())], names=["id"])
    batch = batch.slice(min(start, len(values)))  # an offset into the buffers
    trimmed = pc.utf8_trim_whitespace(batch.column(0)).to_pylist()
    typed, rejects = conform(batch, schema, source="s", lines=np.arange(batch.num_rows))
    assert typed.column(0).to_pylist() == [t for t in trimmed if t]
    assert [(r.line, r.reason) for r in rejects] == [
        (i, "missing id") for i, t in enumerate(trimmed) if not t
    ]
