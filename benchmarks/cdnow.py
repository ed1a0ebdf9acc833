"""CDNOW acceptance: churn (no purchase in the next 39 weeks) from point-in-time event features.

Each CDNOW row is a purchase event (amount = dollar_value). Features are built by
``churnscale.features`` at as-of 1997-10-01 from the events before it (the 1997-01-01..09-30
observation window); label = no purchase in [1997-10-01, 1997-10-01 + 39 weeks). LightGBM is
scored by 5-fold stratified CV (random_state=42) against the anchor 0.772 (hand-built RFM
features, /work/shared/datasets/README.md), and by an out-of-time backtest: train on rows at
earlier as-of dates, test on the latest. Each setting is scored without and with the
builder's monotone constraints (``FeatureSpec.monotone_directions``, what ``churnscale train``
applies by default), and ``--seeds N`` repeats the CV over split seeds 0..N-1.

Usage: .venv/bin/python benchmarks/cdnow.py [--csv PATH] [--seeds N]
       [--backtest-only | --events-out PATH]

The per-date backtest runs ``churnscale.training.backtest.run_backtest`` (as ``churnscale
backtest`` does, TrainParams defaults) beside a baseline in the same run: hand RFM features at
every as-of date, LightGBM defaults, the same expanding training dates.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from churnscale.data.store import iter_dataset
from churnscale.features.builder import build_features
from churnscale.features.sources import BuildSources
from churnscale.features.spec import FeatureSpec, monotone_constraints

CSV = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "datasets"
    / "cdnow_events"
    / "CDNOW_master.csv"
)
ANCHOR_AUC = 0.772
AS_OF = date(1997, 10, 1)
BACKTEST = [date(1997, m, 1) for m in (4, 5, 6, 7, 8, 9)] + [AS_OF]
SPEC = FeatureSpec(
    windows=(14, 30, 61, 91),
    event_types=("purchase",),
    amount_types=("purchase",),
    cancel_type=None,
    horizon=39 * 7,
    label="inactivity",
)
TUNED: dict[str, Any] = {
    "n_estimators": 600,
    "learning_rate": 0.02,
    "num_leaves": 15,
    "min_child_samples": 20,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
}


def events_file(csv: Path, out: Path) -> str:
    """CDNOW rows as an event log: one purchase event per row."""
    raw = pd.read_csv(csv, dtype={"customer_id": str, "date": str})
    events = pd.DataFrame(
        {
            "customer_id": raw["customer_id"],
            "timestamp": pd.to_datetime(raw["date"], format="%Y%m%d"),
            "event_type": "purchase",
            "amount": raw["dollar_value"].astype(float),
        }
    )
    path = out / "cdnow_events.parquet"
    pa.parquet.write_table(pa.Table.from_pandas(events, preserve_index=False), path)
    return str(path)


def hand_rfm(csv: Path, labels: pd.DataFrame, as_of: date = AS_OF) -> pd.DataFrame:
    """The baseline: RFM aggregates of the observation window written by hand in pandas."""
    raw = pd.read_csv(csv, dtype={"customer_id": str, "date": str})
    raw["day"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    seen = raw[raw["day"] < pd.Timestamp(as_of)].groupby("customer_id")
    cut = pd.Timestamp(as_of)
    frame = pd.DataFrame(
        {
            "recency": (cut - seen["day"].max()).dt.days,
            "tenure": (cut - seen["day"].min()).dt.days,
            "frequency": seen.size(),
            "repeat_days": seen["day"].nunique() - 1,
            "monetary_total": seen["dollar_value"].sum(),
            "monetary_mean": seen["dollar_value"].mean(),
            "cds_total": seen["n_cds"].sum(),
        }
    ).reset_index()
    return frame.merge(labels[["customer_id", "churned"]], on="customer_id")


RFM = [
    "recency",
    "tenure",
    "frequency",
    "repeat_days",
    "monetary_total",
    "monetary_mean",
    "cds_total",
]


def build(events: str, out: Path, dates: list[date]) -> pd.DataFrame:
    """The point-in-time dataset at ``dates`` as a frame."""
    build_features(BuildSources(events), out, as_of=dates, spec=SPEC)
    return pa.Table.from_batches(list(iter_dataset(out))).to_pandas()


def model(params: dict[str, Any]) -> lgb.LGBMClassifier:
    return lgb.LGBMClassifier(**params, random_state=42, n_jobs=2, verbose=-1)


def monotone(params: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """``params`` plus the builder's monotone constraints for ``names``, as ``churnscale
    train`` applies them by default (``TrainParams.monotone``)."""
    constraints = monotone_constraints({"feature_spec": SPEC.to_dict()}, names)
    return {**params, "monotone_constraints": constraints}


def cross_validated(
    frame: pd.DataFrame, params: dict[str, Any], names: list[str], seed: int = 42
) -> tuple[float, float]:
    """Mean and std of ROC-AUC over 5 stratified folds."""
    x, y = frame[names], frame["churned"].to_numpy()
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    scores = []
    for train, test in folds.split(x, y):
        fitted = model(params).fit(x.iloc[train], y[train])
        scores.append(roc_auc_score(y[test], fitted.predict_proba(x.iloc[test])[:, 1]))
    return float(np.mean(scores)), float(np.std(scores))


def backtest(frame: pd.DataFrame, params: dict[str, Any]) -> tuple[float, int, int]:
    """ROC-AUC on the latest as-of date of a model trained on the earlier ones."""
    latest = frame["as_of"] == frame["as_of"].max()
    train, test = frame[~latest], frame[latest]
    names = SPEC.feature_names()
    fitted = model(params).fit(train[names], train["churned"])
    auc = roc_auc_score(test["churned"], fitted.predict_proba(test[names])[:, 1])
    return float(auc), len(train), len(test)


def hand_rfm_backtest(csv: Path, history: pd.DataFrame) -> dict[str, float]:
    """Baseline backtest: hand RFM at every as-of date, LightGBM defaults, same expanding split."""
    frames = []
    for day in BACKTEST:
        labels = history[history["as_of"] == pd.Timestamp(day)]
        frames.append(hand_rfm(csv, labels, day).assign(as_of=pd.Timestamp(day)))
    rfm = pd.concat(frames)
    aucs = {}
    for day in BACKTEST[1:]:
        train, test = rfm[rfm["as_of"] < pd.Timestamp(day)], rfm[rfm["as_of"] == pd.Timestamp(day)]
        fitted = model({}).fit(train[RFM], train["churned"])
        aucs[day.isoformat()] = roc_auc_score(
            test["churned"], fitted.predict_proba(test[RFM])[:, 1]
        )
    return aucs


def churnscale_backtest(dataset: Path, baseline: dict[str, float]) -> None:
    """``churnscale backtest`` (run_backtest, TrainParams defaults) beside the hand-RFM baseline."""
    from churnscale.training.backtest import run_backtest

    result = run_backtest(dataset)
    print(f"\n{'tested as-of':<14}{'train dates':>12}{'rows':>8}{'churn':>8}{'ROC-AUC':>9}"
          f"{'PR-AUC':>8}{'lift@10%':>9}{'hand RFM':>10}{'ratio':>7}")  # fmt: skip
    for step in result.steps:
        base = baseline[step.as_of]
        print(
            f"{step.as_of:<14}{len(step.train_dates):>12}{step.rows:>8,}{step.churn_rate:>8.4f}"
            f"{step.roc_auc or float('nan'):>9.4f}{step.pr_auc or float('nan'):>8.4f}"
            f"{step.top_decile_lift or float('nan'):>9.2f}{base:>10.4f}"
            f"{(step.roc_auc or float('nan')) / base:>7.3f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--csv", type=Path, default=CSV)
    parser.add_argument(
        "--events-out", type=Path, help="Only write the event log here (Parquet) and stop."
    )
    parser.add_argument(
        "--backtest-only", action="store_true", help="Only the per-date backtest and its baseline."
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=10,
        help="Also the mean 5-fold CV over split seeds 0..N-1, with and without constraints.",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        events = events_file(args.csv, root)
        if args.events_out is not None:
            shutil.copyfile(events, args.events_out)
            return
        start = time.perf_counter()
        single = build(events, root / "single", [AS_OF])
        seconds = time.perf_counter() - start
        history = build(events, root / "history", BACKTEST)
        churnscale_backtest(root / "history", hand_rfm_backtest(args.csv, history))
    if args.backtest_only:
        return
    print(
        f"built {len(single):,} rows x {len(SPEC.feature_names())} features in {seconds:.2f} s; "
        f"positive rate {single['churned'].mean():.4f}"
    )
    rfm = hand_rfm(args.csv, single)
    names = SPEC.feature_names()
    print(f"{'evaluation':<46}{'ROC-AUC':>16}{'hand RFM':>16}{'ratio':>7}{'anchor':>8}")
    settings = (
        ("lgbm default", {}, {}),
        ("lgbm tuned (anchor's setting)", TUNED, TUNED),
        ("tuned + monotone (train's default)", monotone(TUNED, names), TUNED),
    )
    for name, params, base_params in settings:
        mean, std = cross_validated(single, params, names)
        base, base_std = cross_validated(rfm, base_params, RFM)
        label = f"5-fold CV, {name}"
        print(
            f"{label:<46}{mean:>10.5f} ± {std:.3f}{base:>9.5f} ± {base_std:.3f}"
            f"{mean / base:>7.3f}{ANCHOR_AUC:>8.3f}"
        )
    for name, params in (
        ("lgbm default", {}),
        ("lgbm tuned", TUNED),
        ("tuned + monotone", monotone(TUNED, names)),
    ):
        auc, trained, tested = backtest(history, params)
        label = f"out-of-time, {name}"
        print(f"{label:<46}{auc:>16.4f}{'':>16}{'':>7}{ANCHOR_AUC:>8.3f}")
    print(
        f"out-of-time: trained on {trained:,} rows at {BACKTEST[0]}..{BACKTEST[-2]} (monthly), "
        f"tested on {tested:,} rows at {BACKTEST[-1]}"
    )
    if args.seeds:
        print(f"\n5-fold CV over split seeds 0..{args.seeds - 1} (tuned setting)")
        print(f"{'split seed':<12}{'unconstrained':>14}{'monotone':>10}{'difference':>12}")
        pairs = []
        for seed in range(args.seeds):
            plain = cross_validated(single, TUNED, names, seed)[0]
            bound = cross_validated(single, monotone(TUNED, names), names, seed)[0]
            pairs.append((plain, bound))
            print(f"{seed:<12}{plain:>14.4f}{bound:>10.4f}{bound - plain:>+12.4f}", flush=True)
        plain, bound = np.mean(pairs, axis=0)
        higher = sum(b > p for p, b in pairs)
        print(f"{'mean':<12}{plain:>14.4f}{bound:>10.4f}{bound - plain:>+12.4f}"
              f"   (monotone higher for {higher} of {len(pairs)} seeds)")  # fmt: skip


if __name__ == "__main__":
    main()
