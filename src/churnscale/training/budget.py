"""``--time-budget S``: search, then a weighted ensemble served as one LightGBM model.

Within ``S`` seconds (checked between fits; a fit never starts when the time its kind took
so far would overrun its share):

1. **Search** (half the budget): parameter sets, a fixed diverse portfolio first, then
   Optuna's TPE, each scored by K-fold CV on the rows *outside* the report's hold-out
   (an :class:`~churnscale.training.plan.Exclusion`, as in ``tune``), keeping every fold's
   out-of-fold scores and best round.
2. **Ensemble selection**: greedy forward selection with replacement (Caruana et al. 2004)
   over the candidates' out-of-fold raw scores, maximising ROC-AUC: weights = how often each
   candidate was picked.
3. **Evaluated ensemble**: the selected members trained on the rows outside the hold-out (fixed
   rounds: their CV best rounds scaled for the rows, as in a refit), merged into one booster
   and scored on the hold-out: the reported figures, from rows no search or fit ever read.
4. **Served ensemble**: the same members refitted on every row (with extra bagging seeds if
   the budget allows), merged into one LightGBM model text (:mod:`churnscale.training.ensemble`).
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
from churnscale.training.ensemble import Member, seeded, train_members
from churnscale.training.local import (
    TrainParams,
    TrainResult,
    fit_preprocessor,
    model_metadata,
    score_side,
    train_local,
)
from churnscale.training.parts import binary_auc
from churnscale.training.plan import TRAIN, VALID, Exclusion, SplitSpec, plan_split
from churnscale.training.refit import ROUNDS_EXPONENT, all_rows_plan

#: Parameter sets tried first (before TPE): varied capacity and learning rate.
PORTFOLIO: tuple[dict[str, Any], ...] = (
    {},
    {"learning_rate": 0.02, "num_leaves": 31, "min_child_samples": 20, "feature_fraction": 0.5},
    {"learning_rate": 0.03, "num_leaves": 7, "min_child_samples": 30, "lambda_l2": 10.0},
    {"learning_rate": 0.05, "num_leaves": 63, "min_child_samples": 40, "feature_fraction": 0.8},
    {"learning_rate": 0.02, "num_leaves": 4, "min_child_samples": 10, "feature_fraction": 0.9},
    {"learning_rate": 0.03, "num_leaves": 15, "min_child_samples": 100, "lambda_l2": 30.0},
)
SEARCH_SHARE = 0.5
ENSEMBLE_STEPS = 25
MAX_SEEDS = 3


@dataclass
class Candidate:
    """One searched parameter set: its CV AUC, out-of-fold raw scores and best rounds."""

    params: TrainParams
    auc: float
    oof: np.ndarray
    best_rounds: list[int]
    train_rows: list[int]
    seconds: float

    def rounds_for(self, rows: int) -> int:
        """Fixed rounds for a fit on ``rows`` rows (CV best rounds scaled as in a refit)."""
        scaled = [
            b * (rows / max(n, 1)) ** ROUNDS_EXPONENT
            for b, n in zip(self.best_rounds, self.train_rows, strict=True)
        ]
        return max(1, round(float(np.mean(scaled))))


@dataclass
class BudgetOutcome:
    """The evaluated ensemble's hold-out result and the served (all-rows) model."""

    evaluated: TrainResult
    served: LightGBMModel
    summary: dict[str, Any]


class Clock:
    """Seconds left of the budget."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


def _evaluate(
    dataset: Path, schema: Schema, params: TrainParams, folds: int, exclude: Exclusion, seed: int
) -> tuple[Candidate, np.ndarray]:
    """``params`` scored by ``folds``-fold CV outside ``exclude``; also the out-of-fold labels."""
    start = time.monotonic()
    split = SplitSpec(seed=seed)
    results = [
        train_local(
            dataset,
            schema=schema,
            split=split,
            params=params,
            folds=folds,
            fold=k,
            exclude=exclude,
        )
        for k in range(folds)
    ]
    y = np.concatenate([r.y_holdout for r in results])
    oof = np.concatenate([logit(np.clip(r.scores, 1e-12, 1 - 1e-12)) for r in results])
    candidate = Candidate(
        params,
        binary_auc(y, oof),
        oof,
        [r.best_iteration for r in results],
        [r.rows["train"] for r in results],
        time.monotonic() - start,
    )
    return candidate, y


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
) -> tuple[list[Candidate], np.ndarray]:
    """Portfolio, then TPE, until the search's share of the budget is spent."""
    import optuna

    from churnscale.training.search import suggest_params

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    stop = clock.end - (1.0 - SEARCH_SHARE) * seconds
    candidates: list[Candidate] = []
    y = np.empty(0)
    while True:
        slowest = max((c.seconds for c in candidates), default=0.0)
        if candidates and time.monotonic() + slowest > stop:
            break
        number = len(candidates)
        if number < len(PORTFOLIO):
            params = replace(base, **PORTFOLIO[number])
            trial = None
        else:
            trial = study.ask()
            params = replace(suggest_params(trial, base), class_weight="none")
        candidate, y = _evaluate(dataset, schema, params, folds, exclude, seed + 1)
        candidates.append(candidate)
        if trial is not None:
            study.tell(trial, candidate.auc)
    return candidates, y


