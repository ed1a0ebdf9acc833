"""``churnscale.features.build`` makes the dataset ``churnscale features build`` makes."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

import churnscale
from churnscale.config import Settings
from churnscale.data.store import load_info
from churnscale.exceptions import ConfigError
from churnscale.features.columns import EventColumns
from churnscale.features.spec import FeatureSpec


def test_the_function_builds_what_the_command_builds(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    made = churnscale.generate(
        tmp_path / "c.parquet", rows=300, seed=2, events=tmp_path / "e.parquet"
    )
    assert made.events is not None
    info = churnscale.features.build(
        made.events,
        as_of=[date(2026, 6, 30), "2026-04-01"],
        horizon=90,
        windows=[7, "30d"],
        static=made.out,
        out=tmp_path / "api",
        bucket_rows=50_000,
        settings=settings,
    )
    done = subprocess.run(
        [
            sys.executable, "-m", "churnscale", "features", "build", "--events", str(made.events),
            "--as-of", "2026-04-01,2026-06-30", "--horizon", "90d", "--windows", "7d,30d",
            "--static", str(made.out), "--out", str(tmp_path / "cli"), "--bucket-rows", "50000",
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    schema, cli = load_info(tmp_path / "cli")
    assert (info.rows, info.fingerprint) == (cli.rows, cli.fingerprint) and info.rows > 300
    assert load_info(tmp_path / "api")[0].metadata == schema.metadata  # the same FeatureSpec


def test_bad_arguments_name_themselves(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^as_of: expected dates as YYYY-MM-DD"):
        churnscale.features.build("e.parquet", as_of="June", out=tmp_path / "x")
    with pytest.raises(ConfigError, match=r"^horizon: expected a positive duration"):
        churnscale.features.build("e.parquet", as_of="2026-01-01", horizon=0, out=tmp_path / "x")


def test_an_event_log_as_it_comes_is_mapped_by_keywords(tmp_path: Path) -> None:
    """A CDNOW-shaped log (customer_id,date,n_cds,dollar_value; dates YYYYMMDD): the keyword
    arguments map it as the command's flags do, and the mapping is kept in the FeatureSpec."""
    rng = np.random.default_rng(5)
    days = rng.integers(0, 365, 3_000)
    log = pa.table(
        {
            "customer_id": rng.integers(1, 300, 3_000).astype(str),
            "date": [(date(1997, 1, 1) + timedelta(days=int(d))).strftime("%Y%m%d") for d in days],
            "n_cds": rng.integers(1, 5, 3_000),
            "dollar_value": rng.uniform(5, 80, 3_000).round(2),
        }
    )
    source = tmp_path / "cdnow.csv"
    pacsv.write_csv(log, source)
    mapping = {"time_col": "date", "time_format": "%Y%m%d", "event_type": "purchase"}
    info = churnscale.features.build(
        source,
        as_of="1997-07-01,1997-10-01",
        horizon="13w",
        windows="30d,91d",
        amount_col="dollar_value",
        out=tmp_path / "api",
        settings=Settings(home=tmp_path / "home"),
        **mapping,
    )
    done = subprocess.run(
        [
            sys.executable, "-m", "churnscale", "features", "build", "--events", str(source),
            "--as-of", "1997-07-01,1997-10-01", "--horizon", "13w", "--windows", "30d,91d",
            "--time-col", "date", "--time-format", "%Y%m%d", "--event-type", "purchase",
            "--amount-col", "dollar_value", "--out", str(tmp_path / "cli"),
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    _, cli = load_info(tmp_path / "cli")
    assert (info.rows, info.fingerprint) == (cli.rows, cli.fingerprint) and info.rows > 200
    spec = FeatureSpec.from_dict(load_info(tmp_path / "api")[0].metadata["feature_spec"])
    assert spec.columns == EventColumns(amount_col="dollar_value", **mapping)
    assert (spec.event_types, spec.label) == (("purchase",), "inactivity")
