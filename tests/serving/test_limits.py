from __future__ import annotations

import asyncio
from typing import Any

import pytest

from churnscale.exceptions import ConfigError, DeadlineExceededError, OverloadedError
from churnscale.serving.limits import (
    AdmissionController,
    BodyLimitMiddleware,
    Message,
    Receive,
    Scope,
    Send,
    deadline,
)

# --- admission -----------------------------------------------------------------------------------


async def _hold(controller: AdmissionController, release: asyncio.Event, log: list[str]) -> None:
    async with controller.admit():
        log.append("in")
        await release.wait()


def test_admits_up_to_the_limit_then_queues_then_refuses() -> None:
    async def scenario() -> None:
        controller = AdmissionController(max_in_flight=2, max_queue=1)
        release, log = asyncio.Event(), []
        tasks = [asyncio.create_task(_hold(controller, release, log)) for _ in range(3)]
        await asyncio.sleep(0)
        assert (controller.in_flight, controller.queued, len(log)) == (2, 1, 2)
        with pytest.raises(OverloadedError, match=r"2 request\(s\) in flight and 1 queued") as exc:
            async with controller.admit():
                pass
        assert exc.value.http_status == 503 and exc.value.retry_after == 1
        release.set()
        await asyncio.gather(*tasks)
        assert (controller.in_flight, controller.queued, len(log)) == (0, 0, 3)

    asyncio.run(scenario())


def test_cancelled_waiter_leaves_the_queue() -> None:
    async def scenario() -> None:
        controller = AdmissionController(max_in_flight=1, max_queue=1)
        release, log = asyncio.Event(), []
        holder = asyncio.create_task(_hold(controller, release, log))
        waiter = asyncio.create_task(_hold(controller, release, log))
        await asyncio.sleep(0)
        assert controller.queued == 1
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert controller.queued == 0
        release.set()
        await holder
        async with controller.admit():  # the slot was given back
            assert controller.in_flight == 1

    asyncio.run(scenario())


def test_retry_after_follows_recent_latency() -> None:
    async def scenario() -> int:
        controller = AdmissionController(max_in_flight=1, max_queue=0, max_retry_after=30)
        for _ in range(3):
            async with controller.admit():
                await asyncio.sleep(0.05)
        quick = controller.retry_after()
        controller._latencies.extend([4.0] * 256)  # as if recent requests took 4 s each
        release = asyncio.Event()
        holder = asyncio.create_task(_hold(controller, release, []))
        await asyncio.sleep(0)
        with pytest.raises(OverloadedError) as refused:
            async with controller.admit():
                pass
        release.set()
        await holder
        return quick * 100 + refused.value.retry_after

    assert asyncio.run(scenario()) == 1 * 100 + 4


