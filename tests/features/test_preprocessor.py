from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnscale.data.schema import ColumnSpec, Role, Schema, SchemaHints, infer_schema
from churnscale.exceptions import SchemaError
from churnscale.features.preprocessor import Preprocessor


def _fitted(table: pa.Table) -> Preprocessor:
    schema = infer_schema(table, SchemaHints(target="churned"))
    return Preprocessor(schema, min_frequency=1).fit(table.to_batches(max_chunksize=1_000))


def test_encode_one_equals_transform(small_table: pa.Table) -> None:
    pre = _fitted(small_table)
    head = small_table.slice(0, 300)
    matrix = pre.transform(head)
    rows = np.stack([pre.encode_one(x) for x in head.to_pylist()])
    np.testing.assert_array_equal(np.isnan(matrix), np.isnan(rows))
    np.testing.assert_array_equal(np.nan_to_num(matrix), np.nan_to_num(rows))


def test_row_writer_writes_what_encode_one_returns(small_table: pa.Table) -> None:
    """The service's row writer fills its reused row with encode_one's values, customer after
    customer (missing values, unknown categories included), and takes no other row."""
    pre = _fitted(small_table)
    row = np.full(len(pre.feature_names), -1.0)
    write = pre.row_writer(row)
    customers = small_table.slice(0, 200).to_pylist()
    customers += [{**customers[0], "plan": "platinum"}, dict.fromkeys(customers[0])]
    for x in customers:
        write(x)
        np.testing.assert_array_equal(
            np.nan_to_num(row, nan=-9), np.nan_to_num(pre.encode_one(x), nan=-9)
        )
    for wrong in (
        np.empty(len(row) + 1),
        np.empty(len(row), np.float32),
        np.empty((len(row), 2))[:, 0],
    ):
        with pytest.raises(ValueError, match="contiguous float64"):
            pre.row_writer(wrong)


def test_unknown_category_and_missing_value(small_table: pa.Table) -> None:
    pre = _fitted(small_table)
    plan_at = pre.feature_names.index("plan")
    other = float(len(pre.features_[plan_at].vocabulary))
    x = small_table.slice(0, 1).to_pylist()[0]
    assert pre.encode_one({**x, "plan": "platinum"})[plan_at] == other
    assert math.isnan(pre.encode_one({**x, "plan": None})[plan_at])
    table = pa.table({**{c: small_table.column(c)[:2] for c in small_table.column_names}})
    table = table.set_column(table.column_names.index("plan"), "plan", pa.array(["platinum", None]))
    codes = pre.transform(table)[:, plan_at]
    assert codes[0] == other and math.isnan(codes[1])


def test_generated_encoder_takes_hostile_column_names_as_data() -> None:
    """Column names reach the generated row encoder as bound values, never as source text."""
    names = ['a"); import os; os._exit(3) #', "b\\n'''\nx", "{c}", "plan"]
    roles = [Role.NUMERIC, Role.NUMERIC, Role.DATETIME, Role.CATEGORICAL]
    schema = Schema([ColumnSpec(n, r) for n, r in zip(names, roles, strict=True)])
    table = pa.table(
        {
            names[0]: [1.5, None, 3.0],
            names[1]: [2.0, 4.0, None],
            names[2]: pa.array([0, 86_400_000_000, None], pa.timestamp("us")),
            names[3]: ["x", "y", "x"],
        }
    )
    pre = Preprocessor(schema, min_frequency=1).fit(table.to_batches())
    rows = np.stack([pre.encode_one(x) for x in table.to_pylist()])
    np.testing.assert_array_equal(
        np.nan_to_num(rows, nan=-9), np.nan_to_num(pre.transform(table), nan=-9)
    )
    values = pre.values_one({names[0]: 7, names[1]: None, names[2]: None, "plan": "zz"})
    assert values[0] == 7.0 and math.isnan(values[1]) and values[3] == 2.0


def test_pickled_preprocessor_encodes_the_same(small_table: pa.Table) -> None:
    """Dask and process spawns pickle the Preprocessor: its generated encoder is rebuilt."""
    pre = _fitted(small_table)
    copy = pickle.loads(pickle.dumps(pre))  # our own object, in memory: nothing untrusted
    x = small_table.slice(0, 1).to_pylist()[0]
    np.testing.assert_array_equal(
        np.nan_to_num(pre.encode_one(x)), np.nan_to_num(copy.encode_one(x))
    )


def test_dense_mode_is_finite_and_scaled(small_table: pa.Table) -> None:
    pre = _fitted(small_table)
    dense = pre.transform_dense(small_table)
    assert dense.dtype == np.float32
    assert dense.shape == (small_table.num_rows, len(pre.dense_names))
    assert np.isfinite(dense).all()
    tenure = dense[:, pre.dense_names.index("tenure_months")]
    assert abs(float(tenure.mean())) < 1e-3 and abs(float(tenure.std()) - 1.0) < 1e-2


