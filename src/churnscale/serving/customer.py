"""The single-customer request, derived from the model's schema, and its fast validator.

A request is one JSON object with:

- every **feature** column of the model's schema, as a required key whose value may be
  ``null`` (missing; the trees route it as in training): numeric → a finite JSON number;
  categorical → a string (or an integer, read as its decimal text); boolean → ``true`` /
  ``false``; datetime → an ISO 8601 date or timestamp without a zone offset
  (``2026-06-30``, ``2026-06-30T12:00:00``);
- the **id** column, optional (a string of at most 256 characters or a 64-bit integer:
  :mod:`churnscale.serving.ids`), echoed back as ``customer_id``;
- the time / as-of columns, optional and ignored;
- the **value** field (``CHURNSCALE_VALUE_FIELD``, ``value`` by default), optional, when it is
  not a column of the schema: the customer's value, a finite number >= 0 or ``null``
  (:mod:`churnscale.serving.losses`);
- nothing else: unknown keys and the **target** column are refused (422 naming the key).

Validation is a msgspec ``Struct`` generated from the schema (measured ~1 µs for 24 fields,
against ~2–3 µs for ``orjson.loads`` plus a per-field check loop in Python). msgspec fields must
be Python identifiers (and renamed ones may not hold ``"``, ``\\`` or control characters), so a
schema with any other column name (``plan "gold"``, ``a:b``, ``[x]``) gets attributes ``f0``,
``f1``, … and its keys are mapped to them in Python before validation (slower, only for such
schemas); errors, results and the JSON Schema use the column names.
"""

from __future__ import annotations

import datetime
import keyword
import re
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from churnscale.data.schema import Role, Schema
from churnscale.serving.errors import InvalidInputError
from churnscale.serving.ids import MsgspecId
from churnscale.serving.jsonbody import decoded, not_utf8, quotes_prove_unique, refuse_duplicates

# Finite, and strictly inside the largest double: a JSON literal just above it (``max + 1`` as an
# integer) rounds *down* to the largest double when decoded, so an inclusive bound would accept
# a number the schema calls out of range. Exclusive bounds refuse it (R01 found the case).
FINITE = msgspec.Meta(gt=-1.7976931348623157e308, lt=1.7976931348623157e308)
#: A customer's value: finite and >= 0.
VALUE = Annotated[float, msgspec.Meta(ge=0.0, lt=1.7976931348623157e308)]
_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?$"
_FIELD = re.compile(r"`\$(?:\[\d+\])?\.([^`]+)`|field `([^`]+)`")
_ROW = re.compile(r"`\$\[(\d+)\]")
#: Distinct date texts a decoder remembers parsed (then it starts afresh: a bounded cache).
_DATES_KEPT = 4_096
_TYPES: dict[Role, Any] = {
    Role.NUMERIC: Annotated[float, FINITE] | None,
    Role.CATEGORICAL: str | int | None,
    Role.BOOLEAN: bool | None,
    Role.DATETIME: Annotated[str, msgspec.Meta(pattern=_DATE_PATTERN)] | None,
}


