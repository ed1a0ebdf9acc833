"""A simulated month of arriving labels with drift injected halfway.

The champion is trained on June. July arrives a day at a time (``--rows-per-day`` customers a
day, labels known at the end of the day); from day ``--drift-day`` two features are reported
differently (``usage_trend`` halved, ``days_since_last_login`` + 20 days), which is both data
drift and, for the champion, concept drift. Every ``--check-every`` days the week's data is
compared with the champion's reference (``churnscale drift``); the first check that flags drift
triggers ``churnscale retrain`` on the rows since the last clean check, and the rest of the
month is scored by whichever model holds ``churn@champion``.

Run: ``.venv/bin/python examples/drift_month.py`` (about a minute on 2 cores). Everything is
written under a temporary directory (``--keep DIR`` keeps it there instead).
"""

from __future__ import annotations

import argparse
import datetime
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
from sklearn.metrics import roc_auc_score

from churnscale.config import Settings
from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest, iter_dataset
from churnscale.data.synthetic import generate_table
from churnscale.data.writers import write_batches
from churnscale.model.lightgbm import LightGBMModel
from churnscale.monitoring import build_reference
from churnscale.monitoring.dataset import source_drift
from churnscale.monitoring.report import render_drift_report
from churnscale.monitoring.simulation import shift_numeric, spread_dates
from churnscale.registry import Registry
from churnscale.registry.references import ModelRef
from churnscale.training.local import TrainParams, train_local
from churnscale.training.plan import SplitSpec
from churnscale.training.retrain import RetrainSpec, alias_version, retrain

TIME = "snapshot_date"
JUNE, JULY = datetime.date(2026, 6, 1), datetime.date(2026, 7, 1)
PARAMS = TrainParams(learning_rate=0.1, max_rounds=300, early_stopping_rounds=30)


def july(rows_per_day: int, drift_day: int, seed: int) -> list[pa.Table]:
    """One table per day of July; from ``drift_day`` on, two features drift."""
    days = []
    for day in range(1, 32):
        start = JULY + datetime.timedelta(days=day - 1)
        table = spread_dates(generate_table(rows_per_day, seed + day), TIME, start=start, days=1)
        if day >= drift_day:
            table = shift_numeric(table, "usage_trend", scale=0.5)
            table = shift_numeric(table, "days_since_last_login", offset=20.0)
        days.append(table)
    return days


def champion(root: Path, registry: Registry, rows: int) -> int:
    """Train June's model with its reference, register it and alias it champion."""
    june = spread_dates(generate_table(rows, 1), TIME, start=JUNE, days=30)
    write_batches(june.to_batches(), root / "june.parquet")
    hints = SchemaHints(target="churned", time_column=TIME)
    ingest(str(root / "june.parquet"), root / "june", hints=hints)
    split = SplitSpec(kind="time", time_column=TIME)
    model = train_local(root / "june", split=split, params=PARAMS).model
    model.reference = build_reference(model, iter_dataset(root / "june"))
    with registry.run(experiment="churnscale-train", run_name="june") as run:
        version = run.register_bundle(model.save(root / "june-model"), name="churn").version
    registry.promote("churn", version, alias="champion")
    return version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows-per-day", type=int, default=1_500)
    parser.add_argument("--june-rows", type=int, default=30_000)
    parser.add_argument("--drift-day", type=int, default=16)
    parser.add_argument("--check-every", type=int, default=7)
    parser.add_argument("--keep", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        run(args, args.keep or Path(scratch))


def run(args: argparse.Namespace, root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    settings = Settings(home=root / "home")
    registry = Registry(settings)
    first = champion(root, registry, args.june_rows)
    ref = ModelRef("churn", alias="champion")
    print(f"day  0: churn/{first} trained on {args.june_rows:,} June customers -> @champion")
    days = july(args.rows_per_day, args.drift_day, seed=1_000)
    june_model = LightGBMModel.load(registry.resolve(f"churn/{first}"))
    clean_since, retrained = 1, False
    print(f"\n| day | serving | ROC-AUC (serving) | ROC-AUC (churn/{first}) | note |")
    print("|---:|---|---:|---:|---|")
    for day, table in enumerate(days, start=1):
        version = alias_version(registry, ref)
        model = LightGBMModel.load(registry.resolve(f"churn/{version}"))
        auc = roc_auc_score(table.column("churned"), model.predict_proba(table))
        june_auc = roc_auc_score(table.column("churned"), june_model.predict_proba(table))
        note = ""
        if day % args.check_every == 0 and not retrained:
            week = pa.concat_tables(days[day - args.check_every : day])
            path = Path(root / f"week-{day}.parquet")
            write_batches(week.to_batches(), path)
            assert model.reference is not None
            report = source_drift(model, model.reference, str(path), settings=settings)
            render_drift_report(report, path=root / f"drift-day{day}.html", title=f"day {day}")
            note = f"drift check days {day - args.check_every + 1}-{day}: {report.summary()}"
            if report.drifted:
                since = pa.concat_tables(days[clean_since - 1 : day])
                data = root / f"since-day{clean_since}.parquet"
                write_batches(since.to_batches(), data)
                spec = RetrainSpec(model=str(ref), data=str(data), params=PARAMS)
                outcome = retrain(spec, settings=settings, registry=registry)
                note += f"<br>retrain on days {clean_since}-{day}: {outcome.summary}"
                retrained = True
            else:
                clean_since = day + 1
        print(f"| {day} | churn/{version} | {auc:.4f} | {june_auc:.4f} | {note} |")
    print(f"\nreports and registry under {root}" if args.keep else "")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
