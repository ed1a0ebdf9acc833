"""One customer's tree-mode row, computed by a function generated from a fitted lookup.

:meth:`Preprocessor.encode_one <churnscale.features.preprocessor.Preprocessor.encode_one>`
(the service's hot path) runs it; the batch path (``Preprocessor.transform``) computes the same
values column by column with Arrow.
"""

from __future__ import annotations

import datetime
import math
import struct
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa

DAY_US = 86_400 * 1_000_000


def row_encoder(
    lookup: list[tuple[str, int, dict[str, float], float]],
) -> Callable[[Mapping[str, Any]], list[float]]:
    """One straight-line function computing a customer's tree-mode values, generated from the
    fitted lookup: about 1.5x faster than looping over the features (the service's hot path).

    Column names, tables and codes reach the function as bound variables, never as source
    text, so a column name cannot inject code. Per feature: ``None`` → NaN; numeric/boolean →
    ``float(v)``; categorical → its code (unknown → the "other" code); datetime → epoch days.
    """
    scope, items = _generated_values(lookup)
    source = "def values(x):\n    g = x.get\n    return [\n"
    source += "".join(f"        {item},\n" for item in items) + "    ]\n"
    exec(compile(source, "<churnscale row encoder>", "exec"), scope)
    encoder: Callable[[Mapping[str, Any]], list[float]] = scope["values"]
    return encoder


def row_writer(
    lookup: list[tuple[str, int, dict[str, float], float]], row: np.ndarray
) -> Callable[[Mapping[str, Any]], None]:
    """:func:`row_encoder`'s values written straight into ``row`` (a float64 array the caller
    keeps, of one value a feature): one ``struct.pack_into`` instead of a list copied into the
    array (the service's hot path; 0.2 against 0.5 µs for 24 features)."""
    if row.dtype != np.float64 or row.shape != (len(lookup),) or not row.flags.c_contiguous:
        raise ValueError(f"row must be a contiguous float64 array of {len(lookup)} values")
    scope, items = _generated_values(lookup)
    scope["_pack"] = struct.Struct(f"={len(lookup)}d").pack_into
    scope["_row"] = row.data.cast("B")
    source = "def write(x):\n    g = x.get\n    _pack(\n        _row,\n        0,\n"
    source += "".join(f"        {item},\n" for item in items) + "    )\n"
    exec(compile(source, "<churnscale row writer>", "exec"), scope)
    writer: Callable[[Mapping[str, Any]], None] = scope["write"]
    return writer


def _generated_values(
    lookup: list[tuple[str, int, dict[str, float], float]],
) -> tuple[dict[str, Any], list[str]]:
    """The bound variables and one expression a feature (reading ``v`` through ``g``)."""
    scope: dict[str, Any] = {"_nan": math.nan, "_days": datetime_days}
    items = []
    for i, (name, kind, table, other) in enumerate(lookup):
        scope[f"n{i}"], scope[f"t{i}"], scope[f"o{i}"] = name, table, other
        value = ("float(v)", f"t{i}.get(str(v).strip(), o{i})", "_days(v)")[kind]
        items.append(f"_nan if (v := g(n{i})) is None else {value}")
    return scope, items


_EPOCH = datetime.datetime(1970, 1, 1)
_ONE_US = datetime.timedelta(microseconds=1)
_EPOCH_ORDINAL = _EPOCH.toordinal()


def datetime_days(value: Any) -> float:
    """Days since the Unix epoch of a date, a naive datetime or a date/timestamp string."""
    if value.__class__ is datetime.date:  # the service's dates: the commonest, checked first
        return float(value.toordinal() - _EPOCH_ORDINAL)
    if isinstance(value, datetime.datetime) and value.tzinfo is None:  # fast path, same result
        return ((value - _EPOCH) // _ONE_US) / DAY_US
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return float(value.toordinal() - _EPOCH_ORDINAL)
    scalar = pa.scalar(str(value).replace("T", " ")).cast(pa.timestamp("us"))
    return float(scalar.value) / DAY_US if scalar.is_valid else math.nan
