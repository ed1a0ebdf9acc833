from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def churnscale(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "churnscale", *args], capture_output=True, text=True, check=False
    )


def test_generate_ingest_profile(tmp_path: Path) -> None:
    raw = tmp_path / "c.csv"
    assert (
        churnscale("generate", "--rows", "2000", "--format", "csv", "--out", str(raw)).returncode
        == 0
    )
    done = churnscale("ingest", str(raw), "--out", str(tmp_path / "ds"), "--target", "churned")
    assert done.returncode == 0, done.stderr
    shown = churnscale("profile", str(tmp_path / "ds"))
    assert shown.returncode == 0 and "target rate" in shown.stdout


def test_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    cases = [
        ("ingest", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o")),
        ("profile", str(tmp_path)),
        ("generate", "--out", str(tmp_path / "x.bin"), "--rows", "10", "--format", "xml"),
    ]
    for args in cases:
        done = churnscale(*args)
        assert done.returncode == 2, args
        assert "Traceback" not in done.stderr
        assert done.stderr.strip().startswith("error:"), done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_unknown_target_flag_names_the_column(tmp_path: Path) -> None:
    raw = tmp_path / "c.csv"
    raw.write_text("a,b\n1,2\n")
    done = churnscale("ingest", str(raw), "--out", str(tmp_path / "o"), "--target", "churn")
    assert done.returncode == 2
    assert "missing columns: churn" in done.stderr


def test_ingest_uses_the_batch_rows_setting(tmp_path: Path) -> None:
    import os

    import pyarrow.parquet as pq

    raw = tmp_path / "c.csv"
    churnscale("generate", "--rows", "5000", "--format", "csv", "--out", str(raw))
    done = subprocess.run(
        [sys.executable, "-m", "churnscale", "ingest", str(raw), "--out", str(tmp_path / "ds")],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "CHURNSCALE_BATCH_ROWS": "1024"},
    )
    assert done.returncode == 0, done.stderr
    part = pq.ParquetFile(tmp_path / "ds" / "part-00000.parquet")
    assert part.metadata.num_rows == 5000
    assert part.metadata.num_row_groups == 5  # one row group per batch of 1,024 rows
