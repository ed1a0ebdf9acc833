"""Prequential metrics, estimators, record conversion and the learner, in process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score
from stream_data import KEY, write_jsonl

from churnscale.exceptions import ConfigError, SchemaError
from churnscale.online import (
    CheckpointStore,
    JsonLinesSource,
    LearnerState,
    LearnOptions,
    OnlineLearner,
    PrequentialMetrics,
    StreamQuarantine,
)
from churnscale.online.estimators import RiverLogistic, RiverMiniBatch, SGDMiniBatch
from churnscale.online.records import infer_stream_schema, to_column
from churnscale.online.sources import Entry, Offset


def test_prequential_auc_and_log_loss_match_scikit_learn() -> None:
    rng = np.random.default_rng(5)
    y = rng.random(20_000) < 0.3
    p = 1 / (1 + np.exp(-(rng.normal(size=y.size) + 1.2 * y - 0.8)))
    metrics = PrequentialMetrics()
    for lo in range(0, y.size, 777):
        metrics.update(y[lo : lo + 777], p[lo : lo + 777])
    assert metrics.roc_auc() == pytest.approx(roc_auc_score(y, p), abs=5e-4)
    assert metrics.log_loss() == pytest.approx(log_loss(y, p), rel=1e-9)
    copy = PrequentialMetrics.from_dict(json.loads(json.dumps(metrics.to_dict())))
    assert (copy.roc_auc(), copy.log_loss()) == (metrics.roc_auc(), metrics.log_loss())


def test_metrics_are_nan_before_both_classes() -> None:
    metrics = PrequentialMetrics()
    assert np.isnan(metrics.log_loss())
    metrics.update(np.array([1, 1]), np.array([0.2, 0.9]))
    assert np.isnan(metrics.roc_auc())


def _data(seed: int = 1) -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(600, 4)).astype(np.float32)
    y = (X[:, 0] - X[:, 1] + rng.normal(size=600) > 0).astype(np.int8)
    return X, y, ["a", "b", "c", "d"]


@pytest.mark.parametrize("cls", [RiverLogistic, RiverMiniBatch, SGDMiniBatch])
def test_estimators_predict_before_learning_and_never_mutate_input(cls: Any) -> None:
    X, y, columns = _data()
    estimator = cls(columns)
    assert np.allclose(estimator.predict_proba(X[:3]), 0.5)
    before = X.copy()
    scores = estimator.predict_then_learn(X, y)
    assert np.array_equal(X, before)
    assert scores.shape == (600,) and estimator.coefficients().shape == (5,)
    assert roc_auc_score(y, estimator.predict_proba(X)) > 0.8


def test_learn_one_does_not_depend_on_blocking() -> None:
    X, y, columns = _data()
    whole, parts = RiverLogistic(columns), RiverLogistic(columns)
    scores = whole.predict_then_learn(X, y)
    pieces = [parts.predict_then_learn(X[i : i + 7], y[i : i + 7]) for i in range(0, 600, 7)]
    assert np.array_equal(scores, np.concatenate(pieces))
    assert np.array_equal(whole.coefficients(), parts.coefficients())


def test_mixed_json_values_become_strings() -> None:
    assert to_column([1, 2.5, None]).type.id == to_column([1.0]).type.id
    mixed = to_column([1, "x", {"k": 1}, None])
    assert mixed.to_pylist() == ["1", "x", '{"k":1}', None]


def _learn(
    path: Path, directory: Path, *, batch: int = 1, source: Any = None, **kw: Any
) -> tuple[LearnerState, StreamQuarantine]:
    options = LearnOptions(batch=batch, checkpoint_every=400, warmup=500, target="churned", **kw)
    quarantine = StreamQuarantine(directory / "q.jsonl")
    learner = OnlineLearner(
        source or JsonLinesSource(path),
        options=options,
        store=CheckpointStore(directory / "m.ckpt", KEY),
        quarantine=quarantine,
    )
    state = learner.run()
    quarantine.close()
    return state, quarantine


_BAD = {
    10: b"{not json",
    20: b'{"tenure_months": "many", "churned": 1}',
    30: b'{"tenure_months": 3}',
    40: b'"just a string"',
}


class _Crashing:
    """A JSON Lines source that dies after ``limit`` events (an in-process crash)."""

    def __init__(self, path: Path, limit: int) -> None:
        self.inner = JsonLinesSource(path)
        self.kind, self.identity, self.limit = self.inner.kind, self.inner.identity, limit

    def read(self, after: Offset | None) -> Iterator[Entry | None]:
        for n, event in enumerate(self.inner.read(after)):
            if n == self.limit:
                raise RuntimeError("crash")
            yield event

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("batch", [1, 64])
def test_a_crashed_run_resumes_to_the_uninterrupted_state(
    tmp_path: Path, records: list[dict[str, Any]], batch: int
) -> None:
    path = write_jsonl(tmp_path / "s.jsonl", records[:2_000], bad=_BAD)
    whole, whole_q = _learn(path, tmp_path / "whole", batch=batch)
    for limit in (700, 1_300):  # two crashes, each after the checkpoint at 400 + k·400 events
        with pytest.raises(RuntimeError, match="crash"):
            _learn(path, tmp_path / "crashed", batch=batch, source=_Crashing(path, limit))
    resumed, resumed_q = _learn(path, tmp_path / "crashed", batch=batch)
    assert (resumed.offset, resumed.events, resumed.learned) == (2_004, 2_004, 2_000)
    assert resumed.digest == whole.digest
    assert np.array_equal(resumed.estimator.coefficients(), whole.estimator.coefficients())
    assert resumed.metrics.to_dict() == whole.metrics.to_dict()
    assert resumed_q.path.read_bytes() == whole_q.path.read_bytes()  # nothing quarantined twice
    entries = [json.loads(line) for line in resumed_q.path.read_text().splitlines()]
    assert [e["offset"] for e in entries] == [11, 21, 31, 41]
    assert entries[1]["reason"] == "tenure_months: not a number"
    assert "churned" in entries[2]["reason"]


def test_a_finished_stream_resumes_with_nothing_to_do(
    tmp_path: Path, records: list[dict[str, Any]]
) -> None:
    path = write_jsonl(tmp_path / "s.jsonl", records[:900])
    first, _ = _learn(path, tmp_path / "m")
    again, _ = _learn(path, tmp_path / "m")
    assert (again.events, again.offset, again.digest) == (first.events, 900, first.digest)


def test_a_checkpoint_is_refused_for_another_stream_or_batch(
    tmp_path: Path, records: list[dict[str, Any]]
) -> None:
    path = write_jsonl(tmp_path / "s.jsonl", records[:600])
    other = write_jsonl(tmp_path / "t.jsonl", records[:600])
    _learn(path, tmp_path / "m")
    with pytest.raises(ConfigError, match="--stream: expected the stream this checkpoint"):
        _learn(other, tmp_path / "m")
    with pytest.raises(ConfigError, match="--batch"):
        _learn(path, tmp_path / "m", batch=8)


def test_schema_inference_needs_a_label(tmp_path: Path, records: list[dict[str, Any]]) -> None:
    schema = infer_stream_schema(records[:200], target="churned")
    assert schema.target == "churned" and schema.id == "customer_id"
    path = write_jsonl(tmp_path / "s.jsonl", [{"a": 1.0, "b": "x"}] * 50)
    with pytest.raises(ConfigError, match="--target"):
        OnlineLearner(
            JsonLinesSource(path),
            options=LearnOptions(warmup=10),
            store=None,
            quarantine=StreamQuarantine(tmp_path / "q.jsonl"),
        ).run()
    empty = write_jsonl(tmp_path / "e.jsonl", [[1]] * 5)
    with pytest.raises(SchemaError, match="no readable record"):
        _learn(empty, tmp_path / "e")


@pytest.mark.parametrize(
    ("field", "value", "flag"),
    [("batch", 0, "--batch"), ("checkpoint_seconds", 0.0, "--checkpoint-seconds"),
     ("mini_batch", "torch", "--mini-batch")],
)  # fmt: skip
def test_bad_options_name_the_flag(field: str, value: Any, flag: str) -> None:
    with pytest.raises(ConfigError, match=flag):
        LearnOptions(**{field: value}).validate()
