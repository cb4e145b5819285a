"""Speed report: every notebook executed and timed, plus the engine's hot paths.

``make bench`` runs ``python bench/run_bench.py --out bench/report.md``. Each notebook of
``book/``, ``solutions/`` and ``labs/`` runs in a fresh kernel, one after the other (so the
timings do not compete with each other), with ``OMP_NUM_THREADS=1`` as in the tests; the time
is the wall clock of executing the cells, without the kernel start-up. A notebook over the
per-notebook budget (30 s) is flagged in the table, and the script then exits with status 1.

The hot paths: the tracer's default truth run (``nnparam.tracer.truth_run``), the two-scale
Lorenz-96 integrator and the one-scale Lorenz-96 ensemble with a network closure (40 members x
1000 MTU; ``bench/bench_l96.py``, when present, as a subprocess), the compiled host model's
step split into dynamics, marshalling and the network call against Python's inference time
(``bench/bench_host.py``, after ``make host``), the pyqg engine (``bench/bench_qg.py``:
closure step costs and the cold-cache stages) and network training (one MLP with
``nnparam.nn.train``, a five-member ensemble with ``nnparam.uq.train_ensemble``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("book", "solutions", "labs")


def notebooks(only: str | None = None) -> list[Path]:
    found = sorted(p for d in FOLDERS for p in (ROOT / d).rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts and "_build" not in p.parts)
    return [p for p in found if only is None or only in str(p.relative_to(ROOT))]


def time_notebook(path: Path, timeout: float) -> tuple[float, str]:
    """Seconds to execute the cells of ``path`` in a fresh kernel, and ``ok`` or the error.

    ``timeout`` is the wall-clock limit for the whole notebook (kernel start-up excluded).
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError

    nb = nbformat.read(path, as_version=4)
    # labs raise NotImplementedError in tagged cells: nbclient accepts those (raises-exception)
    client = NotebookClient(nb, kernel_name="python3", timeout=int(timeout), startup_timeout=120,
                            resources={"metadata": {"path": str(path.parent)}})
    client.reset_execution_trackers()
    elapsed, status = float("nan"), "ok"
    try:
        with client.setup_kernel(cwd=str(path.parent)):
            start = time.perf_counter()
            try:
                for index, cell in enumerate(nb.cells):
                    if cell.cell_type == "code":
                        client.timeout = max(1, int(timeout - (time.perf_counter() - start)))
                        client.execute_cell(cell, index)
            finally:
                elapsed = time.perf_counter() - start
    except CellTimeoutError:
        status = f"failed: stopped after {timeout:g} s"
    except Exception as err:  # report every notebook, whatever one of them does
        first = str(err).strip().splitlines()
        status = f"failed: {type(err).__name__}" + (f" ({first[-1][:80]})" if first else "")
    return elapsed, status


def best_of(func, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def hot_paths(l96_steps: int, scaling_times: int) -> list[tuple[str, str, str]]:
    """``(what, time, note)`` rows for the engine's expensive calls."""
    import numpy as np

    from nnparam import nn, tracer

    rows = []
    truth = {}
    seconds = best_of(lambda: truth.setdefault("ds", tracer.truth_run()), 1)
    ds = truth["ds"]
    rows.append(("tracer.truth_run() (default setup)", f"{seconds:.2f} s",
                 f"{ds.sizes.get('x', ds['q'].shape[-1])} fine cells, {ds.sizes['time']} saved "
                 f"hours after {ds.attrs.get('spinup', 50.0)} h spin-up"))

    script = ROOT / "bench" / "bench_l96.py"
    if script.exists():  # one row per "what: result" line (two-scale truth, one-scale ensemble)
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, str(script), "--steps", str(l96_steps),
                               "--repeats", "3"], capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - start
        for line in proc.stdout.splitlines() if proc.returncode == 0 else []:
            what, _, result = line.partition(":")
            rows.append((f"Lorenz-96 {what.strip()} (bench/bench_l96.py)",
                         f"{wall:.0f} s (script)", result.strip().replace("|", "/")))
        if proc.returncode != 0:
            rows.append(("Lorenz-96 (bench/bench_l96.py)", "n/a",
                         f"failed: {proc.stderr.strip()[-200:]}".replace("|", "/")))
    else:
        rows.append(("Lorenz-96 integrator", "n/a", "bench/bench_l96.py not present"))

    script = ROOT / "bench" / "bench_qg.py"  # pyqg-jax: closure step costs, cold cache
    if script.exists():
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                              cwd=ROOT)
        wall = time.perf_counter() - start
        for line in proc.stdout.splitlines() if proc.returncode == 0 else []:
            part, _, rest = line.partition(": ")
            if part in ("step", "cold"):
                what, _, value = rest.rpartition(": ")
                rows.append((f"pyqg {part}: {what} (bench/bench_qg.py)", value.split(" (")[0],
                             value.partition(" (")[2].rstrip(")") or f"{wall:.0f} s script"))
        if proc.returncode != 0:
            rows.append(("pyqg engine (bench/bench_qg.py)", "n/a",
                         f"failed: {proc.stderr.strip()[-200:]}".replace("|", "/")))

    script = ROOT / "bench" / "bench_scaling.py"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(script), "--n-time", str(scaling_times)],
                          capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    for line in proc.stdout.splitlines() if proc.returncode == 0 else []:
        rows.append(("scaling pipeline, " + line.split(":")[0] + " (bench/bench_scaling.py)",
                     f"{wall:.0f} s (script)", line.split(":", 1)[1].strip()))
    if proc.returncode != 0:
        rows.append(("scaling pipeline (bench/bench_scaling.py)", "n/a",
                     f"failed: {proc.stderr.strip()[-200:]}".replace("|", "/")))

    # the compiled host (bench/bench_host.py): dynamics, marshalling, network call per step
    script = ROOT / "bench" / "bench_host.py"
    if script.exists():
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                              cwd=ROOT)
        wall = time.perf_counter() - start
        lines = [ln.strip() for ln in proc.stdout.splitlines() if ln.strip()]
        for line in lines:
            what, _, note = line.partition(":")
            rows.append((f"{what} (bench/bench_host.py)", f"{wall:.0f} s (script)",
                         note.strip().replace("|", "/")))
        if proc.returncode not in (0, 2) or not lines:  # 2: ran, but missed the 1.5x target
            rows.append(("Fortran host (bench/bench_host.py)", "n/a",
                         f"failed: {proc.stderr.strip()[-200:]}".replace("|", "/")))

    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 7))
    y = np.tanh(x @ rng.normal(size=(7, 1))) + 0.1 * rng.normal(size=(4000, 1))

    def one_mlp():
        nn.train(nn.mlp(7, 1, hidden=(32, 32), seed=0), x, y, epochs=500, lr=5e-3, seed=0)

    rows.append(("nn.train: MLP 7-32-32-1, 4000 samples, 500 epochs",
                 f"{best_of(one_mlp, 2):.2f} s", "full batch, Adam, best of 2"))
    try:
        from nnparam import uq
    except ImportError:
        uq = None
    if uq is not None and hasattr(uq, "train_ensemble"):
        def ensemble():
            uq.train_ensemble(x, y[:, 0], members=5, hidden=(32, 32), epochs=300, seed=0)

        rows.append(("uq.train_ensemble: 5 members, 32-32, 4000 samples, 300 epochs",
                     f"{best_of(ensemble, 1):.2f} s", "bootstrap deep ensemble, Gaussian NLL"))
    return rows


