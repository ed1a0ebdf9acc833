"""The compiled predictor gives LightGBM's probabilities (within 1e-6), one row and in batches,
for a forest as large as the default model's, with wide categorical bitsets and missing values.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest
from churnscale.data.synthetic import generate_table
from churnscale.data.writers import write_batches
from churnscale.model.lightgbm import LightGBMModel
from churnscale.model.predictor import Predictor
from churnscale.training.local import TrainParams, train_local

#: More trees than ``churnscale train``'s defaults grow on 100,000 generated customers (~600).
TREES = 520


@pytest.fixture(scope="module")
def big_forest(tmp_path_factory: pytest.TempPathFactory) -> LightGBMModel:
    """520 small trees on 3,000 generated customers, categorical groups allowed down to 5 rows
    so the 172 regions give splits whose category sets pass code 31 (a bitset of 2+ words)."""
    root = tmp_path_factory.mktemp("forest")
    write_batches(generate_table(3_000, 11).to_batches(), root / "raw.parquet")
    ingest(str(root / "raw.parquet"), root / "ds", hints=SchemaHints(target="churned"))
    params = TrainParams(
        learning_rate=0.05,
        num_leaves=4,
        max_rounds=TREES,
        early_stopping_rounds=10 * TREES,
        extra={"min_data_per_group": 5, "cat_smooth": 1.0, "max_cat_to_onehot": 1},
    )
    return train_local(root / "ds", params=params).model


def _splits(model: LightGBMModel) -> Iterator[dict[str, Any]]:
    for tree in model.booster.dump_model()["tree_info"]:
        stack = [tree["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_index" in node:
                yield node
                stack += [node["left_child"], node["right_child"]]


def _probe_rows(model: LightGBMModel) -> np.ndarray:
    """Customers the model never saw (with their missing values), an all-missing row, and for
    each categorical input every code from -1 to past the largest one seen in training."""
    fresh = model.preprocessor.transform(generate_table(400, 23).drop_columns(["churned"]))
    probes = [fresh, np.full((1, fresh.shape[1]), np.nan)]
    for column in model.preprocessor.categorical_indices:
        codes = np.arange(-1.0, np.nanmax(fresh[:, column]) + 3)
        rows = np.repeat(fresh[:1], len(codes), axis=0)
        rows[:, column] = codes
        probes.append(rows)
    return np.ascontiguousarray(np.vstack(probes))


def test_compiled_forest_equals_lightgbm_with_wide_bitsets_and_missing_values(
    big_forest: LightGBMModel,
) -> None:
    splits = list(_splits(big_forest))
    assert big_forest.booster.num_trees() >= 500
    categorical = [s for s in splits if s["decision_type"] == "=="]
    wide = [s for s in categorical if max(int(c) for c in str(s["threshold"]).split("||")) >= 32]
    assert wide, "no categorical split reaches past code 31: the bitset case is untested"
    assert any(s["missing_type"] == "NaN" for s in splits if s["decision_type"] == "<=")
    matrix = _probe_rows(big_forest)
    assert np.isnan(matrix).any()
    expected = big_forest.predict_matrix(matrix)
    predictor = Predictor(big_forest, kind="compiled")
    assert predictor.kind == "lleaves"
    np.testing.assert_allclose(predictor.predict_matrix(matrix), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        predictor.predict_matrix(matrix, threads=1), expected, rtol=0, atol=1e-6
    )
    one = [predictor.predict_one(np.ascontiguousarray(row)) for row in matrix]
    np.testing.assert_allclose(one, expected, rtol=0, atol=1e-6)
    reused = np.empty(matrix.shape[1])  # the service's way: one row array, refilled in place
    for row, want in zip(matrix[::7], expected[::7], strict=True):
        reused[:] = row
        assert predictor.predict_one(reused) == pytest.approx(want, abs=1e-6)


def test_probabilities_spread_so_equality_means_something(big_forest: LightGBMModel) -> None:
    """A forest that answered one constant would pass any equality check."""
    expected = big_forest.predict_matrix(_probe_rows(big_forest))
    assert expected.std() > 0.05
    assert len(np.unique(np.round(expected, 6))) > 100


def test_saved_and_loaded_forest_compiles_to_the_same_answers(
    big_forest: LightGBMModel, tmp_path: Path
) -> None:
    """The service compiles the loaded bundle, not the trained object."""
    big_forest.save(tmp_path / "model")
    loaded = LightGBMModel.load(tmp_path / "model")
    matrix = _probe_rows(big_forest)
    got = Predictor(loaded, kind="compiled", cache=tmp_path / "cache").predict_matrix(matrix)
    np.testing.assert_allclose(got, big_forest.predict_matrix(matrix), rtol=0, atol=1e-6)
