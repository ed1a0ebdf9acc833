from __future__ import annotations

import math
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from distributed import Client
from sklearn.metrics import roc_auc_score

from churnscale.config import Settings
from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest, load_info
from churnscale.data.synthetic import generate_table
from churnscale.data.writers import write_batches
from churnscale.exceptions import ConfigError, TrainingError
from churnscale.model.lightgbm import LightGBMModel
from churnscale.registry import Registry
from churnscale.training.cluster import (
    USABLE_FRACTION,
    ClusterAddress,
    Watchdog,
    check_worker_memory,
    cluster_client,
    estimate_worker_bytes,
)
from churnscale.training.distributed import train_distributed
from churnscale.training.job import TrainJob, run_training
from churnscale.training.local import TrainParams, TrainResult, train_local
from churnscale.training.refit import Evaluated, refit_all_rows, refit_rounds

FAST = TrainParams(learning_rate=0.2, max_rounds=60, early_stopping_rounds=10)
ROWS = 50_000


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dist")
    write_batches(generate_table(ROWS, 5).to_batches(), root / "raw.parquet")
    # Small row groups, so that both workers get parts.
    hints = SchemaHints(target="churned")
    ingest(str(root / "raw.parquet"), root / "ds", hints=hints, batch_rows=8_192)
    return root / "ds"


@pytest.fixture(scope="module")
def distributed_result(dataset: Path) -> TrainResult:
    return train_distributed(dataset, cluster="local:2", params=FAST, memory_limit="1GiB")


def test_matches_local_training(dataset: Path, distributed_result: TrainResult) -> None:
    local = train_local(dataset, params=FAST)
    assert distributed_result.rows == local.rows  # every row on the same side
    np.testing.assert_array_equal(distributed_result.y_holdout, local.y_holdout)
    local_auc = roc_auc_score(local.y_holdout, local.scores)
    dist_auc = roc_auc_score(distributed_result.y_holdout, distributed_result.scores)
    assert abs(dist_auc - local_auc) < 0.005
    assert 1 <= distributed_result.best_iteration <= FAST.max_rounds


def test_model_is_a_plain_bundle(distributed_result: TrainResult, tmp_path: Path) -> None:
    model = distributed_result.model
    loaded = LightGBMModel.load(model.save(tmp_path / "bundle"))
    table = generate_table(300, 11)
    np.testing.assert_array_equal(loaded.predict_proba(table), model.predict_proba(table))
    one = loaded.predict_proba_one(table.to_pylist()[0])
    assert one == pytest.approx(float(loaded.predict_proba(table.slice(0, 1))[0]), abs=1e-9)
    assert loaded.metadata["trainer"] == {"kind": "lightgbm.dask", "workers": 2}


def test_refit_on_the_cluster_sees_every_row(
    dataset: Path, distributed_result: TrainResult
) -> None:
    evaluated = [Evaluated.of(distributed_result)]
    model, refit = refit_all_rows(evaluated, dataset, params=FAST, cluster="local:2")
    assert refit.rows == ROWS and model.metadata["refit"]["rows"] == ROWS
    expected = refit_rounds(evaluated, ROWS)
    assert refit.rounds == expected == model.booster.current_iteration()
    assert model.metadata["trainer"] == {"kind": "lightgbm.dask", "workers": 2}


def test_memory_pre_check_refuses_before_starting(dataset: Path) -> None:
    # The case measured in the issue: 50M rows on two 6 GiB workers paused and hung.
    need = estimate_worker_bytes(
        rows=50_000_000, features=24, workers=2, holdout_fraction=0.2, early_stop_fraction=0.1
    )
    with pytest.raises(TrainingError, match=r"needs about \d+\.\d\d GiB per worker"):
        check_worker_memory(need, {"w1": 6 * 2**30, "w2": 6 * 2**30}, rows=50_000_000, features=24)
    with pytest.raises(TrainingError, match=r"50,000 rows x 24 features .* memory limit of 0\.09"):
        train_distributed(dataset, cluster="local:2", params=FAST, memory_limit="96MiB")