class CustomerDecoder:
    """Bytes or Python objects → a validated ``dict`` ready for ``Preprocessor.encode_one``."""

    def __init__(self, schema: Schema, *, value_field: str | None = None) -> None:
        self.schema = schema
        self.features = [c.name for c in schema.features]
        self.id = schema.id
        self.target = schema.target
        self.dates = [c.name for c in schema.features if c.role is Role.DATETIME]
        fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [
            (c.name, _TYPES[c.role]) for c in schema.features
        ]
        required = len(fields)
        if self.id:
            fields.append((self.id, MsgspecId | msgspec.UnsetType, msgspec.UNSET))
        extras = {schema.time_column, schema.as_of_column} - {None, *self.features}
        for extra in sorted(str(e) for e in extras):
            fields.append((extra, Any, msgspec.UNSET))
        if value_field and value_field not in schema.names:
            fields.append((value_field, VALUE | None | msgspec.UnsetType, msgspec.UNSET))
        #: column name → attribute name, when some column name is not an identifier
        self._attrs: dict[str, str] | None = None
        self._names: dict[str, str] = {}
        if not all(_attribute_safe(f[0]) for f in fields):
            self._attrs = {f[0]: f"f{i}" for i, f in enumerate(fields)}
            self._names = {a: n for n, a in self._attrs.items()}
            fields = [(self._attrs[f[0]], *f[1:]) for f in fields]  # type: ignore[misc]
        #: optional keys (id, time) are UNSET when absent: the keys a body held are counted
        #: (``required`` + the optional ones present) to refuse a repeated key
        self._required = required
        self._optional = [f[0] for f in fields[required:]]
        #: the value field's attribute: kept in the customer only when it holds a number, so
        #: a customer without one looks as it did before (logs, exports, shadow)
        self._value: str | None = None
        if value_field and value_field not in schema.names:
            self._value = self._attrs[value_field] if self._attrs else value_field
            self._optional.remove(self._value)
        #: the fields whose value may be a JSON string (the rest never hold a quote)
        self._textual = [
            f[0]
            for f, c in zip(fields, schema.features, strict=False)
            if c.role in (Role.CATEGORICAL, Role.DATETIME)
        ] + self._optional
        self.struct: type[msgspec.Struct] = msgspec.defstruct(
            "Customer", fields, forbid_unknown_fields=True
        )
        self._one = msgspec.json.Decoder(self.struct)
        self._parsed_dates: dict[str, datetime.date] = {}
        self._many = msgspec.json.Decoder(list[self.struct])  # type: ignore[name-defined]

    def json_schema(self) -> dict[str, Any]:
        """JSON Schema of one customer object (for the OpenAPI document)."""
        schema: dict[str, Any] = msgspec.json.schema(self.struct)["$defs"]["Customer"]
        if self._attrs is not None:
            schema["properties"] = {self._names[a]: v for a, v in schema["properties"].items()}
            schema["required"] = [self._names[a] for a in schema.get("required", [])]
        schema["description"] = "One customer: every feature column (null = missing)."
        return schema

    def decode(self, body: bytes) -> dict[str, Any]:
        """One customer from a JSON body."""
        if self._attrs is not None:
            return self.convert(_parsed(body))
        try:
            obj = self._one.decode(body)
        except UnicodeDecodeError as exc:
            raise not_utf8(body, exc) from None
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise self._error(exc) from None
        x = msgspec.structs.asdict(obj)
        keys = self._required + self._present(x)
        strings = 0  # self._strings(x), inlined: one request's hot path
        for name in self._textual:
            if type(x[name]) is str:
                strings += 1
        if not quotes_prove_unique(body, keys, strings):
            refuse_duplicates(body, keys)
        for name in self.dates:  # self._finish(x), inlined: the struct has no target field
            text = x[name]
            if text is not None:
                x[name] = self._date(text, name, None)
        return x

    def decode_many(self, body: bytes) -> list[dict[str, Any]]:
        """Customers from a JSON array body."""
        if self._attrs is not None:
            items = _parsed(body)
            if not isinstance(items, list):
                raise InvalidInputError(f"Expected `array`, got `{type(items).__name__}`")
            return [self.convert(item, row=i) for i, item in enumerate(items)]
        try:
            objs = self._many.decode(body)
        except UnicodeDecodeError as exc:
            raise not_utf8(body, exc) from None
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise self._error(exc) from None
        rows = [msgspec.structs.asdict(o) for o in objs]
        keys = sum(self._required + self._present(x) for x in rows)
        if not quotes_prove_unique(body, keys, sum(self._strings(x) for x in rows)):
            refuse_duplicates(body, keys)
        return [self._finish(x, row=i) for i, x in enumerate(rows)]

    def convert(self, x: Mapping[str, Any], *, row: int | None = None) -> dict[str, Any]:
        """One customer from already-parsed JSON values (protocol adapters)."""
        try:
            obj = msgspec.convert(self._to_attributes(x, row=row), self.struct)
        except msgspec.ValidationError as exc:
            error = self._error(exc)
            raise InvalidInputError(error.reason, field=error.field, row=row) from None
        values = msgspec.structs.asdict(obj)
        self._present(values)
        if self._attrs is not None:
            values = {self._names[a]: v for a, v in values.items()}
        return self._finish(values, row=row)

    def _to_attributes(self, x: Any, *, row: int | None) -> Any:
        """``x`` with column names as attribute names (a schema with non-identifier names)."""
        if self._attrs is None or not isinstance(x, dict):
            return x
        mapped: dict[str, Any] = {}
        for key, value in x.items():
            attribute = self._attrs.get(key) if isinstance(key, str) else None
            if attribute is None:
                message = f"Object contains unknown field `{key}`"
                if key == self.target:
                    message = "the target column is not accepted"
                raise InvalidInputError(message, field=str(key), row=row)
            mapped[attribute] = value
        return mapped

    def _present(self, x: dict[str, Any]) -> int:
        """How many optional keys ``x`` was given (each UNSET one becomes None; the value
        field is removed unless it holds a number)."""
        present = 0
        for name in self._optional:
            if x[name] is msgspec.UNSET:
                x[name] = None
            else:
                present += 1
        if self._value is not None:
            value = x[self._value]
            if value is None or value is msgspec.UNSET:
                del x[self._value]
            present += value is not msgspec.UNSET
        return present

    def _strings(self, x: dict[str, Any]) -> int:
        """How many of ``x``'s values are strings (nested ones are not counted)."""
        return len([name for name in self._textual if type(x[name]) is str])

    def _finish(self, x: dict[str, Any], *, row: int | None = None) -> dict[str, Any]:
        if self.target and self.target in x:
            raise InvalidInputError("the target column is not accepted", field=self.target)
        for name in self.dates:
            text = x[name]
            if text is not None:
                x[name] = self._date(text, name, row)
        return x

    def _date(self, text: str, field: str, row: int | None) -> datetime.date:
        """``text`` parsed (:func:`_parse_datetime`), remembered: requests repeat few dates (a
        snapshot date, signup dates), and a lookup costs a quarter of a parse."""
        parsed = self._parsed_dates.get(text)
        if parsed is None:
            parsed = _parse_datetime(text, field=field, row=row)
            if len(self._parsed_dates) >= _DATES_KEPT:
                self._parsed_dates.clear()
            self._parsed_dates[text] = parsed
        return parsed

    def _error(self, exc: Exception) -> InvalidInputError:
        text = str(exc)
        if self.target and f"`{self.target}`" in text and "unknown field" in text:
            text = "the target column is not accepted"
        field = _FIELD.search(str(exc))
        row = _ROW.search(str(exc))
        name = (field.group(1) or field.group(2)) if field else None
        if name in self._names:  # an attribute of a non-identifier column: say the column
            text = text.replace(f"`{name}`", f"`{self._names[name]}`")
            text = text.replace(f".{name}`", f".{self._names[name]}`")
            name = self._names[name]
        return InvalidInputError(text, field=name, row=int(row.group(1)) if row else None)


def _attribute_safe(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


_ANY = msgspec.json.Decoder()


def _parsed(body: bytes) -> Any:
    return decoded(_ANY, body)


def _parse_datetime(text: str, *, field: str, row: int | None) -> datetime.date:
    try:
        if len(text) == 10:
            return datetime.date.fromisoformat(text)
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(
            f"not a valid date or timestamp: {text!r}", field=field, row=row
        ) from None
