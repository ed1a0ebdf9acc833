"""R19: distributed training on data 3× a worker's memory limit.

Pass figure: the run is refused before any worker process starts, with a ``TrainingError`` that
states the memory each worker needs (which is at least the data's in-memory size divided among
the workers) and the limit it exceeds; no ``KilledWorker``, no process started. (The data that
fits, 1 GiB workers, trains in R14 and R20.)
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest
from rel_support import FAST

from churnscale.data.store import load_info
from churnscale.exceptions import TrainingError
from churnscale.training.distributed import train_distributed

pytestmark = [pytest.mark.reliability, pytest.mark.integration]


def _in_memory_bytes(dataset: Path) -> int:
    _, info = load_info(dataset)
    return sum(pq.read_table(dataset / name).nbytes for name in info.files)


def test_data_three_times_the_worker_limit_is_refused_early(dist_dataset: Path) -> None:
    data = _in_memory_bytes(dist_dataset)
    limit = data // 3
    children = {p.pid for p in psutil.Process().children(recursive=True)}
    started = time.perf_counter()
    with pytest.raises(TrainingError) as caught:
        train_distributed(dist_dataset, cluster="local:2", params=FAST, memory_limit=limit)
    elapsed = time.perf_counter() - started
    message = str(caught.value)
    print(f"R19: data {data / 2**20:.1f} MiB, limit {limit / 2**20:.1f} MiB per worker: "
          f"refused in {elapsed:.2f} s: {message}")  # fmt: skip
    need = re.search(r"needs about (\d+\.\d\d) GiB per worker", message)
    assert need is not None, message
    assert float(need[1]) * 2**30 >= data / 2
    assert f"memory limit of {limit / 2**30:.2f} GiB" in message
    assert "KilledWorker" not in message
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= children
