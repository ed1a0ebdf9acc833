"""``--time-budget S``: search, then an ensemble served as one LightGBM model, within ``S``.

The preset itself takes ``S`` less ``OUTSIDE_SHARE`` (what ``train`` does around it):

1. **Search** (until ``SEARCH_SHARE`` of the budget, or earlier if the fits after it would
   not fit in what is left): the defaults first, then a fixed diverse portfolio, then
   Optuna's TPE, each scored by K-fold CV (5) on the rows *outside* the report's hold-out
   (an :class:`~churnscale.training.plan.Exclusion`, as in ``tune``), keeping every fold's
   out-of-fold scores, best round and the measured cost a row and round. A candidate still
   boosting at that point is cut off (a boosting callback) and dropped.
2. **Choice** (:func:`choose`): the top ``TOP`` candidates by CV AUC on a random half of the
   out-of-fold rows (the only rows the search ranks by) averaged with equal weights, served
   only if that blend's AUC on the other half beats the defaults' there by ``MARGIN`` and by
   ``SIGNIFICANCE`` bootstrap standard errors; otherwise the defaults alone (bagged). No
   weights are fitted to the out-of-fold scores (greedy selection fitted their noise and
   served worse models than the defaults: docs/benchmarks.md).
3. **Evaluated ensemble**: the chosen members trained on the rows outside the hold-out (fixed
   rounds: their CV best rounds scaled for the rows, as in a refit), merged into one booster
   and scored on the hold-out: the reported figures, from rows no search or fit ever read.
4. **Served ensemble**: the same members refitted on every row, with as many bagging seeds
   (1 to ``MAX_SEEDS``) as the time left allows by the evaluated fit's measured cost, merged
   into one LightGBM model text (:mod:`churnscale.training.ensemble`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from scipy.special import logit

from churnscale.data.schema import Schema
from churnscale.data.store import load_info
from churnscale.exceptions import ConfigError
from churnscale.features.spec import monotone_constraints
from churnscale.model.lightgbm import LightGBMModel
from churnscale.training.blend import TOP, choose, fold_auc, judged_gain, selection_half
from churnscale.training.ensemble import Member, seeded, train_members
from churnscale.training.local import (
    TrainParams,
    TrainResult,
    fit_preprocessor,
    model_metadata,
    score_side,
    train_local,
)
from churnscale.training.plan import TRAIN, VALID, Exclusion, SplitSpec, plan_split
from churnscale.training.refit import ROUNDS_EXPONENT, all_rows_plan

#: Parameter sets tried first (before TPE): varied capacity and learning rate. The first, the
#: defaults, is always scored: it is the fallback that the ensemble must beat.
PORTFOLIO: tuple[dict[str, Any], ...] = (
    {},
    {"learning_rate": 0.02, "num_leaves": 31, "min_child_samples": 20, "feature_fraction": 0.5},
    {"learning_rate": 0.03, "num_leaves": 7, "min_child_samples": 30, "lambda_l2": 10.0},
    {"learning_rate": 0.05, "num_leaves": 63, "min_child_samples": 40, "feature_fraction": 0.8},
    {"learning_rate": 0.02, "num_leaves": 4, "min_child_samples": 10, "feature_fraction": 0.9},
    {"learning_rate": 0.03, "num_leaves": 15, "min_child_samples": 100, "lambda_l2": 30.0},
)
#: Share of the budget left to what ``train`` does around the preset (start-up, reading the
#: data, the report's assessment, saving): measured 5-10% on 2 shared cores.
OUTSIDE_SHARE = 0.1
#: Share of the budget after which no new candidate is scored (the rest: fits and seeds).
SEARCH_SHARE = 0.6
MAX_SEEDS = 4
#: Fit times are estimated from the search's measured cost per row and round, times this.
SAFETY = 1.2


class OutOfTime(Exception):
    """Raised from a boosting callback when a candidate's deadline passes."""


