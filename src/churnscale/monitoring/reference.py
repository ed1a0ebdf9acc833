"""The training reference profile: per-feature histograms and the predicted-probability one.

Built in one streamed pass by :func:`build_reference` and saved in the model bundle as
``reference.json``, so drift can be measured later without the training data. Bin edges come
from the first ``sample_rows`` rows (held in memory until then); counts are exact over every row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from churnscale.data.schema import Role
from churnscale.exceptions import SchemaError
from churnscale.monitoring.histograms import (
    DEFAULT_BINS,
    DEFAULT_TOP_CATEGORIES,
    Histogram,
    quantile_edges,
)

if TYPE_CHECKING:
    from churnscale.features.preprocessor import Preprocessor
    from churnscale.model import ChurnModel

REFERENCE_FILE = "reference.json"
FORMAT_VERSION = 1
PREDICTION = "churn_probability"
#: Rows held to place the bin edges before counting streams on.
DEFAULT_SAMPLE_ROWS = 65_536


@dataclass
class DriftReference:
    """What the model's inputs and outputs looked like on its training data."""

    features: list[Histogram]
    prediction: Histogram
    created: str = ""

    @property
    def rows(self) -> int:
        """Rows the reference was built from."""
        return self.prediction.rows

    def feature(self, name: str) -> Histogram:
        """The histogram of feature ``name``."""
        for histogram in self.features:
            if histogram.name == name:
                return histogram
        raise SchemaError("the drift reference has no such feature", column=name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready document."""
        return {
            "format_version": FORMAT_VERSION,
            "created": self.created,
            "rows": self.rows,
            "features": [h.to_dict() for h in self.features],
            "prediction": self.prediction.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftReference:
        """Inverse of :meth:`to_dict`."""
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported reference format {data.get('format_version')!r}")
        return cls(
            features=[Histogram.from_dict(h) for h in data["features"]],
            prediction=Histogram.from_dict(data["prediction"]),
            created=str(data.get("created", "")),
        )

    def save(self, path: Path) -> None:
        """Write the reference as JSON."""
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> DriftReference:
        """Read a reference written by :meth:`save`."""
        return cls.from_dict(json.loads(path.read_text()))

    def check_features(self, names: list[str]) -> None:
        """Refuse a reference whose features are not the model's, in order."""
        mine = [h.name for h in self.features]
        if mine != names:
            raise SchemaError(
                "the drift reference does not match the model's features",
                unknown=[n for n in mine if n not in names],
                missing=[n for n in names if n not in mine],
            )


class ReferenceBuilder:
    """Streams encoded rows and their scores into a :class:`DriftReference`."""

    def __init__(
        self,
        preprocessor: Preprocessor,
        *,
        sample_rows: int = DEFAULT_SAMPLE_ROWS,
        bins: int = DEFAULT_BINS,
        top_categories: int = DEFAULT_TOP_CATEGORIES,
    ) -> None:
        self.preprocessor = preprocessor
        self.sample_rows = sample_rows
        self.bins = bins
        self.top_categories = top_categories
        self._held: list[tuple[np.ndarray, np.ndarray]] = []
        self._held_rows = 0
        self._reference: DriftReference | None = None

    def add(self, matrix: np.ndarray, probabilities: np.ndarray) -> None:
        """Fold in tree-mode rows and the model's probabilities for them."""
        if self._reference is not None:
            _count(self._reference, matrix, probabilities)
            return
        self._held.append((matrix, probabilities))
        self._held_rows += matrix.shape[0]
        if self._held_rows >= self.sample_rows:
            self._place_edges()

    def finish(self) -> DriftReference:
        """The reference built from every row added."""
        if self._reference is None:
            if self._held_rows == 0:
                raise SchemaError("no rows to build a drift reference from")
            self._place_edges()
        reference = self._reference
        if reference is None:  # unreachable: _place_edges always sets it
            raise SchemaError("no rows to build a drift reference from")
        reference.created = datetime.now(UTC).isoformat(timespec="seconds")
        return reference

    def _place_edges(self) -> None:
        matrix = np.concatenate([m for m, _ in self._held])
        scores = np.concatenate([p for _, p in self._held])
        self._held, self._held_rows = [], 0
        head = slice(
            0, self.sample_rows
        )  # edges from exactly the first rows: same for any chunking
        features = [
            self._histogram(spec.name, spec.role, spec.vocabulary, matrix[head, i])
            for i, spec in enumerate(self.preprocessor.features_)
        ]
        prediction = Histogram(PREDICTION, "numeric", quantile_edges(scores[head], bins=self.bins))
        self._reference = DriftReference(features, prediction)
        _count(self._reference, matrix, scores)

    def _histogram(
        self, name: str, role: Role, vocabulary: list[str], sample: np.ndarray
    ) -> Histogram:
        if role is Role.CATEGORICAL:
            return Histogram(name, "categorical", categories=vocabulary[: self.top_categories])
        if role is Role.BOOLEAN:
            return Histogram(name, "categorical", categories=["false", "true"])
        return Histogram(name, "numeric", edges=quantile_edges(sample, bins=self.bins))


def _count(reference: DriftReference, matrix: np.ndarray, probabilities: np.ndarray) -> None:
    for i, histogram in enumerate(reference.features):
        histogram.add(matrix[:, i])
    reference.prediction.add(probabilities)


def build_reference(
    model: ChurnModel,
    batches: Iterable[pa.RecordBatch | pa.Table],
    *,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    bins: int = DEFAULT_BINS,
    top_categories: int = DEFAULT_TOP_CATEGORIES,
) -> DriftReference:
    """The reference profile of ``batches`` (typically the training rows), in one pass.

    Memory is bounded by ``sample_rows`` encoded rows, whatever the number of batches.
    """
    builder = ReferenceBuilder(
        model.preprocessor, sample_rows=sample_rows, bins=bins, top_categories=top_categories
    )
    for batch in batches:
        matrix = model.preprocessor.transform(batch)
        builder.add(matrix, model.predict_matrix(matrix))
    return builder.finish()
