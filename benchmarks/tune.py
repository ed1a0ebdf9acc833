"""Tuning benchmark: the wall time of parallel trials, and the AUC gain over the defaults.

``speed``: one study of N trials on one public dataset, run on a 1-worker and on a 2-worker
local Dask cluster (one LightGBM thread per trial in both), each in a fresh study: wall time
of each and their ratio.

``gain``: nested cross-validation on every public dataset. The outer folds are the 5 hashed
folds of ``train_local(folds=5, fold=k)`` (the folds of the default anchors). For each outer
fold k a fresh study of N trials is run with inner K-fold CV on the other four folds only
(fold k is LEFT_OUT of every trial); then ``TrainParams()`` and the best trial's parameters
each train on the four folds and are scored on fold k, which no trial ever read.

    .venv/bin/python benchmarks/tune.py speed --trials 12
    .venv/bin/python benchmarks/tune.py gain --trials 12 --inner-cv 3
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest
from churnscale.training.cluster import cluster_client
from churnscale.training.local import TrainParams, train_local
from churnscale.training.plan import Exclusion
from churnscale.training.search import params_from
from churnscale.training.tune import Search, TuneSpec

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
OUTER_FOLDS = 5
#: One LightGBM thread everywhere: on a loaded shared machine OpenMP's spinning threads make a
#: two-thread fit tens of times slower, and it keeps the 1- vs 2-worker comparison fair.
BASE = TrainParams(threads=1)
#: Default AUCs measured before this benchmark (5 hashed folds, ``TrainParams()``).
ANCHORS = {"telco": 0.8453, "bank": 0.8671, "bigml": 0.9089}


@dataclass(frozen=True)
class Public:
    """A public dataset and the hints it is ingested with."""

    name: str
    file: str
    hints: SchemaHints


DATASETS = [
    Public(
        "telco",
        "telco/WA_Fn-UseC_-Telco-Customer-Churn.csv",
        SchemaHints(target="Churn", id="customerID"),
    ),
    Public(
        "bank",
        "bank_churn_modelling/Churn_Modelling.csv",
        SchemaHints(target="Exited", drop=("RowNumber", "CustomerId", "Surname")),
    ),
    Public("bigml", "telecom_orange_bigml/telecom_churn.csv", SchemaHints(target="Churn")),
]


def stored(public: Public, work: Path) -> Path:
    """Ingest the public file once into ``work``."""
    out = work / public.name
    if not out.exists():
        ingest(str(SHARED / public.file), out, hints=public.hints)
    return out


def speed(dataset: Path, *, trials: int, cv: int, work: Path) -> dict[str, float]:
    """Wall time of ``trials`` trials on 1 and on 2 local workers (fresh study each); the
    cluster is started (and its workers warmed) before the clock starts."""
    times: dict[str, float] = {}
    for workers in (1, 2):
        spec = TuneSpec(trials=trials, cv=cv, cluster=f"local:{workers}", base=BASE)
        url = f"sqlite:///{work / f'speed-{workers}.db'}"
        search = Search.prepare(dataset, spec, url=url, name=f"speed-{workers}")
        with cluster_client(f"local:{workers}") as client:
            client.run(_warm)
            start = time.perf_counter()
            records = search.run(client=client)
            times[f"{workers} worker(s) s"] = time.perf_counter() - start
        states = [r.state for r in records]
        times[f"{workers} worker(s) pruned"] = float(states.count("PRUNED"))
        times[f"{workers} worker(s) best"] = float(search.best(records).value)
    times["ratio 1/2"] = times["1 worker(s) s"] / times["2 worker(s) s"]
    return times


def _warm() -> None:
    """Import what a trial needs, so that the clock does not time imports."""
    import optuna  # noqa: F401

    import churnscale.training.search  # noqa: F401


def _auc(dataset: Path, params: TrainParams, fold: int) -> float:
    result = train_local(dataset, params=params, folds=OUTER_FOLDS, fold=fold)
    return float(roc_auc_score(result.y_holdout, result.scores))


def gain(dataset: Path, *, trials: int, cv: int, client: Any, work: Path) -> dict[str, object]:
    """Nested CV: per outer fold, default and tuned AUC on the fold no trial read."""
    default, tuned, seconds = [], [], 0.0
    base = BASE
    for fold in range(OUTER_FOLDS):
        spec = TuneSpec(trials=trials, cv=cv, cluster="local:1", base=base)
        outer = Exclusion(seed=base.seed, folds=OUTER_FOLDS, fold=fold)
        url = f"sqlite:///{work / f'gain-{dataset.name}.db'}"
        search = Search.prepare(dataset, spec, url=url, name=f"fold-{fold}", exclude=outer)
        start = time.perf_counter()
        best = search.best(search.run(client=client))
        seconds += time.perf_counter() - start
        default.append(_auc(dataset, base, fold))
        tuned.append(_auc(dataset, params_from(best.params, base), fold))
        print(
            f"  {dataset.name} fold {fold}: default {default[-1]:.4f} tuned {tuned[-1]:.4f} "
            f"(inner CV {best.value:.4f}, trial {best.number})",
            file=sys.stderr,
            flush=True,
        )
    return {
        "default": float(np.mean(default)),
        "tuned": float(np.mean(tuned)),
        "gain": float(np.mean(tuned) - np.mean(default)),
        "folds improved": sum(t > d for t, d in zip(tuned, default, strict=True)),
        "tuning s": seconds,
    }


def main() -> None:
    """Parse flags, run the chosen part and print a table (and JSON on the last line)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("speed", "gain"))
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--cv", type=int, default=3, help="folds per trial (speed)")
    parser.add_argument("--inner-cv", type=int, default=3, help="inner folds per trial (gain)")
    parser.add_argument("--dataset", default="bank", choices=[d.name for d in DATASETS])
    parser.add_argument("--only", nargs="*", default=[d.name for d in DATASETS])
    parser.add_argument("--cluster", default="local:2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tune-bench-") as tmp:
        work = Path(tmp)
        if args.part == "speed":
            public = next(d for d in DATASETS if d.name == args.dataset)
            figures = speed(stored(public, work), trials=args.trials, cv=args.cv, work=work)
            print(f"{args.trials} trials x {args.cv}-fold CV on {public.name}")
            for key, value in figures.items():
                print(f"{key:>22}  {value:10.3f}")
            print(json.dumps(figures))
            return
        rows = {}
        with cluster_client(args.cluster) as client:
            for public in (d for d in DATASETS if d.name in args.only):
                dataset = stored(public, work)
                rows[public.name] = gain(
                    dataset, trials=args.trials, cv=args.inner_cv, client=client, work=work
                )
        print(
            f"nested CV: {OUTER_FOLDS} outer hash folds; {args.trials} trials x "
            f"{args.inner_cv}-fold inner CV per outer fold, on {args.cluster}"
        )
        print(
            f"{'dataset':8} {'anchor':>7} {'default':>8} {'tuned':>8} {'gain':>8} "
            f"{'improved':>8} {'tuning s':>9}"
        )
        for name, r in rows.items():
            print(
                f"{name:8} {ANCHORS[name]:7.4f} {r['default']:8.4f} {r['tuned']:8.4f} "
                f"{r['gain']:+8.4f} {r['folds improved']!s:>5}/{OUTER_FOLDS} "
                f"{r['tuning s']:9.1f}"
            )
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
