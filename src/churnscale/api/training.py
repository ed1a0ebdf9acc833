"""``churnscale.train``: a model from data, as ``churnscale train`` makes it.

The same path as the CLI, because the CLI is this function with flags: the data is stored (a
table in memory is ingested into a temporary dataset), split by hashed id (or time), the
Preprocessor fitted in one pass, LightGBM trained with early stopping on a slice of the
training side, judged on the hold-out (``cv=K``: K folds first, mean ± std), refitted on every
row, reported, and registered in MLflow when ``register=True``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from churnscale.api.datasets import Progress, stored
from churnscale.api.inputs import Data, bundle_out, schema_inputs
from churnscale.api.models import ChurnModel
from churnscale.config import Settings, load_settings
from churnscale.data.schema import Schema
from churnscale.exceptions import ConfigError, TrainingError

if TYPE_CHECKING:
    from churnscale.training.local import TrainParams
    from churnscale.training.plan import SplitSpec
    from churnscale.training.recording import TrainOutcome

#: Called with (stage, round, validation AUC) while boosting; stage names the fold or "final".
RoundProgress = Callable[[str, int, float], None]


@dataclass(frozen=True)
class TrainOptions:
    """How :func:`churnscale.train` reads, splits, trains and records (its keyword arguments,
    less the LightGBM parameters; ``churnscale train``'s flags)."""

    target: str | None = None
    id: str | None = None
    positive_label: str | None = None
    drop: Sequence[str] = ()
    schema: Schema | str | os.PathLike[str] | None = None
    time_column: str | None = None
    split: Literal["random", "time"] = "random"
    valid_fraction: float = 0.2
    cv: int | None = None
    refit: bool = True
    time_budget: float | None = None
    init_model: str | None = None
    cluster: str | None = None
    time_out: int = 5
    model: Literal["lightgbm", "mlp"] = "lightgbm"
    workers: int = 1
    mlp: Mapping[str, Any] = field(default_factory=dict)
    name: str = "churn"
    experiment: str = "churnscale"
    register: bool = False
    out: str | os.PathLike[str] | None = None
    report: str | os.PathLike[str] | None = None
    contact_cost: float = 1.0
    retention_value: float = 10.0
    success_rate: float = 1.0


def train_params(params: Mapping[str, Any], *, source: str = "params") -> TrainParams:
    """LightGBM parameters from keyword arguments (fields of ``TrainParams``; an unknown one
    is a :class:`ConfigError` listing the known ones)."""
    from churnscale.training.local import TrainParams

    known = {f.name for f in fields(TrainParams)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ConfigError(source, expected=f"fields of {sorted(known)}", received=unknown)
    return TrainParams(**params)


def _split(options: TrainOptions, dataset: Path, seed: int) -> SplitSpec:
    from churnscale.data.store import load_info
    from churnscale.training.plan import SplitSpec, time_split_for

    if options.split not in ("random", "time"):
        raise ConfigError("split", expected="random or time", received=options.split)
    if options.split == "random":
        return SplitSpec(valid_fraction=options.valid_fraction, seed=seed)
    return time_split_for(  # an as-of dataset holds out its latest date whole
        load_info(dataset)[0],
        time_column=options.time_column,
        valid_fraction=options.valid_fraction,
        seed=seed,
    )


@contextmanager
def prepared(
    data: Data,
    options: TrainOptions,
    seed: int,
    *,
    settings: Settings,
    on_progress: Progress | None = None,
) -> Iterator[tuple[Path, SplitSpec]]:
    """``data`` as a stored dataset (read with ``options``' schema hints) and the split
    ``options`` asks for: what every training job starts from."""
    hints, schema = schema_inputs(
        target=options.target,
        id=options.id,
        positive_label=options.positive_label,
        drop=options.drop,
        schema=options.schema,
        time_column=options.time_column,
    )
    with stored(data, settings=settings, hints=hints, schema=schema, on_progress=on_progress) as ds:
        yield ds, _split(options, ds, seed)


def run_training(
    data: Data,
    options: TrainOptions,
    params: TrainParams,
    *,
    settings: Settings,
    on_round: RoundProgress | None = None,
    on_progress: Progress | None = None,
) -> TrainOutcome | None:
    """Train, assess, report and record one model of ``data`` (what ``churnscale train``
    runs); None on a torchrun rank other than 0, which trains its shard only."""
    from churnscale.evaluation.assessment import ProfitSettings
    from churnscale.training.job import TrainJob

    with ExitStack() as stack:
        dataset, split = stack.enter_context(
            prepared(data, options, params.seed, settings=settings, on_progress=on_progress)
        )
        out = bundle_out(stack, options.out, register=options.register, settings=settings)
        job = TrainJob(
            dataset=dataset,
            params=params,
            split=split,
            cv=options.cv,
            cluster=options.cluster,
            time_out_minutes=options.time_out,
            init_model=options.init_model,
            name=options.name,
            experiment=options.experiment,
            register=options.register,
            out=out,
            report=Path(options.report) if options.report is not None else None,
            profit=ProfitSettings(
                options.contact_cost, options.retention_value, options.success_rate
            ),
            model=options.model,
            workers=options.workers,
            mlp=dict(options.mlp),
            refit=options.refit,
            time_budget=options.time_budget,
        )
        if options.model == "mlp":
            from churnscale.neural.job import run_mlp_training

            return run_mlp_training(job, settings)
        from churnscale.training.job import run_training as run_lightgbm

        return run_lightgbm(job, settings, on_round=on_round)


def train(
    data: Data,
    *,
    target: str | None = None,
    id: str | None = None,
    positive_label: str | None = None,
    drop: Sequence[str] = (),
    schema: Schema | str | os.PathLike[str] | None = None,
    time_column: str | None = None,
    split: Literal["random", "time"] = "random",
    valid_fraction: float = 0.2,
    cv: int | None = None,
    refit: bool = True,
    time_budget: float | None = None,
    init_model: str | None = None,
    cluster: str | None = None,
    register: bool = False,
    name: str = "churn",
    out: str | os.PathLike[str] | None = None,
    report: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
    **params: Any,
) -> ChurnModel:
    """Train a churn model on ``data`` as ``churnscale train`` does, and return it.

    ``data``: a pandas or polars DataFrame, a pyarrow Table, a file, directory, glob or
    ``s3://`` path, or a dataset made by :func:`churnscale.ingest`. Column roles are inferred
    unless given (``target``, ``id``, ``positive_label``, ``drop``, ``time_column``, or a
    whole ``schema``). ``split="time"`` holds out the latest rows (of ``time_column``, or the
    latest as-of date of a point-in-time dataset); ``cv=5`` first trains 5 folds and reports
    their mean ± std. The returned model is refitted on every row (``refit=False``: the
    evaluated one); its hold-out figures are in ``model.report``. ``register=True`` records
    an MLflow run and registers the model as a new version of ``name``; ``out`` also keeps the
    bundle there; ``report`` writes the HTML report there (else under the churnscale home).
    ``**params``: LightGBM parameters, fields of ``TrainParams`` (``learning_rate``,
    ``num_leaves``, ``max_rounds``, ``early_stopping_rounds``, ``class_weight``, ``seed``,
    ``threads``, ...). ``init_model`` continues training a model (a reference or bundle);
    ``cluster`` trains on Dask (``local:N`` or a scheduler address); ``time_budget`` (seconds)
    searches and serves a merged ensemble.

    >>> import churnscale
    >>> model = churnscale.train(
    ...     churnscale.generate(rows=2_000, seed=1), target="churned", cv=3, max_rounds=50
    ... )
    >>> sorted(model.summary()["cv"])[:2]
    ['best_profit', 'brier']
    >>> model.report.metrics["roc_auc"] > 0.6
    True
    """
    options = TrainOptions(
        target=target,
        id=id,
        positive_label=positive_label,
        drop=drop,
        schema=schema,
        time_column=time_column,
        split=split,
        valid_fraction=valid_fraction,
        cv=cv,
        refit=refit,
        time_budget=time_budget,
        init_model=init_model,
        cluster=cluster,
        register=register,
        name=name,
        out=out,
        report=report,
    )
    settings = settings or load_settings()
    outcome = run_training(data, options, train_params(params), settings=settings)
    if outcome is None:  # pragma: no cover - only --model mlp under torchrun gets here
        raise TrainingError("a torchrun rank other than 0 trains its shard; rank 0 has the model")
    return ChurnModel(outcome.model, training=outcome)
