"""Compact and portable model forms: size, single-row latency, batch rows/s and test ROC-AUC.

One run trains LightGBM (``train_local``) and the MLP (``fit_mlp``, DDP over ``--workers``
processes) on the same stored dataset and split, then measures on the same hold-out rows:

- MLP float32 / fp16 / int8 (torch dynamic quantization) / pruned 50, 80, 90% (torch), and the
  float32 and int8 ONNX graphs under ONNX Runtime;
- LightGBM native (``Booster.predict``), compiled (lleaves) and ONNX (ONNX Runtime).

Every predictor runs on one thread. Size is the file that holds the model (``model.txt``,
``weights.safetensors``, ``model.onnx``, lleaves' compiled object). Ratios are against
LightGBM native measured in the same run.

    .venv/bin/python benchmarks/compress.py [--rows 200000] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Row:
    """One model form's figures."""

    name: str
    bytes: int
    latency_us: float
    rows_per_s: float
    auc: float


def dataset(rows: int, data_dir: Path) -> Path:
    """Generate and ingest ``rows`` customers once; later runs reuse them."""
    from churnscale.data.schema import SchemaHints
    from churnscale.data.store import ingest
    from churnscale.data.synthetic import GeneratorSpec, generate
    from churnscale.data.writers import write_batches

    raw, ds = data_dir / f"raw-{rows}.parquet", data_dir / f"ds-{rows}"
    data_dir.mkdir(parents=True, exist_ok=True)
    if not raw.exists():
        write_batches(generate(GeneratorSpec(rows, 0)), raw)
    if not ds.exists():
        ingest(str(raw), ds, hints=SchemaHints(target="churned"))
    return ds


def single_row_us(predict: Callable[[np.ndarray], object], rows: np.ndarray) -> float:
    """Median microseconds of one-row calls over up to 2,000 rows (after 200 warm-up calls)."""
    sample = [np.ascontiguousarray(rows[i : i + 1]) for i in range(min(len(rows), 2_000))]
    for row in sample[:200]:
        predict(row)
    times = []
    for row in sample:
        start = time.perf_counter_ns()
        predict(row)
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1_000


def batch_rows_per_s(predict: Callable[[np.ndarray], np.ndarray], rows: np.ndarray) -> float:
    """Best of 5 whole-matrix passes, in rows per second."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        predict(rows)
        best = min(best, time.perf_counter() - start)
    return len(rows) / best


def measure(
    name: str,
    size: int,
    predict: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
) -> Row:
    """All four figures of one predictor on the hold-out matrix."""
    auc = float(roc_auc_score(y, predict(x)))
    row = Row(name, size, single_row_us(predict, x), batch_rows_per_s(predict, x), auc)
    print(f"  measured {name}", file=sys.stderr)
    return row


def mlp_rows(result: object, x: np.ndarray, y: np.ndarray, tmp: Path) -> list[Row]:
    """The MLP's forms: torch bundles, then ONNX graphs under ONNX Runtime."""
    from churnscale.export.onnx_graphs import onnx_session, run_onnx
    from churnscale.export.writer import export_model
    from churnscale.neural.compress import compress

    model = result.model  # type: ignore[attr-defined]
    out: list[Row] = []
    for variant in ("float32", "fp16", "int8", "pruned:0.5", "pruned:0.8", "pruned:0.9"):
        small = compress(model, variant)
        path = small.save(tmp / f"mlp-{variant.replace(':', '-')}")
        size = (path / "weights.safetensors").stat().st_size
        out.append(measure(f"MLP {variant} (torch)", size, small.predict_matrix, x, y))
    for fmt in ("onnx", "onnx-int8"):
        path = tmp / f"mlp-{fmt}"
        export_model(model, fmt, path)
        session = onnx_session(path / "model.onnx")
        size = (path / "model.onnx").stat().st_size
        out.append(
            measure(f"MLP {fmt} (onnxruntime)", size, lambda m, s=session: run_onnx(s, m), x, y)
        )
    return out


