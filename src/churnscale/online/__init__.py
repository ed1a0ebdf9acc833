"""Online learning from streams of labelled records, with exactly-once checkpoints."""

from churnscale.online.checkpoint import Checkpoint, CheckpointStore
from churnscale.online.learner import OnlineLearner, Progress
from churnscale.online.locator import open_source
from churnscale.online.prequential import PrequentialMetrics
from churnscale.online.records import StreamQuarantine
from churnscale.online.sources import (
    Entry,
    JsonLinesSource,
    Offset,
    ParquetDirectorySource,
    RecordSource,
    Undecodable,
)
from churnscale.online.state import LearnerState, LearnOptions

__all__ = [
    "Checkpoint",
    "CheckpointStore",
    "Entry",
    "JsonLinesSource",
    "LearnOptions",
    "LearnerState",
    "Offset",
    "OnlineLearner",
    "ParquetDirectorySource",
    "PrequentialMetrics",
    "Progress",
    "RecordSource",
    "StreamQuarantine",
    "Undecodable",
    "open_source",
]