@dataclass
class Candidate:
    """One searched parameter set: its CV AUC, out-of-fold raw scores, best rounds and cost."""

    params: TrainParams
    auc: float
    oof: np.ndarray
    best_rounds: list[int]
    train_rows: list[int]
    seconds: float
    #: Measured seconds a row and a boosting round (the search's cost, preprocessing included).
    row_round_s: float = 0.0

    def rounds_for(self, rows: int) -> int:
        """Fixed rounds for a fit on ``rows`` rows (CV best rounds scaled as in a refit)."""
        scaled = [
            b * (rows / max(n, 1)) ** ROUNDS_EXPONENT
            for b, n in zip(self.best_rounds, self.train_rows, strict=True)
        ]
        return max(1, round(float(np.mean(scaled))))

    def ranked_on(self, y: np.ndarray, half: np.ndarray, folds: np.ndarray) -> Candidate:
        """Itself with ``auc`` the out-of-fold AUC on the rows of ``half`` only (the rows that
        rank candidates; the others judge the choice, :func:`choose`)."""
        self.auc = fold_auc(y[half], self.oof[half], folds[half])
        return self

    def fit_seconds(self, rows: int) -> float:
        """Estimated seconds of one fit of ``rounds_for(rows)`` rounds on ``rows`` rows."""
        return SAFETY * self.row_round_s * rows * self.rounds_for(rows)


@dataclass
class BudgetOutcome:
    """The evaluated ensemble's hold-out result and the served (all-rows) model."""

    evaluated: TrainResult
    served: LightGBMModel
    summary: dict[str, Any]


class Clock:
    """Seconds left of the budget."""

    def __init__(self, seconds: float) -> None:
        self.start = time.monotonic()
        self.end = self.start + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


def _deadline_callback(deadline: float | None) -> Callable[[int, float], None] | None:
    if deadline is None:
        return None

    def check(_round: int, _auc: float) -> None:
        if time.monotonic() > deadline:
            raise OutOfTime

    return check


def _evaluate(
    dataset: Path,
    schema: Schema,
    params: TrainParams,
    folds: int,
    exclude: Exclusion,
    seed: int,
    deadline: float | None = None,
) -> tuple[Candidate, np.ndarray, np.ndarray]:
    """``params`` scored by ``folds``-fold CV outside ``exclude``; also the out-of-fold labels.
    Raises :class:`OutOfTime` if boosting runs past ``deadline``."""
    start = time.monotonic()
    split = SplitSpec(seed=seed)
    on_round = _deadline_callback(deadline)
    results = [
        train_local(
            dataset,
            schema=schema,
            split=split,
            params=params,
            folds=folds,
            fold=k,
            exclude=exclude,
            on_round=on_round,
        )
        for k in range(folds)
    ]
    seconds = time.monotonic() - start
    y = np.concatenate([r.y_holdout for r in results])
    fold_ids = np.concatenate([np.full(r.y_holdout.size, k) for k, r in enumerate(results)])
    oof = np.concatenate([logit(np.clip(r.scores, 1e-12, 1 - 1e-12)) for r in results])
    work = sum(r.rows["train"] * max(r.valid_auc.size, r.best_iteration) for r in results)
    candidate = Candidate(
        params,
        fold_auc(y, oof, fold_ids),
        oof,
        [r.best_iteration for r in results],
        [r.rows["train"] for r in results],
        seconds,
        seconds / max(work, 1),
    )
    return candidate, y, fold_ids


def _final_cost(candidates: list[Candidate], outer_rows: int, all_rows: int) -> float:
    """Estimated seconds of the fits after the search (evaluated + one served seed) for the
    ``TOP`` costliest candidates so far: what the search must leave."""
    costs = sorted(
        (c.fit_seconds(outer_rows) + c.fit_seconds(all_rows) for c in candidates), reverse=True
    )
    return sum(costs[:TOP]) + 2.0


