"""Peer systems of ``benchmarks/quality.py``, run in the peers' own environment.

CatBoost, FLAML and AutoGluon are not project dependencies: this script runs under a separate
virtual environment (e.g. ``/work/bench-venv``) and prints one JSON line per fold:
``{"dataset", "system", "fold", "auc", "seconds"}``.

    /work/bench-venv/bin/python benchmarks/quality_peers.py --dataset telco --system catboost
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_data import LABEL, features, folds, load

THREADS = 2
Fit = Callable[[pd.DataFrame, np.ndarray, pd.DataFrame], np.ndarray]


def plain_lightgbm(x: pd.DataFrame, y: np.ndarray, test: pd.DataFrame) -> np.ndarray:
    """``LGBMClassifier()`` defaults, pandas categories (the anchors' ``lgbm_default``)."""
    from lightgbm import LGBMClassifier

    model = LGBMClassifier(verbose=-1, n_jobs=THREADS).fit(x, y)
    return np.asarray(model.predict_proba(test)[:, 1])


def catboost(x: pd.DataFrame, y: np.ndarray, test: pd.DataFrame) -> np.ndarray:
    """``CatBoostClassifier()`` defaults with the text columns as categorical features."""
    from catboost import CatBoostClassifier

    cats = [c for c in x.columns if isinstance(x[c].dtype, pd.CategoricalDtype)]

    def prepared(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.copy()
        for column in cats:
            out[column] = out[column].astype(str)
        return out

    model = CatBoostClassifier(
        verbose=0, thread_count=THREADS, random_seed=0, allow_writing_files=False
    )
    model.fit(prepared(x), y, cat_features=cats)
    return np.asarray(model.predict_proba(prepared(test))[:, 1])


def flaml(x: pd.DataFrame, y: np.ndarray, test: pd.DataFrame) -> np.ndarray:
    """FLAML ``AutoML`` for ROC-AUC, 60 s a fold (its default estimators, refit on all rows)."""
    from flaml import AutoML

    automl = AutoML()
    automl.fit(
        x,
        y,
        task="classification",
        metric="roc_auc",
        time_budget=60,
        n_jobs=THREADS,
        seed=0,
        verbose=0,
    )
    return np.asarray(automl.predict_proba(test)[:, 1])


def autogluon(x: pd.DataFrame, y: np.ndarray, test: pd.DataFrame) -> np.ndarray:
    """AutoGluon ``medium_quality`` preset for ROC-AUC, at most 120 s a fold."""
    from autogluon.tabular import TabularPredictor

    train = x.copy()
    train[LABEL] = y
    with tempfile.TemporaryDirectory() as path:
        predictor = TabularPredictor(LABEL, eval_metric="roc_auc", path=path, verbosity=0)
        predictor.fit(
            train,
            presets="medium_quality",
            time_limit=120,
            num_cpus=THREADS,
        )
        scores = predictor.predict_proba(test, as_multiclass=False)
    return np.asarray(scores)


SYSTEMS: dict[str, Fit] = {
    "lightgbm": plain_lightgbm,
    "catboost": catboost,
    "flaml": flaml,
    "autogluon": autogluon,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--system", required=True, choices=sorted(SYSTEMS))
    parser.add_argument("--folds", default="0,1,2,3,4")
    args = parser.parse_args()
    frame, y = load(args.dataset)
    x = features(frame, args.dataset)
    wanted = {int(f) for f in args.folds.split(",")}
    for fold, train, test in folds(y):
        if fold not in wanted:
            continue
        start = time.perf_counter()
        scores = SYSTEMS[args.system](x.iloc[train], y[train], x.iloc[test])
        seconds = time.perf_counter() - start
        auc = float(roc_auc_score(y[test], scores))
        line = {
            "dataset": args.dataset,
            "system": args.system,
            "fold": fold,
            "auc": auc,
            "seconds": seconds,
        }
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
