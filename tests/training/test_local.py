from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from sklearn.metrics import roc_auc_score

from churnscale.artifacts import MANIFEST
from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest
from churnscale.data.synthetic import generate_table
from churnscale.data.writers import write_batches
from churnscale.exceptions import ConfigError, IntegrityError, ModelNotFoundError, TrainingError
from churnscale.model.lightgbm import LightGBMModel
from churnscale.training.local import TrainParams, TrainResult, train_local
from churnscale.training.plan import SplitSpec

FAST = TrainParams(learning_rate=0.2, max_rounds=60, early_stopping_rounds=10)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("train")
    write_batches(generate_table(30_000, 5).to_batches(), root / "raw.parquet")
    ingest(str(root / "raw.parquet"), root / "ds", hints=SchemaHints(target="churned"))
    return root / "ds"


@pytest.fixture(scope="module")
def trained(dataset: Path) -> TrainResult:
    return train_local(dataset, params=FAST)


def test_learns_something_real(trained: TrainResult) -> None:
    assert roc_auc_score(trained.y_holdout, trained.scores) > 0.82
    assert trained.rows["test"] > 4_000 and trained.rows["valid"] > 1_500


def test_one_equals_batch_and_bundle_round_trip(trained: TrainResult, tmp_path: Path) -> None:
    model = trained.model
    model.save(tmp_path / "bundle")
    loaded = LightGBMModel.load(tmp_path / "bundle")
    table = generate_table(500, 77)
    batch = loaded.predict_proba(table)
    np.testing.assert_array_equal(batch, model.predict_proba(table))
    one = np.array([loaded.predict_proba_one(x) for x in table.to_pylist()])
    np.testing.assert_allclose(one, batch, rtol=0, atol=1e-9)
    assert loaded.metadata["data_fingerprint"] == model.metadata["data_fingerprint"]
    reasons = loaded.explain_one(table.to_pylist()[0])
    assert len(reasons) == 3 and all(r.feature in loaded.feature_names for r in reasons)


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: _flip(d / "model.txt"), "SHA-256 does not match"),
        (lambda d: (d / "preprocessor.json").write_text("{}"), "size"),
        (lambda d: _flip(d / MANIFEST), "manifest"),
        (lambda d: (d / "metadata.json").unlink(), "files missing"),
    ],
)
def test_tampered_bundle_is_refused(
    trained: TrainResult, tmp_path: Path, mutate: object, message: str
) -> None:
    trained.model.save(tmp_path / "b")
    assert callable(mutate)
    mutate(tmp_path / "b")
    with pytest.raises(IntegrityError, match=message):
        LightGBMModel.load(tmp_path / "b")


def test_missing_bundle_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no bundle directory"):
        LightGBMModel.load(tmp_path / "nope")


def _trees(model: LightGBMModel) -> str:
    text: str = model.booster.model_to_string()
    return text[: text.index("end of trees")]


def test_same_seed_gives_identical_trees(dataset: Path, trained: TrainResult) -> None:
    again = train_local(dataset, params=FAST)
    assert _trees(again.model) == _trees(trained.model)


def test_cv_folds_partition_the_rows(dataset: Path) -> None:
    sizes = [train_local(dataset, params=FAST, folds=3, fold=k).rows["test"] for k in range(3)]
    assert sum(sizes) == 30_000


def test_time_split_holds_out_the_latest_rows(dataset: Path) -> None:
    result = train_local(
        dataset, params=FAST, split=SplitSpec(kind="time", time_column="signup_date")
    )
    assert 0.1 < result.rows["test"] / 30_000 < 0.35


def test_incremental_training_continues_a_model(dataset: Path, trained: TrainResult) -> None:
    more = train_local(dataset, params=FAST, init_model=trained.model)
    assert more.model.booster.num_trees() > trained.model.booster.num_trees()
    assert more.model.preprocessor is trained.model.preprocessor


def test_bad_params_and_data_are_refused(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="learning_rate"):
        train_local(dataset, params=TrainParams(learning_rate=0.0))
    with pytest.raises(ConfigError, match="--split"):
        SplitSpec(kind="sideways")  # type: ignore[arg-type]
    table = pa.table({"id": [f"c{i}" for i in range(50)], "x": list(range(50)), "y": [0] * 50})
    write_batches(table.to_batches(), tmp_path / "one.parquet")
    ingest(str(tmp_path / "one.parquet"), tmp_path / "ds", hints=SchemaHints(target="y", id="id"))
    with pytest.raises(TrainingError, match="needs both classes"):
        train_local(tmp_path / "ds", params=FAST)


def test_side_sequence_rows_agree_however_they_are_asked(tmp_path: Path) -> None:
    """Single rows (in order, out of order, negative, encoded ahead by ``expect_sample``),
    slices and lists: the same encoded rows, across row-group boundaries (LightGBM samples
    single rows, then pushes slices)."""
    from churnscale.data.store import load_info
    from churnscale.training.local import fit_preprocessor
    from churnscale.training.plan import TRAIN, plan_split
    from churnscale.training.sequence import SideSequence

    write_batches(generate_table(6_000, 9).to_batches(max_chunksize=1_000), tmp_path / "r.parquet")
    ingest(
        str(tmp_path / "r.parquet"),
        tmp_path / "ds",
        hints=SchemaHints(target="churned"),
        batch_rows=1_000,
    )
    schema, _ = load_info(tmp_path / "ds")
    plan = plan_split(tmp_path / "ds", schema, SplitSpec(seed=1), early_stop_fraction=0.1)
    sequence = SideSequence(plan, TRAIN, fit_preprocessor(plan, schema))
    assert len(sequence.groups) > 3
    whole = sequence[0 : len(sequence)]
    rng = np.random.default_rng(0)
    ordered = np.sort(rng.choice(len(sequence), 300, replace=False))
    for index in [*ordered, *rng.permutation(ordered)[:100], -1, -len(sequence)]:
        np.testing.assert_array_equal(sequence[index], whole[index])
    picked = [int(i) for i in ordered[:20]]
    np.testing.assert_array_equal(sequence[picked], whole[picked])
    sequence.expect_sample(ordered)  # encoded ahead; asked in order, or not
    for index in [*ordered[:150], 7, -2, *ordered[150:]]:
        np.testing.assert_array_equal(sequence[index], whole[index])
    assert sequence._sample_rows is None  # released once every sampled row was taken
