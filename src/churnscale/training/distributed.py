"""LightGBM on a Dask cluster with the split, Preprocessor and parameters of local training.

The trainer adds only the cluster client (never saved): each stored row group is read, split
and encoded on a worker (:mod:`churnscale.training.parts`), ``lightgbm.DaskLGBMClassifier``
trains data-parallel on those parts, and the result is a plain :class:`LightGBMModel` whose booster
comes from ``to_local()``, saved and served exactly like a local one.

Early stopping: LightGBM evaluates a validation set on each worker's own rows only, so workers
could disagree on when to stop. :class:`SharedEarlyStopping` has every worker score the whole
validation side (gathered once from the cluster) and so reach the same decision.
"""

from __future__ import annotations

import uuid
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

import dask.array as da
import lightgbm as lgb
import numpy as np
from distributed import Client, Future, get_client

from churnscale.data.schema import Schema
from churnscale.data.store import load_info
from churnscale.exceptions import ConfigError, TrainingError
from churnscale.features.names import lightgbm_names
from churnscale.features.preprocessor import Preprocessor
from churnscale.features.spec import monotone_constraints
from churnscale.model.lightgbm import LightGBMModel
from churnscale.training.cluster import (
    ClusterAddress,
    Watchdog,
    check_worker_memory,
    cluster_client,
    estimate_worker_bytes,
    local_memory_limit,
    worker_limits,
)
from churnscale.training.local import EARLY_STOP_FRACTION, TrainParams, TrainResult
from churnscale.training.parts import (
    PartRef,
    SideRule,
    binary_auc,
    encode_part,
    fit_part,
    join_parts,
    list_parts,
    part_counts,
    score_part,
    side_rule,
)
from churnscale.training.plan import TEST, TRAIN, VALID, SplitSpec

#: ``TrainParams.lightgbm_params()`` names that the scikit-learn interface spells differently.
SKLEARN_NAMES = {
    "feature_fraction": "colsample_bytree",
    "bagging_fraction": "subsample",
    "bagging_freq": "subsample_freq",
    "lambda_l2": "reg_lambda",
    "seed": "random_state",
}


class SharedEarlyStopping:
    """Early stopping on the whole validation side, identical on every worker."""

    order = 30
    before_iteration = False

    def __init__(self, dataset_name: str, *, rounds: int) -> None:
        self.dataset_name = dataset_name
        self.rounds = rounds
        self.best_auc = -1.0
        self.best_iteration = -1
        self._x: np.ndarray | None = None
        self._y = np.empty(0)
        self._raw = np.empty(0)

    def _load(self) -> np.ndarray:
        client: Any = get_client()
        parts = client.gather(client.get_dataset(self.dataset_name))
        self._y = np.concatenate(parts["y"])
        self._raw = np.zeros(self._y.size)
        x: np.ndarray = np.concatenate(parts["x"])
        return x

    def __call__(self, env: lgb.callback.CallbackEnv) -> None:
        if self._x is None:
            self._x = self._load()
        booster = env.model
        assert isinstance(booster, lgb.Booster)  # lgb.train, not lgb.cv
        self._raw += booster.predict(
            self._x, raw_score=True, start_iteration=env.iteration, num_iteration=1
        )
        auc = binary_auc(self._y, self._raw)
        if auc > self.best_auc:
            self.best_auc, self.best_iteration = auc, env.iteration
        last = env.iteration == env.end_iteration - 1
        if last or env.iteration - self.best_iteration >= self.rounds:
            result = [("valid", "auc", self.best_auc, True)]
            raise lgb.callback.EarlyStopException(self.best_iteration, result)


def _sklearn_params(
    params: TrainParams, *, time_out_minutes: int, constraints: list[int] | None
) -> dict[str, Any]:
    lgb_params = params.lightgbm_params(constraints)
    lgb_params.pop("num_threads", None)  # lightgbm.dask sets it from the worker's threads
    lgb_params.pop("metric", None)  # SharedEarlyStopping evaluates instead
    renamed = {SKLEARN_NAMES.get(k, k): v for k, v in lgb_params.items()}
    return {**renamed, "n_estimators": params.max_rounds, "time_out": time_out_minutes}


def _stack(futures: list[Future[Any]], counts: list[int], width: int | None) -> da.Array:
    from_delayed: Any = da.from_delayed
    concatenate: Any = da.concatenate
    blocks = [
        from_delayed(f, shape=(n, width) if width is not None else (n,), dtype=np.float32)
        for f, n in zip(futures, counts, strict=True)
    ]
    array: da.Array = concatenate(blocks, axis=0)
    return array


