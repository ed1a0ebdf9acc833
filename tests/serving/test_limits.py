from __future__ import annotations

import asyncio

import pytest

from churnscale.exceptions import ConfigError, DeadlineExceededError, OverloadedError
from churnscale.serving.limits import AdmissionController, deadline

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


def test_a_slot_passes_to_waiters_in_order_and_past_one_cancelled_once_handed() -> None:
    async def scenario() -> None:
        controller = AdmissionController(max_in_flight=1, max_queue=3)
        assert controller.hold()  # the fast path's slot: taken without awaiting
        assert not controller.hold()  # none left
        release, log = asyncio.Event(), []
        first, second, third = (
            asyncio.create_task(_hold(controller, release, log)) for _ in range(3)
        )
        await asyncio.sleep(0)
        assert (controller.in_flight, controller.queued) == (1, 3)
        controller.release(0.01)  # handed to `first`, which has not resumed yet ...
        assert not controller.hold()  # ... so the fast path may not take it
        first.cancel()  # cancelled once handed: the slot passes on to `second`
        second.cancel()  # cancelled while waiting: leaves the queue
        for task in (first, second):
            with pytest.raises(asyncio.CancelledError):
                await task
        await asyncio.sleep(0)
        assert (controller.in_flight, controller.queued, log) == (1, 0, ["in"])
        release.set()
        async with asyncio.timeout(30):  # a lost slot would leave `third` waiting forever
            await third
        assert (controller.in_flight, controller.queued) == (0, 0)
        assert controller.hold() and controller.in_flight == 1

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
