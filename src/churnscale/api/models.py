"""``ChurnModel``: a trained or loaded model as a notebook uses it, and ``load_model``.

The public ``ChurnModel`` is a thin face on the model contract
(:class:`churnscale.model.ChurnModel`, held as :attr:`ChurnModel.model`): it takes pandas,
polars or Arrow tables, reads them into the model's schema as scoring does, and hands them to
the contract, so a notebook's predictions, reasons and figures are the service's and the
CLI's. It adds no model of its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from churnscale.api.inputs import (
    Data,
    Labels,
    conformed,
    feature_schema,
    is_path,
    to_arrow,
    to_labels,
)
from churnscale.api.reports import EvaluationReport
from churnscale.config import Settings, load_settings
from churnscale.evaluation.assessment import SAMPLE_ROWS, ProfitSettings, assess
from churnscale.exceptions import IncompatibleModelError, SchemaError
from churnscale.model.contract import ChurnModel as ModelContract
from churnscale.model.contract import ExplainableModel, Reason
from churnscale.model.loading import model_version

if TYPE_CHECKING:
    from churnscale.training.recording import TrainOutcome


class ChurnModel:
    """A churn model: predict, explain, evaluate, save.

    Made by :func:`churnscale.train` or :func:`churnscale.load_model`; ``X`` is a pandas or
    polars DataFrame or a pyarrow Table of customers with the model's feature columns (others,
    such as the id or the label, are ignored).

    >>> import churnscale
    >>> customers = churnscale.generate(rows=2_000, seed=1)
    >>> model = churnscale.train(customers, target="churned", max_rounds=50)
    >>> new = churnscale.generate(rows=200, seed=2).to_pandas()
    >>> model.predict_proba(new).shape
    (200,)
    >>> [len(reasons) for reasons in model.explain(new.head(3), top=2)]
    [2, 2, 2]
    >>> report = model.evaluate(new.drop(columns="churned"), new["churned"])
    >>> sorted(report.metrics)[:3]
    ['best_profit', 'brier', 'ece']
    """

    def __init__(self, model: ModelContract, *, training: TrainOutcome | None = None) -> None:
        #: The model contract this face delegates to (``LightGBMModel``, ``MlpModel``, ...).
        self.model = model
        self._training = training

    # ---- what the model is -------------------------------------------------------------
    @property
    def version(self) -> str:
        """``churn/3`` when registered, else the bundle's digest (``sha256:…``) or ``unsaved``."""
        if self._training is not None and self._training.version is not None:
            return self._training.version
        if "version" in self.model.metadata or "manifest_sha256" in self.model.metadata:
            return model_version(self.model)
        return "unsaved"

    @property
    def model_type(self) -> str:
        """The kind of model: ``lightgbm`` or ``mlp``."""
        return self.model.model_type

    @property
    def feature_names(self) -> list[str]:
        """The columns the model reads, in order."""
        return list(self.model.feature_names)

    @property
    def metadata(self) -> dict[str, Any]:
        """Schema, data fingerprint, parameters, metrics and lineage (``metadata.json``)."""
        return self.model.metadata

    @property
    def training(self) -> TrainOutcome | None:
        """How :func:`churnscale.train` made this model (report, run, rows); None if loaded."""
        return self._training

    @property
    def report(self) -> EvaluationReport | None:
        """The training report: hold-out figures (and CV mean ± std); None if loaded."""
        if self._training is None:
            return None
        details = {"report": str(self._training.report), "version": self.version}
        return EvaluationReport(self._training.assessment, "training hold-out", details)

    def summary(self) -> dict[str, Any]:
        """Training's JSON summary (as ``churnscale train --json``), or the stored metrics."""
        if self._training is not None:
            return self._training.summary()
        return {"model": self.version, "metrics": self.metadata.get("metrics")}

    # ---- predictions ------------------------------------------------------------------
    def _features(self, X: object, *, argument: str = "X") -> pa.Table:
        schema = feature_schema(self.model.preprocessor.schema)
        return conformed(to_arrow(X, argument=argument), schema, argument=argument)

    def predict_proba(self, X: object) -> np.ndarray:
        """P(churn) of every customer of ``X`` (float64, one per row)."""
        return self.model.predict_proba(self._features(X))

    def predict(self, X: object) -> dict[str, np.ndarray]:
        """Every output of every customer of ``X`` by name (a survival model's curve at its
        horizons besides ``churn_probability``)."""
        return self.model.predict(self._features(X))

    def explain(self, X: object, *, top: int = 3) -> list[list[Reason]]:
        """The ``top`` features pushing each customer's score up or down the most (log-odds
        contributions), for models that give reasons (LightGBM)."""
        if not isinstance(self.model, ExplainableModel):
            raise IncompatibleModelError(
                self.version, f"explain takes a lightgbm model; this one is {self.model_type}"
            )
        if top < 1:
            raise SchemaError(f"top: expected at least 1, got {top}")
        return self.model.explain(self._features(X), top=top)

    def evaluate(
        self,
        X: Data,
        y: Labels | None = None,
        *,
        contact_cost: float = 1.0,
        retention_value: float = 10.0,
        success_rate: float = 1.0,
        value: str | None = None,
        quarantine: str | os.PathLike[str] | None = None,
        settings: Settings | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> EvaluationReport:
        """Judge the model on labelled customers (``churnscale evaluate``).

        ``X`` is a table with labels ``y`` (or with the model's target column when ``y`` is
        None), or a path or stored dataset, read as the CLI reads it (unreadable rows go to
        ``quarantine``, by default ``evaluate.quarantine.jsonl`` in the churnscale home;
        ``on_progress`` is called with the rows read). ``value``: a numeric column of
        per-customer value for the profit curve; the campaign is ``contact_cost``,
        ``retention_value`` and ``success_rate``.
        """
        profit = ProfitSettings(contact_cost, retention_value, success_rate)
        if is_path(X):
            settings = settings or load_settings()
            where = Path(quarantine or settings.home / "evaluate.quarantine.jsonl")
            source = os.fspath(X)  # type: ignore[arg-type]
            return self._evaluate_source(source, profit, value, where, settings, on_progress)
        table = self._labelled(X, y)
        target = self.model.preprocessor.schema.target
        assert target is not None  # _labelled refuses a model without one
        y_true = np.asarray(table.column(target).to_numpy(zero_copy_only=False), dtype=np.int8)
        scores = self.model.predict_proba(table)
        values = None
        if value is not None:
            values = np.asarray(to_arrow(X).column(value).to_numpy(zero_copy_only=False), float)
        assessment = assess(
            self.model, y_true, scores, table.slice(0, SAMPLE_ROWS), profit=profit, value=values
        )
        details = {"model": self.version, "rows": table.num_rows}
        return EvaluationReport(assessment, f"{self.version} on {table.num_rows:,} rows", details)

    def _labelled(self, X: object, y: Labels | None) -> pa.Table:
        schema = self.model.preprocessor.schema
        if schema.target is None:
            raise SchemaError("the model's schema has no target column; it cannot be evaluated")
        table = to_arrow(X)
        if y is not None:
            labels = to_labels(y)
            if len(labels) != table.num_rows:
                raise SchemaError(f"y has {len(labels)} labels for {table.num_rows} rows of X")
            if schema.target in table.column_names:
                table = table.drop_columns([schema.target])
            table = table.append_column(schema.target, labels)
        return conformed(table, feature_schema(schema, with_target=True))

    def _evaluate_source(
        self,
        source: str,
        profit: ProfitSettings,
        value: str | None,
        quarantine: Path,
        settings: Settings,
        on_progress: Callable[[int], None] | None,
    ) -> EvaluationReport:
        from churnscale.evaluation.labelled import score_labelled

        scored = score_labelled(
            source,
            self.model,
            settings=settings,
            quarantine_path=quarantine,
            value_column=value,
            on_progress=on_progress,
        )
        assessment = assess(
            self.model,
            scored.y_true,
            scored.scores,
            scored.sample,
            profit=profit,
            value=scored.value,
        )
        details = {"model": self.version, "data": source, "rejected rows": scored.rejected}
        title = f"{self.version} on {source}"
        return EvaluationReport(assessment, title, details, scored.rejected, scored.quarantine)

    # ---- storage ----------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Publish the model as a bundle directory at ``path`` (atomic, checksummed; never
        overwrites); :func:`load_model` reads it back."""
        return self.model.save(Path(path))

    def __repr__(self) -> str:
        return (
            f"ChurnModel({self.model_type}, version={self.version!r}, "
            f"{len(self.feature_names)} features)"
        )


def load_model(
    reference: str | os.PathLike[str], *, settings: Settings | None = None
) -> ChurnModel:
    """The model ``reference`` names: ``churn@champion``, ``churn/3``, ``churn`` (latest) from
    the registry (verified, cached), or a bundle directory.

    >>> import churnscale
    >>> customers = churnscale.generate(rows=2_000, seed=1)
    >>> model = churnscale.train(customers, target="churned", max_rounds=50)
    >>> saved = model.save(home / "bundle")
    >>> churnscale.load_model(saved).feature_names == model.feature_names
    True
    """
    from churnscale.model.loading import load_model as load_contract

    settings = settings or load_settings()
    return ChurnModel(load_contract(os.fspath(reference), settings))
