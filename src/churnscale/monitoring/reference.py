"""Building the training reference profile (:class:`~churnscale.model.reference.DriftReference`).

Built in one streamed pass by :func:`build_reference` and saved in the model bundle as
``reference.json``, so drift can be measured later without the training data. Bin edges come
from the first ``sample_rows`` rows (held in memory until then); counts are exact over every row.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from churnscale.data.schema import Role
from churnscale.exceptions import SchemaError
from churnscale.features.histograms import (
    DEFAULT_BINS,
    DEFAULT_TOP_CATEGORIES,
    Histogram,
    quantile_edges,
)
from churnscale.model.reference import PREDICTION, DriftReference

if TYPE_CHECKING:
    from churnscale.features.preprocessor import Preprocessor
    from churnscale.model.contract import ChurnModel

#: Rows held to place the bin edges before counting streams on.
DEFAULT_SAMPLE_ROWS = 65_536


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
