"""Online learning benchmark: events/s and prequential AUC of each learner on the same stream.

The stream is N generated customers held as JSON lines in memory (a message stream delivers
bytes); the source yields each event's bytes and the learner decodes them in blocks
(``pyarrow.json``, :mod:`churnscale.online.jsonblock`), so every online figure covers
decode → conform → dense Preprocessor → score → learn. Rows:

- decode only (baseline): orjson-decoding every event into a dict, nothing else;
- River ``learn_one`` (``--batch 1``);
- scikit-learn ``SGDClassifier.partial_fit`` mini-batches (``--batch B``);
- River ``learn_many`` mini-batches (``--batch B``);
- a full LightGBM retrain (``lightgbm.train``, tree-mode Preprocessor, fixed rounds, one thread
  like the online learners) on the first 80% of the same events, scored on the last 20%.

The Preprocessor is fitted once on the first ``--warmup`` events and shared. "AUC last 20%"
is the prequential AUC of the online learners over the same final 20% of events that the
LightGBM retrain is tested on.

    .venv/bin/python benchmarks/online.py --rows 300000 --batch 1000
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
from sklearn.metrics import roc_auc_score

from churnscale.data.synthetic import GeneratorSpec, generate
from churnscale.features.preprocessor import Preprocessor
from churnscale.online import LearnOptions, OnlineLearner, Progress, StreamQuarantine
from churnscale.online.records import infer_stream_schema
from churnscale.online.sources import Event, Offset, decode_json


class MemoryStream:
    """JSON lines held in memory, yielded as bytes; offset = 1-based position."""

    kind = "memory"
    identity = "memory"

    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines

    def read(self, after: Offset | None) -> Iterator[Event | None]:
        start = after if isinstance(after, int) else 0
        for offset in range(start, len(self.lines)):
            yield offset + 1, self.lines[offset]

    def close(self) -> None:
        """Nothing to release."""


def make_lines(rows: int) -> tuple[list[bytes], pa.Table]:
    """``rows`` generated customers as JSON lines, and as a table (for LightGBM)."""
    lines: list[bytes] = []
    batches = []
    for batch in generate(GeneratorSpec(rows, seed=6), threads=2):
        plain = pa.RecordBatch.from_arrays(
            [
                c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c
                for c in batch.columns
            ],
            names=batch.schema.names,
        )
        batches.append(plain)
        lines.extend(orjson.dumps(r) for r in plain.to_pylist())
    return lines, pa.Table.from_batches(batches)


def run_online(
    lines: list[bytes], pre: Preprocessor, *, batch: int, mini_batch: str, tail_from: int
) -> dict[str, Any]:
    """Learn the whole stream once; events/s, prequential AUC (all, last 20%) and log loss."""
    options = LearnOptions(batch=batch, mini_batch=mini_batch, checkpoint_every=10**12)
    learner = OnlineLearner(
        MemoryStream(lines),
        options=options,
        store=None,
        quarantine=StreamQuarantine(_scratch()),
        preprocessor=pre,
    )
    snapshot: list[np.ndarray] = [np.zeros(1), np.zeros(1)]

    def keep(progress: Progress) -> None:  # histograms as of the last block ending <= tail_from
        if progress.events <= tail_from and learner.state_ is not None:
            metrics = learner.state_.metrics
            snapshot[:] = [metrics.positives_.copy(), metrics.negatives_.copy()]

    began = time.perf_counter()
    state = learner.run(keep)
    seconds = time.perf_counter() - began
    tail = _hist_auc(state.metrics.positives_ - snapshot[0], state.metrics.negatives_ - snapshot[1])
    return {
        "seconds": seconds,
        "events": state.events,
        "auc": state.metrics.roc_auc(),
        "auc_tail": tail,
        "log_loss": state.metrics.log_loss(),
    }


def _hist_auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    below = np.cumsum(negatives) - negatives
    wins = (positives * below).sum() + 0.5 * (positives * negatives).sum()
    return float(wins / (positives.sum() * negatives.sum()))


def _scratch() -> Any:
    import tempfile
    from pathlib import Path

    return Path(tempfile.mkdtemp(prefix="online-bench-")) / "quarantine.jsonl"


def run_decode(lines: list[bytes]) -> dict[str, Any]:
    """The baseline: every event decoded into a dict by orjson, nothing else."""
    began = time.perf_counter()
    count = sum(1 for _, raw in MemoryStream(lines).read(None) if decode_json(raw))
    return {"seconds": time.perf_counter() - began, "events": count}


def run_lightgbm(table: pa.Table, pre: Preprocessor, *, cut: int, rounds: int) -> dict[str, Any]:
    """Full retrain on the first ``cut`` rows (tree-mode features), AUC on the rest."""
    import lightgbm as lgb

    from churnscale.training.local import TrainParams

    began = time.perf_counter()
    X = pre.transform(table)
    y = np.asarray(table.column("churned").to_numpy(), dtype=np.int8)
    params = {**TrainParams().lightgbm_params(), "verbose": -1, "num_threads": 1}
    params.pop("num_iterations", None)
    params.pop("early_stopping_round", None)
    dataset = lgb.Dataset(
        X[:cut], y[:cut], categorical_feature=pre.categorical_indices, free_raw_data=False
    )
    booster = lgb.train(params, dataset, num_boost_round=rounds)
    seconds = time.perf_counter() - began
    auc = roc_auc_score(y[cut:], booster.predict(X[cut:]))
    return {
        "seconds": seconds,
        "events": cut,
        "auc": float("nan"),
        "auc_tail": auc,
        "log_loss": float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--warmup", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=200, help="LightGBM boosting rounds")
    parser.add_argument("--skip-learn-one", action="store_true")
    args = parser.parse_args()

    lines, table = make_lines(args.rows)
    window = [orjson.loads(line) for line in lines[: args.warmup]]
    from churnscale.data.conform import conform
    from churnscale.online.records import learning_schema, records_table

    schema = infer_stream_schema(window, target="churned")
    raw = records_table(window, learning_schema(schema).names)
    typed, _ = conform(raw, learning_schema(schema), source="w", lines=np.arange(len(window)))
    pre = Preprocessor(schema).fit([typed])
    tail_from = int(args.rows * 0.8)

    results: list[tuple[str, dict[str, Any]]] = [("decode only (baseline)", run_decode(lines))]
    if not args.skip_learn_one:
        results.append(
            (
                "River learn_one",
                run_online(lines, pre, batch=1, mini_batch="sklearn", tail_from=tail_from),
            )
        )
    results.append(
        (
            f"sklearn partial_fit, batch {args.batch}",
            run_online(lines, pre, batch=args.batch, mini_batch="sklearn", tail_from=tail_from),
        )
    )
    results.append(
        (
            f"River learn_many, batch {args.batch}",
            run_online(lines, pre, batch=args.batch, mini_batch="river", tail_from=tail_from),
        )
    )
    results.append(
        (
            f"LightGBM retrain ({args.rounds} rounds)",
            run_lightgbm(table, pre, cut=tail_from, rounds=args.rounds),
        )
    )

    base = results[0][1]["events"] / results[0][1]["seconds"]
    width = len(pre.dense_names)
    print(f"{args.rows:,} events; Preprocessor fitted on the first {args.warmup:,}; {width} dense")
    print(
        "| path | events | seconds | events/s | vs decode only "
        "| prequential AUC | AUC last 20% | log loss |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in results:
        rate = r["events"] / r["seconds"]
        print(
            f"| {name} | {r['events']:,} | {r['seconds']:.2f} | {rate:,.0f} | {rate / base:.2f} | "
            f"{r.get('auc', float('nan')):.4f} | {r.get('auc_tail', float('nan')):.4f} | "
            f"{r.get('log_loss', float('nan')):.4f} |"
        )


if __name__ == "__main__":
    main()
