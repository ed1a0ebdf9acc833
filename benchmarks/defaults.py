"""How to choose defaults on data nobody tuned for: refit rounds, capacity, and tree count.

Runs on generated datasets of many shapes (``benchmarks/defaults_data.py``), never on the
shared public ones. For each dataset and outer fold (StratifiedKFold, seed 0) the outer
training rows are split the way ``churnscale train`` splits them (20% hold-out, 10% of the
rest for early stopping, 72% boosted on), and each candidate parameter set is trained with
early stopping. Then, on the outer test rows:

- ``eval``: the early-stopped model itself (today's served model);
- ``refit e=E``: a model refitted on every outer training row for ``best × (1/0.72) ** E``
  rounds (E = 0, 0.5, 1);
- ``tol T``: the same refit, but from the first round whose early-stopping AUC is within T of
  the best (fewer trees).

``record`` writes one JSON line per (dataset, fold, candidate); ``report`` prints the mean test
AUC of every candidate and policy, and of choosing among candidates by early-stopping AUC
(optionally the fewest trees within 0.001 of the best).

    .venv/bin/python benchmarks/defaults.py record --out defaults.jsonl
    .venv/bin/python benchmarks/defaults.py report defaults.jsonl
    .venv/bin/python benchmarks/defaults.py generator --work /tmp/g100k
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

sys.path.insert(0, str(Path(__file__).resolve().parent))
from defaults_data import SHAPES, generate

BASE: dict[str, Any] = {
    "objective": "binary",
    "metric": "auc",
    "feature_fraction": 0.7,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "max_bin": 255,
    "deterministic": True,
    "force_col_wise": True,
    "verbosity": -1,
    "num_threads": 1,
    "seed": 0,
}
CANDIDATES: dict[str, dict[str, Any]] = {
    "today": {"learning_rate": 0.03, "num_leaves": 15, "min_child_samples": 10, "lambda_l2": 1.0},
    "lr05_l7": {"learning_rate": 0.05, "num_leaves": 7, "min_child_samples": 20, "lambda_l2": 1.0},
    "lr05_l15": {
        "learning_rate": 0.05,
        "num_leaves": 15,
        "min_child_samples": 20,
        "lambda_l2": 1.0,
    },
    "lr05_l31": {
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_child_samples": 20,
        "lambda_l2": 1.0,
    },
    "lr05_l63": {
        "learning_rate": 0.05,
        "num_leaves": 63,
        "min_child_samples": 20,
        "lambda_l2": 1.0,
    },
    "lr05_l15_m50_r10": {
        "learning_rate": 0.05,
        "num_leaves": 15,
        "min_child_samples": 50,
        "lambda_l2": 10.0,
    },
    "lr1_l15": {"learning_rate": 0.1, "num_leaves": 15, "min_child_samples": 20, "lambda_l2": 1.0},
    "lgbm_default": {
        "learning_rate": 0.1,
        "num_leaves": 31,
        "min_child_samples": 20,
        "lambda_l2": 0.0,
        "feature_fraction": 1.0,
        "bagging_fraction": 1.0,
        "bagging_freq": 0,
    },
}
EXPONENTS = (0.0, 0.5, 1.0)
TOLERANCES = (0.0005, 0.001)
FIT_SHARE = 0.72  # 0.8 × 0.9: the rows the evaluated model boosts on


def _datasets(x: np.ndarray, y: np.ndarray, cats: list[int], parts: list[np.ndarray]) -> Any:
    return [lgb.Dataset(x[p], y[p], categorical_feature=cats, free_raw_data=False) for p in parts]


def one_fold(
    x: np.ndarray, y: np.ndarray, cats: list[int], train: np.ndarray, test: np.ndarray
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(1)
    u = rng.random(train.size)
    fit, es = train[u >= 0.28], train[(u >= 0.2) & (u < 0.28)]
    records = []
    for name, values in CANDIDATES.items():
        params = {**BASE, **values}
        start = time.perf_counter()
        fit_set, es_set = _datasets(x, y, cats, [fit, es])
        curve: dict[str, Any] = {}
        booster = lgb.train(
            params,
            fit_set,
            num_boost_round=3_000,
            valid_sets=[es_set],
            callbacks=[lgb.early_stopping(100, verbose=False), lgb.record_evaluation(curve)],
        )
        aucs = np.asarray(curve["valid_0"]["auc"])
        best = int(np.argmax(aucs)) + 1
        rounds = {f"refit e={e}": round(best * (1 / FIT_SHARE) ** e) for e in EXPONENTS}
        for tol in TOLERANCES:
            first = int(np.argmax(aucs >= aucs.max() - tol)) + 1
            rounds[f"tol {tol}"] = round(first / FIT_SHARE)
        full = lgb.Dataset(x[train], y[train], categorical_feature=cats)
        refit = lgb.train(params, full, num_boost_round=max(rounds.values()))
        record: dict[str, Any] = {
            "candidate": name,
            "best_round": best,
            "es_auc": float(aucs.max()),
            "rounds": rounds,
            "test": {"eval": float(roc_auc_score(y[test], booster.predict(x[test])))},
        }
        for policy, count in rounds.items():
            scores = refit.predict(x[test], num_iteration=count)
            record["test"][policy] = float(roc_auc_score(y[test], scores))
        record["seconds"] = time.perf_counter() - start
        records.append(record)
    return records


def record(out: Path, shapes: list[str] | None) -> None:
    for shape in SHAPES:
        if shapes and shape.name not in shapes:
            continue
        x, y, cats = generate(shape)
        folds = 3 if shape.rows < 50_000 else 2
        splitter = StratifiedKFold(folds, shuffle=True, random_state=0)
        for fold, (train, test) in enumerate(splitter.split(x, y)):
            for rec in one_fold(x, y, cats, train, test):
                rec.update(dataset=shape.name, fold=fold)
                with out.open("a") as handle:
                    handle.write(json.dumps(rec) + "\n")
                print(json.dumps(rec), flush=True)


def report(path: Path, policy: str) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line]
    by: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by[(r["dataset"], r["fold"])].append(r)
    datasets = sorted({r["dataset"] for r in rows}, key=lambda n: [s.name for s in SHAPES].index(n))
    table: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    trees: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (dataset, _), recs in by.items():
        for r in recs:
            for name, auc in r["test"].items():
                table[f"{r['candidate']} / {name}"][dataset].append(auc)
            for name, count in r["rounds"].items():
                trees[f"{r['candidate']} / {name}"][dataset].append(count)
        for label, chosen in _selections(recs).items():
            table[f"{label} / {policy}"][dataset].append(chosen["test"][policy])
            trees[f"{label} / {policy}"][dataset].append(chosen["rounds"][policy])
    head = ["policy", *datasets, "mean", "mean trees"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for label in sorted(table, key=lambda k: -np.mean([np.mean(v) for v in table[k].values()])):
        means = [np.mean(table[label][d]) for d in datasets]
        count = np.mean([np.mean(v) for v in trees[label].values()]) if label in trees else 0
        cells = [f"{m:.4f}" for m in means]
        print(f"| {label} | " + " | ".join(cells) + f" | {np.mean(means):.4f} | {count:.0f} |")


def _selections(recs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Choosing a candidate by early-stopping AUC (plain, or fewest rounds within 0.001)."""
    pool = [r for r in recs if r["candidate"].startswith("lr05")]
    best = max(pool, key=lambda r: r["es_auc"])
    near = [r for r in pool if r["es_auc"] >= best["es_auc"] - 0.001]
    cheapest = min(near, key=lambda r: r["best_round"])
    return {"select lr05 by ES AUC": best, "select lr05, fewest trees within 0.001": cheapest}


