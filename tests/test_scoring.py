"""Batch scoring: streamed, equal to the model, deciles, quarantine, CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from churnscale.config import Settings
from churnscale.data.quarantine import read_quarantine
from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest
from churnscale.data.synthetic import generate_table
from churnscale.data.writers import write_batches
from churnscale.exceptions import ConfigError, QuarantineLimitError, ScoringError, SourceError
from churnscale.model.lightgbm import LightGBMModel
from churnscale.scoring import decile_edges, deciles, score
from churnscale.scoring.cluster import ScoringJob, score_on_cluster, worker_model
from churnscale.training.local import TrainParams, train_local

SMALL = Settings(batch_rows=1_024)
#: LightGBM's own predict: no per-process compile, so a 2-worker cluster test stays short.
PLAIN = Settings(batch_rows=1_024, predictor="lightgbm")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[LightGBMModel, Path]:
    root = tmp_path_factory.mktemp("scoring")
    write_batches(generate_table(12_000, 4).to_batches(), root / "raw.parquet")
    ingest(str(root / "raw.parquet"), root / "ds", hints=SchemaHints(target="churned"))
    params = TrainParams(learning_rate=0.3, max_rounds=20, early_stopping_rounds=5)
    model = train_local(root / "ds", params=params).model
    model.save(root / "model")
    return LightGBMModel.load(root / "model"), root


def test_scores_a_dataset_in_chunks_equal_to_the_model(
    trained: tuple[LightGBMModel, Path], tmp_path: Path
) -> None:
    model, root = trained
    info = score(str(root / "ds"), model, tmp_path / "s.parquet", settings=SMALL, reasons=True)
    out = pq.read_table(tmp_path / "s.parquet")
    stored = pq.read_table(root / "raw.parquet")
    assert info.rows == stored.num_rows == out.num_rows and info.rejected == 0
    expected = dict(
        zip(stored.column("customer_id").to_pylist(), model.predict_proba(stored), strict=True)
    )
    got = out.column("churn_probability").to_numpy()
    want = np.array([expected[i] for i in out.column("customer_id").to_pylist()])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    counts = np.bincount(out.column("decile").to_numpy(), minlength=11)[1:]
    assert counts.min() > 0.09 * out.num_rows and counts.max() < 0.11 * out.num_rows
    top = out.filter(pa.compute.equal(out.column("decile"), 1)).column("churn_probability")
    low = out.filter(pa.compute.equal(out.column("decile"), 10)).column("churn_probability")
    assert pa.compute.min(top).as_py() >= pa.compute.max(low).as_py()
    first = out.column("reasons")[0].as_py()
    assert len(first) == 3 and first[0]["feature"] in model.feature_names


def test_raw_csv_bad_rows_are_quarantined(
    trained: tuple[LightGBMModel, Path], tmp_path: Path
) -> None:
    model, _ = trained
    table = generate_table(3_000, 8).drop_columns(["churned"])
    text = table.cast(pa.schema([pa.field(f.name, pa.string()) for f in table.schema]))
    values = text.column("tenure_months").to_pylist()
    values[10] = "ten"
    position = text.schema.get_field_index("tenure_months")
    pacsv.write_csv(
        text.set_column(position, "tenure_months", pa.array(values)), tmp_path / "in.csv"
    )
    info = score(str(tmp_path / "in.csv"), model, tmp_path / "out.parquet", settings=SMALL)
    assert info.rows == 2_999 and info.rejected == 1
    rejects = read_quarantine(tmp_path / "out.parquet.quarantine.jsonl")
    assert [(r.line, r.column, r.value) for r in rejects] == [(12, "tenure_months", "ten")]
    strict = Settings(batch_rows=1_024, max_bad_fraction=0.0)
    with pytest.raises(QuarantineLimitError, match="1 of 3000 rows"):
        score(str(tmp_path / "in.csv"), model, tmp_path / "again.parquet", settings=strict)
    assert not (tmp_path / "again.parquet").exists()
    with pytest.raises(SourceError, match="already exists"):
        score(str(tmp_path / "in.csv"), model, tmp_path / "out.parquet", settings=SMALL)


def test_decile_edges_split_scores_evenly() -> None:
    rng = np.random.default_rng(3)
    scores = rng.beta(2, 5, 100_000)
    histogram = np.bincount((scores * (1 << 20)).astype(np.int64), minlength=(1 << 20) + 1)
    edges = decile_edges(histogram)
    np.testing.assert_allclose(edges, np.quantile(scores, np.arange(1, 10) / 10), atol=1e-5)
    counts = np.bincount(deciles(scores, edges), minlength=11)[1:]
    assert np.all(np.abs(counts - 10_000) < 50)
    assert deciles(np.array([1.0, 0.0]), edges).tolist() == [1, 10]


def test_cli_score(trained: tuple[LightGBMModel, Path], tmp_path: Path) -> None:
    _, root = trained
    command = [sys.executable, "-m", "churnscale", "score", str(root / "ds")]
    done = subprocess.run(
        [*command, "--model", str(root / "model"), "--out", str(tmp_path / "o.parquet")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert pq.read_metadata(tmp_path / "o.parquet").num_rows == 12_000
    missing = subprocess.run(
        [*command, "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "x.parquet")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2 and "no bundle directory" in missing.stderr


def _raw_parquet_with_a_bad_value(path: Path) -> None:
    """6,000 customers in four row groups; row 4,000 has tenure "ten" (a string column)."""
    table = generate_table(6_000, 9).drop_columns(["churned"])
    tenure = table.column("tenure_months").cast(pa.string()).to_pylist()
    tenure[3_999] = "ten"
    position = table.schema.get_field_index("tenure_months")
    table = table.set_column(position, "tenure_months", pa.array(tenure))
    pq.write_table(table, path, row_group_size=1_500)


def test_cluster_scores_equal_local_scores(
    trained: tuple[LightGBMModel, Path], tmp_path: Path
) -> None:
    model, root = trained
    source = tmp_path / "in.parquet"
    _raw_parquet_with_a_bad_value(source)
    local = score(str(source), model, tmp_path / "local.parquet", settings=PLAIN, reasons=True)
    info = score_on_cluster(
        str(source),
        str(root / "model"),
        tmp_path / "parts",
        settings=PLAIN,
        cluster="local:2",
        reasons=True,
    )
    names = sorted(p.name for p in (tmp_path / "parts").iterdir())
    assert names == [f"part-{i:05d}.parquet" for i in range(4)]
    got = pq.read_table(tmp_path / "parts")
    want = pq.read_table(tmp_path / "local.parquet")
    assert (
        got.column_names
        == want.column_names
        == [
            "customer_id",
            "churn_probability",
            "reasons",
            "decile",
        ]
    )
    assert got.column("customer_id").equals(want.column("customer_id"))
    np.testing.assert_allclose(
        got.column("churn_probability").to_numpy(),
        want.column("churn_probability").to_numpy(),
        rtol=0,
        atol=1e-12,
    )
    assert got.column("decile").equals(want.column("decile"))
    raw = pq.read_table(source)
    good = raw.filter(pa.array(np.arange(raw.num_rows) != 3_999))
    typed = good.set_column(
        good.schema.get_field_index("tenure_months"),
        "tenure_months",
        good.column("tenure_months").cast(pa.float64()),
    )
    np.testing.assert_allclose(
        want.column("churn_probability").to_numpy(), model.predict_proba(typed), rtol=0, atol=1e-6
    )
    assert got.column("reasons").to_pylist()[:5] == want.column("reasons").to_pylist()[:5]
    assert (info.rows, info.rejected, info.decile_edges) == (5_999, 1, local.decile_edges)
    rejects = read_quarantine(tmp_path / "parts.quarantine.jsonl")
    assert [(r.line, r.column, r.value) for r in rejects] == [(4_000, "tenure_months", "ten")]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_cluster_scoring_refuses_a_bad_address_and_non_parquet_data(
    trained: tuple[LightGBMModel, Path], tmp_path: Path
) -> None:
    _, root = trained
    model = str(root / "model")
    with pytest.raises(ConfigError, match="local:N or tcp://HOST:PORT"):
        score_on_cluster(str(root / "ds"), model, tmp_path / "o", settings=SMALL, cluster="x")
    pacsv.write_csv(generate_table(10, 1), tmp_path / "in.csv")
    with pytest.raises(SourceError, match="reads Parquet only"):
        score_on_cluster(
            str(tmp_path / "in.csv"), model, tmp_path / "o", settings=SMALL, cluster="local:1"
        )
    assert not (tmp_path / "o").exists()


def test_worker_refuses_a_bundle_other_than_the_clients(
    trained: tuple[LightGBMModel, Path],
) -> None:
    model, root = trained
    job = ScoringJob(
        reference=str(root / "model"),
        manifest="0" * 64,
        settings=SMALL,
        schema=model.preprocessor.schema.to_dict(),
        conformed=True,
        reasons=False,
        staging=str(root),
    )
    with pytest.raises(ScoringError, match="resolved on this worker to a bundle with manifest"):
        worker_model(job)
