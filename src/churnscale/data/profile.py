"""Per-column statistics of a stored dataset, computed in one streaming pass."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from churnscale.data.schema import Role
from churnscale.data.store import iter_dataset, load_info

TOP_VALUES = 3


@dataclass
class ColumnProfile:
    """Running statistics of one column."""

    name: str
    role: Role
    count: int = 0
    nulls: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    minimum: float = float("inf")
    maximum: float = float("-inf")
    values: Counter[str] = field(default_factory=Counter)

    def update(self, column: pa.Array) -> None:
        """Fold one batch of this column in."""
        self.count += len(column)
        self.nulls += column.null_count
        if self.role in (Role.NUMERIC, Role.TARGET, Role.BOOLEAN):
            numbers = column.cast(pa.float64()).drop_null().to_numpy()
            numbers = numbers[np.isfinite(numbers)]
            if numbers.size:
                self.total += float(numbers.sum())
                self.total_sq += float((numbers**2).sum())
                self.minimum = min(self.minimum, float(numbers.min()))
                self.maximum = max(self.maximum, float(numbers.max()))
        elif self.role is Role.CATEGORICAL:
            counts = pc.value_counts(column.drop_null())
            for item in counts.to_pylist():
                self.values[str(item["values"])] += int(item["counts"])

    @property
    def mean(self) -> float:
        """Mean of the non-null values (NaN when there are none)."""
        valid = self.count - self.nulls
        return self.total / valid if valid else float("nan")

    @property
    def std(self) -> float:
        """Standard deviation of the non-null values."""
        valid = self.count - self.nulls
        if valid < 2:
            return float("nan")
        return float(np.sqrt(max(self.total_sq / valid - self.mean**2, 0.0)))

    def summary(self) -> dict[str, object]:
        """The figures a profile table shows."""
        out: dict[str, object] = {
            "column": self.name,
            "role": self.role.value,
            "missing": self.nulls / self.count if self.count else 0.0,
        }
        if self.role in (Role.NUMERIC, Role.TARGET, Role.BOOLEAN) and self.count > self.nulls:
            out.update(mean=self.mean, std=self.std, min=self.minimum, max=self.maximum)
        if self.role is Role.CATEGORICAL:
            out["distinct"] = len(self.values)
            out["top"] = ", ".join(v for v, _ in self.values.most_common(TOP_VALUES))
        return out


def profile_dataset(path: Path) -> tuple[list[dict[str, object]], float | None, int]:
    """Column summaries, the target rate (if there is a target) and the row count."""
    schema, info = load_info(path)
    profiles = [ColumnProfile(c.name, c.role) for c in schema.columns]
    for batch in iter_dataset(path):
        for p in profiles:
            p.update(batch.column(p.name))
    target = next((p for p in profiles if p.role is Role.TARGET), None)
    rate = target.mean if target is not None else None
    return [p.summary() for p in profiles], rate, info.rows
