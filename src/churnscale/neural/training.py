"""``train_mlp``: the neural churn model, trained data-parallel over N processes (CPUs or GPUs).

The split and the Preprocessor are those of LightGBM training (:func:`plan_split` with the same
early-stopping share, :func:`fit_preprocessor` streamed over the training side), so the two
models are judged on the same hold-out rows. With ``workers > 1`` the library launches the
ranks itself (``torch.multiprocessing.spawn``, gloo over a rendezvous file); each reads its
own shard (:mod:`churnscale.neural.shards`) and trains under DistributedDataParallel
(:mod:`churnscale.neural.ddp`). With one worker the same loop runs in this process, without
a process group. Under ``torchrun`` (:mod:`churnscale.neural.launch`) this process is one
rank of the launcher's job: every rank plans the same split and fits the same Preprocessor
(both deterministic), trains its shard, and only rank 0 returns the model.

``params.device`` is resolved here, before any data is read (:mod:`churnscale.neural.device`):
on CUDA each rank trains on its own GPU and the ranks talk over NCCL. Whatever the device, the
best weights come back to the CPU, so the model is the same float32 bundle, loadable anywhere.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.torch import load_file
from torch.multiprocessing.spawn import ProcessExitedException, ProcessRaisedException, spawn

from churnscale.data.schema import Schema
from churnscale.data.store import load_info
from churnscale.exceptions import ConfigError, SchemaError, TrainingError
from churnscale.model.mlp import MlpModel
from churnscale.model.network import ChurnNet, config_for
from churnscale.neural.ddp import BEST_FILE, HISTORY_FILE, SHARDS_FILE, TIMING_FILE, Job, run_rank
from churnscale.neural.device import check_precision, resolve_device
from churnscale.neural.launch import torchrun_rank
from churnscale.neural.params import MlpParams
from churnscale.training.local import EARLY_STOP_FRACTION, check_sides, fit_preprocessor
from churnscale.training.plan import TEST, SplitPlan, SplitSpec, plan_split
from churnscale.training.sequence import iter_side_tables


@dataclass
class MlpTrainResult:
    """A trained MLP with the hold-out labels and scores, the epochs and each rank's shard."""

    model: MlpModel
    y_holdout: np.ndarray
    scores: np.ndarray
    best_epoch: int
    rows: dict[str, int]
    history: list[dict[str, float]]
    shards: list[dict[str, int]]
    #: rank 0's device and collective backend, seconds reading its shards, placing them, and
    #: per epoch; epoch rows
    timing: dict[str, Any] = field(default_factory=dict)


def fit_mlp(
    dataset: Path,
    *,
    schema: Schema | None = None,
    split: SplitSpec | None = None,
    params: MlpParams | None = None,
    workers: int = 1,
    progress: bool = False,
) -> MlpTrainResult | None:
    """Train on a stored dataset over ``workers`` processes; score the hold-out side.
    Under torchrun the launcher's ranks are the workers, and ranks other than 0 return None."""
    params = params or MlpParams()
    params.validate()
    if workers < 1:
        raise ConfigError("--workers", expected="at least 1", received=workers)
    launched = torchrun_rank()
    if launched is not None:
        if workers not in (1, launched.world):
            raise ConfigError(
                "--workers",
                expected=f"1 or torchrun's WORLD_SIZE ({launched.world}) under torchrun",
                received=workers,
            )
        workers = launched.world
    local_ranks = workers if launched is None else launched.local_world
    device = resolve_device(params.device, local_ranks=local_ranks)
    check_precision(params.precision, device)
    split = split or SplitSpec(seed=params.seed)
    stored_schema, info = load_info(dataset)
    schema = schema or stored_schema
    if schema.target is None:
        raise SchemaError("the dataset has no target column; ingest it with --target")
    plan = plan_split(dataset, schema, split, early_stop_fraction=EARLY_STOP_FRACTION)
    rows = check_sides(plan, TEST)
    if workers > rows["train"]:
        raise ConfigError(
            "--workers", expected=f"at most the {rows['train']} training rows", received=workers
        )
    pre = fit_preprocessor(plan, schema)
    config = config_for(
        pre, embedding_dim=params.embedding_dim, hidden=params.hidden, dropout=params.dropout
    )
    with tempfile.TemporaryDirectory(prefix="churnscale-mlp-") as tmp:
        job = Job(
            plan,
            pre.to_dict(),
            schema.target,
            config,
            params,
            workers,
            Path(tmp),
            progress and (launched is None or launched.leads),
            init_method=None if launched is None else "env://",
            device=device,
            local_rank=None if launched is None else launched.local,
        )
        if launched is not None:
            run_rank(launched.rank, job)
            if not launched.leads:
                return None
        else:
            _launch(job)
        state = load_file(str(Path(tmp) / BEST_FILE))
        history = json.loads((Path(tmp) / HISTORY_FILE).read_text())
        shards = json.loads((Path(tmp) / SHARDS_FILE).read_text())
        timing = json.loads((Path(tmp) / TIMING_FILE).read_text())
    net = ChurnNet(config)
    net.load_state_dict(state)
    best = min(history, key=lambda h: h["valid_loss"])
    metadata = {
        "schema": schema.to_dict(),
        "data_fingerprint": info.fingerprint,
        "params": params.to_dict(),
        "split": asdict(split),
        "rows": rows,
        "workers": workers,
        "device": device,
        "best_epoch": int(best["epoch"]),
        "history": history,
    }
    model = MlpModel(pre, net, config, metadata)
    y, scores = _score_holdout(model, plan)
    return MlpTrainResult(model, y, scores, int(best["epoch"]), rows, history, shards, timing)


def train_mlp(
    dataset: Path,
    *,
    schema: Schema | None = None,
    split: SplitSpec | None = None,
    params: MlpParams | None = None,
    workers: int = 1,
    progress: bool = False,
) -> MlpModel | None:
    """Train the MLP on a stored dataset over ``workers`` processes (DDP: NCCL on GPUs, gloo on
    CPUs; ``params.device``); None on a torchrun rank other than 0."""
    result = fit_mlp(
        dataset, schema=schema, split=split, params=params, workers=workers, progress=progress
    )
    return None if result is None else result.model


def _launch(job: Job) -> None:
    """Run every rank: in this process for one, spawned processes (DDP) for more."""
    if job.world == 1:
        run_rank(0, job)
        return
    try:
        spawn(run_rank, args=(job,), nprocs=job.world, join=True)  # type: ignore[no-untyped-call]
    except ProcessRaisedException as exc:
        last = str(exc).strip().splitlines()[-1]
        raise TrainingError(f"a training process failed: {last}") from exc
    except ProcessExitedException as exc:
        raise TrainingError(
            f"training process {exc.error_index} exited with code {exc.exit_code}"
        ) from exc


def _score_holdout(model: MlpModel, plan: SplitPlan) -> tuple[np.ndarray, np.ndarray]:
    columns = [c.name for c in model.preprocessor.schema.features]
    parts = [model.predict_proba(t) for t in iter_side_tables(plan, TEST, columns)]
    scores = np.concatenate(parts) if parts else np.empty(0)
    return plan.labels[TEST], scores
