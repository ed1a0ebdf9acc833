"""The served model is refitted on every row; the reported figures still come from unseen rows."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score

from churnscale.config import Settings
from churnscale.data.schema import SchemaHints
from churnscale.data.splits import fold_of, holdout_mask
from churnscale.data.store import ingest, iter_dataset, load_info
from churnscale.data.synthetic import generate_table
from churnscale.exceptions import TrainingError
from churnscale.model.lightgbm import LightGBMModel
from churnscale.training.job import TrainJob, run_training
from churnscale.training.local import EARLY_STOP_FRACTION, TrainParams, TrainResult, train_local
from churnscale.training.plan import TEST, TRAIN, VALID, SplitSpec, plan_split
from churnscale.training.recording import TrainOutcome
from churnscale.training.refit import (
    Evaluated,
    all_rows_plan,
    refit_local,
    refit_rounds,
    served_summary,
)

FAST = TrainParams(learning_rate=0.2, max_rounds=60, early_stopping_rounds=10, threads=1)
ROWS = 3_000
HELD_ONLY = "seen-only-in-the-hold-out"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated customers where one plan value occurs only in rows of the default hold-out."""
    root = tmp_path_factory.mktemp("refit")
    table = generate_table(ROWS, seed=21)
    held = holdout_mask(table.column("customer_id"), fraction=0.2, seed=0)
    marked = np.flatnonzero(held)[:40]
    plans = table.column("plan").to_pylist()
    for i in marked:
        plans[i] = HELD_ONLY
    table = table.set_column(table.schema.get_field_index("plan"), "plan", pa.array(plans))
    pq.write_table(table, root / "raw.parquet")
    hints = SchemaHints(target="churned", id="customer_id")
    ingest(str(root / "raw.parquet"), root / "ds", hints=hints, batch_rows=1_000)
    return root / "ds"


def _train(dataset: Path, out: Path, *, refit: bool, cv: int | None = None) -> TrainOutcome:
    job = TrainJob(dataset, params=FAST, cv=cv, register=False, out=out, refit=refit)
    outcome = run_training(job, Settings(home=out.parent / "home", tracking_uri=None))
    assert outcome is not None
    return outcome


