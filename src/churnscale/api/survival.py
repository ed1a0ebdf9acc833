"""``churnscale.train_survival``: a time-to-churn model from Python, as ``churnscale train
--duration-col`` makes it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from churnscale.api.datasets import stored
from churnscale.api.inputs import Data, bundle_out, schema_inputs
from churnscale.api.models import ChurnModel
from churnscale.api.training import train_params
from churnscale.config import Settings, load_settings


def train_survival(
    data: Data,
    *,
    duration_col: str,
    event_col: str,
    event_label: str | None = None,
    horizons: Sequence[float] | None = None,
    distribution: str | None = None,
    sigma: float | None = None,
    id: str | None = None,
    drop: Sequence[str] = (),
    valid_fraction: float = 0.2,
    register: bool = False,
    name: str = "churn",
    out: str | os.PathLike[str] | None = None,
    report: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
    **params: Any,
) -> ChurnModel:
    """Train a survival model: ``duration_col`` is each customer's time to churn (or to the
    data's end), ``event_col`` (``== event_label``) whether it ended in churn. The model's
    ``predict`` gives ``survival_H``, ``churn_within_H`` and ``restricted_mean_H`` for the
    ``horizons`` (default: quartiles of the event durations); ``predict_proba`` is churn
    within the last horizon. Other arguments as :func:`churnscale.train`; ``**params`` are
    LightGBM parameters (fields of ``TrainParams``)."""
    from churnscale.training.plan import SplitSpec
    from churnscale.training.survival import SurvivalJob, run_survival_training

    settings = settings or load_settings()
    parameters = train_params(params)
    hints, schema = schema_inputs(target=event_col, id=id, positive_label=event_label, drop=drop)
    with ExitStack() as stack:
        dataset = stack.enter_context(stored(data, settings=settings, hints=hints, schema=schema))
        bundle = bundle_out(stack, out, register=register, settings=settings)
        job = SurvivalJob(
            dataset,
            duration_col,
            tuple(float(h) for h in horizons) if horizons is not None else None,
            distribution,
            sigma,
            params=parameters,
            split=SplitSpec(valid_fraction=valid_fraction, seed=parameters.seed),
            name=name,
            register=register,
            out=bundle,
            report=Path(report) if report is not None else None,
        )
        outcome = run_survival_training(job, settings)
    return ChurnModel(outcome.model)
