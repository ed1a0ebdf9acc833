"""Batch scoring on one machine: any readable source → Parquet of id, probability, decile.

Streamed in bounded memory with the service's own :class:`~churnscale.model.predictor.Predictor`
(compiled trees), so batch scores equal the service's. Three stages overlap on threads (Arrow
decoding, numpy and the compiled trees release the GIL):

1. read → conform to the model's columns (bad rows go to the quarantine file; skipped for a
   stored dataset, already conformed);
2. encode to the tree-mode matrix;
3. predict → fold scores into a :class:`ScoreHistogram` → append id and probability to an
   uncompressed Arrow IPC staging file (about memory speed).

Deciles need every score first: their edges are read off the histogram, then the staging
file, memory-mapped, is written once as the output Parquet with ``decile`` added (1 = the 10%
most likely to churn, 10 = the least) and published with a rename.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from churnscale.artifacts import replaced_on_success
from churnscale.config import Settings
from churnscale.data.pipeline import ThreadedSink, prefetched
from churnscale.data.quarantine import Quarantine
from churnscale.data.schema import Schema
from churnscale.exceptions import ConfigError, SchemaError, SourceError
from churnscale.model.contract import ChurnModel
from churnscale.model.lightgbm import LightGBMModel
from churnscale.model.loading import expect_model, model_version
from churnscale.model.predictor import Predictor
from churnscale.model.uplift import UpliftModel
from churnscale.scoring.batches import (
    DECILE,
    PROBABILITY,
    encode,
    predict,
    scored_table,
    scoring_schema,
    typed_batches,
)
from churnscale.scoring.deciles import ScoreHistogram, deciles
from churnscale.scoring.uplift import score_uplift
from churnscale.scoring.value import (
    FLAG,
    RANK,
    check_value_source,
    iter_ranked,
    missing_value_column,
    with_rank,
)


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
    value_column: str | None = None,
    rank: bool = False,
    threads: int = 0,
    predictor: Predictor | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ScoreInfo:
    """Score every row of ``source`` into the Parquet file ``out``.

    ``predictor``: one already built for ``model`` (its trees compiled once, as the service
    holds it); by default one is built here. Scoring takes a LightGBM model (compiled trees)
    or an uplift model (:func:`~churnscale.scoring.uplift.score_uplift`: uplift, action, rank).
    ``value_column`` adds ``value`` and expected losses, ``rank`` sorts the rows by expected
    loss (:mod:`churnscale.scoring.value`).
    """
    if isinstance(model, UpliftModel) and (value_column is not None or rank):
        flag = "--rank" if value_column is None else FLAG
        raise ConfigError(flag, expected="a churn or survival model", received="an uplift model")
    if isinstance(model, UpliftModel):
        rows, rejected, kept = score_uplift(
            source, model, out, settings=settings, on_progress=on_progress
        )
        return ScoreInfo(rows, rejected, out, kept, [])
    trees = expect_model(model, LightGBMModel, reference=model_version(model), purpose="scoring")
    if out.exists():
        raise SourceError(str(out), "already exists; choose a new output file")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.scores.arrow")
    quarantine_path = out.with_name(f"{out.name}.quarantine.jsonl")
    predictor = predictor or Predictor(
        trees, kind=settings.predictor, cache=settings.compiled_cache
    )
    if value_column is not None:
        check_value_source(source, value_column)
    schema = scoring_schema(trees, value_column=value_column)
    stage = _ScoreStage(staging, trees, predictor, reasons, threads, value_column)
    try:
        with Quarantine(quarantine_path, max_bad_fraction=settings.max_bad_fraction) as quarantine:
            seen = _run_pipeline(source, schema, stage, quarantine, settings, on_progress)
            stage.close()
            quarantine.check(seen)
        if stage.histogram.rows == 0:
            raise SchemaError(f"{source}: no valid rows to score")
        edges = stage.histogram.edges()
        write_with_deciles(staging, out, edges, rank=rank)
    finally:
        stage.close()
        staging.unlink(missing_ok=True)
    kept = quarantine_path if quarantine.count else None
    return ScoreInfo(stage.histogram.rows, quarantine.count, out, kept, edges.tolist())


def _run_pipeline(
    source: str,
    schema: Schema,
    stage: _ScoreStage,
    quarantine: Quarantine,
    settings: Settings,
    on_progress: Callable[[int], None] | None,
) -> int:
    """Read+conform (thread) → encode (here) → predict+stage (thread); source rows seen."""
    seen = 0
    batches = _value_checked(typed_batches(source, schema, quarantine, settings), stage.value)
    with ThreadedSink(stage.consume, depth=2) as sink:
        for typed, read in prefetched(batches, depth=2):
            sink.put((typed, encode(stage.model, typed)))
            seen += read
            if on_progress is not None:
                on_progress(read)
        sink.close()
    return seen


class _ScoreStage:
    """Predicts encoded batches, folds their scores into the histogram, stages the rows."""

    def __init__(
        self,
        path: Path,
        model: LightGBMModel,
        predictor: Predictor,
        reasons: bool,
        threads: int,
        value: str | None,
    ) -> None:
        self.path = path
        self.model = model
        self.predictor = predictor
        self.reasons = reasons
        self.threads = threads
        self.value = value
        self.histogram = ScoreHistogram()
        self._sink: pa.NativeFile | None = None
        self._writer: pa.ipc.RecordBatchFileWriter | None = None

    def consume(self, item: tuple[pa.RecordBatch, np.ndarray]) -> None:
        """Score one encoded batch and append it to the staging file."""
        typed, matrix = item
        probabilities = predict(self.predictor, matrix, threads=self.threads)
        self.histogram.add(probabilities)
        table = scored_table(
            self.model, typed, matrix, probabilities, reasons=self.reasons, value_column=self.value
        )
        if self._writer is None:
            self._sink = pa.OSFile(str(self.path), "wb")
            self._writer = pa.ipc.new_file(self._sink, table.schema)
        self._writer.write_table(table)

    def close(self) -> None:
        """Finish the staging file (idempotent)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._sink is not None:
            self._sink.close()
            self._sink = None