def test_retry_after_is_capped() -> None:
    async def scenario() -> int:
        controller = AdmissionController(max_in_flight=1, max_queue=0, max_retry_after=7)
        controller._latencies.append(1_000.0)
        assert controller.retry_after() == 1  # nothing in flight: no wait
        release = asyncio.Event()
        holder = asyncio.create_task(_hold(controller, release, []))
        await asyncio.sleep(0)
        hint = controller.retry_after()
        release.set()
        await holder
        return hint

    assert asyncio.run(scenario()) == 7


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_in_flight": 0, "max_queue": 1}, "max_in_flight: expected an integer >= 1, got 0"),
        ({"max_in_flight": 1, "max_queue": -1}, "max_queue: expected an integer >= 0, got -1"),
    ],
)
def test_bad_admission_limits(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AdmissionController(**kwargs)


# --- deadline ------------------------------------------------------------------------------------


def test_deadline_maps_to_504() -> None:
    async def slow() -> None:
        async with deadline(0.01):
            await asyncio.sleep(10)

    with pytest.raises(DeadlineExceededError, match=r"exceeded its deadline of 0\.01 s") as caught:
        asyncio.run(slow())
    assert caught.value.http_status == 504


def test_deadline_passes_results_and_foreign_timeouts_through() -> None:
    async def quick() -> str:
        async with deadline(5):
            await asyncio.sleep(0)
            return "done"

    async def inner_timeout() -> None:
        async with deadline(5):
            raise TimeoutError("the database timed out")

    assert asyncio.run(quick()) == "done"
    with pytest.raises(TimeoutError, match="the database timed out"):
        asyncio.run(inner_timeout())


def test_deadline_must_be_positive() -> None:
    async def bad() -> None:
        async with deadline(0):
            pass

    with pytest.raises(ConfigError, match="deadline: expected a number of seconds > 0, got 0"):
        asyncio.run(bad())


# --- body limit, called directly -----------------------------------------------------------------


async def _streaming_echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Starts its response before reading the body, then echoes each chunk."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        await send({"type": "http.response.body", "body": message["body"], "more_body": True})
        if not message.get("more_body"):
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return


def _call(
    middleware: BodyLimitMiddleware, *, headers: list[tuple[bytes, bytes]], chunks: list[bytes]
) -> list[Message]:
    scope: dict[str, Any] = {
        "type": "http",
        "headers": headers,
        "raw_path": b"/",
        "query_string": b"",
    }
    incoming = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(middleware(scope, receive, send))
    return sent


def test_invalid_content_length_is_a_400() -> None:
    sent = _call(
        BodyLimitMiddleware(_streaming_echo, 10), headers=[(b"content-length", b"-1")], chunks=[]
    )
    assert sent[0]["status"] == 400
    assert sent[1]["body"] == b'{"detail":"invalid Content-Length header: b\'-1\'"}'


def test_started_response_is_cut_short() -> None:
    sent = _call(BodyLimitMiddleware(_streaming_echo, 10), headers=[], chunks=[b"12345", b"678901"])
    assert [m.get("status") for m in sent] == [200, None]
    assert sent[-1]["body"] == b"12345"  # the over-limit chunk never reached the app


def test_transfer_encoding_beats_a_small_content_length() -> None:
    headers = [(b"content-length", b"3"), (b"transfer-encoding", b"chunked")]
    sent = _call(BodyLimitMiddleware(_read_all, 10), headers=headers, chunks=[b"12345", b"678901"])
    assert sent[0]["status"] == 413


async def _read_all(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the whole body before answering, like a JSON endpoint."""
    while (message := await receive())["type"] == "http.request" and message.get("more_body"):
        pass
    if message["type"] == "http.disconnect":
        raise RuntimeError("client went away")  # what Starlette does (ClientDisconnect)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_body_past_the_limit_is_a_413_and_the_app_failure_is_swallowed() -> None:
    sent = _call(BodyLimitMiddleware(_read_all, 10), headers=[], chunks=[b"12345", b"678901"])
    assert [m.get("status") for m in sent] == [413, None]
    assert sent[1]["body"] == (
        b'{"detail":"request body too large: body of more than 10 bytes, limit 10 bytes"}'
    )
    assert (b"connection", b"close") in sent[0]["headers"]


def test_declared_length_within_the_limit_is_passed_straight_through() -> None:
    sent = _call(
        BodyLimitMiddleware(_read_all, 10), headers=[(b"content-length", b"5")], chunks=[b"12345"]
    )
    assert sent[0]["status"] == 200


def test_exactly_the_limit_passes() -> None:
    sent = _call(BodyLimitMiddleware(_streaming_echo, 10), headers=[], chunks=[b"12345", b"67890"])
    assert b"".join(m.get("body", b"") for m in sent) == b"1234567890"


def test_other_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    asyncio.run(BodyLimitMiddleware(app, 0)({"type": "lifespan"}, _never, _discard))
    assert seen == ["lifespan"]


async def _never() -> Message:
    raise AssertionError("receive must not be called")


async def _discard(message: Message) -> None:
    return None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_bytes": -1}, "max_bytes: expected an integer >= 0, got -1"),
        ({"max_bytes": 1, "max_header_bytes": 0}, "max_header_bytes: expected an integer >= 1"),
    ],
)
def test_bad_body_limits(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        BodyLimitMiddleware(_streaming_echo, **kwargs)
