"""Quality out of the box: churnscale against peers on the same 5 folds of the public datasets.

Protocol (issue 18): ``StratifiedKFold(5, shuffle=True, random_state=42)`` on Telco, Bank
churn and BigML telecom (``../shared/datasets``, cleaned as in ``benchmarks/quality_data.py``).
Per fold, churnscale runs as a user would: ``churnscale train TRAIN.csv --target … --id …
--no-register --out M --json`` then ``churnscale score TEST.csv --model M --out S.parquet``,
and the fold's ROC-AUC is taken on S. Systems:

- ``defaults``: ``churnscale train`` with its defaults (the served model refitted on every row);
- ``no-refit``: the same with ``--no-refit`` (the model before issue 18);
- ``budget``: ``--time-budget 300`` (search + ensemble served as one model), with the merged
  model's trees and its single-row prediction time (µs, compiled by lleaves, fold 0);
- peers, from ``benchmarks/quality_peers.py`` run in their own environment (CatBoost, FLAML
  and AutoGluon are not project dependencies): plain ``LGBMClassifier()``, ``CatBoostClassifier()``,
  FLAML 60 s a fold, AutoGluon ``medium_quality`` (120 s a fold).

Every fold result is appended to a JSON Lines file, so a run can be resumed and the table
printed from what is there:

    .venv/bin/python benchmarks/quality.py run --systems defaults,no-refit --results ours.jsonl
    /work/bench-venv/bin/python benchmarks/quality_peers.py --dataset telco --system flaml \
        >> peers.jsonl
    .venv/bin/python benchmarks/quality.py table ours.jsonl peers.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_data import DATASETS, LABEL, folds, load

CHURNSCALE = [sys.executable, "-m", "churnscale"]
FLAGS = {"defaults": [], "no-refit": ["--no-refit"], "budget": ["--time-budget", "300"]}
PEERS = ("lightgbm", "catboost", "flaml", "autogluon")


def _cli(*args: str, home: Path) -> str:
    # Scores by LightGBM's own predict: equal to the compiled trees' within 1e-6 (tested), and
    # no compile of a large ensemble per fold; the compiled cost is measured once per dataset.
    env = {**os.environ, "CHURNSCALE_HOME": str(home), "CHURNSCALE_PREDICTOR": "lightgbm"}
    done = subprocess.run(
        [*CHURNSCALE, *args], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"churnscale {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout


def prediction_us(bundle: Path, rows: int = 2_000) -> float:
    """Median µs of one single-row prediction by the compiled trees (the service's path)."""
    from churnscale.model.lightgbm import LightGBMModel
    from churnscale.model.predictor import Predictor

    model = LightGBMModel.load(bundle)
    predictor = Predictor(model)
    predictor.warm()
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(rows, len(model.feature_names)))
    times = []
    for row in matrix:
        start = time.perf_counter_ns()
        predictor.predict_one(row)
        times.append(time.perf_counter_ns() - start)
    return float(np.median(times)) / 1_000


def one_fold(
    name: str, system: str, fold: int, train: np.ndarray, test: np.ndarray
) -> dict[str, Any]:
    frame, y = load(name)
    public = DATASETS[name]
    with tempfile.TemporaryDirectory(prefix="quality-") as tmp:
        root = Path(tmp)
        frame.iloc[train].to_csv(root / "train.csv", index=False)
        test_frame = frame.iloc[test].drop(columns=[LABEL])
        test_frame.to_csv(root / "test.csv", index=False)
        flags = ["--target", LABEL] + (["--id", public.id] if public.id else [])
        start = time.perf_counter()
        out = _cli(
            "train",
            str(root / "train.csv"),
            *flags,
            "--no-register",
            "--out",
            str(root / "model"),
            "--json",
            "--threads",
            "1",
            *FLAGS[system],
            home=root / "home",
        )
        seconds = time.perf_counter() - start
        summary = json.loads(out)
        _cli(
            "score",
            str(root / "test.csv"),
            "--model",
            str(root / "model"),
            "--out",
            str(root / "scores.parquet"),
            home=root / "home",
        )
        scored = pq.read_table(root / "scores.parquet").to_pandas()
        if public.id:  # scored rows in the order of the test file
            scored = scored.set_index(public.id).loc[test_frame[public.id].astype(str)]
        auc = float(roc_auc_score(y[test], scored["churn_probability"].to_numpy()))
        from churnscale.model.lightgbm import LightGBMModel

        model = LightGBMModel.load(root / "model")
        return {
            "dataset": name,
            "system": system,
            "fold": fold,
            "auc": auc,
            "seconds": seconds,
            "trees": model.booster.num_trees(),
            "served_rows": summary["served_model"]["rows"],
            "reported_holdout_auc": summary["metrics"]["roc_auc"],
            "time_budget": {
                k: v for k, v in (summary.get("time_budget") or {}).items() if k != "search"
            },
            "us_per_prediction": prediction_us(root / "model") if fold == 0 else None,
        }


