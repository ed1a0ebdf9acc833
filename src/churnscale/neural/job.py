"""``churnscale train --model mlp``: the PyTorch MLP as one training job, recorded like LightGBM's.

The MLP trains with DDP over ``job.workers`` processes, or over torchrun's ranks, where ranks
other than 0 train their shard and return None; rank 0 assesses, reports and registers through
:func:`churnscale.training.recording.record_training`, exactly as the LightGBM job does.
"""

from __future__ import annotations

from churnscale.config import Settings
from churnscale.data.store import load_info
from churnscale.exceptions import ConfigError, TrainingError
from churnscale.neural.launch import torchrun_rank
from churnscale.neural.params import MlpParams
from churnscale.neural.training import MlpTrainResult, fit_mlp
from churnscale.training.job import TrainJob, run_params
from churnscale.training.recording import (
    Fitted,
    MetricLog,
    TrainOutcome,
    record_training,
    report_path,
    started_at,
)


def run_mlp_training(job: TrainJob, settings: Settings) -> TrainOutcome | None:
    """Train, assess, report and (unless ``job.register`` is off) register one MLP; None on a
    torchrun rank other than 0, which only trains its shard."""
    job.validate()
    if job.model != "mlp":
        raise ConfigError("--model", expected="mlp for this job", received=job.model)
    schema, _ = load_info(job.dataset)
    stamp = started_at()
    report = report_path(job.report, settings, name=job.name, stamp=stamp)

    def fit() -> MlpTrainResult | None:
        params = MlpParams(**{**job.mlp, "seed": job.params.seed})
        return fit_mlp(
            job.dataset, schema=schema, split=job.split, params=params, workers=job.workers
        )

    launched = torchrun_rank()
    if launched is not None and not launched.leads:
        fit()  # this rank's shard; rank 0 assesses, reports and registers, nothing is tracked
        return None

    def train(_log: MetricLog) -> Fitted:
        result = fit()
        if result is None:  # pragma: no cover - only torchrun followers get None, handled above
            raise TrainingError("rank 0 received no model")
        title = f"{job.name}: MLP on {len(result.model.feature_names)} features"
        workers = result.model.metadata["workers"]
        details = {
            "best epoch": result.best_epoch,
            "rows": result.rows,
            "workers": workers,
            "device": f"{result.timing['device']}, {result.model.metadata['params']['precision']}",
        }
        return Fitted.of(result, result.best_epoch, title=title, details=details)

    workers = job.workers if launched is None else launched.world
    record = job.run_record(
        run_name=f"{job.name}-mlp-{stamp}",
        params={**run_params(job), **job.mlp, "model": "mlp", "workers": workers},
        description=f"MLP trained on {job.dataset}",
    )
    return record_training(record, settings, report=report, train=train)
