"""Reliability row R22: the online learner, killed with SIGKILL anywhere, resumes exactly once.

``churnscale learn`` (the CLI's ``main``) runs in a forked child process — forked so that the
ten restarts do not each pay for an interpreter start — and is killed with SIGKILL at random
moments while it learns (between checkpoints, or while one is being written); each restart
resumes from its last checkpoint. After 10 kills — 7 on a JSON Lines file with mini-batches,
3 on the real Redis Stream at 127.0.0.1:6379 with River ``learn_one`` — the final state must
equal an uninterrupted run's: the same coefficients, the same predictions on a probe set, the same
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
from churnscale.online import CheckpointStore, JsonLinesSource, LearnOptions
from churnscale.online.records import learning_schema, records_table
from churnscale.online.state import START_DIGEST, LearnerState, chain_digest, state_from_checkpoint

KEY = "r22-checkpoint-key-0123456789abcdef"
ROWS = 2_000
#: The mini-batch learner takes ~0.1 ms an event: with 2,000 events a whole run took ~0.2 s on
#: a noisy host, too short to land seven kills inside it; ten times the events widen each window.
MINI_BATCH_ROWS = 20_000
BAD_AT = (17, 1_234, 1_789)  # 0-based positions of bad lines in the stream
CHECKPOINT_EVERY = 200


def _stream(rows: int = ROWS) -> list[bytes]:
    records = generate_table(rows, seed=22).to_pylist()
    lines = [orjson.dumps(r) for r in records]
    lines.insert(BAD_AT[0], b"{truncated")
    lines.insert(BAD_AT[1], orjson.dumps({**records[5], "churned": "maybe"}))
    lines.insert(BAD_AT[2], orjson.dumps({**records[6], "monthly_charges": "lots"}))
    return lines


@pytest.fixture(scope="module")
def stream_lines() -> list[bytes]:
    return _stream()


def _command(spec: str, directory: Path, batch: int) -> list[str]:
    return [
        "learn", "--stream", spec, "--model", "r22", "--checkpoint", str(directory),
        "--target", "churned", "--batch", str(batch), "--warmup", "400",
        "--checkpoint-every", str(CHECKPOINT_EVERY),
    ]  # fmt: skip


class _Run:
    """``churnscale learn`` in a forked child process (the CLI's ``main``, no interpreter start).

    Its stderr goes to a file; ``wait_started`` returns once it reports that it is learning.
    """

    def __init__(self, args: list[str], home: Path) -> None:
        self.log = home / f"learn-{uuid.uuid4().hex[:8]}.err"
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            code = 1
            try:
                descriptor = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                os.dup2(descriptor, 2)
                sys.stderr = open(2, "w", buffering=1, closefd=False)  # not pytest's capture
                os.environ["CHURNSCALE_ONLINE_CHECKPOINT_KEY"] = KEY
                os.environ["CHURNSCALE_HOME"] = str(home)
                sys.argv = ["churnscale", *args]
                from churnscale.cli import main

                main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            finally:
                sys.stderr.flush()
                os._exit(code)
        self.pid = pid
        self.code: int | None = None

    def text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def wait_started(self, timeout: float = 120.0) -> bool:
        """True once the learner is learning; False when it ended first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "learning:" in self.text():
                return True
            if self._poll():
                return False
            time.sleep(0.005)
        raise AssertionError(f"the learner never started: {self.text()}")

    def _poll(self) -> bool:
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        if pid:
            self.code = os.waitstatus_to_exitcode(status)
        return pid != 0

    def kill(self) -> int:
        """SIGKILL (unless it already ended) and return its exit code."""
        if self.code is None:
            os.kill(self.pid, signal.SIGKILL)
        return self.finish()

    def finish(self) -> int:
        if self.code is None:
            _, status = os.waitpid(self.pid, 0)
            self.code = os.waitstatus_to_exitcode(status)
        return self.code


def _load(directory: Path, source: Any, batch: int) -> LearnerState:
    checkpoint = CheckpointStore(directory / "r22.ckpt", KEY).load()
    assert checkpoint is not None
    return state_from_checkpoint(checkpoint, source, LearnOptions(batch=batch))


def _checkpointed(directory: Path, source: Any, batch: int) -> int:
    exists = (directory / "r22.ckpt").exists()
    return _load(directory, source, batch).events if exists else 0


def _kill_chain(
    spec: str, directory: Path, *, batch: int, kills: int, seconds: float, rng: random.Random,
    source: Any, total: int, home: Path,
) -> list[int]:  # fmt: skip
    """Kill the learner ``kills`` times at random moments, then let it finish.

    Returns the events it had checkpointed at each kill. ``seconds`` is how long an
    uninterrupted run learns; each kill lands in the first 80% of what is left of it.
    """
    done: list[int] = []
    restarts = 0
    while len(done) < kills:
        left = seconds * (total - _checkpointed(directory, source, batch)) / total
        run = _Run(_command(spec, directory, batch), home)
        if run.wait_started():
            time.sleep(rng.uniform(0.0, 0.8 * left))
        code = run.kill()
        if code == 0:  # it finished first: start the chain again from scratch
            restarts += 1
            assert restarts <= 3, f"the learner kept finishing before the kill: {run.text()}"
            for path in directory.iterdir():
                path.unlink()
            continue
        assert code == -signal.SIGKILL, run.text()
        done.append(_checkpointed(directory, source, batch))
    final = _Run(_command(spec, directory, batch), home)
    assert final.finish() == 0, final.text()
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


def test_r22_sigkill_on_a_jsonl_file_with_mini_batches(tmp_path: Path) -> None:
    stream_lines = _stream(MINI_BATCH_ROWS)
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(stream_lines) + b"\n")
    source = JsonLinesSource(path)
    whole_dir, killed_dir = tmp_path / "whole", tmp_path / "killed"
    reference = _Run(_command(str(path), whole_dir, 200), tmp_path)
    assert reference.wait_started()
    began = time.monotonic()
    assert reference.finish() == 0, reference.text()
    seconds = time.monotonic() - began
    whole = _load(whole_dir, source, 200)
    assert (whole.offset, whole.events, whole.learned) == (len(stream_lines),) * 2 + (
        MINI_BATCH_ROWS,
    )

    points = _kill_chain(
        str(path), killed_dir, batch=200, kills=7, seconds=seconds, rng=random.Random(2207),
        source=source, total=len(stream_lines), home=tmp_path,
    )  # fmt: skip
    resumed = _load(killed_dir, source, 200)
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
    whole_dir = tmp_path / "whole"
    reference = _Run(_command(spec, whole_dir, 1), tmp_path)
    assert reference.wait_started()
    began = time.monotonic()
    assert reference.finish() == 0, reference.text()
    seconds = time.monotonic() - began
    whole = _load(whole_dir, source, 1)
    killed_dir = tmp_path / "killed"
    points = _kill_chain(
        spec, killed_dir, batch=1, kills=3, seconds=seconds, rng=random.Random(2203),
        source=source, total=len(ids), home=tmp_path,
    )  # fmt: skip
    resumed = _load(killed_dir, source, 1)
    source.close()
    _assert_same(resumed, whole)
    good = [i for n, i in enumerate(ids) if n not in BAD_AT]
    assert resumed.offset == whole.offset == ids[-1]
    assert resumed.digest == whole.digest == chain_digest(START_DIGEST, good)
    assert (killed_dir / "r22.quarantine.jsonl").read_bytes() == (
        whole_dir / "r22.quarantine.jsonl"
    ).read_bytes()
    assert len(points) == 3


def test_r22_a_tampered_checkpoint_is_refused(tmp_path: Path, stream_lines: list[bytes]) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(stream_lines[:1_500]) + b"\n")
    directory = tmp_path / "ckpt"
    assert _Run(_command(str(path), directory, 50), tmp_path).finish() == 0
    checkpoint = directory / "r22.ckpt"
    data = bytearray(checkpoint.read_bytes())
    data[-20] ^= 0x01  # one bit in the pickled estimator
    checkpoint.write_bytes(bytes(data))
    env = {**os.environ, "CHURNSCALE_ONLINE_CHECKPOINT_KEY": KEY, "CHURNSCALE_HOME": str(tmp_path)}
    done = subprocess.run(  # the real console script, as a user runs it
        [sys.executable, "-m", "churnscale", *_command(str(path), directory, 50)],
        env=env, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2
    message = done.stderr.strip()
    assert message.startswith("error:") and "signature does not match" in message
    assert len(message.splitlines()) == 1 and "Traceback" not in message
    assert checkpoint.read_bytes() == bytes(data)  # refused, not overwritten
