"""One rank of data-parallel training: its own shard on its own device, DDP over NCCL (GPUs)
or gloo (CPUs).

Every rank draws the same permutation of the whole training side each epoch (seeded by
``(seed, epoch)``, whatever the number of ranks), so global batch *k* holds the same rows as in
a one-process run; each rank computes the summed loss of the rows of that batch that lie in its
shard, scaled by ``world / len(batch)``. DDP averages gradients over ranks, so every step
applies the gradient of the mean loss over the global batch, exactly as one process would (up
to float summation order). Early stopping uses the validation log loss summed over all ranks,
so all ranks stop at the same epoch.

The shard lives on the rank's device from the start (:mod:`churnscale.neural.batches`): a step
gathers its rows there, and losses are summed there, so the host waits for the device once per
epoch, not once per batch. With ``precision="bf16"`` the forward pass runs under autocast; the
weights, the optimizer state and the saved model stay float32.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from safetensors.torch import save_file
from torch import nn
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel

from churnscale.features.preprocessor import Preprocessor
from churnscale.model.network import ChurnNet, NetworkConfig
from churnscale.neural.batches import ResidentShard, epoch_order, rank_batches, resident
from churnscale.neural.device import autocast, backend_for, rank_device
from churnscale.neural.optimizer import AdamW
from churnscale.neural.params import MlpParams
from churnscale.neural.shards import Shard, read_shard
from churnscale.training.plan import TRAIN, VALID, SplitPlan

BEST_FILE = "best.safetensors"
HISTORY_FILE = "history.json"
SHARDS_FILE = "shards.json"
TIMING_FILE = "timing.json"
_SCORE_ROWS = 65_536


@dataclass
class Job:
    """Everything a rank needs (picklable: sent to spawned processes)."""

    plan: SplitPlan
    preprocessor: dict[str, Any]
    target: str
    config: NetworkConfig
    params: MlpParams
    world: int
    workdir: Path
    progress: bool = False
    #: ``env://`` when torchrun started the ranks; None: a rendezvous file in ``workdir``
    init_method: str | None = None
    #: the resolved device kind, ``cpu`` or ``cuda`` (see :mod:`churnscale.neural.device`)
    device: str = "cpu"
    #: this process's rank on its machine under torchrun (its GPU); None: spawned, rank = local
    local_rank: int | None = None


def run_rank(rank: int, job: Job) -> None:
    """Entry point of rank ``rank`` (``torch.multiprocessing.spawn`` passes the rank first)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(job.params.threads)
    device = rank_device(job.device, rank if job.local_rank is None else job.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if job.world > 1:
        rendezvous = job.init_method or f"file://{(job.workdir / 'rendezvous').as_posix()}"
        dist.init_process_group(
            backend_for(job.device), init_method=rendezvous, rank=rank, world_size=job.world
        )
    try:
        _train(rank, job, device)
    finally:
        if job.world > 1:
            dist.destroy_process_group()
        torch.set_num_threads(previous)


def _train(rank: int, job: Job, device: torch.device) -> None:
    began = time.perf_counter()
    pre = Preprocessor.from_dict(job.preprocessor)
    shard = read_shard(job.plan, TRAIN, pre, target=job.target, rank=rank, world=job.world)
    valid = read_shard(job.plan, VALID, pre, target=job.target, rank=rank, world=job.world)
    read = time.perf_counter()
    _report_shards(job, rank, shard)
    train, check = resident(shard, device), resident(valid, device)
    del shard, valid  # on a GPU the host copies are no longer needed
    torch.manual_seed(job.params.seed)
    net = ChurnNet(job.config)  # initialised on the CPU: the same weights on every device
    net.set_scaling(pre)
    net.to(device)
    ids = [device.index] if device.type == "cuda" else None
    model: nn.Module = DistributedDataParallel(net, device_ids=ids) if job.world > 1 else net
    optimizer = AdamW(
        net.parameters(), lr=job.params.learning_rate, weight_decay=job.params.weight_decay
    )
    placed = time.perf_counter()
    history, best, seconds = _epochs(rank, job, net, model, optimizer, train, check)
    if rank == 0:
        save_file({k: v.cpu() for k, v in best.items()}, str(job.workdir / BEST_FILE))
        (job.workdir / HISTORY_FILE).write_text(json.dumps(history))
        timing = {
            "device": str(device),
            "backend": dist.get_backend() if job.world > 1 else None,  # None: no process group
            "read_seconds": read - began,
            "place_seconds": placed - read,
            "epoch_seconds": seconds,
            "epoch_rows": job.plan.count(TRAIN),
        }
        (job.workdir / TIMING_FILE).write_text(json.dumps(timing))


def _epochs(
    rank: int,
    job: Job,
    net: ChurnNet,
    model: nn.Module,
    optimizer: AdamW,
    shard: ResidentShard,
    valid: ResidentShard,
) -> tuple[list[dict[str, float]], dict[str, torch.Tensor], list[float]]:
    params, total = job.params, job.plan.count(TRAIN)
    best_loss, stale = math.inf, 0
    best = _snapshot(net)
    history: list[dict[str, float]] = []
    seconds: list[float] = []
    show = _EpochDisplay(total) if job.progress and rank == 0 else None
    for epoch in range(params.max_epochs):
        began = time.perf_counter()
        train_loss = _one_epoch(job, model, optimizer, shard, total, epoch, show)
        loss = _valid_loss(net, valid, job)  # waits for the device: the epoch is done
        seconds.append(time.perf_counter() - began)
        improved = loss < best_loss
        history.append({"epoch": epoch + 1, "train_loss": train_loss, "valid_loss": loss})
        if show is not None:
            show.line(epoch + 1, loss, improved)
        if improved:
            best_loss, best, stale = loss, _snapshot(net), 0
        else:
            stale += 1
            if stale >= params.patience:
                break
    if show is not None:
        show.close()
    return history, best, seconds


def _one_epoch(
    job: Job,
    model: nn.Module,
    optimizer: AdamW,
    shard: ResidentShard,
    total: int,
    epoch: int,
    show: _EpochDisplay | None,
) -> float:
    """One pass over the global permutation; returns the mean training loss (this rank)."""
    model.train()
    device = shard.x.device
    order = epoch_order(total, seed=job.params.seed, epoch=epoch, device=device)
    summed = torch.zeros((), dtype=torch.float64, device=device)
    batches = rank_batches(order, start=shard.start, stop=shard.stop, size=job.params.batch_size)
    for index, size in batches:
        with autocast(device, job.params.precision):
            logits = model(shard.x.index_select(0, index))
        loss = F.binary_cross_entropy_with_logits(
            logits.float(), shard.y.index_select(0, index), reduction="sum"
        )
        optimizer.zero_grad()
        (loss * (job.world / size)).backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        summed += loss.detach()
        if show is not None:
            show.advance(size)
    return float(summed) / max(shard.rows, 1)


def _valid_loss(net: ChurnNet, valid: ResidentShard, job: Job) -> float:
    """Mean validation log loss over every rank's validation shard."""
    net.eval()
    device = valid.x.device
    sums = torch.tensor([0.0, float(valid.rows)], dtype=torch.float64, device=device)
    with torch.no_grad():
        for begin in range(0, valid.rows, _SCORE_ROWS):
            x, y = valid.x[begin : begin + _SCORE_ROWS], valid.y[begin : begin + _SCORE_ROWS]
            with autocast(device, job.params.precision):
                logits = net(x)
            sums[0] += F.binary_cross_entropy_with_logits(logits.float(), y, reduction="sum")
    if job.world > 1:
        dist.all_reduce(sums)
    return float(sums[0] / sums[1].clamp(min=1.0))


def _snapshot(net: ChurnNet) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}


