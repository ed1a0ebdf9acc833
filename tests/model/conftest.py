"""One small model of every kind, trained once for the contract checks."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
import torch

from churnscale.data.synthetic import generate_table
from churnscale.model import ChurnModel
from churnscale.monitoring import build_reference
from churnscale.neural import MlpParams, fit_mlp
from churnscale.training.local import TrainParams, train_local
from churnscale.training.uplift import UpliftSpec, train_uplift
from churnscale.training.uplift_fit import UpliftParams

torch.set_num_threads(1)  # a tiny network: one thread is fastest on a shared machine

#: Every model kind; each must pass every check of test_contract.py.
KINDS = ("lightgbm", "mlp", "survival", "uplift")


@pytest.fixture(scope="session")
def customers() -> pa.Table:
    """Customers the models never saw, without the target."""
    return generate_table(300, 22).drop_columns(["churned"])


def _with_reference(model: ChurnModel, customers: pa.Table) -> ChurnModel:
    model.reference = build_reference(model, customers.to_batches())
    return model


@pytest.fixture(scope="session")
def lightgbm_model(churn_dataset: Path, customers: pa.Table) -> ChurnModel:
    params = TrainParams(learning_rate=0.3, max_rounds=20, early_stopping_rounds=5)
    return _with_reference(train_local(churn_dataset, params=params).model, customers)


@pytest.fixture(scope="session")
def mlp_model(churn_dataset: Path, customers: pa.Table) -> ChurnModel:
    params = MlpParams(hidden=[8], embedding_dim=2, batch_size=256, max_epochs=2, patience=1)
    result = fit_mlp(churn_dataset, params=params, workers=1)
    assert result is not None  # None only on a torchrun rank other than 0
    return _with_reference(result.model, customers)


@pytest.fixture(scope="session")
def survival_model(
    churn_dataset: Path, customers: pa.Table, tmp_path_factory: pytest.TempPathFactory
) -> ChurnModel:
    from churnscale.config import Settings
    from churnscale.training.survival import SurvivalJob, run_survival_training

    root = tmp_path_factory.mktemp("survival")
    params = TrainParams(learning_rate=0.3, max_rounds=20, early_stopping_rounds=5)
    job = SurvivalJob(
        churn_dataset,
        "tenure_months",
        horizons=(3.0, 12.0),
        distribution="normal",
        sigma=1.0,
        params=params,
        register=False,
        out=root / "bundle",
        report=root / "report.html",
    )
    return run_survival_training(job, Settings(home=root)).model


@pytest.fixture(scope="session")
def uplift_model(uplift_dataset: Path) -> ChurnModel:
    spec = UpliftSpec(
        "offer",
        "offer",
        "no_offer",
        learner="x",
        propensity="model",
        params=UpliftParams(rounds=20, learning_rate=0.2, min_data_in_leaf=40),
    )
    return train_uplift(uplift_dataset, spec).model  # carries its drift reference


@pytest.fixture(params=KINDS)
def model(request: pytest.FixtureRequest) -> ChurnModel:
    """Each kind in turn."""
    found: ChurnModel = request.getfixturevalue(f"{request.param}_model")
    return found
