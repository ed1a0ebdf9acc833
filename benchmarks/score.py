"""Batch scoring throughput, Parquet in → Parquet out, for a 100-tree model.

Beside it, in the same run and on the same rows: LightGBM's own ``predict`` on the encoded
matrix (all threads), and the whole scoring run with LightGBM as the predictor.

    .venv/bin/python benchmarks/score.py [--rows 2000000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from churnscale.config import Settings
from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest
from churnscale.data.synthetic import GeneratorSpec, generate, generate_table
from churnscale.data.writers import write_batches
from churnscale.model import ChurnModel
from churnscale.scoring import score
from churnscale.training.local import TrainParams, train_local


def train_100_trees(root: Path) -> ChurnModel:
    """A model of exactly 100 trees (no early stop) on 60,000 generated customers."""
    write_batches(generate_table(60_000, 5).to_batches(), root / "train.parquet")
    ingest(str(root / "train.parquet"), root / "ds", hints=SchemaHints(target="churned"))
    params = TrainParams(learning_rate=0.1, max_rounds=100, early_stopping_rounds=1_000)
    model = train_local(root / "ds", params=params).model
    model.save(root / "model")
    return ChurnModel.load(root / "model")


def timed_score(source: Path, model: ChurnModel, out: Path, settings: Settings) -> float:
    started = time.perf_counter()
    score(str(source), model, out, settings=settings)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = train_100_trees(root)
        data = root / "score.parquet"
        write_batches(generate(GeneratorSpec(args.rows, 11)), data)
        rows = pq.read_metadata(data).num_rows
        ours = timed_score(data, model, root / "a.parquet", Settings(predictor="compiled"))
        plain = timed_score(data, model, root / "b.parquet", Settings(predictor="lightgbm"))
        matrix = model.preprocessor.transform(pq.read_table(data))
        started = time.perf_counter()
        model.booster.predict(matrix)
        predict_only = time.perf_counter() - started
    print(f"{rows:,} rows, {model.booster.num_trees()} trees")
    print(f"{'what':<52}{'rows/s':>14}{'vs LightGBM predict':>22}")
    baseline = rows / predict_only
    for name, seconds in (
        ("churnscale score, Parquet→Parquet (compiled trees)", ours),
        ("churnscale score, Parquet→Parquet (LightGBM predict)", plain),
        ("LightGBM predict only (encoded matrix in RAM)", predict_only),
    ):
        print(f"{name:<52}{rows / seconds:>14,.0f}{(rows / seconds) / baseline:>21.2f}x")


if __name__ == "__main__":
    main()
