"""Per-request cost of the admission controller and the deadline, in process.

Each figure is beside its baseline from the same run: the same request without the component.
Run: .venv/bin/python benchmarks/serving_limits.py [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from churnscale.serving.limits import AdmissionController, deadline


async def _per_call_us(step: Callable[[], Awaitable[None]], n: int, repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            await step()
        best = min(best, time.perf_counter() - start)
    return best / n * 1e6


async def run(n: int) -> list[tuple[str, float, float]]:
    controller = AdmissionController(max_in_flight=64, max_queue=256)

    async def bare() -> None:
        async with contextlib.nullcontext():
            await asyncio.sleep(0)

    async def admitted() -> None:
        async with controller.admit():
            await asyncio.sleep(0)

    async def timed() -> None:
        async with deadline(5.0):
            await asyncio.sleep(0)

    rows = []
    baseline = await _per_call_us(bare, n)
    rows.append(("admit(), µs/request", await _per_call_us(admitted, n), baseline))
    rows.append(("deadline(), µs/request", await _per_call_us(timed, n), baseline))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=50_000)
    args = parser.parse_args()
    rows = asyncio.run(run(args.requests))
    print(f"{'measure':<36}{'value':>10}{'baseline':>10}{'ratio':>8}")
    for name, value, baseline in rows:
        print(f"{name:<36}{value:>10.2f}{baseline:>10.2f}{value / baseline:>8.2f}")


if __name__ == "__main__":
    main()
