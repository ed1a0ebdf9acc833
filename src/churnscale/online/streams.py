"""Message-stream sources: a Redis Stream and a NATS JetStream subject.

Both read from a position the learner gives them and acknowledge nothing; the position lives
in the learner's checkpoint (see :mod:`churnscale.online.sources`). A record is carried as JSON
in the entry field ``data`` (Redis) or as the message body (NATS); a Redis entry without a
``data`` field is read as the record itself (its fields, as strings).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

from churnscale.exceptions import SourceError
from churnscale.online.sources import Entry, Offset

_IDLE_MS = 500


class RedisStreamSource:
    """``XREAD`` from a Redis Stream; the offset is the entry id (``"1700000000000-0"``)."""

    kind = "redis"

    def __init__(self, url: str, stream: str, *, follow: bool = False, count: int = 1_000) -> None:
        import redis

        self.url = url
        self.stream = stream
        self.follow = follow
        self.count = count
        self.identity = f"{url}#{stream}"
        self._client: Any = redis.Redis.from_url(url, decode_responses=False, socket_timeout=30)

    def read(self, after: Offset | None) -> Iterator[Entry | None]:
        """Entries with an id above ``after``."""
        import redis

        last = _redis_offset(after)
        while True:
            try:
                reply: Any = self._client.xread(
                    {self.stream: last}, count=self.count, block=_IDLE_MS if self.follow else None
                )
            except redis.RedisError as exc:
                raise SourceError(self.identity, f"Redis is unreachable: {exc}") from exc
            entries = reply[0][1] if reply else []
            if not entries:
                if not self.follow:
                    return
                yield None
                continue
            for raw_id, fields in entries:
                last = raw_id.decode()
                yield last, _redis_record(fields)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


def _redis_offset(after: Offset | None) -> str:
    if after is None:
        return "0-0"
    if isinstance(after, str) and after.replace("-", "").isdigit():
        return after
    raise SourceError("redis", f"offset must be a stream entry id, got {after!r}")


def _redis_record(fields: dict[bytes, bytes]) -> Any:
    if b"data" in fields:
        return bytes(fields[b"data"])  # JSON text, decoded by the learner
    return {k.decode(): v.decode() for k, v in fields.items()}


class NatsStreamSource:
    """A JetStream subject read by an ephemeral pull consumer; the offset is the stream sequence.

    The consumer starts at the sequence after the checkpointed one and never acknowledges
    (``AckPolicy.NONE``), so the stream is untouched by the learner.
    """

    kind = "nats"

    def __init__(self, url: str, subject: str, *, follow: bool = False, count: int = 1_000) -> None:
        self.url = url
        self.subject = subject
        self.follow = follow
        self.count = count
        self.identity = f"{url}#{subject}"
        self._loop = asyncio.new_event_loop()
        self._nc: Any = None

    def read(self, after: Offset | None) -> Iterator[Entry | None]:
        """Messages with a stream sequence above ``after``."""
        start = _nats_offset(after)
        subscription = self._run(self._subscribe(start))
        while True:
            batch = self._run(self._fetch(subscription))
            if not batch:
                if not self.follow:
                    return
                yield None
                continue
            for sequence, data, pending in batch:
                yield sequence, bytes(data)
                if pending == 0 and not self.follow:
                    return

    def _run(self, coroutine: Any) -> Any:
        return self._loop.run_until_complete(coroutine)

    async def _subscribe(self, start: int) -> Any:
        import nats
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        try:
            self._nc = await nats.connect(
                self.url,
                connect_timeout=5,
                max_reconnect_attempts=2,
                allow_reconnect=False,
                error_cb=_quiet,  # the default prints each failed attempt with a traceback
            )
            js = self._nc.jetstream()
            stream = await js.find_stream_name_by_subject(self.subject)
            config = ConsumerConfig(
                ack_policy=AckPolicy.NONE,
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE if start else DeliverPolicy.ALL,
                opt_start_seq=start + 1 if start else None,
                inactive_threshold=60.0,
            )
            return await js.pull_subscribe(self.subject, stream=stream, config=config)
        except Exception as exc:  # nats raises plain Exceptions and its own error family
            raise SourceError(self.identity, f"NATS JetStream is unusable: {exc}") from exc

    async def _fetch(self, subscription: Any) -> list[tuple[int, bytes, int]]:
        import nats.errors

        try:
            messages = await subscription.fetch(self.count, timeout=_IDLE_MS / 1000)
        except nats.errors.TimeoutError:
            return []
        return [(m.metadata.sequence.stream, m.data, m.metadata.num_pending) for m in messages]

    def close(self) -> None:
        """Drain the connection and close the event loop."""
        if self._nc is not None:
            self._run(self._nc.close())
            self._nc = None
        self._loop.close()


def _nats_offset(after: Offset | None) -> int:
    if after is None:
        return 0
    if isinstance(after, int) and after >= 0:
        return after
    raise SourceError("nats", f"offset must be a stream sequence, got {after!r}")


async def _quiet(error: Exception) -> None:
    """NATS's error callback: a failed attempt is logged (redacted), not printed; a connection
    that cannot be made is raised from ``connect`` and reported once by the caller."""
    logging.getLogger(__name__).debug("nats: %s", error)
