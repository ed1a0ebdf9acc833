"""Refit on every row: the same folds' AUC of the served model before (``--no-refit``) and after.

Protocol (issue 18): ``StratifiedKFold(5, shuffle=True, random_state=42)``; per fold, as a user
would, ``churnscale train TRAIN.csv --target … --id … --no-register --out M --json --threads 1``
then ``churnscale score TEST.csv --model M --out S.parquet``, ROC-AUC on the test fold. Data:
the shared Telco file (cleaned as ``benchmarks/quality_data.py`` says), or customers written
by ``churnscale generate --rows N --seed S --format csv`` (``--dataset generated``).

Systems, same folds, same run:

- ``before``: ``--no-refit``, the served model is the evaluated one (72% of the rows);
- ``after``: the default, refitted on every row for the evaluated models' rounds × (all rows /
  evaluated rows) (``ROUNDS_EXPONENT`` 1);
- ``rounds-x1`` (``--options``): the refit with the evaluated rounds unscaled (exponent 0),
  run through the same CLI with ``refit_rounds``' exponent default set to 0 in the process.

Prints one line a fold and system, then ``before``, each refit, and the ratio refit / before
of the mean AUCs:

    .venv/bin/python benchmarks/refit.py --dataset telco
    .venv/bin/python benchmarks/refit.py --dataset generated --rows 10000 --options
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_data import DATASETS, LABEL, folds, load

#: The CLI in a fresh interpreter; ``rounds-x1`` sets the refit's exponent default first.
LAUNCH = {
    "before": "from churnscale.cli import main; main()",
    "after": "from churnscale.cli import main; main()",
    "rounds-x1": (
        "import churnscale.training.refit as r; r.refit_rounds.__kwdefaults__['exponent'] = 0.0; "
        "from churnscale.cli import main; main()"
    ),
}
FLAGS = {"before": ["--no-refit"], "after": [], "rounds-x1": []}


def _cli(system: str, *args: str, home: Path) -> str:
    env = {**os.environ, "CHURNSCALE_HOME": str(home), "CHURNSCALE_PREDICTOR": "lightgbm"}
    command = [sys.executable, "-c", LAUNCH[system], *args]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"churnscale {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout


def dataset(name: str, rows: int, seed: int, root: Path) -> tuple[pd.DataFrame, str | None]:
    """The frame (label column ``LABEL``) and its id column."""
    if name != "generated":
        frame, _ = load(name)
        return frame, DATASETS[name].id
    path = root / "generated.csv"
    args = ["generate", "--rows", str(rows), "--seed", str(seed), "--format", "csv"]
    _cli("after", *args, "--out", str(path), home=root / "home")
    frame = pd.read_csv(path)
    frame[LABEL] = frame.pop("churned").astype(np.int8)
    return frame, "customer_id"


def one_fold(
    frame: pd.DataFrame, id_column: str | None, system: str, train: np.ndarray, test: np.ndarray
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="refit-") as tmp:
        root = Path(tmp)
        frame.iloc[train].to_csv(root / "train.csv", index=False)
        test_frame = frame.iloc[test].drop(columns=[LABEL])
        test_frame.to_csv(root / "test.csv", index=False)
        flags = ["--target", LABEL] + (["--id", id_column] if id_column else [])
        start = time.perf_counter()
        summary = json.loads(
            _cli(
                system,
                *("train", str(root / "train.csv"), *flags, "--no-register"),
                *("--out", str(root / "model"), "--json", "--threads", "1", *FLAGS[system]),
                home=root / "home",
            )
        )
        seconds = time.perf_counter() - start
        scores = root / "scores.parquet"
        _cli(
            system,
            *("score", str(root / "test.csv"), "--model", str(root / "model")),
            *("--out", str(scores)),
            home=root / "home",
        )
        scored = pq.read_table(scores).to_pandas()
        if id_column:  # scored rows in the order of the test file
            scored = scored.set_index(id_column).loc[test_frame[id_column].astype(str)]
        y = frame[LABEL].to_numpy()[test]
        return {
            "system": system,
            "auc": float(roc_auc_score(y, scored["churn_probability"].to_numpy())),
            "served_rows": summary["served_model"]["rows"],
            "rounds": summary["served_model"]["rounds"],
            "seconds": round(seconds, 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="telco", choices=[*DATASETS, "generated"])
    parser.add_argument("--rows", type=int, default=10_000, help="generated rows")
    parser.add_argument("--seed", type=int, default=3, help="generator seed")
    parser.add_argument("--options", action="store_true", help="also the unscaled rounds")
    args = parser.parse_args()
    systems = ["before", "after"] + (["rounds-x1"] if args.options else [])
    with tempfile.TemporaryDirectory(prefix="refit-data-") as tmp:
        frame, id_column = dataset(args.dataset, args.rows, args.seed, Path(tmp))
    results: dict[str, list[float]] = {s: [] for s in systems}
    rounds: dict[str, list[int]] = {s: [] for s in systems}
    for fold, train, test in folds(frame[LABEL].to_numpy()):
        for system in systems:
            record = one_fold(frame, id_column, system, train, test)
            results[system].append(record["auc"])
            rounds[system].append(record["rounds"])
            print(json.dumps({"dataset": args.dataset, "fold": fold, **record}), flush=True)
    before = float(np.mean(results["before"]))
    print(f"{args.dataset} ({len(frame):,} rows), 5 folds, mean AUC of the served model:")
    print(f"  before (--no-refit): {before:.4f}  (mean rounds {np.mean(rounds['before']):.0f})")
    for system in systems[1:]:
        mean = float(np.mean(results[system]))
        wins = sum(a > b for a, b in zip(results[system], results["before"], strict=True))
        print(
            f"  {system}: {mean:.4f}  ratio {mean / before:.4f}  ({mean - before:+.4f}; "
            f"better on {wins}/5 folds; mean rounds {np.mean(rounds[system]):.0f})"
        )


if __name__ == "__main__":
    main()
