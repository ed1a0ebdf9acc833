"""The served model learns from every row: evaluate first, then refit on all of them.

Evaluation stays honest: the hold-out (or the K folds of ``--cv``) judges models that never
saw those rows. The model that is saved, registered and served is then fitted once more on
every row the split could use (train, early-stopping and hold-out sides together; rows a time
window leaves unused, or an :class:`~churnscale.training.plan.Exclusion` names, stay out) for a
fixed number of boosting rounds carried over from the evaluated models: the mean of their
early-stopping rounds (the first round within ``ROUND_TOLERANCE`` AUC of the best), each scaled
by ``(all rows / its training rows) ** ROUNDS_EXPONENT`` (a larger set supports more rounds
before it overfits; both were measured, see docs/benchmarks.md). Parameters, Preprocessor
options and monotone constraints are the evaluated models'; the Preprocessor is fitted again
on all rows.

Memory is that of training: one streamed pass fits the Preprocessor and keeps LightGBM's bin
sample, the side (now every row, with no early-stopping set) is binned from the same
:class:`SideSequence`, and the read pages are handed back before the booster exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
from lightgbm.basic import _LIB, _safe_call  # type: ignore[attr-defined]

from churnscale.data.schema import Schema
from churnscale.data.store import load_info
from churnscale.exceptions import TrainingError
from churnscale.features.spec import monotone_constraints
from churnscale.model.lightgbm import LightGBMModel
from churnscale.training.local import (
    TrainParams,
    TrainResult,
    binned_train,
    data_params,
    model_metadata,
    scoring_booster,
)
from churnscale.training.plan import TEST, TRAIN, VALID, Exclusion, SplitPlan, SplitSpec, plan_split
from churnscale.training.sequence import bin_sample_indices, fit_with_bin_sample

#: Rounds carried over grow with the training set as ``(rows / evaluated rows) ** this``.
ROUNDS_EXPONENT = 1.0
#: The round carried over is the first whose early-stopping AUC is within this of the best:
#: the same AUC in fewer trees (measured, docs/benchmarks.md).
ROUND_TOLERANCE = 0.0005


@dataclass(frozen=True)
class Evaluated:
    """What one evaluated model hands to the refit: its best round and the rows it learned."""

    best_round: int
    train_rows: int

    @classmethod
    def of(cls, result: TrainResult, *, tolerance: float = ROUND_TOLERANCE) -> Evaluated:
        """From a training result: the first new round whose early-stopping AUC is within
        ``tolerance`` of the best (the best round where no curve was recorded, as on Dask,
        which trains no continued models)."""
        curve = result.valid_auc
        if curve.size:
            return cls(int(np.argmax(curve >= curve.max() - tolerance)) + 1, result.rows["train"])
        return cls(max(result.best_iteration, 1), result.rows["train"])


@dataclass(frozen=True)
class Refit:
    """How the served model was refitted: rounds, the rows it saw, and where both came from."""

    rounds: int
    rows: int
    evaluated: list[Evaluated] = field(default_factory=list)
    exponent: float = ROUNDS_EXPONENT

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: stored in the model's metadata as ``refit``."""
        return {
            "rows": self.rows,
            "all_rows": True,
            "rounds": self.rounds,
            "rounds_exponent": self.exponent,
            "evaluated_best_rounds": [e.best_round for e in self.evaluated],
            "evaluated_train_rows": [e.train_rows for e in self.evaluated],
        }


def refit_rounds(
    evaluated: Sequence[Evaluated], rows: int, *, exponent: float = ROUNDS_EXPONENT
) -> int:
    """Boosting rounds for a model on ``rows`` rows, from the evaluated models' best rounds."""
    if not evaluated:
        raise TrainingError("a refit needs at least one evaluated model")
    scaled = [e.best_round * (rows / max(e.train_rows, 1)) ** exponent for e in evaluated]
    return max(1, round(float(np.mean(scaled))))


def all_rows_plan(
    dataset: Path, schema: Schema, split: SplitSpec, *, exclude: Exclusion | None = None
) -> SplitPlan:
    """``split``'s plan with its train, early-stopping and hold-out rows all on TRAIN (each
    row group keeps its labels, so ``labels[TRAIN]`` is every used row's, in storage order)."""
    plan = plan_split(dataset, schema, split, exclude=exclude)
    for group in plan.groups:
        used = np.isin(group.sides, (TRAIN, VALID, TEST))
        group.sides = np.where(used, TRAIN, group.sides).astype(np.int8)
    return plan


def boost_rounds(
    train: lgb.Dataset,
    lgb_params: dict[str, Any],
    rounds: int,
    *,
    init_model: lgb.Booster | None = None,
) -> lgb.Booster:
    """``rounds`` boosting rounds on ``train`` with no early stopping (after ``init_model``'s
    trees, if given); stops early only when no tree can split any more."""
    try:
        booster = lgb.Booster(params=lgb_params, train_set=train)
        if init_model is not None:
            _safe_call(_LIB.LGBM_BoosterMerge(booster._handle, init_model._handle))
        for _ in range(rounds):
            if booster.update():
                break
    except lgb.basic.LightGBMError as exc:
        raise TrainingError(f"LightGBM failed: {exc}") from exc
    booster.best_iteration = booster.current_iteration()
    return booster


