from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from churnscale.data.store import iter_dataset, load_info
from churnscale.exceptions import SchemaError
from churnscale.features.builder import build_features
from churnscale.features.sources import BuildSources
from churnscale.features.spec import FeatureSpec


def churnscale(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "churnscale", *args], capture_output=True, text=True, check=False
    )


def test_generate_then_build_with_static_attributes(tmp_path: Path) -> None:
    customers, events, out = tmp_path / "c.parquet", tmp_path / "e.csv", tmp_path / "ds"
    made = churnscale("generate", "--rows", "300", "--out", str(customers), "--format", "parquet")
    assert made.returncode == 0, made.stderr
    made = churnscale(
        "generate", "--rows", "300", "--out", str(tmp_path / "c.csv"), "--format", "csv",
        "--events", str(events),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    built = churnscale(
        "features", "build", "--events", str(events), "--as-of", "2026-06-30,2026-04-01",
        "--horizon", "90d", "--windows", "7d,30d", "--static", str(customers), "--out", str(out),
        "--bucket-rows", "50000",
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    schema, _ = load_info(out)
    assert schema.as_of_column == "as_of" and schema.target == "churned"
    assert "monthly_charges" in schema.names and "count_login_30d" in schema.names
    table = pa.Table.from_batches(list(iter_dataset(out)))
    at_snapshot = table.filter(pc.equal(table["as_of"], pa.scalar(date(2026, 6, 30))))
    truth = pq.read_table(customers).select(["customer_id", "churned"])
    joined = at_snapshot.select(["customer_id", "churned"]).join(
        truth, "customer_id", "customer_id", right_suffix="_truth"
    )
    assert joined.num_rows == 300
    assert joined["churned"].to_pylist() == joined["churned_truth"].to_pylist()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--as-of", "2026-13-01"], "--as-of: expected dates as YYYY-MM-DD"),
        (["--horizon", "90x"], "--horizon: expected a positive duration"),
        (["--windows", "7d,0d"], "--windows: expected a positive duration"),
        (["--label", "maybe"], "--label: expected cancel or inactivity"),
    ],
)
def test_bad_flags_are_one_line_naming_the_flag(
    tmp_path: Path, flags: list[str], message: str
) -> None:
    log = tmp_path / "e.csv"
    log.write_text("customer_id,timestamp,event_type,amount\nC1,2026-01-01,login,\n")
    args = ["--events", str(log), "--as-of", "2026-02-01", "--out", str(tmp_path / "o"), *flags]
    done = churnscale("features", "build", *args)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error:") and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("customer_id,when,event_type\nC1,2026-01-01,login\n", "missing columns: timestamp"),
        ("customer_id,timestamp,event_type\nC1,2026-01-01,login\nC1,soon,login\n", "line 3"),
        ("customer_id,timestamp,event_type\nC1,2026-01-01,logn\n", "event_type must be one of"),
    ],
)
def test_bad_event_files_name_the_flag_file_and_line(
    tmp_path: Path, content: str, message: str
) -> None:
    log = tmp_path / "e.csv"
    log.write_text(content)
    args = ["--events", str(log), "--as-of", "2026-02-01", "--out", str(tmp_path / "o")]
    done = churnscale("features", "build", *args)
    assert done.returncode == 2
    assert f"--events {log}" in done.stderr and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "o").exists()


def _events(tmp_path: Path) -> str:
    path = tmp_path / "e.csv"
    path.write_text("customer_id,timestamp,event_type\nC1,2026-01-01,login\nC2,2026-01-02,login\n")
    return str(path)


def test_static_rows_are_used_only_before_the_as_of_date(tmp_path: Path) -> None:
    static = tmp_path / "s.csv"
    static.write_text("customer_id,as_of,plan\nC1,2026-01-01,basic\nC1,2026-02-01,premium\n")
    sources = BuildSources(_events(tmp_path), str(static), "as_of")
    spec = FeatureSpec(windows=(30,))
    dates = [date(2026, 1, 15), date(2026, 2, 1), date(2026, 2, 2)]
    build_features(sources, tmp_path / "ds", as_of=dates, spec=spec)
    table = pa.Table.from_batches(list(iter_dataset(tmp_path / "ds")))
    plans = {
        (r["customer_id"], r["as_of"].date().day): r["plan"]
        for r in table.select(["customer_id", "as_of", "plan"]).to_pylist()
    }
    assert plans == {
        ("C1", 15): "basic", ("C1", 1): "basic", ("C1", 2): "premium",
        ("C2", 15): None, ("C2", 1): None, ("C2", 2): None,
    }  # fmt: skip


def test_static_errors(tmp_path: Path) -> None:
    static = tmp_path / "s.csv"
    static.write_text("customer_id,plan\nC1,basic\nC1,premium\n")
    spec = FeatureSpec(windows=(30,))
    events = _events(tmp_path)
    with pytest.raises(SchemaError, match="appears more than once; name the date column"):
        build_features(
            BuildSources(events, str(static)), tmp_path / "a", as_of=[date(2026, 2, 1)], spec=spec
        )
    with pytest.raises(SchemaError, match="--static-time names a column --static lacks"):
        build_features(
            BuildSources(events, str(static), "day"),
            tmp_path / "b",
            as_of=[date(2026, 2, 1)],
            spec=spec,
        )
    clash = tmp_path / "k.csv"
    clash.write_text("customer_id,count_30d\nC1,3\n")
    with pytest.raises(
        SchemaError, match="clash with built feature names; unknown columns: count_30d"
    ):
        build_features(
            BuildSources(events, str(clash)), tmp_path / "c", as_of=[date(2026, 2, 1)], spec=spec
        )
    assert not any(p.name.startswith((".a", ".b", ".c", "a", "b", "c")) for p in tmp_path.iterdir())