def test_memory_pre_check_covers_the_refit_that_follows(dataset: Path) -> None:
    """A cluster with room for the evaluation (80% of the rows on the workers) but not for the
    refit on every row is refused before any work when a refit follows, not after."""
    features = len(load_info(dataset)[0].features)

    def need(holdout: float, early: float) -> int:
        return estimate_worker_bytes(
            rows=ROWS,
            features=features,
            workers=2,
            holdout_fraction=holdout,
            early_stop_fraction=early,
        )

    limit = math.ceil(need(0.2, 0.1) / USABLE_FRACTION) + 1  # the evaluation alone fits
    check_worker_memory(need(0.2, 0.1), {"w": limit}, rows=ROWS, features=features)
    with pytest.raises(TrainingError, match="needs about"):
        train_distributed(
            dataset, cluster="local:2", params=FAST, memory_limit=limit, refit_after=True
        )


@pytest.mark.parametrize("value", ["local:0", "local:two", "dask.example.com", "tcp://nohost"])
def test_bad_cluster_address_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="--cluster"):
        ClusterAddress.parse(value)


def test_unreachable_scheduler_is_a_training_error(dataset: Path) -> None:
    with pytest.raises(
        TrainingError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9"
    ):
        train_distributed(dataset, cluster="tcp://127.0.0.1:9", params=FAST)


@pytest.fixture
def cluster() -> Iterator[Client]:
    with cluster_client("local:2", memory_limit="1GiB") as client:
        yield client


def _kill_when_training(client: Client, pid: int, done: threading.Event) -> None:
    """SIGKILL ``pid`` once the LightGBM training tasks are running."""
    while not done.wait(0.05):
        running = [str(k) for keys in client.processing().values() for k in keys]
        if any("_train_part" in key for key in running):
            os.kill(pid, signal.SIGKILL)
            return


def test_killed_worker_fails_the_run_and_registers_nothing(
    dataset: Path, cluster: Client, tmp_path: Path, migrated_store: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(migrated_store, home / "mlflow.db")
    settings = Settings(home=home, tracking_uri=None)
    pids = cluster.run(os.getpid)
    victim = sorted(pids)[1]
    done = threading.Event()
    killer = threading.Thread(target=_kill_when_training, args=(cluster, pids[victim], done))
    killer.start()
    slow = TrainParams(learning_rate=0.01, max_rounds=20_000, early_stopping_rounds=20_000)
    job = TrainJob(
        dataset,
        params=slow,
        cluster=cluster.scheduler.address,
        time_out_minutes=1,
        out=tmp_path / "bundle",
    )
    try:
        with pytest.raises(TrainingError, match=f"worker {victim} left the cluster"):
            run_training(job, settings)
    finally:
        done.set()
        killer.join()
    assert not (tmp_path / "bundle").exists()
    registry = Registry(settings)
    assert registry.list_models() == []
    experiments = [e.experiment_id for e in registry.client.search_experiments()]
    assert [r.info.status for r in registry.client.search_runs(experiments)] == ["FAILED"]


def _hog(size: int) -> int:
    """Touch ``size`` bytes on a worker and hold them."""
    block = np.ones(size, dtype=np.uint8)
    time.sleep(30)
    return int(block.size)


def test_worker_out_of_memory_fails_instead_of_restarting() -> None:
    # The nanny terminates a worker at 95% of its limit; with no retries and the watchdog,
    # the call ends in a TrainingError instead of restarting workers forever.
    with cluster_client("local:2", memory_limit="600MiB") as client:
        worker = sorted(client.nthreads())[0]

        def hog() -> int:
            future = client.submit(_hog, 2**30, workers=[worker], pure=False)
            return int(future.result())

        with pytest.raises(TrainingError, match=f"worker {worker} left the cluster|KilledWorker"):
            Watchdog(client).run(hog)
