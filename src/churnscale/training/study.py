"""A tuning study: its settings, its storage, and running its trials here or on a Dask cluster.

The study (TPE sampler, median pruner) lives in an RDB storage, by default the SQLite file
``<home>/optuna.db``, so a second run with the same study name adds trials to it. Trials run
one after another in this process, or as tasks on a Dask cluster (``local:N`` or a scheduler
address) whose workers open the same storage themselves.
"""

from __future__ import annotations

import math
import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from churnscale.config import Settings
from churnscale.data.store import load_info
from churnscale.exceptions import ConfigError, TrainingError
from churnscale.training.cluster import ClusterAddress
from churnscale.training.local import EARLY_STOP_FRACTION, TrainParams, check_sides
from churnscale.training.plan import TEST, Exclusion, SplitSpec, plan_split
from churnscale.training.search import (
    INNER_SEED_OFFSET,
    TrialRecord,
    TrialSpec,
    open_storage,
    run_trial,
)

_STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: The fields of ``TrainParams`` the search tunes (the defaults are enqueued as trial 0).
TUNED = (
    "learning_rate",
    "num_leaves",
    "min_child_samples",
    "feature_fraction",
    "bagging_fraction",
    "lambda_l2",
    "class_weight",
)


@dataclass(frozen=True)
class TuneSpec:
    """How to search: trial count, CV folds, where trials run, what the final model is called."""

    trials: int
    cv: int = 5
    seed: int = 0
    study: str | None = None
    timeout: float | None = None
    cluster: str | None = None
    jobs: int = 1
    storage: str | None = None
    valid_fraction: float = 0.2
    model_name: str = "churn"
    experiment: str = "churnscale-tune"
    base: TrainParams = field(default_factory=TrainParams)
    #: Refit the registered model on every row (hold-out included) after its hold-out AUC
    #: is measured; ``--no-refit`` registers the model trained without the hold-out.
    refit: bool = True

    def validate(self) -> None:
        """Refuse flags that cannot work, naming the flag."""
        checks: list[tuple[str, bool, str, object]] = [
            ("--trials", self.trials >= 1, "at least 1", self.trials),
            ("--cv", 2 <= self.cv <= 20, "2 to 20 folds", self.cv),
            ("--jobs", self.jobs >= 1, "at least 1", self.jobs),
            ("--timeout", self.timeout is None or self.timeout > 0, "seconds > 0", self.timeout),
            (
                "--valid-fraction",
                0 < self.valid_fraction < 1,
                "a number in (0, 1)",
                self.valid_fraction,
            ),
            (
                "--study",
                self.study is None or bool(_STUDY_NAME.match(self.study)),
                "a name of letters, digits, '_', '.', '-' (at most 64)",
                self.study,
            ),
        ]
        for name, ok, expected, received in checks:
            if not ok:
                raise ConfigError(name, expected=expected, received=received)
        if self.cluster is not None and self.jobs > 1:
            raise ConfigError(
                "--jobs", expected="--jobs or --cluster, not both", received=self.jobs
            )
        if self.cluster is not None:
            ClusterAddress.parse(self.cluster)
        self.base.validate()
        if self.base.max_rounds <= 50:
            raise ConfigError(
                "--max-rounds", expected="more than 50", received=self.base.max_rounds
            )


def storage_url(settings: Settings, storage: str | None = None) -> str:
    """The study storage: ``storage`` (PostgreSQL through psycopg2), or the SQLite file
    ``<home>/optuna.db``."""
    if storage:
        from churnscale.registry.backend import with_psycopg2

        return with_psycopg2(storage)
    settings.home.mkdir(parents=True, exist_ok=True)
    path = (settings.home / "optuna.db").resolve()
    with sqlite3.connect(path) as db:  # WAL: readers never block the one writer
        db.execute("PRAGMA journal_mode=WAL")
    db.close()
    return f"sqlite:///{path}"


