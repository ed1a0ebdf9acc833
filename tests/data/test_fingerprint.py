from __future__ import annotations

from itertools import pairwise

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnscale.data.fingerprint import Fingerprint, column_hash, row_hashes
from churnscale.data.schema import ColumnSpec, Role, Schema

SCHEMA = Schema((ColumnSpec("x", Role.NUMERIC),))


def _digest(batches: list[pa.RecordBatch], schema: Schema = SCHEMA) -> str:
    fingerprint = Fingerprint()
    for batch in batches:
        fingerprint.update(batch)
    return fingerprint.hexdigest(schema)


def _split(table: pa.Table, cuts: list[int]) -> list[pa.RecordBatch]:
    bounds = sorted({0, table.num_rows, *(c % (table.num_rows + 1) for c in cuts)})
    return [batch for lo, hi in pairwise(bounds) for batch in table.slice(lo, hi - lo).to_batches()]


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    cuts=st.lists(st.integers(0, 10_000), max_size=6),
)
def test_same_for_any_order_and_batching(small_table: pa.Table, seed: int, cuts: list[int]) -> None:
    table = small_table.slice(0, 1_500)
    order = np.random.default_rng(seed).permutation(table.num_rows)
    shuffled = table.take(pa.array(order))
    assert _digest(_split(shuffled, cuts)) == _digest(table.to_batches())


def test_any_changed_value_changes_it(small_table: pa.Table) -> None:
    table = small_table.slice(0, 500)
    base = _digest(table.to_batches())
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        changed = column.take(pa.array([1, *range(1, len(column))]))  # row 0 := row 1
        if changed.equals(column):
            continue
        edited = table.set_column(table.column_names.index(name), name, changed)
        assert _digest(edited.to_batches()) != base, name


def test_swapping_values_between_columns_changes_it() -> None:
    a = pa.table({"p": ["x", "y"], "q": ["y", "x"]})
    b = pa.table({"p": ["y", "x"], "q": ["x", "y"]})
    c = pa.table({"p": ["x", "x"], "q": ["y", "y"]})
    assert _digest(a.to_batches()) == _digest(b.to_batches())  # same rows, other order
    assert _digest(a.to_batches()) != _digest(c.to_batches())


def test_null_empty_nan_and_signed_zero() -> None:
    strings = column_hash(pa.array(["", None, "a"]))
    assert len(set(strings.tolist())) == 3
    floats = column_hash(pa.array([0.0, -0.0, float("nan"), None, float("-nan")]))
    assert floats[0] == floats[1] and floats[2] == floats[4]
    assert floats[2] != floats[3] and floats[0] != floats[3]


@pytest.mark.parametrize(
    "other",
    [pa.large_string(), pa.dictionary(pa.int32(), pa.string())],
)
def test_string_layouts_hash_alike(other: pa.DataType) -> None:
    values = pa.array(["churn", None, "", "stay", "churn", "ü"])
    assert np.array_equal(column_hash(values), column_hash(values.cast(other)))


def test_long_strings_hash_by_value_across_spans() -> None:
    rng = np.random.default_rng(5)
    words = ["".join(rng.choice(list("abcdef"), int(n))) for n in rng.integers(0, 2_000, 1_500)]
    words[7] = "z" * 1_500_000  # longer than one hashing span on its own
    whole = column_hash(pa.array(words))
    single = np.array([column_hash(pa.array([w]))[0] for w in words], dtype=np.uint64)
    assert np.array_equal(whole, single)
    sliced = column_hash(pa.array(words).slice(3, 40))
    assert np.array_equal(sliced, single[3:43])


def test_row_hash_covers_every_supported_type() -> None:
    batch = pa.RecordBatch.from_pydict(
        {
            "s": pa.array(["a", "b", None]),
            "f": pa.array([1.5, None, 2.0]),
            "i": pa.array([1, 2, None], pa.int8()),
            "b": pa.array([True, None, False]),
            "t": pa.array([1, 2, None], pa.timestamp("us")),
            "d": pa.array([1, None, 3], pa.date32()),
        }
    )
    hashes = row_hashes(batch)
    assert hashes.dtype == np.uint64 and len(set(hashes.tolist())) == 3
    assert np.array_equal(hashes, row_hashes(pa.Table.from_batches([batch])))


def test_all_null_and_empty_columns() -> None:
    nulls = pa.record_batch({"s": pa.array([None] * 4, pa.string())})
    blanks = pa.record_batch({"s": pa.array([""] * 4, pa.string())})
    empty = pa.record_batch({"s": pa.array([], pa.string())})
    assert _digest([nulls]) != _digest([blanks])
    assert _digest([nulls, empty]) == _digest([nulls])
    assert len(row_hashes(empty)) == 0
