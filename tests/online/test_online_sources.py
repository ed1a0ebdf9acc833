"""Entry sources: ordered, replayable from an offset, nothing skipped (files and real streams)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from stream_data import write_jsonl

from churnscale.exceptions import ConfigError, SourceError
from churnscale.online import (
    JsonLinesSource,
    ParquetDirectorySource,
    RecordSource,
    Undecodable,
    open_source,
)
from churnscale.online.sources import Entry, decode_payload
from churnscale.online.streams import NatsStreamSource, RedisStreamSource


def _events(source: RecordSource, after: Any = None, limit: int | None = None) -> list[Entry]:
    """Events with their payloads decoded as the learner decodes them."""
    out: list[Entry] = []
    for event in source.read(after):
        if event is None:
            break
        out.append((event[0], decode_payload(event[1])))
        if limit is not None and len(out) >= limit:
            break
    return out


def test_jsonl_offsets_are_line_numbers_and_bad_lines_come_through(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "s.jsonl", [{"a": i} for i in range(4)], bad={2: b"{oops"})
    events = _events(JsonLinesSource(path))
    assert [o for o, _ in events] == [1, 2, 3, 4, 5]
    assert isinstance(events[2][1], Undecodable) and "invalid JSON" in events[2][1].reason
    assert [r for _, r in _events(JsonLinesSource(path), after=3)] == [{"a": 2}, {"a": 3}]


def test_jsonl_non_object_is_undecodable(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'[1, 2]\n\n{"a": 1}\n')
    events = _events(JsonLinesSource(path))
    assert [o for o, _ in events] == [1, 3]
    assert isinstance(events[0][1], Undecodable) and "got list" in events[0][1].reason


def test_jsonl_follow_reads_lines_as_they_are_appended(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'{"a": 0}\n{"a": ')  # the second line is still being written

    def append() -> None:
        time.sleep(0.3)
        with path.open("ab") as handle:
            handle.write(b'1}\n{"a": 2}\n')

    writer = threading.Thread(target=append)
    writer.start()
    seen: list[Entry] = []
    source = JsonLinesSource(path, follow=True, poll=0.05)
    for event in source.read(None):
        if event is not None:
            seen.append(event)
        if len(seen) == 3:
            break
    writer.join()
    source.close()
    assert seen == [(1, b'{"a": 0}'), (2, b'{"a": 1}'), (3, b'{"a": 2}')]  # raw, joined whole


def _parquet(path: Path, values: list[int]) -> None:
    pq.write_table(pa.table({"a": values}), path)


def test_parquet_directory_resumes_at_file_and_row(tmp_path: Path) -> None:
    _parquet(tmp_path / "001.parquet", [0, 1, 2])
    _parquet(tmp_path / "002.parquet", [3, 4])
    (tmp_path / ".003.parquet.tmp").write_bytes(b"partial")  # not yet moved into place
    source = ParquetDirectorySource(tmp_path)
    events = _events(source)
    assert [o for o, _ in events] == [
        ["001.parquet", 1], ["001.parquet", 2], ["001.parquet", 3],
        ["002.parquet", 1], ["002.parquet", 2],
    ]  # fmt: skip
    assert [r["a"] for _, r in _events(source, after=["001.parquet", 2])] == [2, 3, 4]
    assert [r["a"] for _, r in _events(source, after=["002.parquet", 2])] == []


def test_parquet_directory_follow_picks_up_new_files(tmp_path: Path) -> None:
    _parquet(tmp_path / "001.parquet", [0])
    source = ParquetDirectorySource(tmp_path, follow=True, poll=0.05)
    stream = source.read(["001.parquet", 1])
    assert next(stream) is None  # idle: nothing new yet
    _parquet(tmp_path / "002.parquet", [5])
    event = next(e for e in stream if e is not None)
    assert event == (["002.parquet", 1], {"a": 5})


def test_bad_offsets_are_refused(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "s.jsonl", [{"a": 1}])
    with pytest.raises(SourceError, match="line or sequence number"):
        next(JsonLinesSource(path).read("12-0"))
    with pytest.raises(SourceError, match=r"\[file, row\]"):
        next(ParquetDirectorySource(tmp_path).read(3))


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("kafka://127.0.0.1:9092?topic=x", "--stream: expected"),
        ("redis://127.0.0.1:6379/0", r"\?stream=NAME"),
        ("nats://127.0.0.1:4222", r"\?subject=NAME"),
        ("redis:///0?stream=x", "a host and a port"),
    ],
)
def test_bad_stream_specs_name_the_flag(spec: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        open_source(spec)


def test_missing_files_are_source_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        open_source(str(tmp_path / "none.jsonl"))
    with pytest.raises(SourceError, match="no such file or directory"):
        open_source(str(tmp_path / "none.csv"))


# ---- real message streams on 127.0.0.1 ---------------------------------------------------------


@pytest.fixture
def redis_stream() -> Iterator[str]:
    import redis

    name = f"churnscale-test-{uuid.uuid4().hex[:8]}"
    client = redis.Redis(host="127.0.0.1", port=6379)
    yield name
    client.delete(name)
    client.close()


def test_redis_stream_reads_after_an_entry_id(redis_stream: str) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379)
    ids = [client.xadd(redis_stream, {"data": orjson.dumps({"a": i})}).decode() for i in range(5)]
    ids.append(client.xadd(redis_stream, {"a": "5", "b": "x"}).decode())  # fields as the record
    ids.append(client.xadd(redis_stream, {"data": b"not json"}).decode())
    client.close()
    source = open_source(f"redis://127.0.0.1:6379/0?stream={redis_stream}")
    assert isinstance(source, RedisStreamSource)
    events = _events(source)
    assert [o for o, _ in events] == ids
    assert events[5][1] == {"a": "5", "b": "x"}
    assert isinstance(events[6][1], Undecodable)
    assert [r for _, r in _events(source, after=ids[2])][:2] == [{"a": 3}, {"a": 4}]
    source.close()


def test_redis_unreachable_is_a_source_error() -> None:
    source = RedisStreamSource("redis://127.0.0.1:1/0", "x")
    with pytest.raises(SourceError, match="Redis is unreachable"):
        next(source.read(None))


async def _publish(subject: str, payloads: list[bytes]) -> list[int]:
    import nats

    nc = await nats.connect("nats://127.0.0.1:4222")
    js = nc.jetstream()
    await js.add_stream(name=subject.replace(".", "_"), subjects=[subject])
    sequences = [(await js.publish(subject, p)).seq for p in payloads]
    await nc.close()
    return sequences


async def _drop_stream(name: str) -> None:
    import nats

    nc = await nats.connect("nats://127.0.0.1:4222")
    await nc.jetstream().delete_stream(name)
    await nc.close()


def test_nats_jetstream_reads_after_a_sequence() -> None:
    subject = f"churnscale.test.{uuid.uuid4().hex[:8]}"
    payloads = [orjson.dumps({"a": i}) for i in range(6)] + [b"[]"]
    sequences = asyncio.run(_publish(subject, payloads))
    try:
        source = open_source(f"nats://127.0.0.1:4222?subject={subject}")
        assert isinstance(source, NatsStreamSource)
        events = _events(source)
        assert [o for o, _ in events] == sequences
        assert isinstance(events[-1][1], Undecodable)
        source.close()
        again = open_source(f"nats://127.0.0.1:4222?subject={subject}")
        assert [r for _, r in _events(again, after=sequences[3])][:2] == [{"a": 4}, {"a": 5}]
        again.close()
    finally:
        asyncio.run(_drop_stream(subject.replace(".", "_")))


def test_nats_unreachable_is_a_source_error() -> None:
    source = NatsStreamSource("nats://127.0.0.1:1", "x")
    with pytest.raises(SourceError, match="NATS JetStream is unusable"):
        next(source.read(None))
    source.close()
