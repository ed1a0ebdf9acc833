"""What an online learner is made of, and how it goes into and out of a checkpoint.

The header of a checkpoint (JSON) holds the stream offset, the counters, the running digest of
learned offsets, the fitted Preprocessor and the prequential metrics; the estimator is the
pickled part. A checkpoint is only accepted for the stream and batch size it was made with.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import numpy as np
import orjson

from churnscale.data.conform import conform
from churnscale.data.schema import Schema
from churnscale.exceptions import ConfigError, SchemaError
from churnscale.features.preprocessor import Preprocessor
from churnscale.online.checkpoint import Checkpoint
from churnscale.online.estimators import OnlineEstimator, make_estimator
from churnscale.online.prequential import PrequentialMetrics
from churnscale.online.records import infer_stream_schema, learning_schema, records_table
from churnscale.online.sources import Entry, Offset, Record, RecordSource, decode_payload

FORMAT_VERSION = 1
ONE_BY_ONE_BLOCK = 512
START_DIGEST = "0" * 32


@dataclass(frozen=True)
class LearnOptions:
    """How the learner runs; ``batch`` 1 means River ``learn_one``."""

    batch: int = 1
    checkpoint_every: int = 10_000
    checkpoint_seconds: float = 30.0
    warmup: int = 5_000
    target: str | None = None
    mini_batch: str = "sklearn"
    model: str = "online"

    def validate(self) -> None:
        """Refuse values that cannot work, naming the flag."""
        for flag, value in (
            ("--batch", self.batch),
            ("--checkpoint-every", self.checkpoint_every),
            ("--warmup", self.warmup),
        ):
            if value < 1:
                raise ConfigError(flag, expected="a positive integer", received=value)
        if self.checkpoint_seconds <= 0:
            raise ConfigError(
                "--checkpoint-seconds",
                expected="a positive number",
                received=self.checkpoint_seconds,
            )
        if self.mini_batch not in ("sklearn", "river"):
            raise ConfigError("--mini-batch", expected="sklearn or river", received=self.mini_batch)

    @property
    def block(self) -> int:
        """Events per block taken from the source."""
        return self.batch if self.batch > 1 else ONE_BY_ONE_BLOCK


@dataclass
class LearnerState:
    """Everything a checkpoint holds."""

    preprocessor: Preprocessor
    estimator: OnlineEstimator
    metrics: PrequentialMetrics = field(default_factory=PrequentialMetrics)
    offset: Offset | None = None
    events: int = 0
    learned: int = 0
    digest: str = START_DIGEST
    quarantine_bytes: int = 0
    quarantined: int = 0

    @property
    def schema(self) -> Schema:
        """The schema records are conformed to (no id column)."""
        return learning_schema(self.preprocessor.schema)


def fresh_state(preprocessor: Preprocessor, options: LearnOptions) -> LearnerState:
    """A learner that has seen nothing, for ``preprocessor``'s dense columns."""
    estimator = make_estimator(
        preprocessor.dense_names, batch=options.batch, mini_batch=options.mini_batch
    )
    return LearnerState(preprocessor, estimator)


def chain_digest(digest: str, offsets: list[Offset]) -> str:
    """The running digest after learning the events at ``offsets`` (one hash per event)."""
    value = bytes.fromhex(digest)
    for offset in offsets:
        value = hashlib.blake2b(value + orjson.dumps(offset), digest_size=16).digest()
    return value.hex()


def state_to_checkpoint(
    state: LearnerState, source: RecordSource, options: LearnOptions
) -> Checkpoint:
    """The checkpoint of ``state`` read from ``source``."""
    header = {
        "format_version": FORMAT_VERSION,
        "model": options.model,
        "source": {"kind": source.kind, "identity": source.identity},
        "batch": options.batch,
        "estimator": state.estimator.name,
        "offset": state.offset,
        "events": state.events,
        "learned": state.learned,
        "digest": state.digest,
        "quarantined": state.quarantined,
        "quarantine_bytes": state.quarantine_bytes,
        "preprocessor": state.preprocessor.to_dict(),
        "metrics": state.metrics.to_dict(),
        "saved_at": time.time(),
    }
    return Checkpoint(header, state.estimator)


def state_from_checkpoint(
    checkpoint: Checkpoint, source: RecordSource, options: LearnOptions
) -> LearnerState:
    """Rebuild the state, refusing a checkpoint made for another stream or batch size."""
    header = checkpoint.header
    if header.get("format_version") != FORMAT_VERSION:
        raise ConfigError(
            "checkpoint", expected=f"format {FORMAT_VERSION}", received=header.get("format_version")
        )
    made_for = header["source"]
    if (made_for["kind"], made_for["identity"]) != (source.kind, source.identity):
        raise ConfigError(
            "--stream",
            expected=f"the stream this checkpoint was made from ({made_for['identity']})",
            received=source.identity,
        )
    if header["batch"] != options.batch:
        raise ConfigError(
            "--batch", expected=f"{header['batch']} (as checkpointed)", received=options.batch
        )
    return LearnerState(
        preprocessor=Preprocessor.from_dict(header["preprocessor"]),
        estimator=checkpoint.estimator,
        metrics=PrequentialMetrics.from_dict(header["metrics"]),
        offset=header["offset"],
        events=int(header["events"]),
        learned=int(header["learned"]),
        digest=str(header["digest"]),
        quarantine_bytes=int(header["quarantine_bytes"]),
        quarantined=int(header["quarantined"]),
    )


def fit_on_window(
    window: list[Entry], options: LearnOptions, schema: Schema | None
) -> Preprocessor:
    """A Preprocessor fitted on the first window of events (schema inferred when not given)."""
    decoded = [decode_payload(p) for _, p in window]
    records: list[Record] = [r for r in decoded if isinstance(r, dict)]
    if not records:
        raise SchemaError("the first window of the stream holds no readable record")
    schema = schema or infer_stream_schema(records, target=options.target)
    if schema.target is None:
        raise ConfigError("--target", expected="the label column of the stream", received=None)
    conformed = learning_schema(schema)
    raw = records_table(records, conformed.names)
    typed, _ = conform(raw, conformed, source="window", lines=np.arange(len(records)))
    return Preprocessor(schema).fit([typed])  # rejects are quarantined when learned
