"""``churnscale.features.build`` makes the dataset ``churnscale features build`` makes."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

import churnscale
from churnscale.config import Settings
from churnscale.data.store import load_info
from churnscale.exceptions import ConfigError


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