def machine() -> list[str]:
    import torch

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return [f"- started: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
            f"- machine: {os.cpu_count()} cores, {platform.machine()}, {platform.system()} "
            f"{platform.release()}",
            f"- Python {platform.python_version()}, torch {torch.__version__}, "
            f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}",
            f"- load average at start: {load[0]:.1f} (1 min), {load[1]:.1f} (5 min): other "
            f"work on the machine slows every timing"]


def report(nb_rows, hot_rows, budget: float, header: list[str]) -> str:
    lines = ["# Speed report", "", "Generated by `make bench` (`bench/run_bench.py`).", "",
             *header, ""]
    if nb_rows:
        lines += [f"## Notebooks (budget {budget:g} s each, cells only, fresh kernel)", "",
                  "| notebook | time (s) | status |", "|---|---:|---|"]
        for path, seconds, status in nb_rows:
            if status == "ok" and seconds > budget:
                status = f"**OVER BUDGET** (> {budget:g} s)"
            elif status == "ok":
                status = "within budget"
            lines.append(f"| `{path}` | {seconds:.1f} | {status} |")
        times = [s for _, s, st in nb_rows if st == "ok"]
        over = sum(s > budget for s in times)
        failed = sum(st != "ok" for _, _, st in nb_rows)
        lines += ["", f"{len(nb_rows)} notebooks: slowest {max(times, default=0):.1f} s, total "
                      f"{sum(times):.0f} s; {over} over budget, {failed} failed.", ""]
    if hot_rows:
        lines += ["## Engine hot paths (one thread)", "", "| what | time | note |",
                  "|---|---:|---|"]
        lines += [f"| {what} | {t} | {note} |" for what, t, note in hot_rows]
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "bench" / "report.md"),
                        help="Markdown report to write (default: bench/report.md)")
    parser.add_argument("--budget", type=float, default=30.0, help="seconds per notebook")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="wall-clock limit per notebook in seconds (default: 300)")
    parser.add_argument("--only", help="time only notebooks whose path contains this text")
    parser.add_argument("--no-notebooks", action="store_true", help="only the hot paths")
    parser.add_argument("--no-engine", action="store_true", help="only the notebooks")
    parser.add_argument("--l96-steps", type=int, default=50_000,
                        help="RK4 steps per timed Lorenz-96 run")
    parser.add_argument("--scaling-times", type=int, default=32768,
                        help="times in the scaling benchmark's input (32768 = 4 GiB)")
    args = parser.parse_args(argv)
    if args.budget <= 0 or args.timeout <= 0:
        parser.error("--budget and --timeout must be positive")
    header = machine()
    nb_rows = []
    if not args.no_notebooks:
        for path in notebooks(args.only):
            rel = path.relative_to(ROOT).as_posix()
            seconds, status = time_notebook(path, args.timeout)
            print(f"{seconds:7.1f} s  {rel}  {status}", flush=True)
            nb_rows.append((rel, seconds, status))
    hot_rows = []
    if not args.no_engine:
        hot_rows = hot_paths(args.l96_steps, args.scaling_times)
        for what, t, note in hot_rows:
            print(f"{t:>16s}  {what}  ({note})", flush=True)
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    header.append(f"- load average at the end: {load_end:.1f} (1 min)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report(nb_rows, hot_rows, args.budget, header))
    print(f"wrote {out}")
    bad = [r for r in nb_rows if r[2] != "ok" or r[1] > args.budget]
    if bad:
        print(f"{len(bad)} notebooks failed or over the {args.budget:g} s budget", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