def generator(work: Path) -> None:
    """The default model on the project generator's 100,000 rows: trees and fresh-row AUC of
    today's model, of refits by the best round, and by the first round within a tolerance."""
    import pyarrow.parquet as pq

    from churnscale.data.schema import SchemaHints
    from churnscale.data.store import ingest
    from churnscale.data.synthetic import generate_table
    from churnscale.training.local import TrainParams, train_local
    from churnscale.training.refit import refit_local

    if not (work / "ds").exists():
        work.mkdir(parents=True, exist_ok=True)
        pq.write_table(generate_table(100_000, seed=1), work / "raw.parquet")
        hints = SchemaHints(target="churned", id="customer_id")
        ingest(str(work / "raw.parquet"), work / "ds", hints=hints)
    test = generate_table(50_000, seed=99)
    y = test.column("churned").to_numpy()
    curve: list[float] = []
    params = TrainParams(threads=1)
    result = train_local(work / "ds", params=params, on_round=lambda _r, a: curve.append(a))
    aucs = np.asarray(curve)
    best = int(aucs.argmax()) + 1
    out: dict[str, Any] = {
        "today": {"trees": best, "auc": float(roc_auc_score(y, result.model.predict_proba(test)))}
    }
    rounds = {"best x 1/0.72": round(best / FIT_SHARE)}
    for tol in (0.0002, 0.0005, 0.001):
        first = int(np.argmax(aucs >= aucs.max() - tol)) + 1
        rounds[f"within {tol} x 1/0.72"] = round(first / FIT_SHARE)
    full, _ = refit_local(work / "ds", rounds=max(rounds.values()), params=params)
    x = full.preprocessor.transform(test)
    for name, count in rounds.items():
        scores = full.booster.predict(x, num_iteration=count)
        out[name] = {"trees": count, "auc": float(roc_auc_score(y, scores))}
    print(json.dumps(out, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("--out", type=Path, required=True)
    rec.add_argument("--shapes", default="")
    rep = sub.add_parser("report")
    rep.add_argument("path", type=Path)
    rep.add_argument("--policy", default="refit e=1.0")
    gen = sub.add_parser("generator")
    gen.add_argument("--work", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "generator":
        generator(args.work)
    elif args.command == "record":
        record(args.out, [s for s in args.shapes.split(",") if s])
    else:
        report(args.path, args.policy)


if __name__ == "__main__":
    main()