def search(
    dataset: Path,
    schema: Schema,
    base: TrainParams,
    clock: Clock,
    *,
    seconds: float,
    folds: int,
    exclude: Exclusion,
    seed: int,
    all_rows: int,
) -> tuple[list[Candidate], np.ndarray, np.ndarray, np.ndarray]:
    """Portfolio, then TPE, until the search's share of the budget is spent or the fits after
    it would not fit in what is left. A candidate is cut off (and dropped) at that point; the
    first, the defaults, always completes."""
    import optuna

    from churnscale.training.search import suggest_params

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    share_end = clock.start + SEARCH_SHARE * (clock.end - clock.start)
    candidate, y, fold_ids = _evaluate(dataset, schema, replace(base), folds, exclude, seed + 1)
    half = selection_half(y, seed)
    candidates = [candidate.ranked_on(y, half, fold_ids)]
    outer_rows = int(y.size)
    while True:
        stop = min(share_end, clock.end - _final_cost(candidates, outer_rows, all_rows))
        slowest = max(c.seconds for c in candidates)
        if time.monotonic() + 0.5 * slowest > stop:
            break
        number = len(candidates)
        if number < len(PORTFOLIO):
            params, trial = replace(base, **PORTFOLIO[number]), None
        else:
            trial = study.ask()
            params = replace(suggest_params(trial, base), class_weight="none")
        try:
            candidate, _, _ = _evaluate(dataset, schema, params, folds, exclude, seed + 1, stop)
        except OutOfTime:
            break
        candidates.append(candidate.ranked_on(y, half, fold_ids))
        if trial is not None:
            study.tell(trial, candidate.auc)
    return candidates, y, half, fold_ids


def _fit(
    dataset: Path,
    schema: Schema,
    split: SplitSpec,
    members: list[Member],
    exclude: Exclusion | None,
) -> tuple[LightGBMModel, int]:
    """The members trained on every row of ``split`` but ``exclude``'s, merged; and the rows."""
    plan = all_rows_plan(dataset, schema, split, exclude=exclude)
    rows = plan.count(TRAIN)
    pre = fit_preprocessor(plan, schema)
    constraints = monotone_constraints(schema.metadata, pre.feature_names)
    booster, grown = train_members(plan, pre, members, constraints)
    _, info = load_info(dataset)
    counts = {"train": rows, "valid": 0, "test": 0}
    metadata = model_metadata(schema, info.fingerprint, members[0].params, split, counts, booster)
    metadata["ensemble"] = [m.to_dict() for m in grown]
    return LightGBMModel(pre, booster, metadata), rows


class BudgetFlags(Protocol):
    """The flags of a training job that ``--time-budget`` must check (a ``TrainJob``)."""

    @property
    def time_budget(self) -> float | None: ...
    @property
    def cv(self) -> int | None: ...
    @property
    def cluster(self) -> str | None: ...
    @property
    def init_model(self) -> str | None: ...
    @property
    def split(self) -> SplitSpec: ...
    @property
    def model(self) -> str: ...
    @property
    def refit(self) -> bool: ...


def check_flags(job: BudgetFlags) -> None:
    """``--time-budget`` searches on its own hold-out split: refuse what it cannot combine."""
    seconds = job.time_budget or 0.0
    if seconds < 10:
        raise ConfigError("--time-budget", expected="at least 10 seconds", received=seconds)
    for flag, value in (
        ("--cv", job.cv),
        ("--cluster", job.cluster),
        ("--init-model", job.init_model),
    ):
        if value is not None:
            raise ConfigError(flag, expected="no --time-budget", received=value)
    if job.split.kind != "random":
        raise ConfigError("--split", expected="random with --time-budget", received=job.split.kind)
    if job.model != "lightgbm" or not job.refit:
        raise ConfigError("--time-budget", expected="LightGBM with refit", received=job.model)


