"""The Preprocessor: fitted in one streaming pass, saved as JSON, applied the same everywhere.

Two outputs from one fitted object:

- **tree mode** (``transform``, ``encode_one``): one float64 column per feature; numeric values
  as they are (NaN when missing), categories as integer codes into a frequency-capped
  vocabulary (unknown and rare values share the "other" code; missing stays NaN), booleans
  0/1, datetimes as days since the Unix epoch. LightGBM reads it with native categorical and
  missing-value handling.
- **dense mode** (``transform_dense``): mean-imputed, standardised numerics with missing
  indicators, and one-hot categories (top values plus "other"), for linear, online and neural
  models.

Training, batch scoring and the service all call these methods, so they cannot disagree.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from churnscale.data.schema import Role, Schema
from churnscale.exceptions import SchemaError
from churnscale.features.rowcode import DAY_US, row_encoder, row_writer

FORMAT_VERSION = 1


@dataclass
class NumericStats:
    """Running moments of one numeric (or boolean, or datetime) feature."""

    count: int = 0
    nulls: int = 0
    total: float = 0.0
    total_sq: float = 0.0

    def update(self, values: np.ndarray) -> None:
        """Fold in a float array (NaN = missing)."""
        finite = values[np.isfinite(values)]
        self.count += values.size
        self.nulls += values.size - finite.size
        self.total += float(finite.sum())
        self.total_sq += float(np.square(finite).sum())

    @property
    def mean(self) -> float:
        """Mean of the present values (0 when none)."""
        present = self.count - self.nulls
        return self.total / present if present else 0.0

    @property
    def std(self) -> float:
        """Standard deviation of the present values (1 when undefined or zero)."""
        present = self.count - self.nulls
        if present < 2:
            return 1.0
        var = max(self.total_sq / present - self.mean**2, 0.0)
        return math.sqrt(var) if var > 1e-18 else 1.0


@dataclass
class FittedFeature:
    """One model input: its source column, role and fitted state."""

    name: str
    role: Role
    stats: NumericStats = field(default_factory=NumericStats)
    counts: Counter[str] = field(default_factory=Counter)
    vocabulary: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fitted state."""
        return {
            "name": self.name,
            "role": self.role.value,
            "stats": vars(self.stats),
            "vocabulary": self.vocabulary,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FittedFeature:
        """Inverse of :meth:`to_dict`."""
        return cls(
            name=str(data["name"]),
            role=Role(data["role"]),
            stats=NumericStats(**data["stats"]),
            vocabulary=[str(v) for v in data["vocabulary"]],
        )


def column_to_float(column: pa.Array, role: Role) -> np.ndarray:
    """A numeric, boolean or datetime column as float64 with NaN for missing."""
    if role is Role.DATETIME and pa.types.is_date32(column.type):  # whole days: exact
        days32 = column.cast(pa.int32()).cast(pa.float64()).fill_null(math.nan)
        return np.asarray(days32.to_numpy(zero_copy_only=False), dtype=np.float64)
    if role is Role.DATETIME:
        micros = column.cast(pa.timestamp("us")).cast(pa.int64())
        days = pc.divide(micros.cast(pa.float64()), float(DAY_US))
        return np.asarray(days.to_numpy(zero_copy_only=False), dtype=np.float64)
    values = column.cast(pa.float64())
    return np.asarray(values.fill_null(math.nan).to_numpy(zero_copy_only=False), dtype=np.float64)


class Preprocessor:
    """Feature encoding fitted out of core; hyperparameters are stored as given."""

    def __init__(
        self,
        schema: Schema,
        *,
        max_categories: int = 1_000,
        min_frequency: int = 5,
        dense_max_categories: int = 50,
    ) -> None:
        self.schema = schema
        self.max_categories = max_categories
        self.min_frequency = min_frequency
        self.dense_max_categories = dense_max_categories
        self.features_: list[FittedFeature] = []
        self.fitted_ = False

    # ---- fitting ---------------------------------------------------------------------------
    def partial_fit(self, batch: pa.RecordBatch) -> Preprocessor:
        """Fold one batch of training rows into the running statistics."""
        if not self.features_:
            self.features_ = [FittedFeature(c.name, c.role) for c in self.schema.features]
        self._check_columns(batch.schema.names)
        for spec in self.features_:
            column = batch.column(spec.name)
            if spec.role is Role.CATEGORICAL:
                _count_values(spec.counts, column, cap=self.max_categories * 20)
            else:
                spec.stats.update(column_to_float(column, spec.role))
        return self

    def merge(self, other: Preprocessor) -> Preprocessor:
        """Fold in another unfinished Preprocessor's statistics (a reduction over partitions)."""
        if not other.features_:
            return self
        if not self.features_:
            self.features_ = [FittedFeature(c.name, c.role) for c in self.schema.features]
        for mine, theirs in zip(self.features_, other.features_, strict=True):
            if mine.role is Role.CATEGORICAL:
                mine.counts.update(theirs.counts)
                _trim_counts(mine.counts, cap=self.max_categories * 20)
            else:
                for name in ("count", "nulls", "total", "total_sq"):
                    setattr(
                        mine.stats, name, getattr(mine.stats, name) + getattr(theirs.stats, name)
                    )
        return self

    def finish(self) -> Preprocessor:
        """Freeze vocabularies once every training batch has been seen."""
        if not self.features_:
            raise SchemaError("the Preprocessor saw no training rows")
        for spec in self.features_:
            if spec.role is Role.CATEGORICAL:
                ranked = sorted(spec.counts.items(), key=lambda kv: (-kv[1], kv[0]))
                kept = [v for v, n in ranked if n >= self.min_frequency][: self.max_categories]
                spec.vocabulary = kept
                spec.counts = Counter()
        self._build_lookup()
        self.fitted_ = True
        return self

    def fit(self, batches: Iterable[pa.RecordBatch]) -> Preprocessor:
        """Fit on a stream of training batches in one pass."""
        for batch in batches:
            self.partial_fit(batch)
        return self.finish()

    # ---- tree mode -------------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        """Names of the tree-mode columns, in order."""
        return [s.name for s in self.features_]

    @property
    def categorical_indices(self) -> list[int]:
        """Positions of the categorical columns in tree mode."""
        return [i for i, s in enumerate(self.features_) if s.role is Role.CATEGORICAL]

    def transform(self, batch: pa.RecordBatch | pa.Table) -> np.ndarray:
        """Tree-mode float64 matrix of ``batch`` (rows × features)."""
        self._require_fitted()
        self._check_columns(batch.schema.names)
        columns = []
        for spec in self.features_:
            column = _flat(batch.column(spec.name))
            if spec.role is Role.CATEGORICAL:
                columns.append(self._codes(spec, column))
            else:
                columns.append(column_to_float(column, spec.role))
        return _row_major(columns, batch.num_rows)

    def _codes(self, spec: FittedFeature, column: pa.Array) -> np.ndarray:
        if pa.types.is_dictionary(column.type):
            return self._dictionary_codes(spec, column)
        text = column.cast(pa.string())
        codes = pc.index_in(text, value_set=pa.array(spec.vocabulary, pa.string()))
        values = codes.cast(pa.float64()).fill_null(float(len(spec.vocabulary)))
        result = np.array(values.to_numpy(zero_copy_only=False), dtype=np.float64)
        result[np.asarray(text.is_null().to_numpy(zero_copy_only=False))] = math.nan
        return result

    def _dictionary_codes(self, spec: FittedFeature, column: pa.DictionaryArray) -> np.ndarray:
        """Codes of a dictionary column: look up each distinct value once, then gather."""
        per_value = np.append(self._codes(spec, column.dictionary), math.nan)
        indices = column.indices.fill_null(len(column.dictionary))  # null rows → NaN
        positions = np.asarray(indices.to_numpy(zero_copy_only=False))
        codes: np.ndarray = per_value[positions]
        return codes

    def encode_one(self, x: Mapping[str, Any]) -> np.ndarray:
        """Tree-mode row of one customer given as a dict (the service's fast path).

        Values must already be validated (numbers, strings, booleans or None).
        """
        return np.array(self.values_one(x), dtype=np.float64)

    def values_one(self, x: Mapping[str, Any]) -> list[float]:
        """:meth:`encode_one`'s values as a list."""
        return self._values_one(x)

    def row_writer(self, row: np.ndarray) -> Callable[[Mapping[str, Any]], None]:
        """A function writing :meth:`encode_one`'s values for a customer into ``row`` (a
        float64 array of ``len(feature_names)`` values the caller reuses: the service)."""
        return row_writer(self._lookup, row)

    def _build_lookup(self) -> None:
        self._lookup: list[tuple[str, int, dict[str, float], float]] = []
        for spec in self.features_:
            if spec.role is Role.CATEGORICAL:
                table = {v: float(j) for j, v in enumerate(spec.vocabulary)}
                self._lookup.append((spec.name, 1, table, float(len(spec.vocabulary))))
            else:
                kind = 2 if spec.role is Role.DATETIME else 0
                self._lookup.append((spec.name, kind, {}, math.nan))
        self._values_one = row_encoder(self._lookup)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_values_one", None)  # generated code: rebuilt on unpickling (Dask, spawn)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "_lookup" in state:
            self._values_one = row_encoder(self._lookup)

    # ---- dense mode ------------------------------------------------------------------------
    @property
    def dense_names(self) -> list[str]:
        """Names of the dense-mode columns, in order."""
        names: list[str] = []
        for spec in self.features_:
            if spec.role is Role.CATEGORICAL:
                top = spec.vocabulary[: self.dense_max_categories]
                names += [f"{spec.name}={v}" for v in top] + [f"{spec.name}=<other>"]
            else:
                names += [spec.name, f"{spec.name}:missing"]
        return names

    def transform_dense(self, batch: pa.RecordBatch | pa.Table) -> np.ndarray:
        """Dense float32 matrix: imputed + scaled numerics with indicators, one-hot categories."""
        tree = self.transform(batch)
        return self.dense_from_tree(tree)

    def dense_from_tree(self, tree: np.ndarray) -> np.ndarray:
        """Dense-mode matrix computed from a tree-mode matrix (shared by batch and one-row use)."""
        blocks: list[np.ndarray] = []
        for i, spec in enumerate(self.features_):
            column = tree[:, i]
            missing = np.isnan(column)
            if spec.role is Role.CATEGORICAL:
                width = min(len(spec.vocabulary), self.dense_max_categories)
                codes = np.where(missing | (column >= width), width, column).astype(np.int64)
                block = np.zeros((tree.shape[0], width + 1), dtype=np.float32)
                block[np.arange(tree.shape[0]), codes] = 1.0
                blocks.append(block)
            else:
                scaled = (np.where(missing, spec.stats.mean, column) - spec.stats.mean) / (
                    spec.stats.std
                )
                blocks.append(np.stack([scaled, missing.astype(np.float64)], axis=1))
        return np.concatenate(blocks, axis=1).astype(np.float32)

    # ---- persistence -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state: hyperparameters, schema and every fitted statistic."""
        self._require_fitted()
        return {
            "format_version": FORMAT_VERSION,
            "schema": self.schema.to_dict(),
            "params": {
                "max_categories": self.max_categories,
                "min_frequency": self.min_frequency,
                "dense_max_categories": self.dense_max_categories,
            },
            "features": [s.to_dict() for s in self.features_],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preprocessor:
        """Rebuild a fitted Preprocessor from :meth:`to_dict` output."""
        if data.get("format_version") != FORMAT_VERSION:
            raise SchemaError(f"unsupported preprocessor format {data.get('format_version')!r}")
        pre = cls(Schema.from_dict(data["schema"]), **data["params"])
        pre.features_ = [FittedFeature.from_dict(f) for f in data["features"]]
        pre._build_lookup()
        pre.fitted_ = True
        return pre

    def save(self, path: Path) -> None:
        """Write the fitted state as JSON."""
        path.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> Preprocessor:
        """Read a Preprocessor saved by :meth:`save`."""
        return cls.from_dict(json.loads(path.read_text()))

    # ---- checks ----------------------------------------------------------------------------
    def _require_fitted(self) -> None:
        if not self.fitted_:
            raise SchemaError("the Preprocessor is not fitted; call fit() first")

    def _check_columns(self, names: list[str]) -> None:
        wanted = [c.name for c in self.schema.features]
        missing = [n for n in wanted if n not in names]
        if missing:
            raise SchemaError("data lacks feature columns", missing=missing)


#: Rows copied at a time into the row-major matrix: a block of every column stays in cache,
#: about 3x faster than writing whole strided columns.
_BLOCK_ROWS = 4_096


def _row_major(columns: list[np.ndarray], rows: int) -> np.ndarray:
    """The columns as one C-ordered rows × columns float64 matrix, filled block by block."""
    out = np.empty((rows, len(columns)), dtype=np.float64)
    for start in range(0, rows, _BLOCK_ROWS):
        block = out[start : start + _BLOCK_ROWS]
        for i, column in enumerate(columns):
            block[:, i] = column[start : start + _BLOCK_ROWS]
    return out


def _flat(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _count_values(counts: Counter[str], column: pa.Array, *, cap: int) -> None:
    text = _flat(column).cast(pa.string())
    for item in pc.value_counts(text.drop_null()).to_pylist():
        counts[str(item["values"])] += int(item["counts"])
    _trim_counts(counts, cap=cap)


def _trim_counts(counts: Counter[str], *, cap: int) -> None:
    if len(counts) > cap:  # keep memory bounded on id-like columns: drop the rarest values
        for value, _ in counts.most_common()[cap // 2 :]:
            del counts[value]
