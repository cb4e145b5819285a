"""Benchmark: RK4 steps per second of the default two-scale Lorenz-96 system on one core.

Run with ``OMP_NUM_THREADS=1 .venv/bin/python bench/bench_l96.py``. The first call compiles
(or loads from numba's cache); the timed runs come after it. The numpy reference is timed on
a shorter run for comparison.
"""

from __future__ import annotations

import argparse
import time

from nnparam import l96


def steps_per_second(func, n_steps: int, repeats: int) -> float:
    """Best of ``repeats`` runs of ``n_steps`` RK4 steps (saving every 100th state)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        func(n_steps=n_steps, save_every=100, seed=0)
        best = min(best, time.perf_counter() - start)
    return n_steps / best


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=200_000, help="RK4 steps per timed run")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (best is kept)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    l96.simulate(n_steps=1)
    print(f"first call (compile or cache load): {time.perf_counter() - start:.2f} s")
    fast = steps_per_second(l96.simulate, args.steps, args.repeats)
    ref = steps_per_second(l96.simulate_reference, 2_000, 1)
    print(f"numba RK4, K=8, J=32: {fast:,.0f} steps/s (best of {args.repeats} x {args.steps})")
    print(f"numpy reference RK4:  {ref:,.0f} steps/s ({fast / ref:.0f}x slower)")


if __name__ == "__main__":
    main()
