"""Event-log generator throughput: events/s with N threads against one thread, same customers.

Usage: .venv/bin/python benchmarks/events.py [--customers 20000] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

from churnscale.data.events import generate_events
from churnscale.data.synthetic import GeneratorSpec


def measure(customers: int, threads: int) -> tuple[int, float]:
    """Events generated and seconds taken."""
    start = time.perf_counter()
    events = sum(b.num_rows for b in generate_events(GeneratorSpec(customers, 1), threads=threads))
    return events, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    base_events, base_s = measure(args.customers, 1)
    events, seconds = measure(args.customers, args.threads)
    print(f"{'generator':<28}{'events':>12}{'seconds':>10}{'events/s':>14}{'ratio':>8}")
    base_rate = base_events / base_s
    print(f"{'1 thread (baseline)':<28}{base_events:>12,}{base_s:>10.2f}{base_rate:>14,.0f}")
    rate = events / seconds
    label = f"{args.threads} threads"
    ratio = rate / base_rate
    print(f"{label:<28}{events:>12,}{seconds:>10.2f}{rate:>14,.0f}{ratio:>7.2f}x")


if __name__ == "__main__":
    main()