def output_options(schema: pa.Schema) -> dict[str, object]:
    """Parquet writer options for scores: no dictionary pages for unique ids and floats.

    Dictionary-encoding a column of unique values only to fall back costs about 3x the CPU
    of the whole write; random probabilities do not compress, so they are stored plainly.
    """
    compression = {name: "none" if name == PROBABILITY else "zstd" for name in schema.names}
    return {"compression": compression, "use_dictionary": [DECILE]}


def with_deciles(batch: pa.RecordBatch, edges: np.ndarray) -> pa.RecordBatch:
    """``batch`` plus its ``decile`` column."""
    scores = np.asarray(batch.column(PROBABILITY).to_numpy(), dtype=np.float64)
    decile = pa.array(deciles(scores, edges), pa.int8())
    return pa.RecordBatch.from_arrays(
        [*batch.columns, decile], schema=batch.schema.append(pa.field(DECILE, pa.int8()))
    )


def write_with_deciles(staging: Path, out: Path, edges: np.ndarray, *, rank: bool = False) -> None:
    """Write the staged scores with deciles as the Parquet file ``out`` (atomic rename); with
    ``rank``, in rank order with a ``rank`` column (:mod:`churnscale.scoring.value`)."""
    with replaced_on_success(out) as partial, pa.memory_map(str(staging)) as source:
        reader = pa.ipc.open_file(source)
        schema = reader.schema.append(pa.field(DECILE, pa.int8()))
        if rank:
            schema = schema.append(pa.field(RANK, pa.int64()))
        with pq.ParquetWriter(partial, schema, **output_options(schema)) as writer:  # type: ignore[arg-type]
            if rank:
                for batch, first in iter_ranked(reader.read_all()):
                    writer.write_batch(with_rank(with_deciles(batch, edges), first))
                return
            for index in range(reader.num_record_batches):
                writer.write_batch(with_deciles(reader.get_batch(index), edges))


def _value_checked(
    batches: Iterator[tuple[pa.RecordBatch, int]], value_column: str | None
) -> Iterator[tuple[pa.RecordBatch, int]]:
    """``batches``, a missing value column named as the ``--value-col`` error."""
    try:
        yield from batches
    except SchemaError as exc:
        if value_column is not None and value_column in exc.missing:
            missing_value_column(value_column)
        raise
