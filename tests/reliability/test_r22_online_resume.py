"""Reliability row R22: the online learner, killed with SIGKILL anywhere, resumes exactly once.

``churnscale learn`` runs as a real process and is killed with SIGKILL at random moments while
it learns (between checkpoints, or while one is being written); each restart resumes from its
last checkpoint. After 10 kills — 7 on a JSON Lines file with mini-batches, 3 on the real Redis
Stream at 127.0.0.1:6379 with River ``learn_one`` — the final state must equal an
uninterrupted run's: the same coefficients, the same predictions on a probe set, the same
offset, the same prequential metrics, the same running digest of learned offsets (so no event
was learned twice or skipped) and the same quarantine file (no bad record recorded twice).
A tampered checkpoint is refused with one line and exit code 2, and nothing is overwritten.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest

from churnscale.data.synthetic import generate_table
from churnscale.online import CheckpointStore, JsonLinesSource, LearnOptions, OnlineLearner
from churnscale.online.records import StreamQuarantine, learning_schema, records_table
from churnscale.online.state import START_DIGEST, LearnerState, chain_digest, state_from_checkpoint

KEY = "r22-checkpoint-key-0123456789abcdef"
ROWS = 6_000
BAD_AT = (17, 1_234, 4_321)  # 0-based positions of bad lines in the stream
CHECKPOINT_EVERY = 500


def _stream() -> list[bytes]:
    records = generate_table(ROWS, seed=22).to_pylist()
    lines = [orjson.dumps(r) for r in records]
    lines.insert(BAD_AT[0], b"{truncated")
    lines.insert(BAD_AT[1], orjson.dumps({**records[5], "churned": "maybe"}))
    lines.insert(BAD_AT[2], orjson.dumps({**records[6], "monthly_charges": "lots"}))
    return lines


@pytest.fixture(scope="module")
def stream_lines() -> list[bytes]:
    return _stream()


def _env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CHURNSCALE_ONLINE_CHECKPOINT_KEY": KEY,
        "CHURNSCALE_HOME": str(home),
        "PYTHONUNBUFFERED": "1",
    }


def _command(spec: str, directory: Path, batch: int) -> list[str]:
    return [
        sys.executable, "-m", "churnscale", "learn", "--stream", spec, "--model", "r22",
        "--checkpoint", str(directory), "--target", "churned", "--batch", str(batch),
        "--warmup", "1000", "--checkpoint-every", str(CHECKPOINT_EVERY),
    ]  # fmt: skip


class _Run:
    """One learner process; ``started`` is set once it reports that it is learning."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.started = threading.Event()
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.decode(errors="replace")
            self.lines.append(line)
            if line.startswith("learning:"):
                self.started.set()
        self.started.set()  # the process ended (or never learned anything)

    def finish(self) -> int:
        code = self.process.wait(timeout=120)
        self.reader.join(timeout=10)
        return code


def _load(directory: Path, source: Any, batch: int) -> LearnerState:
    checkpoint = CheckpointStore(directory / "r22.ckpt", KEY).load()
    assert checkpoint is not None
    return state_from_checkpoint(checkpoint, source, LearnOptions(batch=batch))


def _kill_chain(
    spec: str, directory: Path, *, batch: int, kills: int, seconds: float, rng: random.Random,
    source: Any, total: int, home: Path,
) -> list[int]:  # fmt: skip
    """Kill the learner ``kills`` times at random moments, then let it finish.

    Returns the events it had checkpointed at each kill. ``seconds`` is how long an
    uninterrupted run learns; each kill lands in the first 80% of what is left of it.
    """
    done: list[int] = []
    while len(done) < kills:
        run = _Run(_command(spec, directory, batch), _env(home))
        assert run.started.wait(timeout=120), "the learner never started"
        checkpointed = (
            _load(directory, source, batch).events if (directory / "r22.ckpt").exists() else 0
        )
        left = seconds * (total - checkpointed) / total
        time.sleep(rng.uniform(0.0, 0.8 * left))
        run.process.send_signal(signal.SIGKILL)
        code = run.finish()
        if code == 0:  # it finished first: start the chain again from scratch
            for path in directory.iterdir():
                path.unlink()
            continue
        assert code == -signal.SIGKILL, "".join(run.lines)
        done.append(
            _load(directory, source, batch).events if (directory / "r22.ckpt").exists() else 0
        )
    final = _Run(_command(spec, directory, batch), _env(home))
    assert final.finish() == 0, "".join(final.lines)
    return done


def _probe(state: LearnerState) -> np.ndarray:
    probe = generate_table(200, seed=99).to_pylist()
    schema = learning_schema(state.preprocessor.schema)
    table = pa.Table.from_batches([records_table(probe, schema.names)])
    from churnscale.data.conform import conform

    typed, _ = conform(table.to_batches()[0], schema, source="probe", lines=np.arange(200))
    result: np.ndarray = state.estimator.predict_proba(state.preprocessor.transform_dense(typed))
    return result


