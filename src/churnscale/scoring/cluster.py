"""Batch scoring on a Dask cluster: one task per Parquet row group, a directory of parts.

The client verifies the model once and sends only its reference and manifest checksum; each
worker loads the verified bundle itself (a shared bundle path, or the registry reference
resolved on the worker), compiles it once per process and refuses a bundle whose manifest
differs from the client's. Row groups come from :func:`~churnscale.data.dask_io.source_pieces`
(the partitions of :func:`~churnscale.data.dask_io.to_dask`), read as Arrow, not pandas.

1. every task reads, conforms (rejects come back to the client's quarantine file), encodes
   and predicts its row group, stages id and probability as Arrow IPC beside the output and
   returns its score histogram; histograms are summed on the workers in a tree;
2. the decile edges of the whole run are read off the total, exactly as on one machine, and a
   second task per part writes ``part-NNNNN.parquet`` with ``decile`` added.

The output directory appears by a rename once every part is written; the workers must see
the output's parent directory (a local cluster does; a remote one needs a shared path).
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from churnscale.config import Settings
from churnscale.data.conform import conform
from churnscale.data.dask_io import Piece, read_row_group, source_pieces
from churnscale.data.quarantine import Quarantine, Reject
from churnscale.data.schema import Schema
from churnscale.exceptions import ChurnscaleError, SchemaError, ScoringError, SourceError
from churnscale.model.contract import ChurnModel
from churnscale.model.lightgbm import LightGBMModel
from churnscale.model.loading import expect_model, load_model
from churnscale.model.predictor import Predictor
from churnscale.scoring.batches import (
    DECILE,
    categorical_names,
    encode,
    predict,
    scored_table,
    scoring_schema,
    stored_is_conformed,
)
from churnscale.scoring.deciles import ScoreHistogram
from churnscale.scoring.local import ScoreInfo, output_options, with_deciles


@dataclass(frozen=True)
class ScoringJob:
    """What every task needs: the model reference and checksum, settings, columns, paths."""

    reference: str
    manifest: str
    settings: Settings
    schema: dict[str, Any]
    conformed: bool
    reasons: bool
    staging: str
    storage_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class PieceResult:
    """What scoring row groups gave: rows read and scored, rejects, the score histogram."""

    read: int
    rejects: list[Reject]
    histogram: ScoreHistogram
    parts: list[int]


def score_on_cluster(
    source: str,
    reference: str,
    out: Path,
    *,
    settings: Settings,
    cluster: str,
    reasons: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> ScoreInfo:
    """Score every row of the Parquet ``source`` on ``cluster`` into the directory ``out``."""
    from churnscale.training.cluster import ClusterAddress, cluster_client

    ClusterAddress.parse(cluster)  # a bad address fails before any work
    if out.exists():
        raise SourceError(str(out), "already exists; choose a new output directory")
    model = _lightgbm(load_model(reference, settings), reference)  # a bad one fails fast here
    stored, pieces = source_pieces(source, storage_options=settings.storage_options())
    job = _job(source, reference, model, settings, stored=stored, reasons=reasons, out=out)
    staging = Path(job.staging)
    staging.mkdir(parents=True)
    quarantine_path = out.with_name(f"{out.name}.quarantine.jsonl")
    try:
        with (
            Quarantine(quarantine_path, max_bad_fraction=settings.max_bad_fraction) as quarantine,
            cluster_client(cluster) as client,
        ):
            total = _score_pieces(client, pieces, job, on_progress)
            quarantine.add(total.rejects)
            quarantine.check(total.read)
            if total.histogram.rows == 0:
                raise SchemaError(f"{source}: no valid rows to score")
            edges = total.histogram.edges()
            _gather(client, client.map(_finish_part, total.parts, job=job, edges=edges))
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    kept = quarantine_path if quarantine.count else None
    return ScoreInfo(total.histogram.rows, quarantine.count, out, kept, edges.tolist())


def _job(
    source: str,
    reference: str,
    model: LightGBMModel,
    settings: Settings,
    *,
    stored: bool,
    reasons: bool,
    out: Path,
) -> ScoringJob:
    path = Path(reference).expanduser()
    schema = scoring_schema(model)
    return ScoringJob(
        reference=str(path.resolve()) if path.is_dir() else reference,
        manifest=str(model.metadata["manifest_sha256"]),
        settings=settings,
        schema=schema.to_dict(),
        conformed=stored and stored_is_conformed(Path(source), schema),
        reasons=reasons,
        staging=str(out.resolve().parent / f".{out.name}.staging-{uuid.uuid4().hex[:8]}"),
        storage_options=settings.storage_options() or {},
    )


def _score_pieces(
    client: Any, pieces: list[Piece], job: ScoringJob, on_progress: Callable[[int], None] | None
) -> PieceResult:
    """Score every row group on the workers; their results summed in a tree there."""
    from distributed import as_completed

    futures = [
        client.submit(score_piece, piece, index, job, pure=False)
        for index, piece in enumerate(pieces)
    ]
    level = list(futures)
    while len(level) > 1:
        pairs = zip(level[::2], level[1::2], strict=False)
        merged = [client.submit(merge_results, a, b, pure=False) for a, b in pairs]
        level = merged + ([level[-1]] if len(level) % 2 else [])
    if on_progress is not None:
        for done in as_completed(futures):  # type: ignore[no-untyped-call]
            on_progress(_gather(client, client.submit(_read_count, done, pure=False)))
    result: PieceResult = _gather(client, level[0])
    return result


def _gather(client: Any, futures: Any) -> Any:
    """``client.gather``, a lost worker or a worker-side failure becoming a one-line error."""
    from distributed import KilledWorker

    try:
        return client.gather(futures)
    except KilledWorker as exc:
        raise ScoringError(f"a worker was lost while scoring: {exc}") from exc


def _read_count(result: PieceResult) -> int:
    return result.read


def merge_results(a: PieceResult, b: PieceResult) -> PieceResult:
    """Two pieces' results as one (rejects and parts kept in order; inputs left unchanged)."""
    histogram = ScoreHistogram().merge(a.histogram).merge(b.histogram)
    return PieceResult(a.read + b.read, a.rejects + b.rejects, histogram, a.parts + b.parts)


