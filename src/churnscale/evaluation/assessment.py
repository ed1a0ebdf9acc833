"""A model judged on labelled rows: metrics, leakage check, explanations and the HTML report.

One function, :func:`assess`, serves both ``churnscale train`` (the hold-out scores) and
``churnscale evaluate`` (a model on new data). Leakage and explanations are computed on a
bounded sample of rows (:data:`SAMPLE_ROWS`; the contributions on at most
:data:`CONTRIBUTION_ROWS` of them), so memory and time do not grow with the data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from churnscale.data.schema import Role, Schema
from churnscale.evaluation.crossval import summarize_folds
from churnscale.evaluation.explain import mean_abs_contributions
from churnscale.evaluation.leakage import LeakageWarning, leakage_warnings, single_feature_aucs
from churnscale.evaluation.metrics import Evaluation, evaluate_scores
from churnscale.evaluation.report import render_report, report_html
from churnscale.features.preprocessor import column_to_float
from churnscale.model.contract import ChurnModel, ExplainableModel

#: Rows used for the single-feature leakage check and the mean |contribution| summary.
SAMPLE_ROWS = 100_000
#: At most this many of them (a seeded random subset) are explained for the mean |contribution|
#: summary: per-row contributions cost ~0.5 ms a row with the default model, and the means over
#: 10,000 rows are within 2% of those over 100,000, with the same top 10 features (two with
#: near-equal means may trade places; benchmarks/explain_sample.py, docs/benchmarks.md).
CONTRIBUTION_ROWS = 10_000
TOP_FEATURES = 10


@dataclass(frozen=True)
class ProfitSettings:
    """The retention campaign the profit curve models."""

    contact_cost: float = 1.0
    retention_value: float = 10.0
    success_rate: float = 1.0


@dataclass
class Assessment:
    """Everything ``train`` and ``evaluate`` report about one model on labelled rows."""

    evaluation: Evaluation
    warnings: list[LeakageWarning]
    importance: dict[str, float]
    contributions: dict[str, float]
    folds: dict[str, tuple[float, float]] | None = None

    def summary(self) -> dict[str, Any]:
        """The JSON summary: headline metrics, CV mean ± std, warnings, top features."""
        top = list(self.contributions.items())[:TOP_FEATURES]
        return {
            "metrics": self.evaluation.headline(),
            "holdout_rows": self.evaluation.rows,
            "positives": self.evaluation.positives,
            "best_threshold": self.evaluation.profit.best_threshold,
            "cv": (
                {m: {"mean": mean, "std": std} for m, (mean, std) in self.folds.items()}
                if self.folds
                else None
            ),
            "leakage_warnings": [
                {"feature": w.feature, "auc": w.auc, "message": w.message} for w in self.warnings
            ],
            "top_features": [{"feature": f, "mean_abs_contribution": v} for f, v in top],
        }


def sample_table(batches: Iterable[pa.RecordBatch], *, rows: int = SAMPLE_ROWS) -> pa.Table:
    """The first ``rows`` rows of ``batches`` as one table (stops reading once full)."""
    taken: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        taken.append(batch.slice(0, rows - count))
        count += taken[-1].num_rows
        if count >= rows:
            break
    if not taken:
        return pa.table({})
    return pa.Table.from_batches(taken)


def contribution_rows(sample: pa.Table, *, rows: int = CONTRIBUTION_ROWS) -> pa.Table:
    """At most ``rows`` rows of ``sample``, drawn at random without replacement (seed 0) and
    kept in their order: the rows whose contributions are averaged."""
    if sample.num_rows <= rows:
        return sample
    picked = np.sort(np.random.default_rng(0).choice(sample.num_rows, size=rows, replace=False))
    return sample.take(pa.array(picked))


def feature_columns(sample: pa.Table, schema: Schema) -> tuple[dict[str, np.ndarray], list[str]]:
    """Each feature of ``sample`` as a numpy array (numbers as float, categories as text)."""
    columns: dict[str, np.ndarray] = {}
    categorical: list[str] = []
    for spec in schema.features:
        if spec.name not in sample.column_names:
            continue
        column = sample.column(spec.name).combine_chunks()
        if spec.role is Role.CATEGORICAL:
            text = column.cast(pa.string()).fill_null("")
            columns[spec.name] = np.asarray(text.to_numpy(zero_copy_only=False), dtype=object)
            categorical.append(spec.name)
        else:
            columns[spec.name] = column_to_float(column, spec.role)
    return columns, categorical


def leakage_on_sample(
    schema: Schema, sample: pa.Table, *, model_auc: float
) -> list[LeakageWarning]:
    """Leakage warnings: single features of ``sample`` that alone separate churners, and a
    model AUC that is implausibly perfect."""
    target = schema.target
    aucs: dict[str, float] = {}
    if sample.num_rows and target is not None and target in sample.column_names:
        labels = np.asarray(sample.column(target).to_numpy(zero_copy_only=False), dtype=np.int8)
        if labels.min() != labels.max():
            columns, categorical = feature_columns(sample, schema)
            aucs = single_feature_aucs(columns, labels, categorical=categorical)
    return leakage_warnings(aucs, model_auc=model_auc)


def assess(
    model: ChurnModel,
    y_true: np.ndarray,
    scores: np.ndarray,
    sample: pa.Table,
    *,
    profit: ProfitSettings | None = None,
    value: np.ndarray | None = None,
    fold_evaluations: list[Evaluation] | None = None,
) -> Assessment:
    """Metrics of ``scores`` against ``y_true``, plus leakage and explanations on ``sample``.

    ``sample`` holds labelled rows in the model's schema (for the single-feature AUCs and,
    for tree models, the gain importance of each feature and the mean |contribution| over
    at most :data:`CONTRIBUTION_ROWS` of its rows).
    """
    profit = profit or ProfitSettings()
    evaluation = evaluate_scores(
        y_true,
        scores,
        contact_cost=profit.contact_cost,
        retention_value=profit.retention_value,
        success_rate=profit.success_rate,
        value=value,
    )
    schema = model.preprocessor.schema
    warnings = leakage_on_sample(schema, sample, model_auc=evaluation.roc_auc)
    contributions: dict[str, float] = {}
    importance: dict[str, float] = {}
    if isinstance(model, ExplainableModel):
        importance = model.importance()
        if sample.num_rows:
            matrix = model.preprocessor.transform(contribution_rows(sample))
            contributions = mean_abs_contributions(model.contributions(matrix), model.feature_names)
    folds = summarize_folds(fold_evaluations) if fold_evaluations else None
    return Assessment(evaluation, warnings, importance, contributions, folds)


def _report_parts(assessment: Assessment) -> dict[str, Any]:
    return {
        "importance": assessment.importance or None,
        "contributions": assessment.contributions or None,
        "folds": assessment.folds,
        "warnings": assessment.warnings,
    }


def write_report(
    assessment: Assessment, path: Path, *, title: str, metadata: Mapping[str, Any]
) -> Path:
    """The self-contained HTML report of ``assessment`` at ``path``."""
    parts = _report_parts(assessment)
    return render_report(assessment.evaluation, path=path, title=title, metadata=metadata, **parts)


def report_page(assessment: Assessment, *, title: str, metadata: Mapping[str, Any]) -> str:
    """The same report as :func:`write_report`, as a string of HTML (for Jupyter)."""
    parts = _report_parts(assessment)
    return report_html(assessment.evaluation, title=title, metadata=metadata, **parts)
