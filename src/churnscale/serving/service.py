"""The loaded model as the service uses it: validation, encoding, compiled trees, reasons.

One :class:`PredictionService` per process, built in the app's lifespan; every route and
protocol adapter calls it, so they cannot disagree with each other or with batch scoring.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from churnscale.config import Settings
from churnscale.data.conform import conform
from churnscale.data.schema import DURATION_KEY
from churnscale.model.contract import CHURN_PROBABILITY
from churnscale.model.decisions import UpliftDecisions, UpliftPolicy
from churnscale.model.lightgbm import LightGBMModel
from churnscale.model.loading import model_version
from churnscale.model.predictor import Predictor
from churnscale.model.uplift import UpliftModel
from churnscale.serving.customer import CustomerDecoder
from churnscale.serving.errors import InvalidInputError, PayloadTooLargeError
from churnscale.serving.events import EventCustomerDecoder, feature_spec_of
from churnscale.serving.experiment import ExperimentLog
from churnscale.serving.ids import check_id_column
from churnscale.serving.losses import add_losses, table_values, value_field_of, value_of
from churnscale.serving.losses import with_value_column as with_value


class PredictionObserver(Protocol):
    """Told about every prediction a service answers (the live drift window and the feedback
    log of :class:`~churnscale.serving.monitoring.ModelMonitor` install one)."""

    def observe_one(self, customer_id: str | None, row: np.ndarray, probability: float) -> None:
        """One answered customer (``row`` is reused by the service: copy what you keep)."""
        ...

    def observe_many(
        self, ids: Sequence[Any], matrix: np.ndarray, probabilities: np.ndarray
    ) -> None:
        """A batch of answered customers."""
        ...


class PredictionService:
    """Predictions for customers given as JSON, Python values or Arrow tables."""

    def __init__(self, model: LightGBMModel | UpliftModel, settings: Settings) -> None:
        self.model = model
        self.settings = settings
        self.schema = model.preprocessor.schema
        #: The columns a CSV or Arrow batch must carry: the schema less its target and a
        #: survival model's duration column (labels, not inputs).
        duration = self.schema.metadata.get(DURATION_KEY)
        received = self.schema.without_target()
        self._received = replace(
            received, columns=tuple(c for c in received.columns if c.name != duration)
        )
        spec = feature_spec_of(model)  # point-in-time model: customers may come as events
        #: The request field with the customer's value (None: off); see serving.losses.
        self.value_field = value_field_of(
            self.schema, settings.value_field, uplift=isinstance(model, UpliftModel)
        )
        field = self.value_field
        self.decoder = (
            EventCustomerDecoder(
                self.schema, spec, max_decoded=settings.max_decoded_bytes, value_field=field
            )
            if spec
            else CustomerDecoder(self.schema, value_field=field)
        )
        #: An uplift model's answers and actions under the deploy-time policy (None for a
        #: churn model); it also stands in for the compiled predictor.
        self.decisions: UpliftDecisions | None = None
        self.predictor: Predictor | UpliftDecisions
        if isinstance(model, UpliftModel):
            self.decisions = UpliftDecisions(model, UpliftPolicy.from_settings(settings))
            self.predictor = self.decisions
        else:
            self.predictor = Predictor(
                model, kind=settings.predictor, cache=settings.compiled_cache
            )
        self.version = model_version(model)
        #: The model's outputs beside the probability (a survival model's curve), answered by
        #: name on every route; decided here, once per model (empty for a binary model).
        self.curves: tuple[str, ...] = model.outputs[1:] if self.decisions is None else ()
        self.encode = model.preprocessor.encode_one
        #: The row every single prediction is encoded into (one thread, the event loop, calls
        #: :meth:`answer`; observers copy what they keep), and the function writing it.
        self._row = np.empty(len(model.feature_names), dtype=np.float64)
        self._write_row = model.preprocessor.row_writer(self._row)
        self.id = self.schema.id
        #: Told about every prediction (live drift window, feedback join); see ModelMonitor.
        self.observer: PredictionObserver | None = None
        #: Assigns and logs an action arm per answered customer (CHURNSCALE_EXPERIMENT_LOG).
        self.experiment: ExperimentLog | None = None

    def warm(self, example: Mapping[str, Any] | None = None) -> None:
        """Exercise every path once so the first real request is not the slow one."""
        self.predictor.warm()
        x = dict(example) if example else dict.fromkeys(self.decoder.features)
        self.answer(x, reasons=self.decisions is None)

    def answer(self, x: dict[str, Any], *, reasons: bool) -> dict[str, Any]:
        """The response object for one validated customer."""
        row = self._row
        self._write_row(x)
        value = x.get(self.value_field)  # type: ignore[arg-type]  # None when off or absent
        if value is not None:
            value = value_of(x, self.value_field)  # type: ignore[arg-type]
        decided = self.decisions.decide_one(row) if self.decisions is not None else None
        probability = (
            float(decided.pop("p_control")) if decided else self.predictor.predict_one(row)
        )
        customer = _text(x.get(self.id)) if self.id else None
        if self.observer is not None:
            self.observer.observe_one(customer, row, probability)
        out: dict[str, Any] = {
            "customer_id": customer,
            "churn_probability": probability,
            "model_version": self.version,
        }
        if decided:  # an uplift model: its uplift, P(outcome | treated) and the action
            out.update(decided)
        elif self.curves:  # a survival model's curve, by name
            outputs = self.model.outputs_of_matrix(row.reshape(1, -1))
            out["outputs"] = {n: float(outputs[n][0]) for n in self.curves}
        if value is not None:
            add_losses(out, value)
        if self.experiment is not None and customer is not None:
            policy = str(decided["action"]) if decided else None
            arm, propensity = self.experiment.assign(
                customer, x, policy=policy, version=self.version
            )
            out.update(experiment_arm=arm, propensity=propensity)
        if reasons and self.decisions is None:
            out["reasons"] = self.reasons(x)
        return out

    @property
    def trees(self) -> int:
        """Trees the served model evaluates (over every booster of an uplift model)."""
        if isinstance(self.model, UpliftModel):
            return sum(b.num_trees() for b in self.model.boosters.values())
        return int(self.model.booster.num_trees())

    def reasons(self, x: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Top-3 reason codes (feature, log-odds contribution) for one customer."""
        if not isinstance(self.model, LightGBMModel):
            return []
        return [
            {"feature": r.feature, "contribution": r.contribution}
            for r in self.model.explain_one(x)
        ]

    def outputs_of_rows(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
        """Every output (:meth:`outputs_of`) of validated customers (the JSON batch and
        protocol paths)."""
        self.check_rows(len(rows))
        if not rows:
            return dict.fromkeys((CHURN_PROBABILITY, *self.curves), np.empty(0, np.float64))
        matrix = np.stack([self.encode(x) for x in rows])
        probabilities = self.predictor.predict_matrix(matrix, threads=1)
        if self.observer is not None:
            ids = [_text(x.get(self.id)) for x in rows] if self.id else [None] * len(rows)
            self.observer.observe_many(ids, matrix, probabilities)
        return self.outputs_of(matrix, probabilities)

    def outputs_of(self, matrix: np.ndarray, probabilities: np.ndarray) -> dict[str, np.ndarray]:
        """The probabilities of encoded rows and the model's other outputs (:attr:`curves`),
        by name; a binary model's costs nothing more."""
        if not self.curves:
            return {CHURN_PROBABILITY: probabilities}
        outputs = self.model.outputs_of_matrix(matrix)
        return {CHURN_PROBABILITY: probabilities, **{n: outputs[n] for n in self.curves}}

    def row_values(self, rows: Sequence[Mapping[str, Any]]) -> list[float | None] | None:
        """Each validated customer's value (None: the service takes no value)."""
        field = self.value_field
        if field is None:
            return None
        return [value_of(x, field, row=i) for i, x in enumerate(rows)]

    def score_table(
        self, table: pa.Table, *, source: str
    ) -> tuple[dict[str, np.ndarray], list[Any], list[float | None] | None]:
        """Every output (:meth:`outputs_of`), ids and values (None without a value column) of
        a raw table."""
        typed = self.typed_table(table, source=source)
        values = table_values(typed, self.value_field)
        matrix = self.model.preprocessor.transform(typed)
        ids = typed.column(self.id).to_pylist() if self.id else [None] * typed.num_rows
        probabilities = self.predictor.predict_matrix(matrix, threads=1)
        if self.observer is not None:
            self.observer.observe_many(ids, matrix, probabilities)
        return self.outputs_of(matrix, probabilities), ids, values

    def typed_table(self, table: pa.Table, *, source: str) -> pa.RecordBatch:
        """A raw table (CSV or Arrow) checked and typed as the model's schema; any bad row is
        a 422."""
        self.check_rows(table.num_rows)
        self.check_columns(table.column_names)
        batch = table.combine_chunks().to_batches()
        raw = batch[0] if batch else pa.RecordBatch.from_pylist([], schema=table.schema)
        typed, rejects = conform(
            raw,
            with_value(self._received, self.value_field, table.column_names),
            source=source,
            lines=np.arange(1, table.num_rows + 1),
            require_target=False,
        )
        if rejects:
            first = rejects[0]
            raise InvalidInputError(
                f"{first.reason} (value {first.value!r}; {len(rejects)} bad row(s))",
                field=first.column,
                row=first.line,
            )
        if self.id:
            check_id_column(typed.column(self.id), field=self.id)
        return typed

    def check_rows(self, rows: int) -> None:
        """Refuse a batch over the configured row limit (413)."""
        if rows > self.settings.max_batch_rows:
            raise PayloadTooLargeError(
                f"batch of {rows} rows is over the limit of {self.settings.max_batch_rows}",
                field="rows",
            )

    def check_columns(self, names: Sequence[str]) -> None:
        """Refuse the target column and columns the schema does not know (422)."""
        if self.schema.target in names:
            raise InvalidInputError("the target column is not accepted", field=self.schema.target)
        known = [*self.schema.names, self.value_field]
        unknown = [n for n in names if n not in known]
        if unknown:
            raise InvalidInputError(f"unknown columns: {', '.join(unknown)}", field=unknown[0])
        missing = [n for n in self.decoder.features if n not in names]
        if missing:
            raise InvalidInputError(f"missing columns: {', '.join(missing)}", field=missing[0])


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