def _assert_same(resumed: LearnerState, whole: LearnerState) -> None:
    assert np.array_equal(resumed.estimator.coefficients(), whole.estimator.coefficients())
    assert np.array_equal(_probe(resumed), _probe(whole))
    assert resumed.metrics.to_dict() == whole.metrics.to_dict()
    assert (resumed.events, resumed.learned, resumed.quarantined) == (
        whole.events,
        whole.learned,
        whole.quarantined,
    )


def test_r22_sigkill_on_a_jsonl_file_with_mini_batches(
    tmp_path: Path, stream_lines: list[bytes]
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(stream_lines) + b"\n")
    source = JsonLinesSource(path)
    whole_dir, killed_dir = tmp_path / "whole", tmp_path / "killed"
    reference = _Run(_command(str(path), whole_dir, 50), _env(tmp_path))
    assert reference.started.wait(timeout=120)
    began = time.monotonic()
    assert reference.finish() == 0, "".join(reference.lines)
    seconds = time.monotonic() - began
    whole = _load(whole_dir, source, 50)
    assert (whole.offset, whole.events, whole.learned) == (len(stream_lines),) * 2 + (ROWS,)

    points = _kill_chain(
        str(path), killed_dir, batch=50, kills=7, seconds=seconds, rng=random.Random(2207),
        source=source, total=len(stream_lines), home=tmp_path,
    )  # fmt: skip
    resumed = _load(killed_dir, source, 50)
    _assert_same(resumed, whole)
    assert (resumed.offset, resumed.digest) == (whole.offset, whole.digest)
    quarantine = (killed_dir / "r22.quarantine.jsonl").read_bytes()
    assert quarantine == (whole_dir / "r22.quarantine.jsonl").read_bytes()
    offsets = [orjson.loads(line)["offset"] for line in quarantine.splitlines()]
    assert offsets == [p + 1 for p in BAD_AT]
    assert len(points) == 7


@pytest.fixture
def redis_stream(stream_lines: list[bytes]) -> Iterator[tuple[str, list[str]]]:
    import redis

    name = f"churnscale-r22-{uuid.uuid4().hex[:8]}"
    client = redis.Redis(host="127.0.0.1", port=6379)
    pipe = client.pipeline()
    for line in stream_lines:
        pipe.xadd(name, {"data": line})
    ids = [i.decode() for i in pipe.execute()]
    yield name, ids
    client.delete(name)
    client.close()


def test_r22_sigkill_on_the_real_redis_stream_with_learn_one(
    tmp_path: Path, stream_lines: list[bytes], redis_stream: tuple[str, list[str]]
) -> None:
    from churnscale.online.streams import RedisStreamSource

    name, ids = redis_stream
    spec = f"redis://127.0.0.1:6379/0?stream={name}"
    source = RedisStreamSource("redis://127.0.0.1:6379/0", name)
    # the uninterrupted run, in process, over the same records from a file
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(stream_lines) + b"\n")
    options = LearnOptions(
        batch=1, warmup=1_000, target="churned", checkpoint_every=CHECKPOINT_EVERY, model="r22"
    )
    began = time.monotonic()
    whole = OnlineLearner(
        JsonLinesSource(path), options=options, store=None,
        quarantine=StreamQuarantine(tmp_path / "whole-q.jsonl"),
    ).run()  # fmt: skip
    seconds = time.monotonic() - began
    killed_dir = tmp_path / "killed"
    points = _kill_chain(
        spec, killed_dir, batch=1, kills=3, seconds=seconds, rng=random.Random(2203),
        source=source, total=len(ids), home=tmp_path,
    )  # fmt: skip
    resumed = _load(killed_dir, source, 1)
    source.close()
    _assert_same(resumed, whole)
    good = [i for n, i in enumerate(ids) if n not in BAD_AT]
    assert resumed.offset == ids[-1]
    assert resumed.digest == chain_digest(START_DIGEST, good)
    assert len(points) == 3


def test_r22_a_tampered_checkpoint_is_refused(tmp_path: Path, stream_lines: list[bytes]) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(stream_lines[:1_500]) + b"\n")
    directory = tmp_path / "ckpt"
    assert _Run(_command(str(path), directory, 50), _env(tmp_path)).finish() == 0
    checkpoint = directory / "r22.ckpt"
    data = bytearray(checkpoint.read_bytes())
    data[-20] ^= 0x01  # one bit in the pickled estimator
    checkpoint.write_bytes(bytes(data))
    run = _Run(_command(str(path), directory, 50), _env(tmp_path))
    assert run.finish() == 2
    message = "".join(run.lines).strip()
    assert message.startswith("error:") and "signature does not match" in message
    assert len(message.splitlines()) == 1 and "Traceback" not in message
    assert checkpoint.read_bytes() == bytes(data)  # refused, not overwritten
