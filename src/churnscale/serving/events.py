"""A customer given by their recent events: the service computes the point-in-time features.

A model trained on a point-in-time dataset (``churnscale features build``) carries the
dataset's :class:`~churnscale.features.spec.FeatureSpec` in its metadata. Its service accepts,
besides a customer's feature values, a request with the events themselves::

    {"customer_id": "C1", "as_of": "2026-06-30",
     "events": [{"type": "login", "at": "2026-06-01T10:00:00"},
                {"type": "payment", "at": "2026-06-02", "amount": 30.0}],
     ...static attributes}

A dataset built from a log with its own columns (:class:`~churnscale.features.columns.
EventColumns`, e.g. CDNOW's ``date`` and ``dollar_value``) takes its events as that log's rows,
read by the same mapping: ``"events": [{"date": "19970101", "dollar_value": 11.77}]``.

The features come from :func:`~churnscale.features.pointintime.features_for_customer`, the
kernel the batch builder runs, so they equal the builder's row for that customer and date.
Events at or after ``as_of`` are ignored, as in training.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any

import msgspec
import pyarrow as pa

from churnscale.data.schema import Schema
from churnscale.exceptions import ChurnscaleError
from churnscale.features.customer import features_for_customer
from churnscale.features.spec import FeatureSpec
from churnscale.model.contract import ChurnModel
from churnscale.serving.customer import _DATE_PATTERN, FINITE, CustomerDecoder
from churnscale.serving.decoded import check_json
from churnscale.serving.errors import InvalidInputError
from churnscale.serving.jsonbody import decoded

EVENTS = "events"
_MARKER = b'"events"'


class Event(msgspec.Struct, forbid_unknown_fields=True):
    """One event of a request: its type, instant (ISO, no zone) and optional amount."""

    type: str
    at: Annotated[str, msgspec.Meta(pattern=_DATE_PATTERN)]
    amount: Annotated[float, FINITE] | None = None


def feature_spec_of(model: ChurnModel) -> FeatureSpec | None:
    """The FeatureSpec a model was trained with (metadata, else its schema), if any."""
    stored = model.metadata.get("feature_spec")
    stored = stored or model.preprocessor.schema.metadata.get("feature_spec")
    return FeatureSpec.from_dict(stored) if stored else None


class EventCustomerDecoder(CustomerDecoder):
    """A :class:`CustomerDecoder` that also takes a customer as ``as_of`` + ``events``."""

    def __init__(
        self,
        schema: Schema,
        spec: FeatureSpec,
        *,
        max_decoded: int,
        value_field: str | None = None,
    ) -> None:
        super().__init__(schema, value_field=value_field)
        self.spec = spec
        self.max_decoded = max_decoded  # events are decoded as open JSON: sized first
        self.as_of = schema.as_of_column or "as_of"
        self.computed = [n for n in spec.feature_names() if n in self.features]
        self._events = msgspec.json.Decoder(dict[str, Any])
        self._events_many = msgspec.json.Decoder(list[dict[str, Any]])

    def decode(self, body: bytes) -> dict[str, Any]:
        """One customer from a JSON body: feature values, or events."""
        if _MARKER not in body:
            return super().decode(body)
        check_json(body, self.max_decoded)
        return self.convert(decoded(self._events, body))

    def decode_many(self, body: bytes) -> list[dict[str, Any]]:
        """Customers from a JSON array body; each may be given by values or by events."""
        if _MARKER not in body:
            return super().decode_many(body)
        check_json(body, self.max_decoded)
        objs = decoded(self._events_many, body)
        return [self.convert(o, row=i) for i, o in enumerate(objs)]

    def convert(self, x: Mapping[str, Any], *, row: int | None = None) -> dict[str, Any]:
        """One customer from parsed JSON; with ``events`` its features are computed here."""
        if EVENTS not in x:
            return super().convert(x, row=row)
        rest = {k: v for k, v in x.items() if k != EVENTS}
        given = [n for n in self.computed if n in rest]
        if given:
            raise InvalidInputError(
                "computed from the events; send either events or feature values", field=given[0],
                row=row,
            )  # fmt: skip
        as_of = self._as_of(rest.get(self.as_of), row=row)
        features = self.features_of(x[EVENTS], as_of=as_of, row=row)
        return super().convert({**rest, **features}, row=row)

    def features_of(
        self, events: Any, *, as_of: date | datetime, row: int | None = None
    ) -> dict[str, float | None]:
        """The point-in-time features of one customer's ``events`` at ``as_of``."""
        if not self.spec.columns.is_default:
            return self._log_features(events, as_of=as_of, row=row)
        try:
            checked = msgspec.convert(events, list[Event])
        except msgspec.ValidationError as exc:
            raise InvalidInputError(_event_message(exc), field=_event_field(exc), row=row) from None
        for i, event in enumerate(checked):
            if event.type not in self.spec.event_types:
                raise InvalidInputError(
                    f"expected one of {', '.join(self.spec.event_types)}, got {event.type!r}",
                    field=f"events[{i}].type",
                    row=row,
                )
        rows = [{"timestamp": e.at, "event_type": e.type, "amount": e.amount} for e in checked]
        try:
            return features_for_customer(rows, as_of=as_of, spec=self.spec)
        except ChurnscaleError as exc:
            raise InvalidInputError(str(exc), field=EVENTS, row=row) from None

    def _log_features(
        self, events: Any, *, as_of: date | datetime, row: int | None
    ) -> dict[str, float | None]:
        """Features of events given as the built log's rows (its :class:`EventColumns`)."""
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            raise InvalidInputError("expected an array of objects", field=EVENTS, row=row)
        try:
            table = pa.Table.from_pylist(events)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidInputError(f"mixed value types: {exc}", field=EVENTS, row=row) from None
        try:
            return features_for_customer(
                table, as_of=as_of, spec=self.spec, columns=self.spec.columns
            )
        except ChurnscaleError as exc:
            raise InvalidInputError(str(exc), field=EVENTS, row=row) from None

    def _as_of(self, value: Any, *, row: int | None) -> date | datetime:
        if not isinstance(value, str):
            raise InvalidInputError(
                "required with events: an ISO date or timestamp", field=self.as_of, row=row
            )
        try:
            return date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInputError(
                f"not a valid date or timestamp: {value!r}", field=self.as_of, row=row
            ) from None

    def json_schema(self) -> dict[str, Any]:
        """JSON Schema of one customer: feature values, or ``as_of`` and ``events``."""
        schema = super().json_schema()
        event = msgspec.json.schema(Event)["$defs"]["Event"]
        if not self.spec.columns.is_default:
            required = self.spec.columns.required(with_id=False)
            event = {"type": "object", "required": required, "description": "A log row."}
        schema["properties"][EVENTS] = {"type": "array", "items": event}
        schema["description"] = (
            "One customer: every feature column (null = missing), or instead of the "
            f"point-in-time features ({len(self.computed)} columns) '{self.as_of}' and 'events'."
        )
        return schema


def _event_field(exc: msgspec.ValidationError) -> str:
    text = str(exc)
    if "`$[" in text:
        path = text[text.index("`$[") + 2 : text.index("`", text.index("`$[") + 1)]
        return EVENTS + path.replace("$", "")
    return EVENTS


def _event_message(exc: msgspec.ValidationError) -> str:
    text = str(exc)
    return text.split(" - at `", 1)[0]