def _report_shards(job: Job, rank: int, shard: Shard) -> None:
    """Rank 0 writes every rank's shard summary (gathered: ranks may be on other machines)."""
    report = {
        "rank": rank,
        "start": shard.start,
        "stop": shard.stop,
        "rows": int(shard.features.shape[0]),
        "positives": int(shard.labels.sum()),
        "groups_read": shard.groups_read,
    }
    reports: list[Any] = [report]
    if job.world > 1:
        reports = [None] * job.world
        dist.all_gather_object(reports, report)
    if rank == 0:
        (job.workdir / SHARDS_FILE).write_text(json.dumps(reports))


class _EpochDisplay:
    """Rank 0's progress: a rich bar per epoch and one line with the validation loss."""

    def __init__(self, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        from churnscale.terminal import stderr_console

        self.console = stderr_console()
        self.total = total
        self.bar = Progress(
            TextColumn("[bold]mlp"), BarColumn(), MofNCompleteColumn(), console=self.console
        )
        self.bar.start()
        self.task = self.bar.add_task("mlp", total=total)

    def advance(self, rows: int) -> None:
        self.bar.advance(self.task, rows)

    def line(self, epoch: int, loss: float, improved: bool) -> None:
        mark = " (best)" if improved else ""
        self.console.print(f"epoch {epoch}: valid log loss {loss:.5f}{mark}")
        self.bar.reset(self.task, total=self.total)

    def close(self) -> None:
        self.bar.remove_task(self.task)
        self.bar.stop()
