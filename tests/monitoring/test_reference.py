from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from churnscale.artifacts import MANIFEST
from churnscale.data.store import iter_dataset
from churnscale.exceptions import IntegrityError, SchemaError
from churnscale.model.lightgbm import LightGBMModel
from churnscale.monitoring import REFERENCE_FILE, DriftReference, build_reference


def test_reference_has_every_feature_and_counts_every_row(
    drift_model: LightGBMModel, trained_dataset: Path
) -> None:
    reference = drift_model.reference
    assert reference is not None
    assert [h.name for h in reference.features] == drift_model.feature_names
    assert reference.rows == 12_000
    assert all(h.rows == 12_000 for h in reference.features)
    kinds = {h.name: h.kind for h in reference.features}
    assert kinds["monthly_charges"] == "numeric" and kinds["plan"] == "categorical"
    assert kinds["autopay"] == "categorical"  # booleans are two categories


@pytest.mark.parametrize("batch_rows", [1_000, 7_777])
def test_counts_do_not_depend_on_how_the_rows_are_chunked(
    drift_model: LightGBMModel, trained_dataset: Path, batch_rows: int
) -> None:
    whole = build_reference(drift_model, iter_dataset(trained_dataset), sample_rows=5_000)
    chunked = build_reference(
        drift_model, iter_dataset(trained_dataset, batch_rows=batch_rows), sample_rows=5_000
    )
    for a, b in zip(
        [*whole.features, whole.prediction], [*chunked.features, chunked.prediction], strict=True
    ):
        assert a.edges == b.edges and a.counts.tolist() == b.counts.tolist()


def test_building_does_not_change_the_batches(drift_model: LightGBMModel, fresh: pa.Table) -> None:
    before = fresh.slice(0, 500)
    copy = pa.table(before.columns, schema=before.schema)
    build_reference(drift_model, before.to_batches())
    assert before.equals(copy)


def test_no_rows_is_a_clear_error(drift_model: LightGBMModel) -> None:
    with pytest.raises(SchemaError, match="no rows to build a drift reference"):
        build_reference(drift_model, [])


def test_bundle_round_trips_the_reference(drift_model: LightGBMModel, drift_bundle: Path) -> None:
    assert (drift_bundle / REFERENCE_FILE).is_file()
    assert REFERENCE_FILE in json.loads((drift_bundle / MANIFEST).read_text())["files"]
    loaded = LightGBMModel.load(drift_bundle)
    assert loaded.reference is not None and drift_model.reference is not None
    assert loaded.reference.to_dict() == {
        **drift_model.reference.to_dict(),
        "created": loaded.reference.created,
    }


def test_bundle_without_a_reference_still_loads(drift_model: LightGBMModel, tmp_path: Path) -> None:
    plain = LightGBMModel(drift_model.preprocessor, drift_model.booster, drift_model.metadata)
    loaded = LightGBMModel.load(plain.save(tmp_path / "old"))
    assert loaded.reference is None
    assert not (tmp_path / "old" / REFERENCE_FILE).exists()


def test_an_altered_reference_is_refused(drift_bundle: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(drift_bundle, tmp_path / "copy"))
    document = json.loads((copy / REFERENCE_FILE).read_text())
    document["features"][0]["counts"][0] += 1
    (copy / REFERENCE_FILE).write_text(json.dumps(document))
    with pytest.raises(IntegrityError, match=REFERENCE_FILE):
        LightGBMModel.load(copy)


def test_reference_refuses_another_models_features(drift_model: LightGBMModel) -> None:
    assert drift_model.reference is not None
    document = drift_model.reference.to_dict()
    document["features"] = document["features"][1:]
    with pytest.raises(SchemaError, match="missing columns: " + drift_model.feature_names[0]):
        DriftReference.from_dict(document).check_features(drift_model.feature_names)


def test_memory_is_bounded_by_the_sample(drift_model: LightGBMModel, fresh: pa.Table) -> None:
    from churnscale.monitoring import ReferenceBuilder

    builder = ReferenceBuilder(drift_model.preprocessor, sample_rows=2_000)
    for batch in fresh.to_batches(max_chunksize=1_500):
        matrix = drift_model.preprocessor.transform(batch)
        builder.add(matrix, drift_model.predict_matrix(matrix))
        held = sum(m.shape[0] for m, _ in builder._held)
        assert held < 2_000 + 1_500
    assert builder.finish().rows == fresh.num_rows
    assert np.isfinite(builder.finish().prediction.edges).all()