def refit_local(
    dataset: Path,
    *,
    rounds: int,
    schema: Schema | None = None,
    split: SplitSpec | None = None,
    params: TrainParams | None = None,
    init_model: LightGBMModel | None = None,
    exclude: Exclusion | None = None,
) -> tuple[LightGBMModel, int]:
    """A model boosted ``rounds`` rounds on every row of ``split`` (out of core, as
    :func:`~churnscale.training.local.train_local`); returns it and the rows it saw."""
    params = params or TrainParams()
    params.validate()
    split = split or SplitSpec(seed=params.seed)
    stored_schema, info = load_info(dataset)
    schema = schema or stored_schema
    plan = all_rows_plan(dataset, schema, split, exclude=exclude)
    rows = plan.count(TRAIN)
    labels = plan.labels[TRAIN]
    if labels.size == 0 or labels.min() == labels.max():
        raise TrainingError(f"the refit has {labels.size} rows and needs both classes")
    binning = data_params(params.lightgbm_params())
    sample = None
    if init_model is None:  # one pass fits the Preprocessor and keeps LightGBM's bin sample
        pre, sample = fit_with_bin_sample(plan, schema, bin_sample_indices(rows, binning))
    else:
        pre = init_model.preprocessor
    lgb_params = params.lightgbm_params(monotone_constraints(schema.metadata, pre.feature_names))
    parent = init_model.booster if init_model is not None else None
    try:  # binned and the read pages handed back before the booster, as in training
        train = binned_train(plan, pre, binning, init_model=parent, sample=sample)
    except lgb.basic.LightGBMError as exc:
        raise TrainingError(f"LightGBM failed: {exc}") from exc
    booster = scoring_booster(boost_rounds(train, lgb_params, rounds, init_model=parent))
    del train
    counts = {"train": rows, "valid": 0, "test": 0}
    metadata = model_metadata(schema, info.fingerprint, params, split, counts, booster)
    metadata["parent"] = init_model.metadata.get("reference") if init_model is not None else None
    return LightGBMModel(pre, booster, metadata), rows


def refit_all_rows(
    evaluated: Sequence[Evaluated],
    dataset: Path,
    *,
    schema: Schema | None = None,
    split: SplitSpec | None = None,
    params: TrainParams | None = None,
    init_model: LightGBMModel | None = None,
    exclude: Exclusion | None = None,
    cluster: str | None = None,
    time_out_minutes: int = 5,
) -> tuple[LightGBMModel, Refit]:
    """The served model: every row, rounds carried over from ``evaluated`` (one place for
    ``train``, ``tune``, Dask training and the Python API). On a Dask ``cluster`` the refit
    runs there, like the evaluated model."""
    split = split or SplitSpec(seed=(params or TrainParams()).seed)
    rows = _usable_rows(dataset, schema, split, exclude)
    rounds = refit_rounds(evaluated, rows)
    if cluster is not None:
        from churnscale.training.distributed import train_distributed

        result = train_distributed(
            dataset,
            cluster=cluster,
            schema=schema,
            split=split,
            params=params,
            time_out_minutes=time_out_minutes,
            refit_rounds=rounds,
        )
        model, rows = result.model, result.rows["train"]
    else:
        model, rows = refit_local(
            dataset,
            rounds=rounds,
            schema=schema,
            split=split,
            params=params,
            init_model=init_model,
            exclude=exclude,
        )
    refit = Refit(rounds, rows, list(evaluated))
    model.metadata["refit"] = refit.to_dict()
    return model, refit


def _usable_rows(
    dataset: Path, schema: Schema | None, split: SplitSpec, exclude: Exclusion | None
) -> int:
    """Rows the refit will see (cheap for a random split without exclusion: the row count)."""
    stored_schema, info = load_info(dataset)
    if split.kind == "random" and exclude is None:
        return info.rows
    plan = plan_split(dataset, schema or stored_schema, split, exclude=exclude)
    return sum(plan.count(side) for side in (TRAIN, VALID, TEST))


def served_summary(model: LightGBMModel | Any) -> dict[str, Any]:
    """Which rows the served model saw: all of them after a refit, else its training side."""
    refit = model.metadata.get("refit")
    if refit:
        return {"rows": refit["rows"], "all_rows": True, "rounds": refit["rounds"]}
    rows = model.metadata.get("rows", {})
    return {
        "rows": int(rows.get("train", 0)),
        "all_rows": False,
        "rounds": model.metadata.get("best_iteration"),
    }


def provenance(rows: dict[str, int], cv: int | None, model: LightGBMModel | Any) -> dict[str, Any]:
    """What ``train --json`` says about where its figures came from and what the served
    model saw (and, for ``--time-budget``, the ensemble)."""
    folds = f" and {cv} CV folds" if cv else ""
    return {
        "evaluation": {
            "rows": rows,
            "source": f"hold-out rows{folds}, scored by models that never saw them",
        },
        "served_model": served_summary(model),
        "time_budget": model.metadata.get("time_budget"),
    }


def report_provenance(rows: dict[str, int], model: LightGBMModel | Any) -> dict[str, str]:
    """The same, as lines of the HTML report's metadata table."""
    served = served_summary(model)
    refitted = " (refitted on every row)" if served["all_rows"] else ""
    return {
        "evaluated on": f"hold-out {rows['test']:,} rows, never seen by the evaluated model "
        f"(trained on {rows['train']:,}, early stopping on {rows['valid']:,})",
        "served model": f"{served['rows']:,} rows{refitted}, {served['rounds']} rounds",
    }