@pytest.fixture(scope="module")
def refitted(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainOutcome:
    return _train(dataset, tmp_path_factory.mktemp("refit") / "model", refit=True, cv=2)


@pytest.fixture(scope="module")
def evaluated(dataset: Path) -> TrainResult:
    """The model ``--no-refit`` would save: trained without the hold-out rows."""
    return train_local(dataset, params=FAST)


def test_all_rows_plan_keeps_every_row_and_label_in_storage_order(dataset: Path) -> None:
    plan = all_rows_plan(dataset, load_info(dataset)[0], SplitSpec())
    stored = pa.concat_tables(pa.Table.from_batches([b]) for b in iter_dataset(dataset))
    assert plan.count(TRAIN) == ROWS
    np.testing.assert_array_equal(plan.labels[TRAIN], stored.column("churned").to_numpy())


def test_served_model_saw_every_row(refitted: TrainOutcome, evaluated: TrainResult) -> None:
    served = refitted.summary()["served_model"]
    rounds = refitted.model.metadata["refit"]["rounds"]
    assert served == {"rows": ROWS, "all_rows": True, "rounds": rounds}
    assert refitted.model.booster.current_iteration() == rounds
    # a category present only in hold-out rows: the refitted Preprocessor learned it
    assert HELD_ONLY in _vocabulary(refitted.model, "plan")
    assert HELD_ONLY not in _vocabulary(evaluated.model, "plan")
    # the bundle on disk is the refitted model
    saved = LightGBMModel.load(refitted.bundle)  # type: ignore[arg-type]
    assert saved.metadata["refit"]["rows"] == ROWS


def _vocabulary(model: LightGBMModel | object, column: str) -> list[str]:
    assert isinstance(model, LightGBMModel)
    return next(f.vocabulary for f in model.preprocessor.features_ if f.name == column)


def test_reported_metrics_come_from_rows_the_evaluated_models_did_not_see(
    dataset: Path, refitted: TrainOutcome, evaluated: TrainResult
) -> None:
    summary = refitted.summary()
    assert summary["holdout_rows"] == refitted.rows["test"] == evaluated.rows["test"]
    # the reported hold-out figure is the model trained without the hold-out rows...
    reported = roc_auc_score(evaluated.y_holdout, evaluated.scores)
    assert summary["metrics"]["roc_auc"] == pytest.approx(reported, abs=1e-12)
    # ...and each CV figure the fold model's, on its own unseen fold
    folds = [
        roc_auc_score(r.y_holdout, r.scores)
        for r in (train_local(dataset, params=FAST, folds=2, fold=k) for k in range(2))
    ]
    assert summary["cv"]["roc_auc"]["mean"] == pytest.approx(np.mean(folds), abs=1e-12)
    # the served model has seen the hold-out rows: its AUC there would be no honest figure
    stored = pa.concat_tables(pa.Table.from_batches([b]) for b in iter_dataset(dataset))
    rows = stored.filter(pa.array(holdout_mask(stored.column("customer_id"), fraction=0.2)))
    assert rows.num_rows == summary["holdout_rows"]
    assert pc.sum(pc.equal(rows.column("plan"), HELD_ONLY)).as_py() == 40
    y = rows.column("churned").to_numpy()
    served_auc = roc_auc_score(y, refitted.model.predict_proba(rows))
    assert served_auc > summary["metrics"]["roc_auc"]
    assert summary["evaluation"]["rows"] == evaluated.rows


def test_without_refit_the_served_model_is_the_evaluated_one(evaluated: TrainResult) -> None:
    assert served_summary(evaluated.model) == {
        "rows": evaluated.rows["train"],
        "all_rows": False,
        "rounds": evaluated.best_iteration,
    }


def test_rounds_scale_with_the_rows() -> None:
    evaluated = [Evaluated(100, 700), Evaluated(120, 700)]
    assert refit_rounds(evaluated, 700) == 110
    assert refit_rounds(evaluated, 1_400, exponent=1.0) == 220
    assert refit_rounds(evaluated, 1_400, exponent=0.0) == 110
    # the round carried over: the first within the tolerance of the best early-stopping AUC
    curve = np.array([0.80, 0.90, 0.9004, 0.9006, 0.89])
    no_model = cast(LightGBMModel, None)
    result = TrainResult(no_model, np.empty(0), np.empty(0), 4, {"train": 9}, curve)
    assert Evaluated.of(result, tolerance=0.0005) == Evaluated(3, 9)
    assert Evaluated.of(result, tolerance=0.0) == Evaluated(4, 9)
    with pytest.raises(TrainingError, match="at least one evaluated model"):
        refit_rounds([], 100)


def _stored(dataset: Path) -> pa.Table:
    return pa.concat_tables(pa.Table.from_batches([b]) for b in iter_dataset(dataset))


@pytest.mark.parametrize("fold", [None, 0, 1])
def test_holdout_rows_are_absent_from_the_evaluated_models_training_rows(
    dataset: Path, fold: int | None
) -> None:
    """The evaluated model's TRAIN and early-stopping rows, row by row in storage order, never
    include a row of the hold-out (or of its CV fold) that its reported figure is taken on."""
    split = SplitSpec()
    plan = plan_split(
        dataset,
        load_info(dataset)[0],
        split,
        folds=None if fold is None else 2,
        fold=fold or 0,
        early_stop_fraction=EARLY_STOP_FRACTION,
    )
    sides = np.concatenate([g.sides for g in plan.groups])
    keys = _stored(dataset).column("customer_id")
    held = (
        holdout_mask(keys, fraction=split.valid_fraction, seed=split.seed)
        if fold is None
        else np.asarray(fold_of(keys, folds=2, seed=split.seed) == fold)
    )
    learned = np.isin(sides, (TRAIN, VALID))
    assert held.sum() > 0 and not (learned & held).any()
    np.testing.assert_array_equal(sides == TEST, held)  # every hold-out row is scored
    result = train_local(dataset, params=FAST, folds=None if fold is None else 2, fold=fold or 0)
    assert result.rows == {
        "train": int((sides == TRAIN).sum()),
        "valid": int((sides == VALID).sum()),
        "test": int(held.sum()),
    }
    assert result.y_holdout.size == held.sum()


def test_no_refit_serves_exactly_todays_model(
    dataset: Path, tmp_path: Path, refitted: TrainOutcome, evaluated: TrainResult
) -> None:
    """``refit=False`` (``--no-refit``) saves the evaluated model byte for byte; the default
    saves a different model, fitted on every row."""
    kept = _train(dataset, tmp_path / "model", refit=False)
    text = kept.model.booster.model_to_string()
    assert text == evaluated.model.booster.model_to_string()
    assert "refit" not in kept.model.metadata
    assert kept.model.metadata["rows"] == evaluated.rows
    assert kept.summary()["served_model"]["all_rows"] is False
    assert kept.summary()["metrics"] == pytest.approx(refitted.summary()["metrics"])
    saved = LightGBMModel.load(kept.bundle)  # type: ignore[arg-type]
    assert saved.booster.model_to_string() == text
    # the refitted model is another model: other trees, other scores
    assert refitted.model.booster.model_to_string() != text
    rows = _stored(dataset).slice(0, 500)
    other = np.abs(refitted.model.predict_proba(rows) - evaluated.model.predict_proba(rows))
    assert other.max() > 1e-3


def test_the_refit_is_deterministic_across_thread_counts(dataset: Path) -> None:
    """Same seed, 1 or 2 LightGBM threads: the refitted trees are byte-identical."""
    one, rows = refit_local(dataset, rounds=30, params=FAST)
    two, _ = refit_local(dataset, rounds=30, params=replace(FAST, threads=2))
    assert rows == ROWS
    assert one.booster.num_trees() == 30
    assert _trees(one.booster.model_to_string()) == _trees(two.booster.model_to_string())


def _trees(model_text: str) -> str:
    """The tree sections (the parameters section records the thread count)."""
    start = model_text.index("Tree=0")
    return model_text[start : model_text.index("end of trees", start)]


def test_the_report_says_where_the_figures_came_from_and_what_the_served_model_saw(
    refitted: TrainOutcome,
) -> None:
    page = refitted.report.read_text()
    rows = refitted.rows
    assert f"hold-out {rows['test']:,} rows, never seen by the evaluated model" in page
    assert f"trained on {rows['train']:,}, early stopping on {rows['valid']:,}" in page
    rounds = refitted.model.metadata["refit"]["rounds"]
    assert f"{ROWS:,} rows (refitted on every row), {rounds} rounds" in page


def test_with_cv_the_rounds_are_the_mean_over_the_folds_and_the_final_split(
    refitted: TrainOutcome,
) -> None:
    """``--cv 2``: the rounds carried over come from both fold models and the final split's."""
    refit = refitted.model.metadata["refit"]
    assert len(refit["evaluated_best_rounds"]) == 3
    evaluated = [
        Evaluated(r, n)
        for r, n in zip(refit["evaluated_best_rounds"], refit["evaluated_train_rows"], strict=True)
    ]
    assert refit["rounds"] == refit_rounds(evaluated, ROWS)
    assert refit["evaluated_train_rows"][-1] == refitted.rows["train"]


def test_the_refit_bins_its_rows_and_hands_back_the_read_pages_before_boosting(
    dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in training (local.binned_sides): the rows are binned, the labels dropped and the
    pages read for them handed back before LightGBM allocates its training state, and the
    model kept is the trees without that state."""
    import lightgbm as lgb

    from churnscale.training.sequence import release_unused_memory

    released: list[int] = []

    def release() -> None:
        released.append(1)
        release_unused_memory()

    monkeypatch.setattr("churnscale.training.local.release_unused_memory", release)
    seen: list[tuple[bool, bool, int]] = []
    real_booster = lgb.Booster

    class Spy(real_booster):  # type: ignore[misc,valid-type]
        def __init__(self, params=None, train_set=None, model_file=None, model_str=None):  # type: ignore[no-untyped-def]
            if train_set is not None:
                seen.append((train_set._handle is not None, train_set.label is None, len(released)))
            super().__init__(
                params=params, train_set=train_set, model_file=model_file, model_str=model_str
            )

    monkeypatch.setattr(lgb, "Booster", Spy)
    model, _ = refit_local(dataset, rounds=20, params=FAST)
    assert seen == [(True, True, len(released))] and released, seen
    assert model.booster.num_trees() == 20
    assert getattr(model.booster, "train_set", None) is None  # no binned data or gradients
