"""Conform raw record batches to a :class:`Schema`: typed columns out, bad rows into rejects.

Every conversion is vectorised (Arrow compute); a row fails when any of its values cannot be
read as its column's role, and it is reported with its line and the first failing column.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from churnscale.data.quarantine import Reject
from churnscale.data.schema import (
    DATETIME_PATTERN,
    FALSE_TOKENS,
    NULL_TOKENS,
    NUMBER_PATTERN,
    TRUE_TOKENS,
    Role,
    Schema,
)
from churnscale.exceptions import SchemaError

#: A converted column and a mask of rows whose value could not be converted (or None).
Converted = tuple[pa.Array, pa.Array | None, str]

_SPECIAL_FLOATS = r"^\s*[+-]?(inf|infinity|nan)\s*$"


def _is_null_token(lowered: pa.Array) -> pa.Array:
    return pc.or_kleene(pc.is_null(lowered), pc.is_in(lowered, pa.array(NULL_TOKENS)))


def _clean(column: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    text = pc.utf8_trim_whitespace(column.cast(pa.string()))
    lowered = pc.utf8_lower(text)
    return text, lowered, _is_null_token(lowered)


def _numeric(column: pa.Array) -> Converted:
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        return column.cast(pa.float64()), None, ""
    if pa.types.is_boolean(column.type):
        return column.cast(pa.float64()), None, ""
    text, lowered, is_null = _clean(column)
    ok = pc.or_(
        pc.match_substring_regex(text, NUMBER_PATTERN),
        pc.match_substring_regex(lowered, _SPECIAL_FLOATS),
    )
    ok = pc.fill_null(ok, False)
    bad = pc.and_not(pc.invert(is_null), ok)
    values = pc.if_else(ok, text, pa.scalar(None, pa.string())).cast(pa.float64())
    return values, bad, "not a number"


def _categorical(column: pa.Array) -> Converted:
    if pa.types.is_dictionary(column.type):
        return _categorical_dictionary(column), None, ""
    text, _, is_null = _clean(column)
    return pc.if_else(is_null, pa.scalar(None, pa.string()), text), None, ""


def _categorical_dictionary(column: pa.DictionaryArray) -> pa.DictionaryArray:
    """Clean only the (small) dictionary; rows pointing at a null token become null rows."""
    text, _, is_null = _clean(column.dictionary)
    indices = column.indices
    if pc.any(is_null).as_py():
        points_at_null = pc.fill_null(pc.take(is_null, indices), False)
        indices = pc.if_else(points_at_null, pa.scalar(None, indices.type), indices)
        text = pc.fill_null(text, "")  # never referenced any more
    return pa.DictionaryArray.from_arrays(indices, text)


def _boolean(column: pa.Array) -> Converted:
    if pa.types.is_boolean(column.type):
        return column, None, ""
    _, lowered, is_null = _clean(column)
    is_true = pc.fill_null(pc.is_in(lowered, pa.array(TRUE_TOKENS)), False)
    is_false = pc.fill_null(pc.is_in(lowered, pa.array(FALSE_TOKENS)), False)
    bad = pc.invert(pc.or_(pc.or_(is_true, is_false), is_null))
    values = pc.if_else(pc.or_(is_true, is_false), is_true, pa.scalar(None, pa.bool_()))
    return values, bad, "not a boolean (expected yes/no, true/false or 1/0)"


def _datetime(column: pa.Array) -> Converted:
    target = pa.timestamp("us")
    if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
        if pa.types.is_timestamp(column.type) and column.type.tz is not None:
            column = pc.local_timestamp(column)
        return column.cast(target), None, ""
    text, _, is_null = _clean(column)
    ok = pc.fill_null(pc.match_substring_regex(text, DATETIME_PATTERN), False)
    bad = pc.and_not(pc.invert(is_null), ok)
    cleaned = pc.if_else(ok, pc.replace_substring(text, "T", " "), pa.scalar(None, pa.string()))
    try:
        return cleaned.cast(target), bad, "not a date or timestamp (expected ISO 8601)"
    except pa.ArrowInvalid:  # ISO-shaped but impossible, such as 2025-13-40: find which rows
        impossible = _impossible_dates(cleaned, target)
        cleaned = pc.if_else(impossible, pa.scalar(None, pa.string()), cleaned)
        bad = pc.or_(bad, impossible)
        return cleaned.cast(target), bad, "not a valid date or timestamp (expected ISO 8601)"


def _impossible_dates(cleaned: pa.Array, target: pa.DataType) -> pa.Array:
    """Which rows of ``cleaned`` do not cast to ``target``, each distinct value tried once."""
    distinct = pc.unique(cleaned.drop_null())
    failing = []
    for value in distinct.to_pylist():
        try:
            pa.array([value]).cast(target)
        except pa.ArrowInvalid:
            failing.append(value)
    return pc.fill_null(pc.is_in(cleaned, pa.array(failing, pa.string())), False)


#: Bytes that may begin or end a value that trimming changes: ASCII whitespace (as
#: ``utf8_trim_whitespace`` counts it) and any non-ASCII byte (Unicode spaces).
_MAYBE_SPACE = np.zeros(256, dtype=bool)
_MAYBE_SPACE[[*range(0x09, 0x0E), *range(0x1C, 0x21), *range(0x80, 0x100)]] = True


def _untouched_by_trim(text: pa.Array) -> bool:
    """Whether ``text`` (a string array) has no null or empty value and none that begins or
    ends with whitespace, so trimming it and blanking empty values would change nothing."""
    if text.null_count or not pa.types.is_string(text.type):
        return False
    if len(text) == 0:
        return True
    offsets = np.frombuffer(text.buffers()[1], np.int32)[text.offset : text.offset + len(text) + 1]
    if (np.diff(offsets) <= 0).any():
        return False
    data = np.frombuffer(text.buffers()[2], np.uint8)
    return not (_MAYBE_SPACE[data[offsets[:-1]]].any() or _MAYBE_SPACE[data[offsets[1:] - 1]].any())


def _identifier(column: pa.Array) -> Converted:
    if _untouched_by_trim(column):  # the usual case, without copying every value twice
        return column, None, "missing id"
    text = pc.utf8_trim_whitespace(column.cast(pa.string()))
    missing = pc.fill_null(pc.equal(text, ""), True)
    return pc.if_else(missing, pa.scalar(None, pa.string()), text), missing, "missing id"


def _target(column: pa.Array, positive_label: str | None) -> Converted:
    if positive_label is not None:
        text = pc.utf8_trim_whitespace(column.cast(pa.string()))
        missing = pc.fill_null(pc.equal(text, ""), True)
        values = pc.equal(text, positive_label).cast(pa.int8())
        return values, missing, "missing label"
    _, lowered, _ = _clean(column)
    is_true = pc.fill_null(pc.is_in(lowered, pa.array(TRUE_TOKENS)), False)
    is_false = pc.fill_null(pc.is_in(lowered, pa.array(FALSE_TOKENS)), False)
    bad = pc.invert(pc.or_(is_true, is_false))
    return is_true.cast(pa.int8()), bad, "label outside the known values (1/0, yes/no, true/false)"


def _converter(role: Role, positive_label: str | None) -> Callable[[pa.Array], Converted]:
    if role is Role.TARGET:
        return lambda column: _target(column, positive_label)
    converters: dict[Role, Callable[[pa.Array], Converted]] = {
        Role.NUMERIC: _numeric,
        Role.CATEGORICAL: _categorical,
        Role.BOOLEAN: _boolean,
        Role.DATETIME: _datetime,
        Role.ID: _identifier,
    }
    return converters[role]


def _on_dictionary(
    convert: Callable[[pa.Array], Converted], column: pa.DictionaryArray
) -> Converted:
    """Convert each distinct value once, then give every row its value's result.

    Every conversion maps one value to one result, so this equals converting the decoded rows.
    """
    if column.null_count:
        return convert(column.cast(column.type.value_type))
    values, bad, reason = convert(column.dictionary)
    indices = column.indices
    rows_bad = None if bad is None else pc.fill_null(bad, False).take(indices)
    return values.take(indices), rows_bad, reason


def check_columns(names: list[str], schema: Schema, *, require_target: bool = True) -> None:
    """Raise :class:`SchemaError` when data lacks a column the schema needs."""
    needed = [n for n in schema.names if require_target or n != schema.target]
    missing = [n for n in needed if n not in names]
    if missing:
        raise SchemaError("data does not match the schema", missing=missing)


def conform(
    batch: pa.RecordBatch,
    schema: Schema,
    *,
    source: str,
    lines: np.ndarray,
    require_target: bool = True,
    keep_dictionary: bool = False,
) -> tuple[pa.RecordBatch, list[Reject]]:
    """Convert ``batch`` to ``schema``'s types; rows that do not fit come back as rejects.

    ``lines`` holds each row's physical line number (or row index) in ``source``. With
    ``keep_dictionary``, a dictionary-encoded categorical column stays dictionary-encoded (its
    values cleaned once per distinct value) instead of becoming a plain string column.
    """
    check_columns(batch.schema.names, schema, require_target=require_target)
    specs = [c for c in schema.columns if require_target or c.role is not Role.TARGET]
    arrays: list[pa.Array] = []
    bad_any = np.zeros(batch.num_rows, dtype=bool)
    reasons: dict[int, tuple[str, str]] = {}
    for spec in specs:
        raw = batch.column(spec.name)
        convert = _converter(spec.role, schema.positive_label)
        if pa.types.is_dictionary(raw.type) and spec.role is not Role.CATEGORICAL:
            values, bad, reason = _on_dictionary(convert, raw)
        else:
            values, bad, reason = convert(raw)
        if pa.types.is_dictionary(values.type) and not keep_dictionary:
            values = values.cast(spec.arrow_type)
        arrays.append(values)
        if bad is None:
            continue
        mask = np.asarray(bad.to_numpy(zero_copy_only=False), dtype=bool)
        fresh = mask & ~bad_any
        for row in np.flatnonzero(fresh).tolist():
            reasons[row] = (spec.name, reason)
        bad_any |= mask
    fields = [pa.field(s.name, a.type) for s, a in zip(specs, arrays, strict=True)]
    typed = pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))
    if not bad_any.any():
        return typed, []
    rejects = [
        Reject(
            source=source,
            line=int(lines[row]),
            reason=f"{reasons[row][1]}",
            column=reasons[row][0],
            value=_raw_value(batch.column(reasons[row][0]), row),
        )
        for row in np.flatnonzero(bad_any).tolist()
    ]
    return typed.filter(pa.array(~bad_any)), rejects


def _raw_value(column: pa.Array, row: int) -> str | None:
    value = column[row].as_py()
    return None if value is None else str(value)[:200]
