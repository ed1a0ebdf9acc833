"""The online learner: read events, score them, learn them, checkpoint state and offset together.

Events are taken from the source in blocks of ``batch`` events (``learn_one`` takes blocks of
:data:`~churnscale.online.state.ONE_BY_ONE_BLOCK` and learns them one at a time), counted from
the stream start or the checkpointed offset. Checkpoints are written only between blocks, so a
restarted learner cuts the same blocks as an uninterrupted one and reaches the same state:
every event after the checkpoint is learned again exactly once and none before it. (In follow
mode a block is also closed when the source goes idle, so mini-batch boundaries then depend on
arrival times; no event is learned twice or skipped either way.)
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from churnscale.data.schema import Schema
from churnscale.features.preprocessor import Preprocessor
from churnscale.online.checkpoint import CheckpointStore
from churnscale.online.records import StreamQuarantine, typed_batch
from churnscale.online.sources import Entry, RecordSource
from churnscale.online.state import (
    LearnerState,
    LearnOptions,
    chain_digest,
    fit_on_window,
    fresh_state,
    state_from_checkpoint,
    state_to_checkpoint,
)


@dataclass(frozen=True)
class Progress:
    """Where the learner stands, reported after every block."""

    events: int
    learned: int
    quarantined: int
    roc_auc: float
    log_loss: float
    resumed: bool


class OnlineLearner:
    """Learns from one source into one checkpoint; :meth:`run` until the stream ends."""

    def __init__(
        self,
        source: RecordSource,
        *,
        options: LearnOptions,
        store: CheckpointStore | None,
        quarantine: StreamQuarantine,
        preprocessor: Preprocessor | None = None,
        schema: Schema | None = None,
    ) -> None:
        options.validate()
        self.source = source
        self.options = options
        self.store = store
        self.quarantine = quarantine
        self.preprocessor = preprocessor
        self.schema = schema
        self.state_: LearnerState | None = None
        self.resumed_ = False

    def run(self, on_progress: Callable[[Progress], None] | None = None) -> LearnerState:
        """Learn every event until the source ends (forever in follow mode)."""
        state, events = self._start()
        last_save, since_save = time.monotonic(), 0
        try:
            for block in _blocks(events, self.options.block):
                if block:
                    self._learn_block(state, block)
                    since_save += len(block)
                    if on_progress is not None:
                        on_progress(self._progress(state))
                due = since_save >= self.options.checkpoint_every
                if due or time.monotonic() - last_save >= self.options.checkpoint_seconds:
                    if since_save:
                        self.save()
                    last_save, since_save = time.monotonic(), 0
        finally:
            self.quarantine.sync()
        self.save()
        return state

    def _start(self) -> tuple[LearnerState, Iterator[Entry | None]]:
        """The checkpointed state and the events after it, or a fresh state and every event."""
        checkpoint = self.store.load() if self.store is not None else None
        if checkpoint is not None:
            state = state_from_checkpoint(checkpoint, self.source, self.options)
            self.quarantine.resume(size=state.quarantine_bytes, count=state.quarantined)
            self.state_, self.resumed_ = state, True
            return state, self.source.read(state.offset)
        self.quarantine.resume(size=0, count=0)
        events = self.source.read(None)
        preprocessor = self.preprocessor
        if preprocessor is None:
            window = _take(events, self.options.warmup)
            preprocessor = fit_on_window(window, self.options, self.schema)
            events = itertools.chain(window, events)
        self.state_ = fresh_state(preprocessor, self.options)
        return self.state_, events

    def _learn_block(self, state: LearnerState, block: list[Entry]) -> None:
        typed, offsets = typed_batch(
            block, state.schema, quarantine=self.quarantine, source=self.source.identity
        )
        if typed.num_rows:
            X = state.preprocessor.transform_dense(typed)
            y = np.asarray(typed.column(state.preprocessor.schema.target).to_numpy(), dtype=np.int8)
            scores = state.estimator.predict_then_learn(X, y)
            state.metrics.update(y, scores)
            state.digest = chain_digest(state.digest, offsets)
        state.offset = block[-1][0]
        state.events += len(block)
        state.learned += typed.num_rows
        state.quarantined = self.quarantine.count

    def save(self) -> None:
        """Checkpoint the current state (quarantine file fsynced first)."""
        state = self.state_
        if state is None or self.store is None:
            return
        state.quarantine_bytes = self.quarantine.sync()
        self.store.save(state_to_checkpoint(state, self.source, self.options))

    def _progress(self, state: LearnerState) -> Progress:
        return Progress(
            state.events,
            state.learned,
            state.quarantined,
            state.metrics.roc_auc(),
            state.metrics.log_loss(),
            self.resumed_,
        )


def _take(events: Iterator[Entry | None], count: int) -> list[Entry]:
    window: list[Entry] = []
    for event in events:
        if event is None:  # follow mode: wait for a full window
            continue
        window.append(event)
        if len(window) >= count:
            break
    return window


def _blocks(events: Iterator[Entry | None], size: int) -> Iterator[list[Entry]]:
    """Blocks of ``size`` events; an idle tick closes a partial block (or yields an empty one)."""
    block: list[Entry] = []
    for event in events:
        if event is None:
            yield block
            block = []
            continue
        block.append(event)
        if len(block) >= size:
            yield block
            block = []
    if block:
        yield block
