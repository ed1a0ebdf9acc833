"""Cost of sticky A/B routing per call, beside the bare hash it is built on.

Run: .venv/bin/python benchmarks/routing.py [--calls N]
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable

from churnscale.serving.routing import RoutingConfig, assign_arm


def per_call_us(function: Callable[[str], object], ids: list[str], repeats: int = 5) -> float:
    """Best of ``repeats`` passes over ``ids``, in microseconds per call."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for customer_id in ids:
            function(customer_id)
        best = min(best, time.perf_counter() - start)
    return best / len(ids) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()
    ids = [f"cust-{i:09d}" for i in range(args.calls)]
    arms = [
        {"name": "control", "model": "churn@champion", "weight": 80},
        {"name": "challenger", "model": "churn/7", "weight": 15},
        {"name": "canary", "model": "churn/8", "weight": 5},
    ]
    start = time.perf_counter()
    config = RoutingConfig.model_validate({"experiment": "bench", "arms": arms})
    build_ms = (time.perf_counter() - start) * 1e3
    key = b"bench"

    def bare_hash(customer_id: str) -> bytes:
        return hashlib.blake2b(customer_id.encode(), key=key, digest_size=8).digest()

    routed = per_call_us(lambda i: assign_arm(i, config), ids)
    baseline = per_call_us(bare_hash, ids)
    print(f"{'measure':<44}{'value':>12}{'baseline':>12}{'ratio':>8}")
    print(
        f"{'assign_arm, µs/call (baseline: keyed blake2b)':<44}{routed:>12.3f}{baseline:>12.3f}"
        f"{routed / baseline:>8.2f}"
    )
    print(f"{'bucket table build, ms (2**20 buckets, 3 arms)':<44}{build_ms:>12.1f}{'':>12}{'':>8}")


if __name__ == "__main__":
    main()
