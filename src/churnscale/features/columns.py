"""Which columns of an event log hold the customer, the instant, the event type and the amount.

Real logs rarely name them ``customer_id``, ``timestamp``, ``event_type`` and ``amount``: CDNOW's
is ``customer_id,date,n_cds,dollar_value`` with dates as ``YYYYMMDD``. :class:`EventColumns`
maps a log's own columns onto those names (a constant type for a log of one kind of event, a
``strptime`` format for dates that are not ISO 8601). It is kept in the
:class:`~churnscale.features.spec.FeatureSpec`, so the builder and the service read events the
same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from churnscale.exceptions import ConfigError, SchemaError

ID, TIME, TYPE, AMOUNT = "customer_id", "timestamp", "event_type", "amount"


@dataclass(frozen=True)
class EventColumns:
    """Column names of an event log (the flags ``--customer-col`` … ``--amount-col``).

    ``type_col`` names the column of event types; a log of one kind of event gives
    ``event_type`` instead, a constant. ``time_format`` is a ``strptime`` format
    (``%Y%m%d``) for times that are not ISO 8601. The amount column is optional under its
    default name ``amount``; named otherwise, it must be present.

    >>> EventColumns(time_col="date", time_format="%Y%m%d", event_type="purchase",
    ...              amount_col="dollar_value").type_col is None
    True
    """

    customer_col: str = ID
    time_col: str = TIME
    time_format: str | None = None
    type_col: str | None = TYPE
    event_type: str | None = None
    amount_col: str = AMOUNT

    def __post_init__(self) -> None:
        if self.event_type is not None and self.type_col == TYPE:
            object.__setattr__(self, "type_col", None)  # a constant type replaces the default
        if (self.type_col is None) == (self.event_type is None):
            raise ConfigError(
                "--type-col/--event-type",
                expected="a column of event types or one constant type, not both",
                received={"type_col": self.type_col, "event_type": self.event_type},
            )
        names = [self.customer_col, self.time_col, self.type_col, self.amount_col]
        given = [n for n in names if n is not None]
        if len(set(given)) != len(given) or not all(n.strip() for n in given):
            raise ConfigError("event columns", expected="distinct non-empty names", received=given)

    @property
    def is_default(self) -> bool:
        """Whether this is the canonical layout (``customer_id``, ``timestamp``, …)."""
        return self == EventColumns()

    def source_name(self, canonical: str) -> str:
        """The log's own name of the canonical column ``canonical`` (for messages)."""
        names = {ID: self.customer_col, TIME: self.time_col, AMOUNT: self.amount_col}
        names[TYPE] = self.type_col or f"--event-type {self.event_type}"
        return names.get(canonical, canonical)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EventColumns:
        """The inverse of :meth:`to_dict`."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def required(self, *, with_id: bool = True) -> list[str]:
        """The columns a log must have."""
        names = [self.customer_col] if with_id else []
        names += [self.time_col] + ([self.type_col] if self.type_col else [])
        return names + ([self.amount_col] if self.amount_col != AMOUNT else [])

    def canonical(
        self,
        batch: pa.RecordBatch,
        *,
        source: str,
        lines: np.ndarray,
        flag: str = "--events",
        with_id: bool = True,
    ) -> pa.RecordBatch:
        """``batch`` with the canonical columns (``customer_id`` if ``with_id``,
        ``timestamp``, ``event_type`` and ``amount`` when present); other columns dropped."""
        missing = [n for n in self.required(with_id=with_id) if n not in batch.schema.names]
        if missing:
            raise SchemaError(f"{flag} {source}: not an event log", missing=missing)
        columns: dict[str, pa.Array] = {}
        if with_id:
            columns[ID] = batch.column(self.customer_col)
        columns[TIME] = self._time(batch.column(self.time_col), source, lines, flag)
        if self.type_col is not None:
            columns[TYPE] = batch.column(self.type_col)
        else:
            columns[TYPE] = pa.array(np.full(batch.num_rows, self.event_type), pa.string())
        if self.amount_col in batch.schema.names:
            columns[AMOUNT] = batch.column(self.amount_col)
        return pa.RecordBatch.from_pydict(columns)

    def _time(self, column: pa.Array, source: str, lines: np.ndarray, flag: str) -> pa.Array:
        if self.time_format is None or pa.types.is_timestamp(column.type):
            return column
        if pa.types.is_date(column.type):
            return column
        text = pc.utf8_trim_whitespace(column.cast(pa.string()))
        parsed = pc.strptime(text, format=self.time_format, unit="us", error_is_null=True)
        bad = pc.and_(pc.is_null(parsed), pc.is_valid(text))
        if pc.any(bad).as_py():
            row = int(np.flatnonzero(bad.to_numpy(zero_copy_only=False))[0])
            raise SchemaError(
                f"{flag} {source} line {int(lines[row])}: not a time in the format "
                f"{self.time_format}, got {column[row].as_py()!r}",
                column=self.time_col,
            )
        return parsed