def test_json_round_trip(tmp_path: Path, small_table: pa.Table) -> None:
    pre = _fitted(small_table)
    pre.save(tmp_path / "p.json")
    loaded = Preprocessor.load(tmp_path / "p.json")
    np.testing.assert_array_equal(
        np.nan_to_num(pre.transform(small_table), nan=-9),
        np.nan_to_num(loaded.transform(small_table), nan=-9),
    )
    assert loaded.dense_names == pre.dense_names


@settings(max_examples=15, deadline=None)
@given(chunk=st.integers(1, 2_000))
def test_fit_does_not_depend_on_batching(chunk: int) -> None:
    table = pa.table(
        {
            "x": pa.array([float(i % 17) if i % 5 else None for i in range(2_000)]),
            "c": pa.array([f"v{i % 7}" if i % 11 else None for i in range(2_000)]),
        }
    )
    schema = Schema((ColumnSpec("x", Role.NUMERIC), ColumnSpec("c", Role.CATEGORICAL)))
    whole = Preprocessor(schema).fit([table.combine_chunks().to_batches()[0]])
    parts = Preprocessor(schema).fit(table.to_batches(max_chunksize=chunk))
    assert whole.features_[1].vocabulary == parts.features_[1].vocabulary
    a, b = whole.features_[0].stats, parts.features_[0].stats
    assert (a.count, a.nulls) == (b.count, b.nulls)
    assert a.mean == pytest.approx(b.mean, rel=1e-12) and a.std == pytest.approx(b.std, rel=1e-9)
    np.testing.assert_allclose(whole.transform_dense(table), parts.transform_dense(table))


def test_errors_name_the_problem(small_table: pa.Table) -> None:
    schema = infer_schema(small_table, SchemaHints(target="churned"))
    with pytest.raises(SchemaError, match="not fitted"):
        Preprocessor(schema).transform(small_table)
    pre = _fitted(small_table)
    with pytest.raises(SchemaError, match="missing columns: plan"):
        pre.transform(small_table.drop_columns(["plan"]))
    with pytest.raises(SchemaError, match="saw no training rows"):
        Preprocessor(schema).finish()


@given(cut=st.integers(min_value=1, max_value=4_999))
@settings(max_examples=10, deadline=None)
def test_merged_partial_fits_equal_one_fit(small_table: pa.Table, cut: int) -> None:
    whole = _fitted(small_table)
    halves = [small_table.slice(0, cut), small_table.slice(cut)]
    parts = [Preprocessor(whole.schema, min_frequency=1) for _ in halves]
    for pre, half in zip(parts, halves, strict=True):
        for batch in half.to_batches(max_chunksize=1_000):
            pre.partial_fit(batch)
    merged = Preprocessor(whole.schema, min_frequency=1).merge(parts[0]).merge(parts[1]).finish()
    np.testing.assert_array_equal(merged.transform(small_table), whole.transform(small_table))
    for mine, theirs in zip(merged.features_, whole.features_, strict=True):
        assert mine.vocabulary == theirs.vocabulary
        assert mine.stats.count == theirs.stats.count
        assert mine.stats.mean == pytest.approx(theirs.stats.mean, rel=1e-9, abs=1e-12)


def test_dictionary_columns_encode_like_plain_strings(small_table: pa.Table) -> None:
    pre = _fitted(small_table)
    plan_at = pre.feature_names.index("plan")
    head = small_table.slice(0, 6)
    values = pa.array(["basic", "platinum", None, "premium", "never used"])
    plan = pa.DictionaryArray.from_arrays(pa.array([0, 1, None, 2, 3, 0], pa.int32()), values)
    position = head.column_names.index("plan")
    as_dictionary = head.set_column(position, "plan", plan)
    as_strings = head.set_column(position, "plan", plan.cast(pa.string()))
    got, want = pre.transform(as_dictionary), pre.transform(as_strings)
    np.testing.assert_array_equal(got, want)
    other = float(len(pre.features_[plan_at].vocabulary))
    assert got[1, plan_at] == other and math.isnan(got[3, plan_at])
    assert got.flags.c_contiguous and got.dtype == np.float64


def test_transform_fills_rows_across_copy_blocks(small_table: pa.Table) -> None:
    pre = _fitted(small_table)
    matrix = pre.transform(small_table)  # 5,000 rows: more than one 4,096-row block
    for i, x in enumerate(small_table.slice(4_090, 10).to_pylist()):
        np.testing.assert_array_equal(matrix[4_090 + i], pre.encode_one(x))
