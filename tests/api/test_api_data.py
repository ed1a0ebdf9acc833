"""ingest, generate, score and the lightness of ``import churnscale``, from Python."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import churnscale
from churnscale.config import Settings
from churnscale.data.store import iter_dataset
from churnscale.exceptions import InputTypeError


def test_importing_the_package_imports_no_heavy_library() -> None:
    code = (
        "import sys, churnscale; "
        "heavy = [m for m in ('lightgbm', 'mlflow', 'matplotlib', 'sklearn', 'pyarrow', 'torch') "
        "if m in sys.modules]; print(heavy); assert churnscale.train.__module__; "
        "print('lightgbm' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:2] == ["[]", "True"]  # imported on first use only


def test_ingest_and_generate_import_no_model_library(tmp_path: Path) -> None:
    """``churnscale ingest`` loads the data modules only: importing LightGBM, scikit-learn,
    SciPy and matplotlib costs about a CPU second, more than ingesting a 100 MiB CSV."""
    code = (
        "import sys; from churnscale.api import generate, ingest; "
        f"generate({str(tmp_path / 'c.csv')!r}, rows=300, fmt='csv'); "
        f"ingest({str(tmp_path / 'c.csv')!r}, {str(tmp_path / 'ds')!r}, target='churned'); "
        "print([m for m in ('lightgbm', 'sklearn', 'scipy', 'matplotlib', 'mlflow', 'torch') "
        "if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout
    assert (tmp_path / "ds" / "dataset.json").is_file()


def test_generate_in_memory_equals_generate_to_a_file(tmp_path: Path) -> None:
    table = churnscale.generate(rows=700, seed=4)
    made = churnscale.generate(
        tmp_path / "c.parquet", rows=700, seed=4, events=tmp_path / "e.parquet"
    )
    assert made.rows == 700 and made.events is not None and made.event_rows > 700
    assert pq.read_table(made.out).equals(table)


def test_ingest_a_frame_as_its_file(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    table = churnscale.generate(rows=600, seed=5)
    pq.write_table(table, tmp_path / "c.parquet")
    from_file = churnscale.ingest(
        tmp_path / "c.parquet", tmp_path / "a", target="churned", settings=settings
    )
    from_frame = churnscale.ingest(
        pl.from_arrow(table), tmp_path / "b", target="churned", settings=settings
    )
    assert from_file.fingerprint == from_frame.fingerprint and from_frame.rows == 600
    stored = pa.Table.from_batches(list(iter_dataset(tmp_path / "b")))
    assert stored.column_names == table.column_names
    with pytest.raises(InputTypeError, match=r"^data: expected"):
        churnscale.ingest([1, 2], tmp_path / "c", settings=settings)  # type: ignore[arg-type]


def test_score_a_frame_into_parquet(
    trained: churnscale.ChurnModel, fresh: pa.Table, tmp_path: Path, api_settings: Settings
) -> None:
    info = churnscale.score(
        fresh.to_pandas(), trained, tmp_path / "s.parquet", settings=api_settings
    )
    assert (info.rows, info.rejected) == (fresh.num_rows, 0)
    scored = pq.read_table(tmp_path / "s.parquet")
    assert scored.column("customer_id").to_pylist() == fresh.column("customer_id").to_pylist()
    np.testing.assert_allclose(
        scored.column("churn_probability").to_numpy(), trained.predict_proba(fresh), atol=1e-9
    )
    by_reference = churnscale.score(
        fresh, "api-churn/1", tmp_path / "r.parquet", reasons=True, settings=api_settings
    )
    assert by_reference.rows == fresh.num_rows
    assert (
        pq.read_table(tmp_path / "r.parquet")
        .column("churn_probability")
        .equals(scored.column("churn_probability"))
    )
