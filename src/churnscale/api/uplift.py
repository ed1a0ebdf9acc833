"""``churnscale.train_uplift``: an uplift model from a randomized experiment, as
``churnscale train --treatment-col ...`` makes it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from churnscale.api.datasets import stored
from churnscale.api.inputs import Data, bundle_out, schema_inputs
from churnscale.config import Settings, load_settings

if TYPE_CHECKING:
    from churnscale.training.uplift_job import UpliftOutcome


def train_uplift(
    data: Data,
    *,
    treatment_col: str,
    treatment: str,
    control: str,
    target: str | None = None,
    id: str | None = None,
    drop: Sequence[str] = (),
    learner: str = "auto",
    propensity: str | float = "share",
    cv: int = 3,
    valid_fraction: float = 0.2,
    seed: int = 0,
    threads: int = 1,
    register: bool = False,
    name: str = "uplift",
    out: str | os.PathLike[str] | None = None,
    report: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
) -> UpliftOutcome:
    """Train an uplift model of ``target`` for arm ``treatment`` against ``control`` of
    ``treatment_col`` (rows of other arms are left out and counted); the outcome holds the
    model (``.result.model``), the hold-out evaluation (``.result.holdout``), the per-learner
    cross-validated Qini (``.result.cv``) and the report's path. ``register=True`` records it
    in MLflow as a version of ``name``; ``out`` keeps the bundle."""
    from churnscale.training.uplift import UpliftSpec
    from churnscale.training.uplift_fit import UpliftParams
    from churnscale.training.uplift_job import UpliftJob, run_uplift_training

    settings = settings or load_settings()
    hints, schema = schema_inputs(
        target=target, id=id, positive_label=None, drop=drop, schema=None, time_column=None
    )
    spec = UpliftSpec(
        treatment_col=treatment_col,
        treatment=treatment,
        control=control,
        learner=learner,
        propensity=propensity,
        folds=cv,
        valid_fraction=valid_fraction,
        params=UpliftParams(seed=seed, threads=threads),
    )
    spec.validate()
    with ExitStack() as stack:
        dataset = stack.enter_context(stored(data, settings=settings, hints=hints, schema=schema))
        bundle = bundle_out(stack, out, register=register, settings=settings)
        job = UpliftJob(
            dataset=dataset,
            spec=spec,
            name=name,
            register=register,
            out=bundle,
            report=Path(report) if report is not None else None,
        )
        return run_uplift_training(job, settings)