class DistributedRun:
    """One training run on a connected cluster: parts pinned to workers in a fixed order."""

    def __init__(self, client: Client, parts: list[PartRef], rule: SideRule) -> None:
        self.client: Any = cast(Any, client)
        self.parts = parts
        self.rule = rule
        # A worker with no part would have nothing to train on: use at most one per part.
        self.workers = sorted(self.client.nthreads())[: max(len(parts), 1)]
        self.watchdog = Watchdog(client)
        self.rule_f = self.client.scatter(rule, broadcast=True, hash=False)

    def _each(self, func: Any, items: list[Any], *args: Any) -> list[Future[Any]]:
        """``func(item, *args)`` for every item, item ``i`` on worker ``i mod n`` (like part i)."""
        n = len(self.workers)
        return [
            self.client.submit(func, item, *args, workers=[self.workers[i % n]], pure=False)
            for i, item in enumerate(items)
        ]

    def fit_preprocessor(self) -> Preprocessor:
        """Partial fits on the workers, merged here."""
        partials = self.watchdog.run(
            lambda: self.client.gather(self._each(fit_part, self.parts, self.rule_f))
        )
        pre = Preprocessor(self.rule.schema)
        for partial in partials:
            pre.merge(partial)
        return pre.finish()

    def train(
        self,
        pre: Preprocessor,
        params: TrainParams,
        time_out: int,
        constraints: list[int] | None = None,
        *,
        rounds: int | None = None,
    ) -> lgb.Booster:
        """Encode the parts, then boost with ``lightgbm.dask`` until early stopping
        (``constraints``: monotone directions per model input, as in local training), or
        exactly ``rounds`` rounds with no early-stopping set (a refit on every row)."""
        pre_f = self.client.scatter(pre, broadcast=True, hash=False)
        encoded = self._each(encode_part, self.parts, self.rule_f, pre_f)
        count_futures = self._each(part_counts, encoded)
        counts = self.watchdog.run(lambda: self.client.gather(count_futures))
        self.rows = _check_counts(counts, train_only=rounds is not None)
        # One array per worker and side, its parts in storage order: LightGBM then sees the
        # same rows in the same order on every run.
        n = len(self.workers)
        mine = [encoded[i::n] for i in range(n)]
        sides = {
            (side, what): self._each(join_parts, mine, side, what)
            for side in ((TRAIN,) if rounds is not None else (TRAIN, VALID))
            for what in ("x", "y")
        }
        rows = [sum(c[TRAIN][0] for c in counts[i::n]) for i in range(n)]
        encoded.clear()  # the joined arrays replace the parts
        mine.clear()
        name = f"churnscale-valid-{uuid.uuid4().hex}"
        if rounds is None:
            self.client.publish_dataset(**{name: {w: sides[(VALID, w)] for w in ("x", "y")}})
        try:
            width = len(pre.feature_names)
            x = _stack(sides[(TRAIN, "x")], rows, width)
            y = _stack(sides[(TRAIN, "y")], rows, None)
            sklearn_params = _sklearn_params(
                params, time_out_minutes=time_out, constraints=constraints
            )
            if rounds is not None:
                sklearn_params["n_estimators"] = rounds
            model = lgb.DaskLGBMClassifier(client=self.client, **sklearn_params)
            callbacks = (
                [SharedEarlyStopping(name, rounds=params.early_stopping_rounds)]
                if rounds is None
                else []
            )

            def fit() -> lgb.DaskLGBMClassifier:
                with warnings.catch_warnings(), self.client.as_current():
                    # lightgbm.dask always warns that the wrapper's n_jobs (default None) is
                    # ignored: it sets each worker's threads itself. Its wait() needs a
                    # current client.
                    warnings.filterwarnings("ignore", "Parameter n_jobs will be ignored")
                    return model.fit(
                        x,
                        y,
                        feature_name=lightgbm_names(pre.feature_names),
                        categorical_feature=pre.categorical_indices,
                        callbacks=callbacks,
                    )

            fitted = self.watchdog.run(fit)
        finally:
            if rounds is None:
                self.client.unpublish_dataset(name)
        booster = _plain_booster(fitted.to_local().booster_)
        if rounds is not None:
            booster.best_iteration = booster.current_iteration()
        return booster

    def score(self, pre: Preprocessor, booster: lgb.Booster) -> tuple[np.ndarray, np.ndarray]:
        """Labels and scores of the hold-out rows, in storage order."""
        text = booster.model_to_string(num_iteration=booster.best_iteration)
        pre_f = self.client.scatter(
            pre, broadcast=True, hash=False
        )  # held until the scores are back
        text_f = self.client.scatter(text, broadcast=True, hash=False)
        futures = self._each(score_part, self.parts, self.rule_f, pre_f, text_f)
        results = self.watchdog.run(lambda: self.client.gather(futures))
        return np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results])


