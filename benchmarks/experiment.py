"""Coverage of the experiment report's intervals, over many simulated experiments.

Each experiment randomizes ``--rows`` customers 50/50 between ``treat`` and ``control`` with the
known per-customer effect of ``generate --treatment`` (``true_uplift`` added to the control
rate; outcomes drawn under the assigned arm), and the report is read
after every ``--look`` outcomes, as someone watching a dashboard would. Counted per experiment:

- fixed-horizon interval (:func:`churnscale.evaluation.uplift.effect`) covering the true
  average effect at the final horizon (stated rate 95%), and at *every* look (peeking: what a
  fixed interval does not promise);
- the sequential interval (:func:`churnscale.evaluation.experiment.confidence_sequence` on the
  inverse-propensity pseudo-outcomes) covering it at every look (stated rate 95%).

Usage: .venv/bin/python benchmarks/experiment.py [--experiments 500] [--rows 4000] [--look 200]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from churnscale.data.synthetic import generate_table
from churnscale.evaluation.experiment import confidence_sequence
from churnscale.evaluation.uplift import effect


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=500)
    parser.add_argument("--rows", type=int, default=4_000)
    parser.add_argument("--look", type=int, default=200)
    args = parser.parse_args()
    started = time.perf_counter()
    population = generate_table(65_536, 3, treatment=True)
    uplift = population.column("true_uplift").to_numpy()
    # Each simulated customer: P(retained | none) = the population's control rate, and
    # P(retained | treat) = that plus the customer's true uplift from the generator.
    arm = np.asarray(population.column("offer").to_pylist())
    retained = population.column("retained").to_numpy().astype(float)
    base = float(retained[arm == "no_offer"].mean())
    effect_of = np.clip(base + uplift, 0, 1) - base  # each customer's effect (rates stay in [0, 1])
    truth = float(effect_of.mean())
    looks = np.arange(args.look, args.rows + 1, args.look)
    fixed_final = fixed_every = sequential_every = 0
    for seed in range(args.experiments):
        rng = np.random.default_rng(seed)
        chosen = rng.choice(uplift.size, args.rows, replace=False)
        treated = rng.random(args.rows) < 0.5
        p = base + treated * effect_of[chosen]
        y = (rng.random(args.rows) < p).astype(float)
        pseudo = y * np.where(treated, 1 / 0.5, -1 / 0.5)
        fixed_ok, sequential_ok = [], []
        for n in looks:
            found = effect(y[:n], treated[:n])
            fixed_ok.append(found.low < truth < found.high)
            _, low, high = confidence_sequence(pseudo[:n], planned=args.rows)
            sequential_ok.append(low < truth < high)
        fixed_final += fixed_ok[-1]
        fixed_every += all(fixed_ok)
        sequential_every += all(sequential_ok)
    total = args.experiments
    print(
        f"{total} experiments of {args.rows:,} customers, a look every {args.look} "
        f"({looks.size} looks); true effect {truth:+.4f}"
    )
    print(f"fixed horizon, read once at the end: covers {fixed_final / total:.3f} (stated 0.95)")
    print(f"fixed horizon, read at every look:   covers {fixed_every / total:.3f} (no promise)")
    print(
        f"sequential, read at every look:      covers {sequential_every / total:.3f} "
        f"(stated ≥ 0.95)"
    )
    print(f"{time.perf_counter() - started:.0f} s; load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
