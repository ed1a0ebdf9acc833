"""LightGBM on one machine without loading the data into RAM.

The Preprocessor is fitted in one streamed pass over the training rows; LightGBM then builds
its binned dataset from :class:`~churnscale.training.sequence.SideSequence` (one row group at a
time) and trains with early stopping on the validation side. Peak memory is LightGBM's binned
data plus one row group, whatever the number of rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
from lightgbm.basic import _LIB, _safe_call  # type: ignore[attr-defined]

from churnscale.data.schema import Schema
from churnscale.data.store import load_info
from churnscale.exceptions import ConfigError, TrainingError
from churnscale.features.names import lightgbm_names
from churnscale.features.preprocessor import Preprocessor
from churnscale.features.spec import monotone_constraints
from churnscale.model.lightgbm import LightGBMModel
from churnscale.training.plan import (
    TEST,
    TRAIN,
    VALID,
    Exclusion,
    SplitPlan,
    SplitSpec,
    plan_split,
)
from churnscale.training.sequence import (
    BinSample,
    SideSequence,
    bin_sample_indices,
    fit_with_bin_sample,
    iter_side_tables,
    release_unused_memory,
)

ClassWeight = Literal["none", "balanced"]
#: Share of the training rows set aside for early stopping; the hold-out is never used for it.
EARLY_STOP_FRACTION = 0.1


@dataclass(frozen=True)
class TrainParams:
    """LightGBM hyperparameters (stored as given; checked by :meth:`validate`)."""

    learning_rate: float = 0.03
    num_leaves: int = 15
    min_child_samples: int = 10
    feature_fraction: float = 0.7
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    lambda_l2: float = 1.0
    max_bin: int = 255
    max_rounds: int = 2_000
    early_stopping_rounds: int = 100
    class_weight: ClassWeight = "none"
    seed: int = 0
    threads: int = 0
    monotone: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Refuse values LightGBM would reject or silently misuse."""
        checks: list[tuple[str, bool, str]] = [
            ("learning_rate", 0.0 < self.learning_rate <= 1.0, "a number in (0, 1]"),
            ("num_leaves", self.num_leaves >= 2, "at least 2"),
            ("max_rounds", self.max_rounds >= 1, "at least 1"),
            ("early_stopping_rounds", self.early_stopping_rounds >= 1, "at least 1"),
            ("feature_fraction", 0.0 < self.feature_fraction <= 1.0, "a number in (0, 1]"),
            ("bagging_fraction", 0.0 < self.bagging_fraction <= 1.0, "a number in (0, 1]"),
            ("class_weight", self.class_weight in ("none", "balanced"), "none or balanced"),
            ("monotone", isinstance(self.monotone, bool), "true or false"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(name, expected=expected, received=getattr(self, name))

    def lightgbm_params(self, constraints: list[int] | None = None) -> dict[str, Any]:
        """The parameter dict handed to ``lightgbm.train``; ``constraints`` (one per model
        input, see :func:`~churnscale.features.spec.monotone_constraints`) apply unless
        ``monotone`` is off."""
        params: dict[str, Any] = {
            "objective": "binary",
            "metric": ["auc", "binary_logloss"],
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": self.bagging_freq,
            "lambda_l2": self.lambda_l2,
            "max_bin": self.max_bin,
            "seed": self.seed,
            "deterministic": True,
            "force_col_wise": True,
            "verbosity": -1,
            "num_threads": self.threads,
        }
        if self.class_weight == "balanced":
            params["is_unbalance"] = True
        if self.monotone and constraints is not None:
            params["monotone_constraints"] = constraints
        return {**params, **self.extra}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters."""
        return asdict(self)


@dataclass
class TrainResult:
    """A trained model with the held-out labels and scores it was judged on."""

    model: LightGBMModel
    y_holdout: np.ndarray
    scores: np.ndarray
    best_iteration: int
    rows: dict[str, int]
    #: Early-stopping AUC after each new round (empty where it was not recorded, e.g. Dask).
    valid_auc: np.ndarray = field(default_factory=lambda: np.empty(0))


def fit_preprocessor(plan: SplitPlan, schema: Schema, **options: Any) -> Preprocessor:
    """Fit a Preprocessor on the training side, streamed one row group at a time."""
    pre = Preprocessor(schema, **options)
    columns = [c.name for c in schema.features]
    for table in iter_side_tables(plan, TRAIN, columns):
        for batch in table.to_batches():
            pre.partial_fit(batch)
    return pre.finish()


def _raw_scores(booster: lgb.Booster, sequence: SideSequence) -> np.ndarray:
    parts = [booster.predict(m, raw_score=True) for m in sequence.iter_matrices()]
    return np.concatenate(parts) if parts else np.empty(0)


def side_dataset(
    plan: SplitPlan,
    side: int,
    pre: Preprocessor,
    params: dict[str, Any],
    *,
    init_model: lgb.Booster | None,
    reference: lgb.Dataset | None = None,
    sample: BinSample | None = None,
) -> lgb.Dataset:
    """A LightGBM dataset streamed from one side of ``plan`` (raw scores of ``init_model``
    as its initial scores; bins from ``reference`` when given)."""
    sequence = SideSequence(plan, side, pre)
    init_score = _raw_scores(init_model, sequence) if init_model is not None else None
    dataset = lgb.Dataset(
        [sequence],
        label=plan.labels[side],
        init_score=init_score,
        reference=reference,
        feature_name=lightgbm_names(pre.feature_names),
        categorical_feature=pre.categorical_indices,
        params=params,
        free_raw_data=True,
    )
    if reference is None and sample is not None:  # kept while fitting the Preprocessor
        sequence.use_sample(sample)
    elif reference is None:  # bins come from a sample of rows: encode only those for it
        sequence.expect_sample(dataset._create_sample_indices(total_nrow=len(sequence)))
    return dataset


def data_params(params: dict[str, Any]) -> dict[str, Any]:
    """The LightGBM parameters that decide how a Dataset is binned."""
    return {k: params[k] for k in ("max_bin", "force_col_wise", "verbosity", "seed")}


def _booster(
    plan: SplitPlan,
    pre: Preprocessor,
    params: TrainParams,
    *,
    init_model: lgb.Booster | None,
    on_round: Callable[[int, float], None] | None,
    constraints: list[int] | None = None,
    sample: BinSample | None = None,
) -> lgb.Booster:
    """Boost with early stopping on VALID; a given ``init_model``'s trees come first."""
    lgb_params = params.lightgbm_params(constraints)
    binning = data_params(lgb_params)
    try:
        train, valid = binned_sides(plan, pre, binning, init_model=init_model, sample=sample)
        booster = lgb.Booster(params=lgb_params, train_set=train)
        if init_model is not None:  # continued training: the old trees, then the new ones
            _safe_call(_LIB.LGBM_BoosterMerge(booster._handle, init_model._handle))
        booster.add_valid(valid, "valid")
        offset = init_model.current_iteration() if init_model is not None else 0
        return scoring_booster(_boost(booster, params, offset=offset, on_round=on_round))
    except lgb.basic.LightGBMError as exc:
        raise TrainingError(f"LightGBM failed: {exc}") from exc


def binned_sides(
    plan: SplitPlan,
    pre: Preprocessor,
    binning: dict[str, Any],
    *,
    init_model: lgb.Booster | None,
    sample: BinSample | None = None,
) -> tuple[lgb.Dataset, lgb.Dataset]:
    """TRAIN and VALID binned by LightGBM, before any booster exists: the row groups in flight
    while binning, the bin sample and the labels are freed, and Arrow's and the C heap's
    cached pages handed back, before LightGBM allocates its training state."""
    train = side_dataset(plan, TRAIN, pre, binning, init_model=init_model, sample=sample)
    train.construct()
    valid = side_dataset(plan, VALID, pre, binning, init_model=init_model, reference=train)
    valid.construct()
    _release_labels(plan, (TRAIN, VALID), train, valid)
    release_unused_memory()
    return train, valid


def binned_train(
    plan: SplitPlan,
    pre: Preprocessor,
    binning: dict[str, Any],
    *,
    init_model: lgb.Booster | None,
    sample: BinSample | None = None,
) -> lgb.Dataset:
    """TRAIN alone binned the same way, for a fit with no early-stopping side (a refit on
    every row): binned, its labels freed and the cached pages handed back before the booster."""
    train = side_dataset(plan, TRAIN, pre, binning, init_model=init_model, sample=sample)
    train.construct()
    _release_labels(plan, (TRAIN,), train)
    release_unused_memory()
    return train


def scoring_booster(booster: lgb.Booster) -> lgb.Booster:
    """The same trees without LightGBM's training state (binned data, scores, gradients,
    ~70 bytes a training row), which would otherwise stay allocated while the hold-out is
    scored and for as long as the model lives."""
    scoring = lgb.Booster(model_str=booster.model_to_string(num_iteration=-1))
    scoring.best_iteration, scoring.best_score = booster.best_iteration, booster.best_score
    return scoring


def _release_labels(plan: SplitPlan, sides: tuple[int, ...], *datasets: lgb.Dataset) -> None:
    """Drop the training labels once LightGBM holds its own copy (4-8 bytes a row)."""
    for side in sides:
        plan.labels[side] = np.empty(0, dtype=np.float32)
    for dataset in datasets:
        dataset.label = None  # get_label() reads them back from LightGBM when asked


def _boost(
    booster: lgb.Booster,
    params: TrainParams,
    *,
    offset: int,
    on_round: Callable[[int, float], None] | None,
) -> lgb.Booster:
    best_auc, best_round = -1.0, 0
    for round_ in range(1, params.max_rounds + 1):
        booster.update()
        auc = next(r[2] for r in booster.eval_valid() if r[1] == "auc")
        if on_round is not None:
            on_round(round_, float(auc))
        if auc > best_auc:
            best_auc, best_round = float(auc), round_
        elif round_ - best_round >= params.early_stopping_rounds:
            break
    booster.best_iteration = offset + best_round
    booster.best_score = {"valid": {"auc": best_auc}}
    return booster


def score_side(model: LightGBMModel, plan: SplitPlan, side: int) -> np.ndarray:
    """The model's scores for every row on ``side``, in storage order."""
    sequence = SideSequence(plan, side, model.preprocessor)
    parts = [model.predict_matrix(m) for m in sequence.iter_matrices()]
    return np.concatenate(parts) if parts else np.empty(0)


def check_sides(plan: SplitPlan, holdout: int) -> dict[str, int]:
    """Row counts per side; refuse a split that leaves a side empty or single-class."""
    rows = {"train": plan.count(TRAIN), "valid": plan.count(VALID), "test": plan.count(TEST)}
    for name, side in (("train", TRAIN), ("valid", VALID), ("holdout", holdout)):
        labels = plan.labels[side]
        if labels.size == 0 or labels.min() == labels.max():
            raise TrainingError(
                f"the {name} split has {labels.size} rows and needs both classes; "
                "use more data or another --valid-fraction"
            )
    return rows


def model_metadata(
    schema: Schema,
    fingerprint: str,
    params: TrainParams,
    split: SplitSpec,
    rows: dict[str, int],
    booster: lgb.Booster,
) -> dict[str, Any]:
    """What a trained model records about how it was made."""
    metadata: dict[str, Any] = {
        "schema": schema.to_dict(),
        "data_fingerprint": fingerprint,
        "params": params.to_dict(),
        "split": asdict(split),
        "rows": rows,
        "best_iteration": booster.best_iteration,
        "parent": None,
    }
    if "feature_spec" in schema.metadata:  # point-in-time features: the service rebuilds them
        metadata["feature_spec"] = schema.metadata["feature_spec"]
    return metadata


def train_local(
    dataset: Path,
    *,
    schema: Schema | None = None,
    split: SplitSpec | None = None,
    params: TrainParams | None = None,
    folds: int | None = None,
    fold: int = 0,
    init_model: LightGBMModel | None = None,
    on_round: Callable[[int, float], None] | None = None,
    exclude: Exclusion | None = None,
) -> TrainResult:
    """Train on a stored dataset; the hold-out is the validation split or CV fold ``fold``.

    Rows named by ``exclude`` are never read (nested validation: tuning on the rows outside
    an outer hold-out)."""
    params = params or TrainParams()
    params.validate()
    split = split or SplitSpec(seed=params.seed)
    stored_schema, info = load_info(dataset)
    schema = schema or stored_schema
    plan = plan_split(
        dataset,
        schema,
        split,
        folds=folds,
        fold=fold,
        early_stop_fraction=EARLY_STOP_FRACTION,
        exclude=exclude,
    )
    rows = check_sides(plan, TEST)
    sample = None
    if init_model is None:  # one pass fits the Preprocessor and keeps LightGBM's bin sample
        indices = bin_sample_indices(rows["train"], data_params(params.lightgbm_params()))
        pre, sample = fit_with_bin_sample(plan, schema, indices)
    else:
        pre = init_model.preprocessor
    curve: list[float] = []

    def record(round_: int, auc: float) -> None:
        curve.append(auc)
        if on_round is not None:
            on_round(round_, auc)

    booster = _booster(
        plan,
        pre,
        params,
        init_model=init_model.booster if init_model is not None else None,
        on_round=record,
        constraints=monotone_constraints(schema.metadata, pre.feature_names),
        sample=sample,
    )
    metadata = model_metadata(schema, info.fingerprint, params, split, rows, booster)
    metadata["parent"] = init_model.metadata.get("reference") if init_model is not None else None
    model = LightGBMModel(pre, booster, metadata)
    scores = score_side(model, plan, TEST)
    return TrainResult(
        model, plan.labels[TEST], scores, booster.best_iteration, rows, np.asarray(curve)
    )