def _plain_booster(trained: lgb.Booster) -> lgb.Booster:
    """A booster with no network state, keeping every tree and the best iteration."""
    booster = lgb.Booster(model_str=trained.model_to_string(num_iteration=-1))
    booster.best_iteration = trained.best_iteration
    booster.best_score = trained.best_score
    return booster


def _check_counts(
    counts: list[dict[int, tuple[int, int]]], *, train_only: bool = False
) -> dict[str, int]:
    rows: dict[str, int] = {}
    for name, side in (("train", TRAIN), ("valid", VALID), ("test", TEST)):
        total = sum(c[side][0] for c in counts)
        positives = sum(c[side][1] for c in counts)
        rows[name] = total
        if train_only and side != TRAIN:
            continue
        if total == 0 or positives in (0, total):
            label = "holdout" if side == TEST else name
            raise TrainingError(
                f"the {label} split has {total} rows and needs both classes; "
                "use more data or another --valid-fraction"
            )
    return rows


def train_distributed(
    dataset: Path,
    *,
    cluster: str,
    schema: Schema | None = None,
    split: SplitSpec | None = None,
    params: TrainParams | None = None,
    time_out_minutes: int = 5,
    memory_limit: str | int = "auto",
    refit_rounds: int | None = None,
    refit_after: bool = False,
) -> TrainResult:
    """Train on a stored dataset on the Dask cluster ``cluster`` (``local:N`` or an address).

    A lost worker ends the run with a :class:`TrainingError` within ``time_out_minutes``
    (LightGBM's network time-out, and a ``local:N`` scheduler's worker time-to-live, so a
    stopped worker counts as lost too); a run that would not fit in the workers' memory is refused
    before it starts. ``memory_limit`` applies to the workers of a ``local:N`` cluster.
    ``refit_rounds``: no evaluation; every row the split uses trains for exactly that many
    rounds (see :mod:`churnscale.training.refit`), and the result has no hold-out scores.
    ``refit_after``: a refit on every row follows this evaluation; the memory check covers it
    too (every row on the workers), so a cluster too small for it is refused before any work.
    """
    params = params or TrainParams()
    params.validate()
    if time_out_minutes < 1:
        raise ConfigError("time_out_minutes", expected="at least 1", received=time_out_minutes)
    split = split or SplitSpec(seed=params.seed)
    stored_schema, info = load_info(dataset)
    schema = schema or stored_schema
    refit = refit_rounds is not None
    early_stop = 0.0 if refit else EARLY_STOP_FRACTION
    rule = side_rule(dataset, schema, split, info, early_stop, all_rows=refit)
    parts = list_parts(dataset, info)
    address = ClusterAddress.parse(cluster)

    def check(limits: dict[str, int]) -> None:
        def need(holdout: float, early: float) -> int:
            return estimate_worker_bytes(
                rows=info.rows,
                features=len(schema.features),
                workers=len(limits),
                holdout_fraction=holdout,
                early_stop_fraction=early,
            )

        peak = need(0.0, 0.0) if refit else need(split.valid_fraction, early_stop)
        if refit_after:
            peak = max(peak, need(0.0, 0.0))
        check_worker_memory(peak, limits, rows=info.rows, features=len(schema.features))

    if address.local_workers is not None:  # refuse before starting any process
        limit = local_memory_limit(address.local_workers, memory_limit)
        check({f"local:{i}": limit for i in range(address.local_workers)})
    ttl = f"{time_out_minutes * 60}s"  # a stopped local worker is dropped at the time-out
    with cluster_client(cluster, memory_limit=memory_limit, worker_ttl=ttl) as client:
        limits = worker_limits(client)
        if not limits:
            raise TrainingError(f"the Dask cluster at {cluster} has no workers")
        check(limits)
        run = DistributedRun(client, parts, rule)
        pre = run.fit_preprocessor()
        constraints = monotone_constraints(schema.metadata, pre.feature_names)
        booster = run.train(pre, params, time_out_minutes, constraints, rounds=refit_rounds)
        y_holdout, scores = (np.empty(0), np.empty(0)) if refit else run.score(pre, booster)
        workers = len(run.workers)
    metadata = {
        "schema": schema.to_dict(),
        "data_fingerprint": info.fingerprint,
        "params": params.to_dict(),
        "split": asdict(split),
        "rows": run.rows,
        "best_iteration": booster.best_iteration,
        "parent": None,
        "trainer": {"kind": "lightgbm.dask", "workers": workers},
    }
    if "feature_spec" in schema.metadata:  # point-in-time features: the service rebuilds them
        metadata["feature_spec"] = schema.metadata["feature_spec"]
    model = LightGBMModel(pre, booster, metadata)
    return TrainResult(model, y_holdout, scores, booster.best_iteration, run.rows)
