"""Column roles and dtypes of a churn dataset: inferred from a sample, overridable, saved as JSON.

A :class:`Schema` is the contract every later stage relies on: the reader conforms raw batches
to it (see :mod:`churnscale.data.conform`), the store saves it beside the data, the
preprocessor and the model read their feature list from it.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from churnscale.exceptions import ConfigError, SchemaError


class Role(StrEnum):
    """What a column is for."""

    ID = "id"
    TARGET = "target"
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"
    DATETIME = "datetime"


#: Arrow type each role is stored as.
ROLE_TYPES: dict[Role, pa.DataType] = {
    Role.ID: pa.string(),
    Role.TARGET: pa.int8(),
    Role.NUMERIC: pa.float64(),
    Role.CATEGORICAL: pa.string(),
    Role.BOOLEAN: pa.bool_(),
    Role.DATETIME: pa.timestamp("us"),
}

#: Schema metadata naming a survival model's duration column (not a feature).
DURATION_KEY = "duration_column"

NULL_TOKENS = ("", "na", "n/a", "nan", "null", "none", "?", "-")
TRUE_TOKENS = ("1", "1.0", "true", "t", "yes", "y")
FALSE_TOKENS = ("0", "0.0", "false", "f", "no", "n")
ID_NAMES = ("customer_id", "customerid", "cust_id", "client_id", "clientnum", "user_id", "id")
TARGET_NAMES = ("churned", "churn", "exited", "attrition_flag", "label", "target", "cancelled")
NUMBER_PATTERN = r"^\s*[+-]?((\d+(\.\d*)?)|(\.\d+))([eE][+-]?\d+)?\s*$"
DATETIME_PATTERN = r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$"


@dataclass(frozen=True)
class ColumnSpec:
    """One column: its name and role (the stored dtype follows from the role)."""

    name: str
    role: Role

    @property
    def arrow_type(self) -> pa.DataType:
        """The Arrow type this column is stored as."""
        return ROLE_TYPES[self.role]


@dataclass(frozen=True)
class Schema:
    """Roles of every column, plus how to read the target."""

    columns: tuple[ColumnSpec, ...]
    positive_label: str | None = None
    time_column: str | None = None
    as_of_column: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise SchemaError(f"duplicate column names: {', '.join(duplicates)}")
        for role in (Role.ID, Role.TARGET):
            found = [c.name for c in self.columns if c.role is role]
            if len(found) > 1:
                raise SchemaError(f"more than one {role.value} column: {', '.join(found)}")

    @property
    def names(self) -> list[str]:
        """All column names, in order."""
        return [c.name for c in self.columns]

    @property
    def target(self) -> str | None:
        """Name of the target column, if any."""
        return next((c.name for c in self.columns if c.role is Role.TARGET), None)

    @property
    def id(self) -> str | None:
        """Name of the customer id column, if any."""
        return next((c.name for c in self.columns if c.role is Role.ID), None)

    @property
    def features(self) -> list[ColumnSpec]:
        """Columns a model learns from: numeric, categorical, boolean and datetime ones (not
        the time, as-of or, for a survival model, duration column)."""
        skip = {Role.ID, Role.TARGET}
        times = (self.time_column, self.as_of_column, self.metadata.get(DURATION_KEY))
        return [c for c in self.columns if c.role not in skip and c.name not in times]

    def role_of(self, name: str) -> Role:
        """The role of column ``name``."""
        for c in self.columns:
            if c.name == name:
                return c.role
        raise SchemaError("not in the schema", column=name)

    def arrow_schema(self) -> pa.Schema:
        """The Arrow schema data is stored with."""
        return pa.schema([pa.field(c.name, c.arrow_type) for c in self.columns])

    def without_target(self) -> Schema:
        """This schema minus its target column (what scoring and serving receive)."""
        return replace(self, columns=tuple(c for c in self.columns if c.role is not Role.TARGET))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data = asdict(self)
        data["columns"] = [{"name": c.name, "role": c.role.value} for c in self.columns]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schema:
        """The inverse of :meth:`to_dict`, validating every role."""
        try:
            columns = tuple(ColumnSpec(str(c["name"]), Role(c["role"])) for c in data["columns"])
        except (KeyError, TypeError) as exc:
            raise SchemaError(f"malformed schema: missing {exc}") from exc
        except ValueError as exc:
            roles = [r.value for r in Role]
            raise SchemaError(f"malformed schema: {exc}; roles are {roles}") from exc
        return cls(
            columns=columns,
            positive_label=data.get("positive_label"),
            time_column=data.get("time_column"),
            as_of_column=data.get("as_of_column"),
            metadata=dict(data.get("metadata") or {}),
        )

    def save(self, path: Path) -> None:
        """Write the schema as JSON."""
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> Schema:
        """Read a schema from JSON or YAML."""
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(
                "schema file", expected="a readable file", received=str(path)
            ) from exc
        data = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
        if not isinstance(data, dict):
            raise SchemaError(f"{path}: expected a mapping with 'columns'")
        return cls.from_dict(data)


@dataclass(frozen=True)
class SchemaHints:
    """What a user says about the data (flags or a schema file) before inference."""

    target: str | None = None
    id: str | None = None
    positive_label: str | None = None
    drop: tuple[str, ...] = ()
    roles: dict[str, Role] = field(default_factory=dict)
    time_column: str | None = None
    as_of_column: str | None = None


def _lower_strings(column: pa.Array) -> pa.Array:
    return pc.utf8_lower(pc.utf8_trim_whitespace(column.cast(pa.string())))


def _non_null_values(column: pa.Array) -> pa.Array:
    lowered = _lower_strings(column)
    is_null = pc.or_kleene(pc.is_null(lowered), pc.is_in(lowered, pa.array(NULL_TOKENS)))
    mask = pc.invert(is_null)
    return lowered.filter(mask)


#: Share of a sample's values that must fit a role; the rest are bad rows, quarantined later.
ROLE_SHARE = 0.99


def _mostly(matches: pa.Array) -> bool:
    return len(matches) > 0 and pc.sum(matches.cast(pa.int64())).as_py() >= ROLE_SHARE * len(
        matches
    )


def _all_match(values: pa.Array, pattern: str) -> bool:
    return _mostly(pc.match_substring_regex(values, pattern))


def infer_role(name: str, column: pa.Array) -> Role:
    """Guess the role of one feature column from a sample of its values."""
    if pa.types.is_boolean(column.type):
        return Role.BOOLEAN
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        return Role.NUMERIC
    if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
        return Role.DATETIME
    values = _non_null_values(column)
    if len(values) == 0:
        return Role.NUMERIC
    if _all_match(values, NUMBER_PATTERN):
        return Role.NUMERIC
    tokens = pa.array(TRUE_TOKENS[2:] + FALSE_TOKENS[2:])
    if _mostly(pc.is_in(values, tokens)):
        return Role.BOOLEAN
    if _all_match(values, DATETIME_PATTERN):
        return Role.DATETIME
    return Role.CATEGORICAL


def _find_named(names: list[str], candidates: tuple[str, ...]) -> str | None:
    normalised = {re.sub(r"[^a-z0-9]", "", n.lower()): n for n in names}
    for candidate in candidates:
        hit = normalised.get(candidate.replace("_", ""))
        if hit is not None:
            return hit
    return None


def infer_schema(sample: pa.Table, hints: SchemaHints | None = None) -> Schema:
    """Infer every column's role from ``sample``, applying the user's ``hints`` first."""
    hints = hints or SchemaHints()
    names = sample.column_names
    named = [hints.target, hints.id, hints.time_column, hints.as_of_column, *hints.drop]
    missing = [n for n in named if n and n not in names]
    missing += [n for n in hints.roles if n not in names]
    if missing:
        raise SchemaError("flags name columns the data does not have", missing=sorted(missing))
    target = hints.target or _find_named(names, TARGET_NAMES)
    id_column = hints.id or _find_named(names, ID_NAMES)
    columns = []
    for name in names:
        if name in hints.drop:
            continue
        role = hints.roles.get(name)
        if role is None:
            if name == target:
                role = Role.TARGET
            elif name == id_column:
                role = Role.ID
            elif name in (hints.time_column, hints.as_of_column):
                role = Role.DATETIME
            else:
                role = infer_role(name, sample.column(name).combine_chunks())
        columns.append(ColumnSpec(name, role))
    schema = Schema(
        columns=tuple(columns),
        positive_label=hints.positive_label,
        time_column=hints.time_column,
        as_of_column=hints.as_of_column,
    )
    if schema.target is not None:
        check_target(sample.column(schema.target).combine_chunks(), schema)
    return schema


def check_target(column: pa.Array, schema: Schema) -> None:
    """Refuse a target that is not binary unless a positive label says which value is churn."""
    if schema.positive_label is not None:
        return
    values = _non_null_values(column)
    known = pa.array(TRUE_TOKENS + FALSE_TOKENS)
    unknown = values.filter(pc.invert(pc.is_in(values, known)))
    # A few odd labels are bad rows (quarantined later); many mean the target is not binary.
    if len(unknown) > 0.01 * max(len(values), 1):
        shown = sorted(str(v) for v in pc.unique(values).to_pylist())[:5]
        raise SchemaError(
            f"target has values {shown}; expected 1/0, yes/no or true/false, "
            "or name the churn value with --positive-label",
            column=schema.target,
        )