def lightgbm_rows(model: object, x: np.ndarray, y: np.ndarray, tmp: Path) -> list[Row]:
    """LightGBM native, compiled by lleaves, and as an ONNX graph."""
    import lleaves

    from churnscale.export.onnx_graphs import onnx_session, run_onnx
    from churnscale.export.writer import export_model

    booster = model.booster  # type: ignore[attr-defined]
    booster.save_model(tmp / "model.txt")
    native = measure(
        "LightGBM native",
        (tmp / "model.txt").stat().st_size,
        lambda m: booster.predict(m, num_threads=1),
        x,
        y,
    )
    compiled = lleaves.Model(model_file=str(tmp / "model.txt"))
    compiled.compile(cache=str(tmp / "lleaves.o"))
    lleaves_row = measure(
        "LightGBM compiled (lleaves)",
        (tmp / "lleaves.o").stat().st_size,
        lambda m: compiled.predict(m, n_jobs=1),
        x,
        y,
    )
    export_model(model, "onnx", tmp / "lgb-onnx")
    session = onnx_session(tmp / "lgb-onnx" / "model.onnx")
    onnx_row = measure(
        "LightGBM onnx (onnxruntime)",
        (tmp / "lgb-onnx" / "model.onnx").stat().st_size,
        lambda m: run_onnx(session, m),
        x,
        y,
    )
    return [native, lleaves_row, onnx_row]


def print_table(rows: list[Row], base: Row) -> None:
    """The figures, each beside its ratio to LightGBM native."""
    header = (
        f"{'model form':34} {'size':>12} {'1-row µs':>14} {'batch rows/s':>20} {'test AUC':>16}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.name:34} {r.bytes / 1024:8.1f} KiB"
            f" {r.latency_us:7.1f} ({r.latency_us / base.latency_us:4.2f}x)"
            f" {r.rows_per_s:11,.0f} ({r.rows_per_s / base.rows_per_s:5.2f}x)"
            f" {r.auc:.4f} ({r.auc - base.auc:+.4f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".churnscale" / "bench-compress")
    args = parser.parse_args()

    import torch

    from churnscale.neural import MlpParams, fit_mlp
    from churnscale.training.local import TrainParams, train_local

    ds = dataset(args.rows, args.data_dir)
    start = time.perf_counter()
    lgb_result = train_local(
        ds, params=TrainParams(learning_rate=0.1, max_rounds=500, early_stopping_rounds=30)
    )
    lgb_seconds = time.perf_counter() - start
    start = time.perf_counter()
    mlp = fit_mlp(ds, params=MlpParams(max_epochs=args.epochs), workers=args.workers)
    if mlp is None:
        raise SystemExit("run this benchmark directly, not under torchrun")
    mlp_seconds = time.perf_counter() - start
    if not np.array_equal(lgb_result.y_holdout, mlp.y_holdout):
        raise SystemExit("the two models were not judged on the same hold-out rows")
    x, y = _holdout_matrix(mlp, ds), mlp.y_holdout
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="bench-compress-") as tmp:
        rows = lightgbm_rows(lgb_result.model, x, y, Path(tmp))
        rows += mlp_rows(mlp, x, y, Path(tmp))
    print(
        f"{args.rows:,} generated rows; hold-out {len(y):,} rows; one thread per predictor; "
        f"{os.cpu_count()} CPUs (shared)"
    )
    print(
        f"training: LightGBM {lgb_seconds:.1f} s ({lgb_result.best_iteration} trees); "
        f"MLP {mlp_seconds:.1f} s on {args.workers} DDP processes "
        f"(best epoch {mlp.best_epoch} of {len(mlp.history)})"
    )
    print_table(rows, rows[0])


def _holdout_matrix(result: object, ds: Path) -> np.ndarray:
    """The hold-out rows encoded in tree mode, in storage order (the order of ``y_holdout``)."""
    from churnscale.data.store import load_info
    from churnscale.training.local import EARLY_STOP_FRACTION
    from churnscale.training.plan import TEST, SplitSpec, plan_split
    from churnscale.training.sequence import iter_side_tables

    model = result.model  # type: ignore[attr-defined]
    schema, _ = load_info(ds)
    plan = plan_split(
        ds,
        schema,
        SplitSpec(seed=model.metadata["split"]["seed"]),
        early_stop_fraction=EARLY_STOP_FRACTION,
    )
    columns = [c.name for c in schema.features]
    parts = [model.preprocessor.transform(t) for t in iter_side_tables(plan, TEST, columns)]
    return np.concatenate(parts)


if __name__ == "__main__":
    main()
