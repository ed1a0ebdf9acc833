"""Binned distributions of one model input, computed on tree-mode values.

Every histogram is defined on the values :meth:`Preprocessor.transform` and
:meth:`Preprocessor.encode_one` produce, so a training dataset, a scored file and the rows
the service saw are binned the same way:

- **numeric** (numeric and datetime features, the predicted probability): inner bin edges at
  the quantiles of a sample, open outer bins (nothing falls outside), plus a missing bin;
- **categorical** (categorical and boolean features): the top categories of the model's
  vocabulary, one ``<other>`` bin (rarer and unseen values) and a missing bin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Literal

import numpy as np

Kind = Literal["numeric", "categorical"]
MISSING = "<missing>"
OTHER = "<other>"
#: Quantile bins of a numeric histogram (fewer when values repeat).
DEFAULT_BINS = 10
#: Most frequent categories kept as their own bins; the rest share ``<other>``.
DEFAULT_TOP_CATEGORIES = 20


@dataclass
class Histogram:
    """Counts of one feature's values in fixed bins; the last bin counts missing values."""

    name: str
    kind: Kind
    edges: list[float] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        if self.counts.size == 0:
            self.counts = np.zeros(self.bins, dtype=np.int64)

    @property
    def bins(self) -> int:
        """Number of bins, the missing bin included."""
        if self.kind == "numeric":
            return len(self.edges) + 2
        return len(self.categories) + 2

    @property
    def rows(self) -> int:
        """Values counted so far."""
        return int(self.counts.sum())

    def labels(self) -> list[str]:
        """A readable name for every bin, in order."""
        if self.kind == "categorical":
            return [*self.categories, OTHER, MISSING]
        if not self.edges:
            return ["all", MISSING]
        shown = [f"{e:.4g}" for e in self.edges]
        inner = [f"[{lo}, {hi})" for lo, hi in pairwise(shown)]
        return [f"< {shown[0]}", *inner, f">= {shown[-1]}", MISSING]

    def bin_index(self, values: np.ndarray) -> np.ndarray:
        """The bin of every tree-mode value (NaN goes to the missing bin)."""
        missing = np.isnan(values)
        if self.kind == "numeric":
            index = np.searchsorted(np.asarray(self.edges), values, side="right")
        else:
            top = len(self.categories)
            codes = np.where(missing, 0, values).astype(np.int64)
            index = np.where((codes >= 0) & (codes < top), codes, top)
        return np.where(missing, self.bins - 1, index)

    def add(self, values: np.ndarray) -> None:
        """Count a 1-D array of tree-mode values."""
        if values.size:
            self.counts += np.bincount(self.bin_index(values), minlength=self.bins)

    def empty_like(self) -> Histogram:
        """The same bins with zero counts."""
        return Histogram(self.name, self.kind, list(self.edges), list(self.categories))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready bins and counts."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.kind == "numeric":
            out["edges"] = self.edges
        else:
            out["categories"] = self.categories
        out["counts"] = [int(c) for c in self.counts]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Histogram:
        """Inverse of :meth:`to_dict` (raises ``ValueError``/``KeyError`` on a bad document)."""
        kind = data["kind"]
        if kind not in ("numeric", "categorical"):
            raise ValueError(f"unknown histogram kind {kind!r}")
        histogram = cls(
            str(data["name"]),
            kind,
            edges=[float(e) for e in data.get("edges", [])],
            categories=[str(c) for c in data.get("categories", [])],
        )
        counts = np.asarray(data["counts"], dtype=np.int64)
        if counts.shape != (histogram.bins,) or (counts < 0).any():
            raise ValueError(f"histogram {histogram.name!r}: counts do not match its bins")
        histogram.counts = counts
        return histogram


def quantile_edges(sample: np.ndarray, *, bins: int = DEFAULT_BINS) -> list[float]:
    """Distinct inner edges at the ``1/bins … (bins-1)/bins`` quantiles of the finite values.

    Repeated values collapse edges, so a discrete feature gets one bin per value it takes.
    """
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        return []
    # values the data takes, so a discrete feature's bins fall between its values
    qs = np.quantile(finite, np.linspace(0.0, 1.0, bins + 1)[1:-1], method="inverted_cdf")
    edges = np.unique(np.concatenate([qs, [finite.min()]]))
    # The minimum is an edge too, so "< min" stays (nearly) empty in the reference and
    # values below anything seen in training show up as their own bin.
    return [float(e) for e in edges]
