"""Cost of a full evaluation against one scikit-learn ROC AUC on the same scores.

    .venv/bin/python benchmarks/evaluation.py [--rows 100000 1000000 5000000]

Each size is timed best-of-3 on synthetic labels and scores; the baseline is
``sklearn.metrics.roc_auc_score`` alone, so the ratio says how many "AUC computations" the
whole evaluation (four curves and metrics, deciles, calibration, exact profit curve) costs.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from sklearn.metrics import roc_auc_score

from churnscale.evaluation import evaluate_scores


def best_of(runs: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000, 5_000_000])
    args = parser.parse_args()
    print(f"{'rows':>10} {'roc_auc_score s':>16} {'evaluate_scores s':>18} {'ratio':>7}")
    for rows in args.rows:
        rng = np.random.default_rng(rows)
        p = rng.beta(2.0, 5.0, rows)
        y = (rng.random(rows) < p).astype(np.int8)
        s = np.clip(p + rng.normal(0.0, 0.1, rows), 0.0, 1.0).astype(np.float32)
        baseline = best_of(3, lambda y=y, s=s: roc_auc_score(y, s))
        full = best_of(3, lambda y=y, s=s: evaluate_scores(y, s))
        print(f"{rows:>10,} {baseline:>16.3f} {full:>18.3f} {full / baseline:>6.1f}×")


if __name__ == "__main__":
    main()
