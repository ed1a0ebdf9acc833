"""Batch scoring: any readable source → Parquet of id, churn probability, decile (+ reasons).

Streamed in bounded memory with the service's own :class:`~churnscale.serving.predictor.Predictor`
(compiled trees), so batch scores equal the service's. Two passes:

1. read → conform to the model's schema without its target (bad rows go to the quarantine
   file, as in ingest) → encode → predict → write id and probability to a staging file, and
   fold every score into a fixed 2^20-bin histogram of [0, 1];
2. decile edges are the run's own score deciles read off that histogram (resolution 1e-6),
   and a cheap pass over the two-column staging file adds ``decile`` (1 = the 10% most
   likely to churn, 10 = the least) and publishes the output with a rename.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from churnscale.config import Settings
from churnscale.data.conform import conform
from churnscale.data.quarantine import Quarantine
from churnscale.data.readers import read_chunks
from churnscale.data.schema import Schema
from churnscale.data.store import is_dataset, iter_dataset
from churnscale.exceptions import SchemaError, SourceError
from churnscale.model import ChurnModel
from churnscale.serving.predictor import Predictor

BINS = 1 << 20
ROW = "row"


@dataclass(frozen=True)
class ScoreInfo:
    """What a scoring run did."""

    rows: int
    rejected: int
    out: Path
    quarantine: Path | None
    decile_edges: list[float]


def score(
    source: str,
    model: ChurnModel,
    out: Path,
    *,
    settings: Settings,
    reasons: bool = False,
    threads: int = 0,
    on_progress: Callable[[int], None] | None = None,
) -> ScoreInfo:
    """Score every row of ``source`` into the Parquet file ``out``."""
    if out.exists():
        raise SourceError(str(out), "already exists; choose a new output file")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.pass1")
    quarantine_path = out.with_name(f"{out.name}.quarantine.jsonl")
    predictor = Predictor(model, kind=settings.predictor)
    histogram = np.zeros(BINS + 1, dtype=np.int64)
    try:
        with Quarantine(quarantine_path, max_bad_fraction=settings.max_bad_fraction) as quarantine:
            sink = _Sink(staging, histogram, on_progress)
            batches = _typed_batches(source, model.preprocessor.schema, quarantine, settings)
            # One batch is encoded and scored in a worker thread while the next one is read
            # and conformed here (Arrow and the compiled trees release the GIL).
            with ThreadPoolExecutor(max_workers=1) as pool:
                pending: tuple[Future[pa.Table], int] | None = None
                for typed, read in batches:
                    future = pool.submit(
                        _scored, typed, model, predictor, reasons=reasons, threads=threads
                    )
                    if pending is not None:
                        sink.write(pending[0].result(), pending[1])
                    pending = (future, read)
                if pending is not None:
                    sink.write(pending[0].result(), pending[1])
            writer = sink.close()
            seen = sink.seen
            quarantine.check(seen)
        if writer is None:
            raise SchemaError(f"{source}: no valid rows to score")
        edges = decile_edges(histogram)
        _add_deciles(staging, out, edges)
    finally:
        staging.unlink(missing_ok=True)
    rows = int(histogram.sum())
    kept = quarantine_path if quarantine.count else None
    return ScoreInfo(rows, quarantine.count, out, kept, edges.tolist())


class _Sink:
    """The staging Parquet writer, the score histogram and the progress count."""

    def __init__(
        self, path: Path, histogram: np.ndarray, on_progress: Callable[[int], None] | None
    ) -> None:
        self.path = path
        self.histogram = histogram
        self.on_progress = on_progress
        self.writer: pq.ParquetWriter | None = None
        self.seen = 0

    def write(self, table: pa.Table, read: int) -> None:
        """Append one scored table that came from ``read`` source rows."""
        self.histogram += np.bincount(_bins(table.column("churn_probability")), minlength=BINS + 1)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
        self.writer.write_table(table)
        self.seen += read
        if self.on_progress is not None:
            self.on_progress(read)

    def close(self) -> pq.ParquetWriter | None:
        """Finish the staging file; the writer, or None when nothing was written."""
        if self.writer is not None:
            self.writer.close()
        return self.writer


def _typed_batches(
    source: str, schema: Schema, quarantine: Quarantine, settings: Settings
) -> Iterator[tuple[pa.RecordBatch, int]]:
    """Conformed batches (model schema, no target) and the raw rows each came from."""
    wanted = schema.without_target()
    if is_dataset(source):
        start = 1
        for batch in iter_dataset(
            Path(source), columns=wanted.names, batch_rows=settings.batch_rows
        ):
            lines = np.arange(start, start + batch.num_rows)
            start += batch.num_rows
            typed, rejects = conform(
                batch, wanted, source=source, lines=lines, require_target=False
            )
            quarantine.add(rejects)
            yield typed, batch.num_rows
        return
    options = settings.storage_options()
    for chunk in read_chunks(source, batch_rows=settings.batch_rows, storage_options=options):
        quarantine.add(chunk.rejects)
        typed, rejects = conform(
            chunk.batch, wanted, source=chunk.source, lines=chunk.lines, require_target=False
        )
        quarantine.add(rejects)
        yield typed, chunk.batch.num_rows + len(chunk.rejects)


def _scored(
    typed: pa.RecordBatch,
    model: ChurnModel,
    predictor: Predictor,
    *,
    reasons: bool,
    threads: int,
) -> pa.Table:
    matrix = model.preprocessor.transform(typed)
    probabilities = predictor.predict_matrix(matrix, threads=threads)
    id_name = model.preprocessor.schema.id
    ident = typed.column(id_name) if id_name else pa.array(np.arange(typed.num_rows), pa.int64())
    columns: dict[str, pa.Array] = {
        id_name or ROW: ident,
        "churn_probability": pa.array(probabilities, pa.float64()),
    }
    if reasons:
        columns["reasons"] = _reason_column(model, matrix)
    return pa.table(columns)


def _reason_column(model: ChurnModel, matrix: np.ndarray) -> pa.Array:
    contributions = model.contributions(matrix)[:, :-1]
    top = np.argsort(-np.abs(contributions), axis=1)[:, :3]
    names = np.asarray(model.feature_names, dtype=object)
    values = np.take_along_axis(contributions, top, axis=1).round(6)
    reason = pa.struct([("feature", pa.string()), ("contribution", pa.float64())])
    flat = pa.StructArray.from_arrays(
        [pa.array(names[top].ravel(), pa.string()), pa.array(values.ravel(), pa.float64())],
        fields=list(reason),
    )
    offsets = pa.array(np.arange(0, len(flat) + 1, top.shape[1], dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, flat)


def _bins(probabilities: pa.ChunkedArray) -> np.ndarray:
    values = np.asarray(probabilities.to_numpy(), dtype=np.float64)
    return np.clip((values * BINS).astype(np.int64), 0, BINS)


def decile_edges(histogram: np.ndarray) -> np.ndarray:
    """The 10%, 20%, …, 90% score quantiles read off a fixed histogram of [0, 1]."""
    cumulative = np.cumsum(histogram)
    targets = cumulative[-1] * np.arange(1, 10) / 10
    positions = np.searchsorted(cumulative, targets, side="left")
    return np.asarray(positions, dtype=np.float64) / BINS


def deciles(probabilities: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Decile of each score: 1 for the top 10% (most likely to churn) … 10 for the bottom."""
    below = np.searchsorted(edges, probabilities, side="left")
    return (10 - below).astype(np.int8)


def _add_deciles(staging: Path, out: Path, edges: np.ndarray) -> None:
    partial = out.with_name(f".{out.name}.partial")
    source = pq.ParquetFile(staging)
    schema = source.schema_arrow.append(pa.field("decile", pa.int8()))
    try:
        with pq.ParquetWriter(partial, schema, compression="zstd") as writer:
            for batch in source.iter_batches():
                scores = np.asarray(batch.column("churn_probability").to_numpy(), dtype=np.float64)
                decile = pa.array(deciles(scores, edges), pa.int8())
                writer.write_batch(
                    pa.RecordBatch.from_arrays([*batch.columns, decile], schema=schema)
                )
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
