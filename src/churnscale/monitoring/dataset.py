"""Drift of a whole data source (any format ``read_chunks`` reads, or a stored dataset).

Rows are streamed, conformed to the model's schema (without its target), encoded and scored
one batch at a time; only the bin counts are kept, so memory does not grow with the source.
Rows that do not conform are counted and left out; too many of them is an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from churnscale.data.conform import conform
from churnscale.data.readers import read_chunks
from churnscale.data.store import is_dataset, iter_dataset
from churnscale.exceptions import QuarantineLimitError, SchemaError
from churnscale.model.reference import DriftReference
from churnscale.monitoring.drift import DriftReport, DriftThresholds, WindowProfile
from churnscale.monitoring.reference import build_reference

if TYPE_CHECKING:
    from churnscale.config import Settings
    from churnscale.model.contract import ChurnModel


class ConformedSource:
    """The conformed batches of a source, counting the rows read and rejected."""

    def __init__(self, source: str, model: ChurnModel, settings: Settings) -> None:
        self.source = source
        self.schema = model.preprocessor.schema.without_target()
        self.settings = settings
        self.read = 0
        self.rejected = 0

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for batch, lines, source in self._raw():
            typed, rejects = conform(
                batch, self.schema, source=source, lines=lines, require_target=False
            )
            self.read += batch.num_rows
            self.rejected += len(rejects)
            if typed.num_rows:
                yield typed
        self.check()

    def _raw(self) -> Iterator[tuple[pa.RecordBatch, np.ndarray, str]]:
        rows = self.settings.batch_rows
        if is_dataset(self.source):
            start = 1
            for batch in iter_dataset(
                Path(self.source), columns=self.schema.names, batch_rows=rows
            ):
                yield batch, np.arange(start, start + batch.num_rows), self.source
                start += batch.num_rows
            return
        options = self.settings.storage_options()
        for chunk in read_chunks(self.source, batch_rows=rows, storage_options=options):
            self.read += len(chunk.rejects)
            self.rejected += len(chunk.rejects)
            yield chunk.batch, chunk.lines, chunk.source

    def check(self) -> None:
        """Refuse a source with no valid row, or with too many bad ones."""
        if self.read == self.rejected:
            raise SchemaError(f"{self.source}: no valid rows")
        if self.rejected > self.settings.max_bad_fraction * self.read:
            raise QuarantineLimitError(
                bad=self.rejected,
                total=self.read,
                limit=self.settings.max_bad_fraction,
                quarantine="the rows' conform errors (run `churnscale ingest` to see them)",
            )


def source_drift(
    model: ChurnModel,
    reference: DriftReference,
    source: str,
    *,
    settings: Settings,
    thresholds: DriftThresholds | None = None,
) -> DriftReport:
    """Drift of every row of ``source`` against ``reference``."""
    reference.check_features(model.feature_names)
    profile = WindowProfile(reference)
    batches = ConformedSource(source, model, settings)
    for batch in batches:
        matrix = model.preprocessor.transform(batch)
        profile.add(matrix, model.predict_matrix(matrix))
    return profile.report(
        thresholds or DriftThresholds.from_settings(settings),
        source=source,
        rejected_rows=batches.rejected,
    )


def source_reference(model: ChurnModel, source: str, *, settings: Settings) -> DriftReference:
    """A reference profile built from ``source`` (for bundles saved without one)."""
    return build_reference(model, ConformedSource(source, model, settings))
