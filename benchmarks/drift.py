"""Cost of drift monitoring, each figure beside the work it rides on, in the same run.

1. ``build_reference`` over N rows vs encoding + scoring the same rows (what training's
   hold-out scoring already does): the extra cost of the histograms.
2. ``WindowProfile`` counting + the full report (PSI, KS / chi-squared) over N rows vs
   encoding + scoring them.
3. The service's hot path ``PredictionService.answer`` with the monitoring observer attached
   (ring-buffer write + prediction-log insert) vs without.
4. ``GET /v1/monitoring/drift`` work on a full 10,000-row window.

Run: .venv/bin/python benchmarks/drift.py [--rows N] [--calls N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
from prometheus_client import CollectorRegistry

from churnscale.config import Settings
from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest
from churnscale.data.synthetic import generate_table
from churnscale.data.writers import write_batches
from churnscale.model.lightgbm import LightGBMModel
from churnscale.monitoring import DriftThresholds, WindowProfile, build_reference
from churnscale.monitoring.simulation import shift_numeric
from churnscale.serving.monitoring import ModelMonitor
from churnscale.serving.service import PredictionService
from churnscale.training.local import TrainParams, train_local


def best(function: Callable[[], object], repeats: int = 3) -> float:
    """Best wall time of ``repeats`` calls, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def trained(root: Path) -> LightGBMModel:
    write_batches(generate_table(20_000, 5).to_batches(), root / "raw.parquet")
    ingest(str(root / "raw.parquet"), root / "ds", hints=SchemaHints(target="churned"))
    params = TrainParams(learning_rate=0.1, max_rounds=200, early_stopping_rounds=20)
    return train_local(root / "ds", params=params).model


def row(table: pa.Table, model: LightGBMModel, i: int) -> dict[str, object]:
    x = table.slice(i, 1).to_pylist()[0]
    return {k: v for k, v in x.items() if k in model.preprocessor.schema.names}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        model = trained(Path(scratch))
    data = generate_table(args.rows, 9).drop_columns(["churned"])
    batches = data.to_batches(max_chunksize=65_536)
    drifted = shift_numeric(data, "usage_trend", scale=0.5).to_batches(max_chunksize=65_536)

    def encode_and_score(parts: list[pa.RecordBatch]) -> None:
        for batch in parts:
            model.predict_matrix(model.preprocessor.transform(batch))

    base = best(lambda: encode_and_score(batches))
    reference = build_reference(model, batches)
    building = best(lambda: build_reference(model, batches))

    def profile(parts: list[pa.RecordBatch]) -> None:
        window = WindowProfile(reference)
        for batch in parts:
            matrix = model.preprocessor.transform(batch)
            window.add(matrix, model.predict_matrix(matrix))
        window.report(DriftThresholds())

    comparing = best(lambda: profile(drifted))
    trees = model.booster.num_trees()
    print(f"{args.rows:,} rows, {len(model.feature_names)} features, {trees} trees")
    print(f"{'measure':<58}{'value':>10}{'baseline':>10}{'ratio':>8}")
    line = "{:<58}{:>10.3f}{:>10.3f}{:>8.2f}"
    print(
        line.format(
            "build_reference, s (baseline: encode + score)", building, base, building / base
        )
    )
    print(
        line.format(
            "profile + drift report, s (baseline: encode + score)",
            comparing,
            base,
            comparing / base,
        )
    )

    model.reference = reference
    settings = Settings(model="bench", predictor="lightgbm")
    x = [row(data, model, i) for i in range(args.calls)]
    plain = PredictionService(model, settings)
    watched = PredictionService(model, settings)
    monitor = ModelMonitor(settings, CollectorRegistry())
    monitor.attach(watched)

    def answer_all(service: PredictionService) -> None:
        for customer in x:
            service.answer(customer, reasons=False)

    without = best(lambda: answer_all(plain)) / args.calls * 1e6
    with_monitor = best(lambda: answer_all(watched)) / args.calls * 1e6
    print(
        line.format(
            "answer(), µs/call with observer (baseline: none)",
            with_monitor,
            without,
            with_monitor / without,
        )
    )
    window_ms = best(monitor.drift, repeats=5) * 1e3
    label = f"live drift report on a {len(monitor.window or [])}-row window, ms"
    print(f"{label:<58}{window_ms:>10.1f}")


if __name__ == "__main__":
    main()
