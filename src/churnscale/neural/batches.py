"""A rank's shard resident on its device, and each epoch's batches as index slices there.

The shard's features and labels move to the device once (on the CPU ``torch.from_numpy``
shares the arrays, no copy). Each epoch the global permutation moves over once; this rank's
rows of every global batch are found on the device in one pass (one host sync per epoch for
the batch boundaries), so a training step only slices an index tensor and gathers rows on the
device: no host-to-device copy and no synchronisation per batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from churnscale.neural.shards import Shard


@dataclass
class ResidentShard:
    """One rank's rows of one side as tensors on its device; ``[start, stop)`` on the side."""

    x: torch.Tensor
    y: torch.Tensor
    start: int
    stop: int

    @property
    def rows(self) -> int:
        """Rows in the shard."""
        return self.stop - self.start


def resident(shard: Shard, device: torch.device) -> ResidentShard:
    """``shard`` moved to ``device`` once (shared with the arrays on the CPU)."""
    x = torch.from_numpy(np.ascontiguousarray(shard.features, dtype=np.float32)).to(device)
    y = torch.from_numpy(np.ascontiguousarray(shard.labels, dtype=np.float32)).to(device)
    return ResidentShard(x, y, shard.start, shard.stop)


def epoch_order(total: int, *, seed: int, epoch: int, device: torch.device) -> torch.Tensor:
    """The epoch's permutation of the whole side (the same for any number of ranks), on
    ``device``: drawn by numpy from ``(seed, epoch)``, copied over once."""
    order = np.random.default_rng([seed, epoch]).permutation(total)
    return torch.from_numpy(order).to(device)


def rank_batches(
    order: torch.Tensor, *, start: int, stop: int, size: int
) -> Iterator[tuple[torch.Tensor, int]]:
    """For each global batch of ``size`` rows of ``order``: the positions in the shard
    ``[start, stop)`` of the batch's rows that lie in it (in batch order), and the batch's
    global row count."""
    total = int(order.numel())
    if total == 0:
        return
    inside = torch.nonzero((order >= start) & (order < stop)).squeeze(1)
    mine = order.index_select(0, inside) - start
    edges = torch.arange(0, total + size, size, device=order.device).clamp_(max=total)
    bounds = torch.searchsorted(inside, edges).tolist()  # the epoch's one host sync
    for k in range(len(bounds) - 1):
        yield mine[bounds[k] : bounds[k + 1]], min(size, total - k * size)
