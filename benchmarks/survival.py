"""Time to churn on Telco: churnscale's survival model against anchors in the same run.

Protocol of ../shared/datasets/README.md ("Anchors for survival"): duration ``tenure``
(months), event ``Churn == "Yes"``, the 11 rows with tenure 0 dropped, ``TotalCharges``
excluded (it leaks the duration), 5-fold StratifiedKFold on the event (seed 42); boosted
models early-stop on an inner 20% of each training fold. C = Harrell's; IBS over months 1-60
with the test fold censored at 61 (censoring curve from the training fold); AUC@t cumulative /
dynamic. Metrics are churnscale's own (tests hold them equal to scikit-survival's to 1e-12).

Anchors run here: Kaplan-Meier, and scikit-survival's gradient boosting (200 trees) when it
is installed (a test-only dependency), and XGBoost ``survival:aft`` (normal, sigma 1) when
xgboost is importable (it is not a project dependency: install it in the benchmark's
environment to run that row).

    python benchmarks/survival.py [--folds 1,2] [--anchors none|all]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

from churnscale.evaluation import survival as sm
from churnscale.training.aft import CANDIDATES, Durations, boost_aft
from churnscale.training.local import TrainParams

TELCO = (
    Path(__file__).resolve().parents[2]
    / "shared/datasets/telco/WA_Fn-UseC_-Telco-Customer-Churn.csv"
)
TIMES = np.arange(1.0, 61.0)
HORIZONS = (6.0, 12.0, 24.0)
#: One prediction: the survival matrix at TIMES and a risk score (higher = churns sooner).
Fitter = Callable[
    [pd.DataFrame, np.ndarray, np.ndarray, pd.DataFrame], tuple[np.ndarray, np.ndarray]
]


def telco() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    frame = pd.read_csv(TELCO)
    frame = frame[frame["tenure"] > 0].reset_index(drop=True)
    time_ = frame["tenure"].to_numpy(np.float64)
    event = (frame["Churn"] == "Yes").to_numpy()
    X = frame.drop(columns=["customerID", "Churn", "tenure", "TotalCharges"])
    for column in X.columns:
        if not pd.api.types.is_numeric_dtype(X[column]):
            X[column] = X[column].astype("category")
    return X, time_, event


def churnscale_aft(
    X: pd.DataFrame, t: np.ndarray, e: np.ndarray, test: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    Xf, Xv, tf, tv, ef, ev = train_test_split(X, t, e, test_size=0.2, random_state=42, stratify=e)
    params = TrainParams(threads=2)
    train = lgb.Dataset(
        Xf, label=ef.astype(np.float32), params={"verbosity": -1}, free_raw_data=False
    )
    valid = lgb.Dataset(Xv, label=ev.astype(np.float32), reference=train, free_raw_data=False)
    fit = boost_aft(
        train,
        valid,
        Durations.of(tf, ef, floor=0.5),
        Durations.of(tv, ev, floor=0.5),
        params,
        candidates=list(CANDIDATES),
        valid_matrix=lambda: Xv,
    )
    mu = fit.booster.predict(test, raw_score=True) + fit.intercept
    churnscale_aft.last = fit  # type: ignore[attr-defined]
    return fit.aft.survival(mu, TIMES), -mu


def kaplan_meier(
    X: pd.DataFrame, t: np.ndarray, e: np.ndarray, test: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    curve = sm.kaplan_meier(t, e).at(TIMES)
    return np.repeat(curve[None, :], len(test), axis=0), np.zeros(len(test))


def sksurv_gbm(
    X: pd.DataFrame, t: np.ndarray, e: np.ndarray, test: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    from sksurv.ensemble import GradientBoostingSurvivalAnalysis
    from sksurv.util import Surv

    both = pd.get_dummies(pd.concat([X, test]), dtype=float)
    model = GradientBoostingSurvivalAnalysis(n_estimators=200, random_state=42)
    model.fit(both.iloc[: len(X)].to_numpy(), Surv.from_arrays(e, t))
    rows = both.iloc[len(X) :].to_numpy()
    curves = model.predict_survival_function(rows)
    return np.stack([c(TIMES) for c in curves]), model.predict(rows)


def xgboost_aft(
    X: pd.DataFrame, t: np.ndarray, e: np.ndarray, test: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    import xgboost as xgb
    from scipy.stats import norm

    Xf, Xv, tf, tv, ef, ev = train_test_split(X, t, e, test_size=0.2, random_state=42, stratify=e)

    def matrix(frame: pd.DataFrame, tt: np.ndarray, ee: np.ndarray) -> Any:
        m = xgb.DMatrix(frame, enable_categorical=True)
        m.set_float_info("label_lower_bound", tt)
        m.set_float_info("label_upper_bound", np.where(ee, tt, np.inf))
        return m

    params = {
        "objective": "survival:aft",
        "aft_loss_distribution": "normal",
        "aft_loss_distribution_scale": 1.0,
        "tree_method": "hist",
        "nthread": 2,
        "seed": 42,
    }
    dtrain, dvalid = matrix(Xf, tf, ef), matrix(Xv, tv, ev)
    booster = xgb.train(
        params, dtrain, 2000, evals=[(dvalid, "v")], early_stopping_rounds=50, verbose_eval=False
    )
    dtest = xgb.DMatrix(test, enable_categorical=True)
    mu = np.log(booster.predict(dtest, iteration_range=(0, booster.best_iteration + 1)))
    return norm.sf((np.log(TIMES)[None, :] - mu[:, None]) / 1.0), -mu


def scores(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    out: tuple[np.ndarray, np.ndarray],
) -> dict[str, float]:
    (tt, te), (t, e), (survival, risk) = train, test, out
    t61, e61 = np.minimum(t, 61.0), e & (t <= 61.0)
    idx = [int(h) - 1 for h in HORIZONS]
    auc = sm.cumulative_dynamic_auc(tt, te, t61, e61, 1.0 - survival[:, idx], np.array(HORIZONS))
    result = {
        "c_index": sm.harrell_c(t, e, risk) if risk.std() > 0 else 0.5,
        "ibs": sm.integrated_brier_score(tt, te, t61, e61, survival, TIMES),
    }
    result.update({f"auc_{int(h)}": float(a) for h, a in zip(HORIZONS, auc, strict=True)})
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folds", default="1,2,3,4,5")
    parser.add_argument("--anchors", default="all", choices=["all", "none"])
    args = parser.parse_args()
    X, t, e = telco()
    models: dict[str, Fitter] = {"churnscale AFT (LightGBM)": churnscale_aft}
    if args.anchors == "all":
        models["Kaplan-Meier"] = kaplan_meier
        for name, fitter, module in (
            ("scikit-survival GBM (200 trees)", sksurv_gbm, "sksurv"),
            ("XGBoost survival:aft (normal, sigma 1)", xgboost_aft, "xgboost"),
        ):
            try:
                __import__(module)
                models[name] = fitter
            except ImportError:
                print(f"{name}: {module} not installed, row skipped", file=sys.stderr)
    wanted = {int(f) for f in args.folds.split(",")}
    folds = StratifiedKFold(5, shuffle=True, random_state=42).split(X, e)
    table: dict[str, list[dict[str, float]]] = {name: [] for name in models}
    chosen: list[Any] = []
    for number, (train, test) in enumerate(folds, start=1):
        if number not in wanted:
            continue
        for name, fitter in models.items():
            started = time.perf_counter()
            out = fitter(X.iloc[train], t[train], e[train], X.iloc[test])
            row = scores((t[train], e[train]), (t[test], e[test]), out)
            row["seconds"] = time.perf_counter() - started
            table[name].append(row)
            if fitter is churnscale_aft:
                fit = churnscale_aft.last  # type: ignore[attr-defined]
                chosen.append(
                    {
                        "fold": number,
                        "distribution": fit.aft.distribution,
                        "sigma": round(fit.aft.sigma, 4),
                        "rounds": fit.best_iteration,
                    }
                )
    summary = {
        name: {
            k: [float(np.mean([r[k] for r in rows])), float(np.std([r[k] for r in rows]))]
            for k in rows[0]
        }
        for name, rows in table.items()
        if rows
    }
    load = os.getloadavg()[0]
    print(
        json.dumps(
            {"folds": sorted(wanted), "load_1min": load, "chosen": chosen, "models": summary},
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
