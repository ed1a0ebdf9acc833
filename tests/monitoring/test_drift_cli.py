from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest

from churnscale.cli import main
from churnscale.data.writers import write_batches
from churnscale.model.lightgbm import LightGBMModel
from churnscale.monitoring.simulation import redraw_categories, shift_numeric


@pytest.fixture(scope="module")
def new_data(fresh: pa.Table, tmp_path_factory: pytest.TempPathFactory) -> Path:
    table = shift_numeric(fresh.slice(0, 5_000), "usage_trend", scale=0.5)
    table = redraw_categories(table, "contract_type", value="month-to-month", share=0.6)
    path = tmp_path_factory.mktemp("drift-cli") / "new.parquet"
    write_batches(table.to_batches(), path)
    return path


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Done]:
    """``churnscale ARGS`` in this process, through the real entry point (exit code mapping)."""

    def run(*args: str) -> Done:
        monkeypatch.setattr(sys, "argv", ["churnscale", *args])
        code = 0
        try:
            main()
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        out, err = capsys.readouterr()
        return Done(code, out, err)

    return run


def test_drift_command_names_the_drifting_features_and_writes_a_report(
    cli: Callable[..., Done], drift_bundle: Path, new_data: Path, tmp_path: Path
) -> None:
    report = tmp_path / "drift.html"
    done = cli(
        "drift", str(new_data), "--model", str(drift_bundle), "--report", str(report), "--json"
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert {f["name"] for f in document["drifted_features"]} == {"usage_trend", "contract_type"}
    assert "usage_trend (PSI" in done.stderr and "contract_type (PSI" in done.stderr
    page = report.read_text()
    assert page.count("data:image/png;base64,") >= 4
    assert "usage_trend" in page and "<script" not in page
    assert 'src="http' not in page and "href=" not in page


def test_a_bundle_without_reference_needs_reference_data(
    cli: Callable[..., Done],
    drift_model: LightGBMModel,
    new_data: Path,
    trained_dataset: Path,
    tmp_path: Path,
) -> None:
    plain = LightGBMModel(drift_model.preprocessor, drift_model.booster, drift_model.metadata)
    bundle = plain.save(tmp_path / "old")
    refused = cli("drift", str(new_data), "--model", str(bundle))
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "error: --reference: expected reference data: the model bundle has no reference.json, "
        "got None"
    ]
    done = cli(
        "drift",
        str(new_data),
        "--model",
        str(bundle),
        "--reference",
        str(trained_dataset),
        "--fail-on-drift",
    )
    assert done.returncode == 1, done.stderr
    assert "usage_trend" in done.stdout and "2 drifting feature(s)" in done.stderr


def test_a_missing_source_is_one_line(
    cli: Callable[..., Done], drift_bundle: Path, tmp_path: Path
) -> None:
    done = cli("drift", str(tmp_path / "nope.csv"), "--model", str(drift_bundle))
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "nope.csv" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
