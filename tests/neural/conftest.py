"""A small stored dataset and models trained once for the neural and export tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from churnscale.neural import MlpParams, MlpTrainResult, fit_mlp

torch.set_num_threads(1)  # tiny networks: one thread is fastest on a shared machine

#: Tiny and fast; dropout 0 so that one and two processes compute the same steps.
TINY = MlpParams(hidden=[16, 8], embedding_dim=4, batch_size=256, max_epochs=4, patience=2)


@pytest.fixture(scope="session")
def mlp_dataset(churn_dataset: Path) -> Path:
    return churn_dataset


@pytest.fixture(scope="session")
def one_process(mlp_dataset: Path) -> MlpTrainResult:
    result = fit_mlp(mlp_dataset, params=TINY, workers=1)
    assert result is not None  # None only on a torchrun rank other than 0
    return result


@pytest.fixture(scope="session")
def two_processes(mlp_dataset: Path) -> MlpTrainResult:
    result = fit_mlp(mlp_dataset, params=TINY, workers=2)
    assert result is not None
    return result
