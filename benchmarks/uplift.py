"""Uplift acceptance: Hillstrom's anchor protocol, and a simulation with known effects.

**Hillstrom** (/work/shared/datasets/README.md, "Uplift, Hillstrom"): Womens E-Mail vs No
E-Mail, outcome ``visit`` (or ``--outcome conversion``), 42,693 rows; features recency,
history_segment, history, mens, womens, zip_code, newbie, channel (the other outcomes dropped);
5-fold StratifiedKFold(shuffle, random_state=42) on treatment × outcome; the mean over folds of
the normalised Qini, AUUC and the observed uplift in the top 30%. churnscale's learners (S, T, X
and ``auto``, which picks one by 3-fold CV on each training fold) run beside same-run anchors:
scikit-uplift's SoloModel (S-learner), TwoModels (T-learner) and ClassTransformation on
``LGBMClassifier()`` defaults, and random scores. causalml is not installed: its uplift forest
and X-learner are the README's numbers (printed as such).

**Simulation** (``generate --treatment``): ``auto`` trained on 40,000 customers (seed 1), then
on 40,000 others (seed 2), whose true uplift is known, the policy "treat the top 30% by
predicted uplift" is compared with the oracle (top 30% by true uplift) and random targeting
(the expected incremental outcome of a random 30%). Goal: ≥ 80% of the oracle, ≥ 2× random.

Usage: .venv/bin/python benchmarks/uplift.py [--outcome visit|conversion] [--skip-simulation]
       [--folds N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
from lightgbm import LGBMClassifier
from sklearn.model_selection import StratifiedKFold

from churnscale.data.schema import Schema, SchemaHints
from churnscale.data.store import ingest
from churnscale.data.synthetic import generate_table
from churnscale.data.writers import write_batches
from churnscale.evaluation.uplift import uplift_at
from churnscale.evaluation.uplift_curves import qini_auc, uplift_auc
from churnscale.training.local import fit_preprocessor
from churnscale.training.plan import TEST, TRAIN
from churnscale.training.uplift import (
    UpliftSpec,
    cross_validated_qini,
    fit_side,
    read_arms,
    train_uplift,
)
from churnscale.training.uplift_fit import UpliftParams
from churnscale.training.uplift_rows import ArmRows, side_tables, uplift_of_side
from churnscale.training.uplift_split import strata_of

CSV = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "hillstrom" / "hillstrom.csv"
OUTCOMES = ("visit", "conversion", "spend")
#: The README's numbers for what cannot run here (visit Qini, AUUC, top-30% uplift).
README = {
    "causalml uplift forest (README)": (0.067, 0.031, 0.083),
    "causalml X-learner (README)": (0.061, 0.028, 0.073),
    "S-learner LightGBM (README)": (0.067, 0.031, 0.078),
}
GOAL_QINI, GOAL_TOP30 = 0.067, 0.083


def _figures(y: np.ndarray, score: np.ndarray, t: np.ndarray) -> tuple[float, float, float]:
    return qini_auc(y, score, t), uplift_auc(y, score, t), uplift_at(y, score, t, 0.3)


def _peers(
    matrix: np.ndarray, t: np.ndarray, y: np.ndarray, test: np.ndarray, train: np.ndarray
) -> dict[str, np.ndarray]:
    """scikit-uplift's approaches on LightGBM defaults, and random scores."""
    from sklift.models import ClassTransformation, SoloModel, TwoModels

    def lgbm() -> LGBMClassifier:
        return LGBMClassifier(verbose=-1, n_jobs=1)

    scores: dict[str, np.ndarray] = {}
    models = {
        "scikit-uplift SoloModel (S)": SoloModel(lgbm()),
        "scikit-uplift TwoModels (T)": TwoModels(lgbm(), lgbm(), method="vanilla"),
        "scikit-uplift ClassTransformation": ClassTransformation(lgbm()),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, model in models.items():
            model.fit(matrix[train], y[train], t[train])
            scores[name] = np.asarray(model.predict(matrix[test]), dtype=np.float64)
    scores["random"] = np.random.default_rng(0).random(test.size)
    return scores


def _hillstrom_folds(
    schema: Schema, rows: ArmRows, table: pa.Table, folds: int, spec: UpliftSpec
) -> tuple[dict[str, list[tuple[float, float, float]]], list[str]]:
    t, y = rows.values(None)
    results: dict[str, list[tuple[float, float, float]]] = {}
    chosen: list[str] = []
    started = time.perf_counter()
    outer = StratifiedKFold(folds, shuffle=True, random_state=42)
    for index, (train, test) in enumerate(outer.split(np.zeros(t.size), strata_of(t, y))):
        sides = np.full(t.size, TEST, dtype=np.int8)
        sides[train] = TRAIN
        rows.assign(sides)
        pre = fit_preprocessor(rows.plan(TRAIN), schema)
        cv = cross_validated_qini(pre, rows, learners=["s", "t", "x"], spec=spec)
        best = max(cv, key=lambda name: float(np.mean(cv[name])))
        chosen.append(best)
        scores: dict[str, np.ndarray] = {}
        for learner in ("s", "t", "x"):
            model = fit_side(pre, rows, TRAIN, learner=learner, spec=spec)
            scores[f"churnscale {learner.upper()}-learner"] = uplift_of_side(model, rows, TEST)
        scores["churnscale auto"] = scores[f"churnscale {best.upper()}-learner"]
        scores.update(_peers(pre.transform(table), t, y, test, train))
        for name, score in scores.items():
            results.setdefault(name, []).append(_figures(y[test], score, t[test]))
        print(
            f"  fold {index}: auto chose {best} ({time.perf_counter() - started:.0f} s so far)",
            flush=True,
        )
    return results, chosen


def hillstrom(outcome: str, folds: int, params: UpliftParams) -> None:
    """Each outer fold through ``churnscale train``'s streamed path (the Preprocessor fitted in
    one pass, every booster reading its rows from storage); the peers on the encoded matrix."""
    with tempfile.TemporaryDirectory() as scratch:
        drop = tuple(o for o in OUTCOMES if o != outcome)
        ingest(str(CSV), Path(scratch) / "ds", hints=SchemaHints(target=outcome, drop=drop))
        spec = UpliftSpec("segment", "Womens E-Mail", "No E-Mail", params=params)
        schema, rows = read_arms(Path(scratch) / "ds", spec)
        t, y = rows.values(None)
        print(
            f"Hillstrom {outcome}: {t.size:,} rows (left out: {rows.dropped}); "
            f"effect {y[t == 1].mean() - y[t == 0].mean():+.4f}"
        )
        table = pa.concat_tables(side_tables(rows, None, schema))
        started = time.perf_counter()
        results, chosen = _hillstrom_folds(schema, rows, table, folds, spec)
    print(f"\n{'method':40s} {'Qini':>15s} {'AUUC':>7s} {'top 30%':>8s}")
    for name, per_fold in results.items():
        figures = np.asarray(per_fold)
        mean, std = figures.mean(axis=0), figures.std(axis=0)
        print(f"{name:40s} {mean[0]:7.3f} ± {std[0]:.3f} {mean[1]:7.3f} {mean[2]:8.3f}")
    if outcome == "visit":
        for name, (qini, auuc, top) in README.items():
            print(f"{name:40s} {qini:7.3f}         {auuc:7.3f} {top:8.3f}")
        auto = np.asarray(results["churnscale auto"]).mean(axis=0)
        print(
            f"\ngoal Qini ≥ {GOAL_QINI}: {auto[0]:.3f} "
            f"{'met' if auto[0] >= GOAL_QINI else 'MISSED'}; "
            f"goal top-30% ≥ {GOAL_TOP30}: {auto[2]:.3f} "
            f"{'met' if auto[2] >= GOAL_TOP30 else 'MISSED'}"
        )
    print(
        f"auto chose {chosen}; {time.perf_counter() - started:.0f} s; load {os.getloadavg()[0]:.1f}"
    )


def simulation(params: UpliftParams, rows: int = 40_000) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch) / "raw.parquet"
        write_batches(generate_table(rows, 1, treatment=True).to_batches(), raw)
        hints = SchemaHints(target="retained", drop=("true_uplift",))
        ingest(str(raw), Path(scratch) / "ds", hints=hints)
        spec = UpliftSpec("offer", "offer", "no_offer", params=params)
        started = time.perf_counter()
        result = train_uplift(Path(scratch) / "ds", spec)
    fresh = generate_table(rows, 2, treatment=True)
    truth = fresh.column("true_uplift").to_numpy()
    predicted = result.model.predict(fresh)["uplift"]
    budget = int(0.3 * rows)
    policy = truth[np.argsort(-predicted, kind="stable")[:budget]].sum()
    oracle = truth[np.argsort(-truth, kind="stable")[:budget]].sum()
    random = truth.mean() * budget
    print(
        f"\nsimulation ({rows:,} training, {rows:,} fresh customers; auto chose "
        f"{result.model.learner}; {time.perf_counter() - started:.0f} s)"
    )
    print(
        f"  30% budget, incremental retained customers: policy {policy:.0f}, "
        f"oracle {oracle:.0f}, random {random:.0f}"
    )
    print(
        f"  policy / oracle = {policy / oracle:.3f} (goal ≥ 0.8); "
        f"policy / random = {policy / random:.2f} (goal ≥ 2)"
    )
    print(
        f"  hold-out Qini {result.holdout.qini:.3f}; corr(predicted, true) "
        f"{np.corrcoef(predicted, truth)[0, 1]:.3f}; load {os.getloadavg()[0]:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outcome", choices=("visit", "conversion"), default="visit")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--skip-simulation", action="store_true")
    parser.add_argument("--skip-hillstrom", action="store_true")
    args = parser.parse_args()
    params = UpliftParams(threads=1)
    if not args.skip_hillstrom:
        hillstrom(args.outcome, args.folds, params)
    if not args.skip_simulation:
        simulation(params)


if __name__ == "__main__":
    main()