def run(systems: list[str], datasets: list[str], results: Path, order: list[int]) -> None:
    done = set()
    if results.exists():
        for line in results.read_text().splitlines():
            r = json.loads(line)
            done.add((r["dataset"], r["system"], r["fold"]))
    for system in systems:
        for name in datasets:
            _, y = load(name)
            splits = {fold: (train, test) for fold, train, test in folds(y)}
            for fold in order:
                train, test = splits[fold]
                if (name, system, fold) in done:
                    continue
                record = one_fold(name, system, fold, train, test)
                with results.open("a") as handle:
                    handle.write(json.dumps(record) + "\n")
                print(json.dumps(record), flush=True)


def _load(paths: list[Path]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Fold records by (dataset, system); only complete 5-fold runs count."""
    records: dict[tuple[str, str], dict[int, dict[str, Any]]] = defaultdict(dict)
    for path in paths:
        for line in path.read_text().splitlines():
            r = json.loads(line)
            records[(r["dataset"], r["system"])].setdefault(r["fold"], r)  # first run of a fold
    return {k: list(v.values()) for k, v in records.items() if len(v) == 5}


def _mean(
    records: dict[tuple[str, str], list[dict[str, Any]]], key: tuple[str, str], field: str = "auc"
) -> float | None:
    values = [r[field] for r in records.get(key, []) if r.get(field) is not None]
    return float(np.mean(values)) if values else None


def _fmt(value: float | None, fmt: str = ".4f") -> str:
    return "-" if value is None else format(value, fmt)


def table(paths: list[Path]) -> None:
    """The issue's table: churnscale beside the best peer, then every peer."""
    records = _load(paths)
    print(
        "| dataset | churnscale defaults | --no-refit | --time-budget 300 | best peer "
        "| gap defaults | gap budget | trees defaults / budget | µs a prediction defaults / budget "
        "|"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in DATASETS:
        peers = {p: _mean(records, (name, p)) for p in PEERS}
        known = {p: v for p, v in peers.items() if v is not None}
        best = max(known, key=lambda p: known[p]) if known else None
        ours = {s: _mean(records, (name, s)) for s in FLAGS}
        gaps = {s: None if best is None or v is None else v - known[best] for s, v in ours.items()}
        trees = [_fmt(_mean(records, (name, s), "trees"), ".0f") for s in ("defaults", "budget")]
        cost = [
            _fmt(_mean(records, (name, s), "us_per_prediction"), ".1f")
            for s in ("defaults", "budget")
        ]
        peer = f"{best} {known[best]:.4f}" if best else "-"
        print(
            f"| {name} | {_fmt(ours['defaults'])} | {_fmt(ours['no-refit'])} "
            f"| {_fmt(ours['budget'])} | {peer} | {_fmt(gaps['defaults'], '+.4f')} "
            f"| {_fmt(gaps['budget'], '+.4f')} | {' / '.join(trees)} | {' / '.join(cost)} |"
        )
    print()
    print("| dataset | " + " | ".join(PEERS) + " |")
    print("|---|" + "---|" * len(PEERS))
    for name in DATASETS:
        cells = [_fmt(_mean(records, (name, p))) for p in PEERS]
        print(f"| {name} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    go = sub.add_parser("run")
    go.add_argument("--systems", default="defaults,no-refit,budget")
    go.add_argument("--datasets", default=",".join(DATASETS))
    go.add_argument("--results", type=Path, required=True)
    go.add_argument("--folds", default="0,1,2,3,4", help="Folds to run, in this order.")
    show = sub.add_parser("table")
    show.add_argument("paths", type=Path, nargs="+")
    args = parser.parse_args()
    if args.command == "run":
        order = [int(f) for f in args.folds.split(",")]
        run(args.systems.split(","), args.datasets.split(","), args.results, order)
    else:
        table(args.paths)


if __name__ == "__main__":
    main()