def prepare_study(
    spec: TuneSpec, url: str, name: str, fingerprint: str, exclude: Exclusion | None = None
) -> int:
    """Create the study (the defaults enqueued as its first trial) or check a stored one;
    returns how many trials it holds already."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=name, storage=open_storage(url), direction="maximize", load_if_exists=True
    )
    exclude = exclude or _holdout(spec)
    wanted: dict[str, Any] = {
        "data_fingerprint": fingerprint,
        "cv": spec.cv,
        "seed": spec.seed,
        "max_rounds": spec.base.max_rounds,
        "left_out": repr(exclude),
    }
    stored = study.user_attrs
    if not stored:
        for key, value in wanted.items():
            study.set_user_attr(key, value)
        study.enqueue_trial({k: getattr(spec.base, k) for k in TUNED} | {"min_gain_to_split": 0.0})
        return 0
    for key, value in wanted.items():
        if stored.get(key) != value:
            raise ConfigError(
                f"study {name!r}: {key}",
                expected=f"{stored.get(key)!r} as stored (or another --study)",
                received=value,
            )
    return len(study.trials)


def _preflight(dataset: Path, spec: TuneSpec, exclude: Exclusion) -> None:
    """Fail in one line, before any worker starts, when a fold would be empty or one-class."""
    schema, _ = load_info(dataset)
    plan = plan_split(
        dataset,
        schema,
        SplitSpec(seed=spec.seed + INNER_SEED_OFFSET),
        folds=spec.cv,
        fold=0,
        early_stop_fraction=EARLY_STOP_FRACTION,
        exclude=exclude,
    )
    check_sides(plan, TEST)


def _holdout(spec: TuneSpec) -> Exclusion:
    return Exclusion.holdout_of(SplitSpec(seed=spec.seed, valid_fraction=spec.valid_fraction))


@dataclass(frozen=True)
class Search:
    """A prepared study: where it is stored and which rows its trials may read."""

    dataset: Path
    spec: TuneSpec
    name: str
    url: str
    exclude: Exclusion
    first_slot: int

    @classmethod
    def prepare(
        cls,
        dataset: Path,
        spec: TuneSpec,
        *,
        url: str,
        name: str | None = None,
        exclude: Exclusion | None = None,
    ) -> Search:
        """Check the flags and the data, then create or resume the study."""
        spec.validate()
        _, info = load_info(dataset)
        exclude = exclude or _holdout(spec)
        _preflight(dataset, spec, exclude)
        name = name or spec.study or f"tune-{info.fingerprint[:12]}"
        first = prepare_study(spec, url, name, info.fingerprint, exclude)
        return cls(dataset, spec, name, url, exclude, first)

    def run(
        self, on_record: Callable[[TrialRecord], None] | None = None, *, client: Any = None
    ) -> list[TrialRecord]:
        """Run ``spec.trials`` more trials: here, on ``spec``'s cluster, or on ``client``'s."""
        trial = TrialSpec(
            str(self.dataset),
            self.name,
            self.spec.cv,
            self.spec.seed,
            self.exclude,
            self.spec.base,
            self.url,
            startup_trials=max(3, min(10, self.spec.trials // 3)),
        )
        return execute(
            self.spec,
            trial,
            first_slot=self.first_slot,
            on_record=on_record or (lambda r: None),
            client=client,
        )

    def best(self, records: list[TrialRecord]) -> Any:
        """The study's best completed trial (of every run), or a TrainingError."""
        import optuna

        study = optuna.load_study(study_name=self.name, storage=open_storage(self.url))
        if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            errors = [r.error for r in records if r.error]
            reason = f"; first error: {errors[0]}" if errors else ""
            raise TrainingError(f"study {self.name!r} has no completed trial{reason}")
        return study.best_trial

    def size(self) -> int:
        """Trials the study holds, of every run."""
        import optuna

        return len(optuna.load_study(study_name=self.name, storage=open_storage(self.url)).trials)


def execute(
    spec: TuneSpec,
    trial: TrialSpec,
    *,
    first_slot: int,
    on_record: Callable[[TrialRecord], None],
    client: Any = None,
) -> list[TrialRecord]:
    """Run the trials here, or on a cluster (``client``'s, else ``spec``'s own, started and
    closed here); no new trial starts after ``spec.timeout``."""
    deadline = time.monotonic() + spec.timeout if spec.timeout else math.inf
    address = spec.cluster or (f"local:{spec.jobs}" if spec.jobs > 1 else None)
    records: list[TrialRecord] = []

    def keep(record: TrialRecord) -> None:
        records.append(record)
        on_record(record)

    if address is None and client is None:
        for slot in range(spec.trials):
            if time.monotonic() >= deadline:
                break
            keep(run_trial(trial, first_slot + slot))
        return records
    if trial.base.threads == 0:  # one LightGBM thread per trial: the workers share the cores
        trial = replace(trial, base=replace(trial.base, threads=1))
    if client is not None:
        _trials_on(client, spec, trial, first_slot, deadline, keep)
    else:
        from churnscale.training.cluster import cluster_client

        with cluster_client(str(address)) as own:
            _trials_on(own, spec, trial, first_slot, deadline, keep)
    return records


def _trials_on(
    client: Any,
    spec: TuneSpec,
    trial: TrialSpec,
    first_slot: int,
    deadline: float,
    keep: Callable[[TrialRecord], None],
) -> None:
    """At most one trial per worker in flight: each new trial's sampler sees every result."""
    from distributed import as_completed

    width = max(1, len(client.scheduler_info(n_workers=-1)["workers"]))
    submitted = 0

    def submit() -> Any:
        nonlocal submitted
        slot = first_slot + submitted
        submitted += 1
        return client.submit(run_trial, trial, slot, pure=False, key=f"trial-{trial.study}-{slot}")

    # An enqueued trial (the defaults) runs alone first: SQLite has no row locks, so two
    # workers asking at once could both pop it.
    waiting = _has_waiting(trial.storage_url, trial.study)
    first = [submit() for _ in range(1 if waiting else min(width, spec.trials))]
    running = as_completed(first, loop=client.loop)  # type: ignore[no-untyped-call]
    in_flight = len(first)
    for future in running:
        in_flight -= 1
        try:
            record = future.result()
        except Exception as exc:
            raise TrainingError(f"a trial task failed on the cluster: {exc}") from exc
        keep(record)
        while in_flight < width and submitted < spec.trials and time.monotonic() < deadline:
            running.add(submit())  # type: ignore[no-untyped-call]
            in_flight += 1


def _has_waiting(url: str, name: str) -> bool:
    import optuna

    study = optuna.load_study(study_name=name, storage=open_storage(url))
    return bool(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)))