def select(
    candidates: list[Candidate], y: np.ndarray, steps: int = ENSEMBLE_STEPS
) -> dict[int, int]:
    """Greedy forward selection with replacement: candidate index → times picked."""
    picked: dict[int, int] = {}
    total = np.zeros_like(candidates[0].oof)
    best_so_far = -1.0
    for step in range(1, steps + 1):
        aucs = [binary_auc(y, (total + c.oof) / step) for c in candidates]
        choice = int(np.argmax(aucs))
        if aucs[choice] < best_so_far - 1e-9 and step > 1:
            break
        best_so_far = max(best_so_far, aucs[choice])
        picked[choice] = picked.get(choice, 0) + 1
        total = total + candidates[choice].oof
    return picked


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


def train_with_budget(
    dataset: Path,
    seconds: float,
    *,
    schema: Schema | None = None,
    split: SplitSpec | None = None,
    base: TrainParams | None = None,
    folds: int = 3,
    on_stage: Callable[[str], None] | None = None,
) -> BudgetOutcome:
    """Search, select, evaluate on the hold-out and refit on every row within ``seconds``."""
    if seconds < 10:
        raise ConfigError("--time-budget", expected="at least 10 seconds", received=seconds)
    base = base or TrainParams()
    split = split or SplitSpec(seed=base.seed)
    schema = schema or load_info(dataset)[0]
    clock = Clock(seconds)
    holdout = Exclusion.holdout_of(split)
    note = on_stage or (lambda _s: None)
    note("search")
    candidates, y = search(
        dataset,
        schema,
        base,
        clock,
        seconds=seconds,
        folds=folds,
        exclude=holdout,
        seed=split.seed,
    )
    picked = select(candidates, y)
    steps = sum(picked.values())
    outer_rows = int(y.size)
    members = [
        Member(candidates[i].params, candidates[i].rounds_for(outer_rows), n / steps)
        for i, n in sorted(picked.items())
    ]
    note("evaluate")
    start = time.monotonic()
    evaluated, fit_rows = _fit(dataset, schema, split, members, holdout)
    eval_seconds = time.monotonic() - start
    plan = plan_split(dataset, schema, split)  # the hold-out on VALID, as train_local's is
    y_holdout, scores = plan.labels[VALID], score_side(evaluated, plan, VALID)
    note("refit")
    all_rows = sum(plan.count(side) for side in (TRAIN, VALID))
    seeds = max(1, min(MAX_SEEDS, int(clock.left() / max(eval_seconds * 1.3, 1e-3))))
    scale = (all_rows / fit_rows) ** ROUNDS_EXPONENT
    grown = [replace(m, rounds=max(1, round(m.rounds * scale))) for m in members]
    served, rows = _fit(dataset, schema, split, seeded(grown, seeds), None)
    trees = served.booster.num_trees()
    served.metadata["refit"] = {"rows": rows, "all_rows": True, "rounds": trees}
    summary: dict[str, Any] = {
        "time_budget_s": seconds,
        "candidates": len(candidates),
        "best_candidate_cv_auc": max(c.auc for c in candidates),
        "ensemble_oof_auc": binary_auc(
            y, np.sum([candidates[i].oof * n for i, n in picked.items()], axis=0)
        ),
        "members": len(grown) * seeds,
        "seeds": seeds,
        "trees": trees,
        "seconds": seconds - clock.left(),
    }
    served.metadata["time_budget"] = summary
    summary["search"] = [
        {"params": asdict(c.params), "cv_auc": c.auc, "seconds": c.seconds} for c in candidates
    ]
    counts = {"train": fit_rows, "valid": 0, "test": int(y_holdout.size)}
    result = TrainResult(evaluated, y_holdout, scores, evaluated.booster.num_trees(), counts)
    return BudgetOutcome(result, served, summary)
