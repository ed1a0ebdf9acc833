from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from stacked import DATES, stacked_dataset

from churnscale.cli import main
from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest
from churnscale.data.synthetic import generate_table
from churnscale.data.writers import write_batches
from churnscale.exceptions import ConfigError, SchemaError
from churnscale.training.backtest import run_backtest
from churnscale.training.local import TrainParams

FAST = TrainParams(learning_rate=0.2, max_rounds=40, early_stopping_rounds=10)


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def churnscale(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Done]:
    """Run ``churnscale ARGS`` in this process through ``cli.main`` (exit code, stdout, stderr)."""

    def run(*args: str) -> Done:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["churnscale", *args])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return Done(code, out, err)

    return run


@pytest.fixture(scope="module")
def flipped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Churn follows ``signal`` at every date but the last, where it is reversed."""
    return stacked_dataset(tmp_path_factory.mktemp("flipped"), flip_last=True)


def test_each_date_is_scored_by_a_model_of_earlier_dates_only(flipped: Path) -> None:
    result = run_backtest(flipped, params=FAST)
    assert [s.as_of for s in result.steps] == list(DATES[1:])
    assert [s.train_dates for s in result.steps] == [DATES[:1], DATES[:2], DATES[:3]]
    assert all(s.rows == 600 and s.train_rows == 600 * len(s.train_dates) for s in result.steps)
    first, second, last = result.steps
    assert first.roc_auc is not None and first.roc_auc > 0.8
    assert second.roc_auc is not None and second.roc_auc > 0.8
    # the last date's reversed labels never reach its own model: it ranks them backwards
    assert last.roc_auc is not None and last.roc_auc < 0.2
    assert last.top_decile_lift is not None and last.top_decile_lift < 0.5
    document = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert document["steps"][2]["as_of"] == DATES[3] and document["window"] is None


def test_rolling_window_and_gap(flipped: Path) -> None:
    rolling = run_backtest(flipped, params=FAST, window=1)
    assert [s.train_dates for s in rolling.steps] == [(DATES[0],), (DATES[1],), (DATES[2],)]
    gapped = run_backtest(flipped, params=FAST, gap_days=40)  # dates are 28-31 days apart
    assert (
        gapped.steps[0].skipped is not None and "no earlier as-of date" in gapped.steps[0].skipped
    )
    assert [s.train_dates for s in gapped.steps[1:]] == [DATES[:1], DATES[:2]]
    with pytest.raises(ConfigError, match=r"--window: expected at least 1"):
        run_backtest(flipped, window=0)


def test_cli_table_json_and_report(
    flipped: Path, tmp_path: Path, churnscale: Callable[..., Done]
) -> None:
    report = tmp_path / "bt.html"
    params = '{"learning_rate": 0.2, "max_rounds": 40, "early_stopping_rounds": 10}'
    done = churnscale("backtest", str(flipped), "--params", params, "--window", "2",
                      "--json", "--report", str(report))  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert [len(s["train_dates"]) for s in document["steps"]] == [1, 2, 2]
    assert document["params"]["learning_rate"] == 0.2
    page = report.read_text()
    assert "<table>" in page and DATES[3] in page and "data:image/png;base64," in page
    table = churnscale("backtest", str(flipped), "--params", params, "--target", "churned")
    assert table.returncode == 0, table.stderr
    assert "ROC-AUC" in table.stdout and DATES[2] in table.stdout


def _assert_one_line(done: Done, message: str) -> None:
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().startswith("error:") and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_cli_refuses_a_dataset_without_as_of_dates(
    tmp_path: Path, churnscale: Callable[..., Done]
) -> None:
    write_batches(generate_table(200, 3).to_batches(), tmp_path / "raw.parquet")
    ingest(str(tmp_path / "raw.parquet"), tmp_path / "plain", hints=SchemaHints(target="churned"))
    _assert_one_line(churnscale("backtest", str(tmp_path / "plain")), "has no as-of column")


def test_cli_refuses_one_date_and_bad_flags(
    tmp_path: Path, churnscale: Callable[..., Done]
) -> None:
    one = stacked_dataset(tmp_path, dates=(DATES[0],), rows=50)
    _assert_one_line(churnscale("backtest", str(one)), "needs at least two as-of dates")
    _assert_one_line(
        churnscale("backtest", str(one), "--params", '{"leaves": 3}'), "--params: expected keys"
    )
    _assert_one_line(
        churnscale("backtest", str(one), "--params", '{"num_leaves": "many"}'),
        "--params: expected numbers for numeric keys",
    )
    _assert_one_line(
        churnscale("backtest", str(one), "--target", "noise"), "--target 'noise': the dataset"
    )


def test_library_errors_name_the_problem(tmp_path: Path) -> None:
    one = stacked_dataset(tmp_path, dates=(DATES[0],), rows=50)
    with pytest.raises(SchemaError, match=r"needs at least two as-of dates; the dataset has 1"):
        run_backtest(one)
