"""How many rows the report's mean |contribution| needs: 100,000 (the whole assessment sample)
against the seeded random subset of CONTRIBUTION_ROWS that ``assess`` explains.

Per-row contributions (LightGBM ``pred_contrib``) are the costliest step of ``churnscale
train`` after boosting: with the default model, ~0.4 ms a row on one core. This prints, for the
model ``churnscale train`` makes with its defaults on generated customers, the time of each and
how far the subset's means are from the 100,000 rows' (largest relative error among the top 10
features, Spearman rank correlation over all features, whether the top 10 are the same features,
and which places of the top 10 hold another feature), for the shipped seed and four others:

    .venv/bin/python benchmarks/explain_sample.py --rows 200000
    .venv/bin/python benchmarks/explain_sample.py --model M --dataset D   # an existing pair
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from scipy.stats import spearmanr

from churnscale.data.store import iter_dataset
from churnscale.evaluation.assessment import (
    CONTRIBUTION_ROWS,
    SAMPLE_ROWS,
    contribution_rows,
    sample_table,
)
from churnscale.evaluation.explain import mean_abs_contributions
from churnscale.model.lightgbm import LightGBMModel

CLI = [sys.executable, "-m", "churnscale"]


def _prepare(rows: int, work: Path) -> tuple[Path, Path]:
    """Generated customers, ingested, and the model ``churnscale train`` makes by default."""
    raw, dataset, model = work / "raw.parquet", work / "ds", work / "model"
    run = lambda *a: subprocess.run([*CLI, *a], check=True, capture_output=True)  # noqa: E731
    run("generate", "--rows", str(rows), "--seed", "1", "--out", str(raw))
    run("ingest", str(raw), "--out", str(dataset), "--target", "churned", "--id", "customer_id")
    run("train", str(dataset), "--no-register", "--out", str(model), "--threads", "1")
    return model, dataset


def _means(model: LightGBMModel, table: pa.Table) -> tuple[dict[str, float], float]:
    matrix = model.preprocessor.transform(table)
    start = time.perf_counter()
    contributions = model.contributions(matrix)
    seconds = time.perf_counter() - start
    return mean_abs_contributions(contributions, model.feature_names), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="generated customers")
    parser.add_argument("--model", type=Path, help="an existing bundle (with --dataset)")
    parser.add_argument("--dataset", type=Path, help="the stored dataset it was trained on")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.model is None:
            model_dir, dataset = _prepare(args.rows, Path(tmp))
        else:
            model_dir, dataset = args.model, args.dataset
        model = LightGBMModel.load(model_dir)
        sample = sample_table(iter_dataset(dataset, batch_rows=65_536))
        full, full_s = _means(model, sample)
        print(
            f"trees {model.booster.num_trees()}, features {len(full)}\n"
            f"{sample.num_rows:,} rows (SAMPLE_ROWS {SAMPLE_ROWS:,}): {full_s:.2f} s, "
            f"{full_s / sample.num_rows * 1e3:.3f} ms a row"
        )
        names = list(full)
        top = names[:10]
        for seed in range(5):
            if seed == 0:
                subset = contribution_rows(sample)
            else:
                rng = np.random.default_rng(seed)
                picked = rng.choice(sample.num_rows, size=CONTRIBUTION_ROWS, replace=False)
                subset = sample.take(pa.array(np.sort(picked)))
            means, seconds = _means(model, subset)
            error = max(abs(means[f] - full[f]) / full[f] for f in top)
            rho = spearmanr([full[f] for f in names], [means[f] for f in names]).statistic
            order = list(means)[:10]
            moved = [f"{i + 1}:{f}" for i, f in enumerate(order) if f != top[i]]
            label = "shipped (seed 0)" if seed == 0 else f"seed {seed}"
            print(
                f"{subset.num_rows:,} rows, {label}: {seconds:.2f} s "
                f"({full_s / seconds:.1f}x faster), top-10 max rel. error {error:.4f}, "
                f"Spearman {rho:.4f}, same top-10 features: {set(order) == set(top)}, "
                f"places that differ: {', '.join(moved) or 'none'}"
            )


if __name__ == "__main__":
    main()
