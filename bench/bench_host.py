"""Benchmark: the compiled host model's time per step, split into dynamics, data
marshalling and the network call, against the same network's inference time in Python.

Run with ``OMP_NUM_THREADS=1 .venv/bin/python bench/bench_host.py`` after ``make host``.
For each batch (members x 32 cells) the host runs once without closure (dynamics alone) and
once with it; Python times the same batch through eager torch, the TorchScript file and ONNX
Runtime (one thread each, best of ``--repeats`` blocks of calls after a warm-up). The
issue's target: the network call inside the host costs at most 1.5x eager torch in Python.
Prints ``label: value`` lines that ``bench/run_bench.py`` puts in the speed report.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from nnparam import export, host, tracer

TARGET = 1.5  # host network call / eager torch in Python, same batch


def per_call(func, calls: int, repeats: int) -> float:
    """Best over ``repeats`` blocks of the mean seconds of one call (after a warm-up); the
    host reports the same statistic over blocks of 100 steps (300 calls)."""
    for _ in range(20):
        func()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            func()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def python_inference(closure, folder: Path, batch: int, calls: int, repeats: int) -> dict:
    """Seconds per call of the network on one ``(batch, F)`` float32 batch in Python."""
    x = export.example_features(closure, n=batch, seed=batch).astype(np.float32)
    xt = torch.from_numpy(x)
    eager = export.column_network(closure)
    script = export.load_artifact(folder, "torchscript")._session
    onnx = export.load_artifact(folder, "onnx")

    def run_eager():
        with torch.inference_mode():
            eager(xt)

    def run_script():
        with torch.inference_mode():
            script(xt)

    return {"eager": per_call(run_eager, calls, repeats),
            "torchscript": per_call(run_script, calls, repeats),
            "onnx": per_call(lambda: onnx.network(x), calls, repeats)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, nargs="+", default=[1, 32],
                        help="ensemble members per run (batch = members x 32 cells)")
    parser.add_argument("--hours", type=float, default=500.0, help="hours per host run")
    parser.add_argument("--calls", type=int, default=300, help="Python calls per block")
    parser.add_argument("--repeats", type=int, default=10, help="blocks (best is kept)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if not host.available():
        print("host: not built (run `make host`)", file=sys.stderr)
        return 1
    budget = tracer.sgs_dataset(seed=0)
    closure, blocks = host.tracer_closure(budget, epochs=200)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        folder = export.export_closure(closure, Path(tmp) / "closure",
                                       grid=export.tracer_grid(budget),
                                       runtimes=("torchscript", "onnx"))
        start = blocks[2].start
        for members in args.members:
            q0 = budget["q"].values[start + np.arange(members) % 50]
            bare = host.run_host(q0, budget, 16, args.hours)
            coupled = host.run_host(q0, budget, 16, args.hours, artifact=folder)
            steps = coupled.timings["steps"]
            batch = coupled.timings["batch"]
            dyn_alone = bare.timings["dynamics_s"] / steps
            per = coupled.per_step()
            net_host = coupled.per_call(best=True)
            py = python_inference(closure, folder, batch, args.calls, args.repeats)
            ratio = net_host / py["eager"]
            ok &= ratio <= TARGET
            print(f"host batch {batch} ({members} x 32 cells), {steps} steps: dynamics alone "
                  f"{dyn_alone * 1e6:.1f} us/step; coupled: dynamics "
                  f"{per['dynamics'] * 1e6:.1f}, marshalling {per['marshalling'] * 1e6:.1f}, "
                  f"network {per['network'] * 1e6:.1f} us/step")
            print(f"network call batch {batch} (best block): host {net_host * 1e6:.1f} us "
                  f"(mean {coupled.per_call() * 1e6:.1f}); Python eager "
                  f"{py['eager'] * 1e6:.1f}, TorchScript {py['torchscript'] * 1e6:.1f}, ONNX "
                  f"Runtime {py['onnx'] * 1e6:.1f} us; host / eager = {ratio:.2f} "
                  f"(target <= {TARGET}: {'met' if ratio <= TARGET else 'MISSED'})")
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
