"""The model contract, checked on every model kind (scikit-learn ``check_estimator`` style).

A new kind joins by adding its trained fixture to ``KINDS`` in conftest.py; every check here
then runs on it. Nothing is mocked: each kind is trained on a small stored dataset.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from churnscale.artifacts import MANIFEST, publish_directory
from churnscale.exceptions import IncompatibleModelError, IntegrityError
from churnscale.model import (
    CHURN_PROBABILITY,
    ChurnModel,
    ExplainableModel,
    LightGBMModel,
    SurvivalModel,
    expect_model,
    load_bundle,
)
from churnscale.model.bundle import METADATA_FILE, PREPROCESSOR_FILE

#: Which kinds give reasons (per-feature contributions).
EXPLAINS = {"lightgbm": True, "mlp": False, "survival": True, "uplift": False}
ROWS = 40


def test_it_implements_the_contract(model: ChurnModel) -> None:
    assert isinstance(model, ChurnModel)
    assert model.metadata["model_type"] == model.model_type
    assert model.feature_names == model.preprocessor.feature_names
    assert isinstance(model, ExplainableModel) is EXPLAINS[model.model_type]


def test_predict_gives_every_output_by_name(model: ChurnModel, customers: pa.Table) -> None:
    out = model.predict(customers)
    assert tuple(out) == model.outputs
    assert all(values.shape == (customers.num_rows,) for values in out.values())
    if model.outputs == (CHURN_PROBABILITY,):
        np.testing.assert_array_equal(out[CHURN_PROBABILITY], model.predict_proba(customers))


def test_probabilities_are_probabilities(model: ChurnModel, customers: pa.Table) -> None:
    p = model.predict_proba(customers)
    assert p.dtype == np.float64 and p.shape == (customers.num_rows,)
    assert np.all((p >= 0) & (p <= 1)) and p.std() > 0


def test_one_customer_equals_the_batch(model: ChurnModel, customers: pa.Table) -> None:
    rows = customers.slice(0, ROWS)
    one = np.array([model.predict_proba_one(x) for x in rows.to_pylist()])
    np.testing.assert_allclose(one, model.predict_proba(rows), rtol=0, atol=1e-6)


def test_a_table_equals_its_encoded_matrix(model: ChurnModel, customers: pa.Table) -> None:
    matrix = model.preprocessor.transform(customers)
    np.testing.assert_array_equal(model.predict_matrix(matrix), model.predict_proba(customers))
    assert model.predict_matrix(matrix[:0]).shape == (0,)


def test_rows_do_not_depend_on_order_or_batching(model: ChurnModel, customers: pa.Table) -> None:
    # float32 networks may round differently with another batch shape: 1e-6, as one vs many
    order = np.random.default_rng(5).permutation(customers.num_rows)
    shuffled = model.predict_proba(customers.take(order))
    np.testing.assert_allclose(shuffled, model.predict_proba(customers)[order], atol=1e-6)
    parts = [model.predict_proba(b) for b in customers.to_batches(max_chunksize=123)]
    np.testing.assert_allclose(np.concatenate(parts), model.predict_proba(customers), atol=1e-6)


def test_prediction_leaves_its_input_alone(model: ChurnModel, customers: pa.Table) -> None:
    before = customers.to_pylist()[:ROWS]
    model.predict_proba(customers)
    x = dict(before[0])
    model.predict_proba_one(x)
    assert customers.to_pylist()[:ROWS] == before and x == before[0]


def test_a_bundle_loads_as_the_same_kind(
    model: ChurnModel, customers: pa.Table, tmp_path: Path
) -> None:
    loaded = load_bundle(model.save(tmp_path / "bundle"))
    assert type(loaded) is type(model) and loaded.model_type == model.model_type
    np.testing.assert_array_equal(loaded.predict_proba(customers), model.predict_proba(customers))
    assert loaded.metadata["manifest_sha256"]
    assert model.reference is not None and loaded.reference is not None
    assert loaded.reference.to_dict() == model.reference.to_dict()


def test_save_and_load_take_a_string_path(
    model: ChurnModel, customers: pa.Table, tmp_path: Path
) -> None:
    # the Python API's users pass strings as often as Paths
    path = model.save(str(tmp_path / "bundle"))
    assert path == tmp_path / "bundle"
    loaded = type(model).load(str(path))
    np.testing.assert_array_equal(loaded.predict_proba(customers), model.predict_proba(customers))


def test_a_bundle_is_never_overwritten(model: ChurnModel, tmp_path: Path) -> None:
    path = model.save(tmp_path / "bundle")
    with pytest.raises(IntegrityError, match="already exists"):
        model.save(path)


def test_a_tampered_bundle_is_refused(model: ChurnModel, tmp_path: Path) -> None:
    path = model.save(tmp_path / "bundle")
    data = bytearray((path / PREPROCESSOR_FILE).read_bytes())
    data[-2] ^= 0x01
    (path / PREPROCESSOR_FILE).write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="SHA-256 does not match"):
        load_bundle(path)


def test_an_unknown_model_type_is_refused(model: ChurnModel, tmp_path: Path) -> None:
    source = model.save(tmp_path / "bundle")

    def fill(staging: Path) -> None:  # a verified bundle that declares another type
        for item in source.iterdir():
            if item.name != MANIFEST:
                (staging / item.name).write_bytes(item.read_bytes())
        metadata = json.loads((source / METADATA_FILE).read_text())
        (staging / METADATA_FILE).write_text(json.dumps({**metadata, "model_type": "oracle"}))

    publish_directory(tmp_path / "other", fill)
    with pytest.raises(IntegrityError, match="unknown model type 'oracle'"):
        load_bundle(tmp_path / "other")


def test_reasons_where_supported(model: ChurnModel, customers: pa.Table) -> None:
    if not isinstance(model, ExplainableModel):
        assert not EXPLAINS[model.model_type]
        return
    rows = customers.slice(0, ROWS)
    reasons = model.explain(rows, top=3)
    assert [len(r) for r in reasons] == [3] * ROWS
    assert model.explain_one(rows.to_pylist()[7], top=3) == reasons[7]
    matrix = model.preprocessor.transform(rows)
    logits = model.contributions(matrix).sum(axis=1)
    if isinstance(model, SurvivalModel):  # contributions to churning sooner: -mu
        np.testing.assert_allclose(-logits, model.location(matrix), atol=1e-9)
    else:
        np.testing.assert_allclose(1 / (1 + np.exp(-logits)), model.predict_proba(rows), atol=1e-9)
    assert set(model.importance()) == set(model.feature_names)


def test_a_consumer_asks_for_its_kind_by_type(model: ChurnModel) -> None:
    if isinstance(model, LightGBMModel):
        assert expect_model(model, LightGBMModel, reference="m", purpose="serving") is model
        return
    wanted = f"lightgbm model; this one is {model.model_type}"
    with pytest.raises(IncompatibleModelError, match=wanted):
        expect_model(model, LightGBMModel, reference="m", purpose="serving")