_MODELS: dict[tuple[str, str], tuple[LightGBMModel, Predictor]] = {}
_MODELS_LOCK = threading.Lock()


def worker_model(job: ScoringJob) -> tuple[LightGBMModel, Predictor]:
    """The job's model and compiled predictor, loaded once per worker process and verified."""
    key = (job.reference, job.manifest)
    with _MODELS_LOCK:
        if key not in _MODELS:
            model = _lightgbm(load_model(job.reference, job.settings), job.reference)
            found = model.metadata.get("manifest_sha256")
            if found != job.manifest:
                raise ScoringError(
                    f"model {job.reference!r} resolved on this worker to a bundle with manifest "
                    f"{found}, not {job.manifest} as on the client"
                )
            _MODELS[key] = (
                model,
                Predictor(model, kind=job.settings.predictor, cache=job.settings.compiled_cache),
            )
        return _MODELS[key]


def _lightgbm(model: ChurnModel, reference: str) -> LightGBMModel:
    return expect_model(model, LightGBMModel, reference=reference, purpose="scoring")


def score_piece(piece: Piece, index: int, job: ScoringJob) -> PieceResult:
    """Read, conform, encode and score one row group; stage its rows as Arrow IPC."""
    try:
        return _score_piece(piece, index, job)
    except ChurnscaleError as exc:  # some subclasses do not survive pickling: keep the words
        raise ScoringError(f"{piece[0]} row group {piece[1]}: {exc}") from None


def _score_piece(piece: Piece, index: int, job: ScoringJob) -> PieceResult:
    model, predictor = worker_model(job)
    schema = Schema.from_dict(job.schema)
    table, first_row = read_row_group(
        piece,
        columns=schema.names if job.conformed else None,
        storage_options=job.storage_options,
        read_dictionary=categorical_names(schema) if job.conformed else None,
    )
    histogram = ScoreHistogram()
    batch = table.combine_chunks().to_batches()[0] if table.num_rows else None
    if batch is None:
        return PieceResult(0, [], histogram, [])
    typed, rejects = batch, list[Reject]()
    if not job.conformed:
        lines = np.arange(first_row, first_row + batch.num_rows, dtype=np.int64)
        typed, rejects = conform(
            batch, schema, source=piece[0], lines=lines, require_target=False, keep_dictionary=True
        )
    if typed.num_rows == 0:
        return PieceResult(batch.num_rows, rejects, histogram, [])
    matrix = encode(model, typed)
    probabilities = predict(predictor, matrix, threads=1)
    histogram.add(probabilities)
    scored = scored_table(model, typed, matrix, probabilities, reasons=job.reasons)
    with (
        pa.OSFile(_stage_path(job, index), "wb") as sink,
        pa.ipc.new_file(sink, scored.schema) as w,
    ):
        w.write_table(scored)
    return PieceResult(batch.num_rows, rejects, histogram, [index])


def _stage_path(job: ScoringJob, index: int) -> str:
    return os.path.join(job.staging, f"stage-{index:05d}.arrow")


def _finish_part(index: int, *, job: ScoringJob, edges: np.ndarray) -> int:
    """Write staged part ``index`` as ``part-NNNNN.parquet`` with deciles; its row count."""
    stage = _stage_path(job, index)
    with pa.memory_map(stage) as source:
        reader = pa.ipc.open_file(source)
        schema = reader.schema.append(pa.field(DECILE, pa.int8()))
        path = os.path.join(job.staging, f"part-{index:05d}.parquet")
        with pq.ParquetWriter(path, schema, **output_options(schema)) as writer:  # type: ignore[arg-type]
            for i in range(reader.num_record_batches):
                writer.write_batch(with_deciles(reader.get_batch(i), edges))
        rows = sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
    os.unlink(stage)
    return int(rows)