def _seeds(eval_seconds: float, rows_ratio: float, left: float) -> int:
    """Bagging seeds of the served fit that the time left allows (1 to ``MAX_SEEDS``): a seed
    costs the evaluated fit's measured seconds times ``rows_ratio ** 2`` (more rows, and
    rounds scaled with them), with ``SAFETY``."""
    per_seed = SAFETY * eval_seconds * rows_ratio**2
    return max(1, min(MAX_SEEDS, int(left / max(per_seed, 1e-3))))


def train_with_budget(
    dataset: Path,
    seconds: float,
    *,
    schema: Schema | None = None,
    split: SplitSpec | None = None,
    base: TrainParams | None = None,
    folds: int = 5,
    on_stage: Callable[[str], None] | None = None,
) -> BudgetOutcome:
    """Search, choose, evaluate on the hold-out and refit on every row within ``seconds``."""
    if seconds < 10:
        raise ConfigError("--time-budget", expected="at least 10 seconds", received=seconds)
    base = base or TrainParams()
    split = split or SplitSpec(seed=base.seed)
    schema = schema or load_info(dataset)[0]
    clock = Clock(seconds * (1.0 - OUTSIDE_SHARE))
    holdout = Exclusion.holdout_of(split)
    plan = plan_split(dataset, schema, split)  # the hold-out on VALID, as train_local's is
    all_rows = sum(plan.count(side) for side in (TRAIN, VALID))
    note = on_stage or (lambda _s: None)
    note("search")
    candidates, y, half, fold_ids = search(
        dataset,
        schema,
        base,
        clock,
        seconds=seconds,
        folds=folds,
        exclude=holdout,
        seed=split.seed,
        all_rows=all_rows,
    )
    chosen = choose(candidates, y, half, fold_ids)
    outer_rows = int(y.size)
    picked = [candidates[i] for i in chosen]
    members = [Member(c.params, c.rounds_for(outer_rows), 1.0 / len(picked)) for c in picked]
    note("evaluate")
    start = time.monotonic()
    evaluated, fit_rows = _fit(dataset, schema, split, members, holdout)
    eval_seconds = time.monotonic() - start
    y_holdout, scores = plan.labels[VALID], score_side(evaluated, plan, VALID)
    note("refit")
    seeds = _seeds(eval_seconds, all_rows / fit_rows, clock.left())
    grown = [
        replace(m, rounds=c.rounds_for(all_rows)) for m, c in zip(members, picked, strict=True)
    ]
    served, rows = _fit(dataset, schema, split, seeded(grown, seeds), None)
    trees = served.booster.num_trees()
    served.metadata["refit"] = {"rows": rows, "all_rows": True, "rounds": trees}
    defaults = candidates[0]
    top = sorted(candidates, key=lambda c: -c.auc)[:TOP]
    blend = np.mean([c.oof for c in top], axis=0)
    summary: dict[str, Any] = {
        "time_budget_s": seconds,
        "candidates": len(candidates),
        "search_rows": outer_rows,
        "ranking_half_auc": {"defaults": defaults.auc, "best": max(c.auc for c in candidates)},
        "judging_half_auc": {
            "defaults": fold_auc(y[~half], defaults.oof[~half], fold_ids[~half]),
            "blend_gain_and_se": judged_gain(
                y[~half], blend[~half], defaults.oof[~half], fold_ids[~half]
            ),
        },
        "chosen": chosen,
        "members": len(grown) * seeds,
        "seeds": seeds,
        "trees": trees,
        "seconds": time.monotonic() - clock.start,
    }
    served.metadata["time_budget"] = summary
    summary["search"] = [
        {"params": asdict(c.params), "cv_auc": c.auc, "seconds": c.seconds} for c in candidates
    ]
    counts = {"train": fit_rows, "valid": 0, "test": int(y_holdout.size)}
    result = TrainResult(evaluated, y_holdout, scores, evaluated.booster.num_trees(), counts)
    return BudgetOutcome(result, served, summary)
