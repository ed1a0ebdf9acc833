"""Out-of-time backtest of a point-in-time dataset: train on earlier as-of dates, test on each.

For every as-of date *d* after the first, a model is trained with :func:`train_local` on the
rows dated before *d* (all of them: an expanding window; or the last ``window`` dates: a
rolling one) and scored on every row dated *d*. ``gap_days`` leaves out training dates closer
than that to *d* (set it to the label horizon so that no training label looks past *d*).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from churnscale.data.schema import Schema
from churnscale.data.store import load_info
from churnscale.evaluation.backtest import Backtest, BacktestStep
from churnscale.evaluation.metrics import evaluate_scores
from churnscale.exceptions import ConfigError, SchemaError
from churnscale.training.local import TrainParams, train_local
from churnscale.training.plan import SplitSpec

DAY = np.timedelta64(1, "D")


@dataclass(frozen=True)
class DateSummary:
    """Rows and churn rate of one as-of date."""

    as_of: str
    rows: int
    positives: int

    @property
    def churn_rate(self) -> float:
        """Share of this date's rows that churned."""
        return self.positives / self.rows if self.rows else float("nan")


def date_summaries(dataset: Path, schema: Schema, column: str) -> list[DateSummary]:
    """Rows and positives per distinct date of ``column``, sorted (one pass over two columns)."""
    _, info = load_info(dataset)
    assert schema.target is not None  # checked by the caller
    parts = [pq.read_table(dataset / f, columns=[column, schema.target]) for f in info.files]
    table = pa.concat_tables(parts) if parts else pa.table({column: [], schema.target: []})
    times = np.asarray(table.column(column).cast(pa.timestamp("us")).to_numpy())
    labels = np.asarray(table.column(schema.target).to_numpy(zero_copy_only=False), dtype=np.int64)
    present = ~np.isnat(times)
    days, index = np.unique(times[present], return_inverse=True)
    positives = np.bincount(index, weights=labels[present], minlength=days.size)
    rows = np.bincount(index, minlength=days.size)
    return [
        DateSummary(np.datetime_as_string(d, "D"), int(n), int(p))
        for d, n, p in zip(days, rows, positives, strict=True)
    ]


def _as_of_column(schema: Schema) -> str:
    if schema.target is None:
        raise SchemaError("the dataset has no target column; build or ingest it with a target")
    if schema.as_of_column is None:
        raise SchemaError(
            "the dataset has no as-of column; a backtest needs stacked as-of dates "
            "(build them with `churnscale features build --as-of D1,D2,...`)"
        )
    return schema.as_of_column


def _training_dates(
    dates: list[DateSummary], position: int, *, window: int | None, gap_days: int
) -> list[DateSummary]:
    """The dates a model for ``dates[position]`` trains on."""
    limit = np.datetime64(dates[position].as_of) - gap_days * DAY
    eligible = [d for d in dates[:position] if np.datetime64(d.as_of) <= limit]
    return eligible[-window:] if window is not None else eligible


def _one_class(dates: list[DateSummary]) -> bool:
    positives, rows = sum(d.positives for d in dates), sum(d.rows for d in dates)
    return positives in (0, rows)


def _step(
    dataset: Path,
    schema: Schema,
    column: str,
    day: DateSummary,
    train: list[DateSummary],
    params: TrainParams,
) -> BacktestStep:
    base = BacktestStep(
        day.as_of, day.rows, day.churn_rate, tuple(d.as_of for d in train),
        sum(d.rows for d in train),
    )  # fmt: skip
    if not train:
        return _skip(base, "no earlier as-of date to train on (see --gap / --window)")
    if _one_class([day]):
        return _skip(base, "this date's labels are all one class")
    if _one_class(train):
        return _skip(base, "the training dates' labels are all one class")
    split = SplitSpec(
        "time",
        time_column=column,
        seed=params.seed,
        holdout_date=day.as_of,
        train_from=train[0].as_of,
        train_until=train[-1].as_of,
    )
    result = train_local(dataset, schema=schema, split=split, params=params)
    scored = evaluate_scores(result.y_holdout, result.scores)
    return replace(
        base,
        roc_auc=scored.roc_auc,
        pr_auc=scored.pr_auc,
        top_decile_lift=scored.top_decile_lift,
        best_iteration=result.best_iteration,
    )


def _skip(step: BacktestStep, reason: str) -> BacktestStep:
    return replace(step, skipped=reason)


def run_backtest(
    dataset: Path,
    *,
    schema: Schema | None = None,
    params: TrainParams | None = None,
    window: int | None = None,
    gap_days: int = 0,
    on_step: Callable[[BacktestStep], None] | None = None,
) -> Backtest:
    """Train on earlier as-of dates and score each later one; one :class:`BacktestStep` each."""
    params = params or TrainParams()
    params.validate()
    if window is not None and window < 1:
        raise ConfigError("--window", expected="at least 1 as-of date", received=window)
    if gap_days < 0:
        raise ConfigError("--gap", expected="a duration of 0 days or more", received=gap_days)
    stored, _ = load_info(dataset)
    schema = schema or stored
    column = _as_of_column(schema)
    dates = date_summaries(dataset, schema, column)
    if len(dates) < 2:
        raise SchemaError(
            f"a backtest needs at least two as-of dates; the dataset has {len(dates)}",
            column=column,
        )
    steps = []
    for position in range(1, len(dates)):
        train = _training_dates(dates, position, window=window, gap_days=gap_days)
        step = _step(dataset, schema, column, dates[position], train, params)
        steps.append(step)
        if on_step is not None:
            on_step(step)
    return Backtest(str(dataset), column, window, gap_days, steps, params.to_dict())
