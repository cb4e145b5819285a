"""Benchmark: the two-scale Lorenz-96 truth and the one-scale ensemble with a network closure.

Run with ``OMP_NUM_THREADS=1 .venv/bin/python bench/bench_l96.py``. It prints one line per
measurement, ``what: result``:

* the numba two-scale RK4 (K=8, J=32): steps per second, best of ``--repeats`` runs of
  ``--steps`` steps, after a first call that compiles or loads numba's cache;
* the one-scale model with an MLP closure of the stencil (X_{k-1}, X_k, X_{k+1}), 16-16 tanh
  hidden units as in the atmosphere chapter: ``--members`` members for ``--mtu`` MTU at
  dt = 0.005 in one vectorised call on the compiled JAX path (target of issue 15: 40 members
  x 1000 MTU in at most 20 s on 2 cores), and the numpy reference loop on a short run for
  comparison (member-steps per second).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from nnparam import l96
from nnparam.nn import mlp

DT = 0.005


def steps_per_second(func, n_steps: int, repeats: int) -> float:
    """Best of ``repeats`` runs of ``n_steps`` RK4 steps (saving every 100th state)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        func(n_steps=n_steps, save_every=100, seed=0)
        best = min(best, time.perf_counter() - start)
    return n_steps / best


def network_closure():
    """A stencil MLP of the chapter's shape (untrained: its output is bounded by the tanh
    layers, so the coupled run stays bounded; the speed does not depend on the weights)."""
    torch.manual_seed(0)
    net = mlp(3, 1, hidden=(16, 16), activation="tanh", seed=0)
    return l96.neural_closure(net, 1)


def ensemble(members: int, mtu: float, backend: str):
    """Seconds for one ensemble run, and the run."""
    X0 = 3 + 4 * np.random.default_rng(0).standard_normal((members, 8))
    start = time.perf_counter()
    run = l96.simulate_one_scale(network_closure(), F=18.0, dt=DT,
                                 n_steps=int(round(mtu / DT)), save_every=20, X0=X0,
                                 backend=backend)
    return time.perf_counter() - start, run


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200_000, help="RK4 steps per timed run")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (best is kept)")
    parser.add_argument("--members", type=int, default=40, help="one-scale ensemble members")
    parser.add_argument("--mtu", type=float, default=1000.0, help="one-scale run length, MTU")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    start = time.perf_counter()
    l96.simulate(n_steps=1)
    print(f"two-scale first call (compile or cache load): {time.perf_counter() - start:.2f} s")
    fast = steps_per_second(l96.simulate, args.steps, args.repeats)
    ref = steps_per_second(l96.simulate_reference, 2_000, 1)
    print(f"two-scale numba RK4, K=8, J=32: {fast:,.0f} steps/s (best of {args.repeats} x "
          f"{args.steps}; numpy reference {ref:,.0f} steps/s, {fast / ref:.0f}x slower)")

    warm, _ = ensemble(args.members, 1.0, "jax")  # compiles (or loads JAX's disk cache)
    seconds, run = ensemble(args.members, args.mtu, "jax")
    blown = int(np.isfinite(run["blow_up_time"].values).sum())
    member_steps = args.members * args.mtu / DT
    print(f"one-scale ensemble, JAX, MLP 3-16-16-1, {args.members} members x {args.mtu:g} "
          f"MTU: {seconds:.1f} s ({member_steps / seconds:,.0f} member-steps/s; first call "
          f"with compilation {warm:.1f} s; {blown} members blew up)")
    ref_mtu = 2.0
    ref_seconds, _ = ensemble(args.members, ref_mtu, "numpy")
    print(f"one-scale ensemble, numpy reference, same closure, {args.members} members x "
          f"{ref_mtu:g} MTU: {ref_seconds:.1f} s "
          f"({args.members * ref_mtu / DT / ref_seconds:,.0f} member-steps/s)")


if __name__ == "__main__":
    main()
