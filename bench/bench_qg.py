"""Benchmark of the pyqg benchmark engine (``nnparam.apps.qg``) on one core.

``python bench/bench_qg.py`` measures

* **step**: the cost of one time step of the 64^2 model with each closure in the loop against
  the bare step (two members, the online protocol's batch), after compilation: the chapter's
  8-channel network (direct convolutions), a 16-channel network (direct and as FFT products)
  and pyqg-jax's physical closures;
* **cold**: every stage of :func:`nnparam.apps.qg.warm_cache` in a fresh, temporary cache, as
  on a fresh clone: the two 128^2 truth runs (the high-resolution generation time per
  configuration), the forcing data, the two networks, the online runs, the distance tables
  and the lab's run; wall and CPU time per stage and in total.

``--only step`` or ``--only cold`` runs one part. XLA runs on one thread (the engine sets
``XLA_FLAGS`` unless it is set), torch on one thread.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def step_costs(n_steps: int = 2000, repeats: int = 3) -> list[tuple[str, float]]:
    """``(label, ms per step)`` for the bare 64^2 model and each closure (two members)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import pyqg_jax
    import torch

    from nnparam.apps import qg, qg_loop, qg_net

    torch.set_num_threads(1)
    q0 = jnp.asarray(np.stack([qg.initial_q(64, "eddy", s) for s in range(2)]))
    base = qg.model(64, "eddy")

    def cost(closure) -> float:
        param = qg_loop.parameterized(base, closure)
        stepped = pyqg_jax.steppers.SteppedModel(param, pyqg_jax.steppers.AB3Stepper(3600.0))
        template = base.create_initial_state(jax.random.key(0))
        state = jax.vmap(lambda x: stepped.initialize_stepper_state(
            param.initialize_param_state(template.update(q=x))))(q0)
        loop = jax.jit(lambda s: jax.lax.fori_loop(
            0, n_steps, lambda i, x: jax.vmap(stepped.step_model)(x), s))
        jax.block_until_ready(loop(state))  # compile
        best = np.inf
        for _ in range(repeats):
            start = time.process_time()
            jax.block_until_ready(loop(state))
            best = min(best, time.process_time() - start)
        return best / n_steps * 1e3

    scales = dict(q_scale=(8e-6, 1e-6), s_scale=(7e-12, 1e-13))
    small = qg_net.QGClosure(qg_net.FCNN(**scales), nx=64)
    wide = qg_net.FCNN((16, 16), (5, 5, 3), **scales)
    rows = [("bare 64^2 step", cost(None))]
    rows.append(("chapter's network (8 channels, direct)", cost(small)))
    rows.append(("16-channel network, direct", cost(qg_net.QGClosure(wide, nx=64))))
    rows.append(("16-channel network, FFT", cost(qg_net.QGClosure(wide, nx=64, method="fft"))))
    for name in qg.BASELINES:
        rows.append((name, cost(name)))
    return rows


def cold_cache() -> list[tuple[str, float, float]]:
    """``(stage, wall s, CPU s)`` of every stage of ``warm_cache`` in a fresh cache."""
    tmp = tempfile.mkdtemp(prefix="nnparam-qg-cold-")
    os.environ["NNPARAM_CACHE"] = tmp
    from nnparam.apps import qg

    rows = []

    def stage(label, func):
        wall, cpu = time.perf_counter(), time.process_time()
        func()
        rows.append((label, time.perf_counter() - wall, time.process_time() - cpu))
        print(f"{rows[-1][1]:7.1f} s wall {rows[-1][2]:7.1f} s CPU  {label}", flush=True)

    for config in qg.CONFIGS:
        stage(f"truth {config} (128^2 generation, spin-up included)",
              lambda c=config: qg.truth(c))
    for config in qg.CONFIGS:
        stage(f"forcing {config}", lambda c=config: qg.forcing(c))
    stage("forcing eddy, operator 2", lambda: qg.forcing("eddy", operator="op2"))
    for seed in qg.NETWORK_SEEDS:
        stage(f"network, training seed {seed}", lambda s=seed: qg.trained_fcnn(s))
    for config in qg.CONFIGS:
        stage(f"spin-up {config} (64^2, 2 members)", lambda c=config: qg.spun_up(64, c))
        nets = {f"fcnn{s}": qg.trained_fcnn(s)[0] for s in qg.NETWORK_SEEDS}
        closures = {"none": None, **nets, **{b: b for b in qg.BASELINES}}
        for name, closure in closures.items():
            stage(f"online {config} {name}",
                  lambda c=config, cl=closure: qg.online(cl, 64, c))
        stage(f"distance table {config}", lambda c=config: qg.distance_table(c))
    stage("lab run without closure", lambda: qg.lab_run(None))
    rows.append(("total", sum(r[1] for r in rows), sum(r[2] for r in rows)))
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("step", "cold"), help="run one part")
    args = parser.parse_args(argv)
    if args.only in (None, "step"):
        rows = step_costs()
        bare = rows[0][1]
        for label, ms in rows:
            print(f"step: {label}: {ms:.3f} ms ({ms / bare:.2f} x bare)", flush=True)
    if args.only in (None, "cold"):
        for label, wall, cpu in cold_cache():
            print(f"cold: {label}: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)


if __name__ == "__main__":
    main()
