"""One customer's point-in-time features from their events (the service's event requests).

The same kernel as the batch builder (:func:`~churnscale.features.pointintime.features_at`),
so a customer's features equal their row in a built dataset to the bit.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from churnscale.features.columns import EventColumns
from churnscale.features.eventlog import customer_arrays
from churnscale.features.pointintime import features_at, instant_us
from churnscale.features.spec import FeatureSpec

#: Features that have no value (None) for a customer without the events they need.
_UNDEFINED_PREFIXES = ("tenure", "recency", "gap_", "amount_mean")


def features_for_customer(
    events: list[dict[str, Any]] | pa.Table,
    *,
    as_of: date | datetime | str,
    spec: FeatureSpec,
    columns: EventColumns | None = None,
) -> dict[str, float | None]:
    """One customer's features at ``as_of``: the batch builder's row for them, bit for bit.

    ``events`` holds ``timestamp``, ``event_type`` and optionally ``amount``, or the columns
    ``columns`` names (``spec.columns`` for events as the built log had them); events at or
    after ``as_of`` are ignored. Features that need missing events are ``None``.
    """
    instant = instant_us(as_of)
    arrays = customer_arrays(events, spec=spec, columns=columns).before(instant).canonical()
    if len(arrays) == 0:
        return {n: None if n.startswith(_UNDEFINED_PREFIXES) else 0.0 for n in spec.feature_names()}
    _, values = features_at(arrays, instant, spec)
    return {n: None if np.isnan(v[0]) else float(v[0]) for n, v in values.items()}
