"""The Python side of the compiled host model (``host/``, Fortran 2008 + a LibTorch shim).

The host integrates the same coarse tracer model as :func:`nnparam.tracer.run_coarse` and
calls an exported closure (:mod:`nnparam.export`) at every SSP-RK3 stage. This module
writes its configuration (the grid, the time step, and the analytic wind's waves, taken from
:class:`nnparam.tracer.Wind` so that the host never re-implements numpy's random draws),
runs the binary, and reads back the states and the per-phase timings::

    result = host.run_host(q0, truth, factor=16, t_end=500.0, artifact="artifact/")
    result.q            # xarray Dataset shaped like run_coarse's
    result.timings      # seconds in dynamics, marshalling and the network call

``make host`` (or :func:`build`) compiles the binary into ``host/build/``.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from . import data, metrics, nn, tracer
from ._validate import finite_array, positive, positive_int
from .closure import Closure, stencil_features
from .filters import coarse_grain

ROOT = Path(__file__).resolve().parents[2]
HOST_DIR = ROOT / "host"
#: the host's exit codes and what they mean
EXIT_CODES = {1: "unexpected failure", 2: "configuration refused (bad namelist, or an artifact "
              "whose contract does not match the host)", 3: "NaN or inf from the network",
              4: "LibTorch could not load or run the network", 5: "the state became NaN or inf"}
#: the fields, units and output the host passes and expects (host/src/tracer_host.f90)
HOST_INPUTS = ("q", "u_face")
HOST_UNITS = ("1", "km/h")
HOST_OUTPUT = ("sgs_tendency", "1/h")


class HostError(RuntimeError):
    """The host ended with a non-zero exit code; ``code`` and ``message`` say why."""

    def __init__(self, code: int, message: str):
        self.code, self.message = int(code), message.strip()
        meaning = EXIT_CODES.get(self.code, "unknown exit code")
        super().__init__(f"host exit code {self.code} ({meaning}): {self.message}")


@dataclass
class HostRun:
    """A finished host run: states like :func:`tracer.run_coarse`, timings [s], stdout."""

    q: xr.Dataset
    timings: dict = field(default_factory=dict)
    stdout: str = ""
    folder: Path | None = None

    def per_step(self) -> dict:
        """Mean wall time per time step [s] of each phase (dynamics, marshalling, network)."""
        steps = self.timings["steps"]
        return {k[:-2]: self.timings[k] / steps for k in ("dynamics_s", "marshalling_s",
                                                           "network_s")}

    def per_call(self, best: bool = False) -> float:
        """Mean wall time of one network call [s] (three per step); with ``best``, the
        mean over the fastest block of 100 steps (what a quiet machine would show)."""
        calls = self.timings["network_calls"]
        if not calls:
            raise ValueError("the run had no closure: no network calls were timed")
        if best and self.timings.get("network_best_call_s", 0) > 0:
            return self.timings["network_best_call_s"]
        return self.timings["network_s"] / calls


# --------------------------------------------------------------------------- building
def binary() -> Path:
    """Path of the host executable (``$NNPARAM_HOST`` overrides ``host/build/tracer_host``)."""
    return Path(os.environ.get("NNPARAM_HOST", HOST_DIR / "build" / "tracer_host"))


def available() -> bool:
    """True when the host binary is built (``make host``)."""
    path = binary()
    return path.is_file() and os.access(path, os.X_OK)


def build(install: bool = False, quiet: bool = True) -> Path:
    """Compile the host with ``make -C host`` against this Python's torch; return the binary.

    With ``install``, missing compilers are first installed from Debian's packages by
    ``host/install-deps.sh`` (root only). Raises :class:`RuntimeError` with the reason when
    a tool is missing or the build fails.
    """
    script = HOST_DIR / "install-deps.sh"
    check = subprocess.run(["sh", str(script)] + ([] if install else ["--check"]),
                           capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"the host's build tools are missing: {check.stderr.strip()}")
    proc = subprocess.run(["make", "-C", str(HOST_DIR), f"PYTHON={sys.executable}"],
                          capture_output=quiet, text=True)
    if proc.returncode != 0 or not available():
        raise RuntimeError(f"building the host failed:\n{(proc.stderr or '')[-2000:]}")
    return binary()


# --------------------------------------------------------------------------- configuration
def wind_parameters(setup: tracer.TracerSetup) -> dict:
    """The analytic wind's waves as plain numbers: ``u_mean`` and, for the large-scale part
    and the gusts, amplitudes (relative), wavenumbers k [rad/km], frequencies omega
    [rad/h] and phases [rad] of ``a sin(k x - omega t + phi)``."""
    wind = tracer.Wind(setup)
    out = {"u_mean": float(setup.u_mean)}
    for name, waves in (("large", wind._large), ("gust", wind._gusts)):
        out[name] = {"amp": waves.a.tolist(), "k": waves.k.tolist(),
                     "omega": waves.omega.tolist(), "phase": waves.phases.tolist()}
    return out


def time_stepping(setup: tracer.TracerSetup, factor: int, t_end: float,
                  save_every: float = 1.0, dt: float | None = None) -> tuple[float, int, int]:
    """``(h, n_steps, steps_per_save)``: the step [h] and counts ``run_coarse`` would use."""
    coarse_dx = setup.dx * positive_int("factor", factor, minimum=2)
    dt = dt or tracer.stable_dt(coarse_dx, setup.u_mean * (1 + setup.gust))
    t_end, save_every = positive("t_end", t_end), positive("save_every", save_every)
    n_save = int(round(t_end / save_every))
    if n_save < 1 or not np.isclose(n_save * save_every, t_end):
        raise ValueError(f"t_end ({t_end}) must be a positive multiple of save_every "
                         f"({save_every})")
    sub = int(np.ceil(save_every / positive("dt", dt)))
    return save_every / sub, n_save * sub, sub


def _fortran(value) -> str:
    if isinstance(value, bool):
        return ".true." if value else ".false."
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if not np.isfinite(value):
            raise ValueError(f"namelist values must be finite, got {value}")
        return repr(float(value))  # shortest repr: Fortran reads back the same double
    if isinstance(value, str | Path):
        return "'" + str(value).replace("'", "''") + "'"
    return ", ".join(_fortran(v) for v in value)


def _namelist(name: str, values: dict) -> str:
    lines = [f"&{name}"] + [f"  {k} = {_fortran(v)}" for k, v in values.items()] + ["/"]
    return "\n".join(lines) + "\n"


def write_config(folder, setup: tracer.TracerSetup, factor: int, q0, n_steps: int, dt: float,
                 save_every: int = 1, artifact=None, threads: int = 1) -> Path:
    """Write ``run.nml`` and ``q0.bin`` into ``folder`` for one host run; return the namelist.

    ``q0`` is ``(n,)`` or ``(M, n)`` coarse cells; ``artifact`` an artifact folder (or its
    ``contract.json``) or ``None`` for the model without closure; ``dt`` [h] the step and
    ``save_every`` a number of steps.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = setup.n // positive_int("factor", factor, minimum=2)
    q0 = np.atleast_2d(finite_array("q0", q0))
    if q0.ndim != 2 or q0.shape[-1] != n:
        raise ValueError(f"q0 must have shape ({n},) or (M, {n}), got {q0.shape}")
    np.ascontiguousarray(q0, dtype="<f8").tofile(folder / "q0.bin")
    contract = ""
    if artifact is not None:
        path = Path(artifact).resolve()
        contract = path / "contract.json" if path.is_dir() else path
    run = {"n_fine": setup.n, "factor": int(factor), "length": float(setup.length),
           "lam": float(setup.lam), "alpha": float(setup.alpha), "dt": positive("dt", dt),
           "n_steps": positive_int("n_steps", n_steps),
           "save_every": positive_int("save_every", save_every),
           "members": q0.shape[0], "threads": positive_int("threads", threads),
           "contract": str(contract), "q0_file": str((folder / "q0.bin").resolve()),
           "out_file": str((folder / "q.bin").resolve()),
           "timing_file": str((folder / "timing.json").resolve())}
    w = wind_parameters(setup)
    wind = {"u_mean": w["u_mean"], "n_large": len(w["large"]["amp"])}
    wind.update({f"large_{k}": v for k, v in w["large"].items()})
    wind["n_gusts"] = len(w["gust"]["amp"])
    wind.update({f"gust_{k}": v for k, v in w["gust"].items()})
    path = folder / "run.nml"
    path.write_text(_namelist("run", run) + _namelist("wind", wind))
    return path


# --------------------------------------------------------------------------- running
def run_host(q0, truth: xr.Dataset, factor: int, t_end: float, artifact=None,
             save_every: float = 1.0, dt: float | None = None, threads: int = 1,
             workdir=None, timeout: float = 600.0) -> HostRun:
    """Run the Fortran host like :func:`nnparam.tracer.run_coarse` (same arguments, same
    time step and save times); ``artifact`` is an exported closure folder or ``None``.

    Raises :class:`HostError` (with the host's message and exit code) when the host refuses
    the artifact or fails, and ``RuntimeError`` when the binary is not built.
    """
    if not available():
        raise RuntimeError(f"the host is not built ({binary()}): run `make host`")
    setup = tracer.setup_of(truth)
    h, n_steps, sub = time_stepping(setup, factor, t_end, save_every, dt)
    q0 = finite_array("q0", q0)
    members = 1 if q0.ndim == 1 else q0.shape[0]
    n = setup.n // factor
    with _RunFolder(workdir) as folder:
        nml = write_config(folder, setup, factor, q0, n_steps, h, sub, artifact, threads)
        proc = subprocess.run([str(binary()), str(nml)], capture_output=True, text=True,
                              timeout=timeout, cwd=folder)
        if proc.returncode != 0:
            raise HostError(proc.returncode, proc.stderr.replace("tracer_host: error: ", "")
                            .replace(f"STOP {proc.returncode}", ""))
        states = np.fromfile(folder / "q.bin", dtype="<f8")
        timings = json.loads((folder / "timing.json").read_text())
    saves = states.size // (members * n)
    states = states.reshape(saves, members, n)
    times = save_every * np.arange(saves)
    x = coarse_grain((np.arange(setup.n) + 0.5) * setup.dx, factor)
    attrs = {**truth.attrs, "factor": int(factor), "model": "Fortran host"}
    if q0.ndim == 1:
        ds = data.fields_to_dataset(times, x, attrs=attrs,
                                    q=(states[:, 0], "1", "host-model tracer"))
    else:
        ds = xr.Dataset({"q": (("time", "member", "x"), states,
                               {"units": "1", "long_name": "host-model tracer"})},
                        coords={"time": data.coordinate("time", times),
                                "x": data.coordinate("x", x)}, attrs=attrs)
    return HostRun(ds, timings, proc.stdout, None if workdir is None else Path(workdir))


class _RunFolder:
    """``workdir`` if given (kept), else a temporary folder removed afterwards."""

    def __init__(self, workdir):
        self.workdir, self._tmp = workdir, None

    def __enter__(self) -> Path:
        if self.workdir is not None:
            path = Path(self.workdir)
            path.mkdir(parents=True, exist_ok=True)
            return path
        self._tmp = tempfile.mkdtemp(prefix="nnparam-host-")
        return Path(self._tmp)

    def __exit__(self, *exc):
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
        return False


# --------------------------------------------------------------------------- the closure
def tracer_closure(budget: xr.Dataset, width: int = 2, hidden=(16, 16), epochs: int = 400,
                   lr: float = 1e-2, seed: int = 0, fractions=(0.6, 0.2, 0.2),
                   gap: int = 10) -> tuple[Closure, tuple[slice, ...]]:
    """Train the per-column closure the host runs: stencils of ``(q, u_face)`` of half width
    ``width`` -> ``sgs_tendency`` [1/h], an MLP with tanh, float32.

    ``budget`` is a tracer budget (:func:`tracer.sgs_dataset`); training uses the first
    time block of :func:`metrics.time_blocks` (``fractions``, ``gap``), early stopping the
    second; the blocks are returned so that tests and online runs use the held-out third.
    A width of 2 is stable in 500 h coupled runs; width 1 blows up within 150 h
    (``tests/test_host.py``).
    """
    for name in ("q", "u_face", "sgs_tendency"):
        if name not in budget:
            raise ValueError(f"budget must hold q, u_face and sgs_tendency (sgs_dataset); "
                             f"missing {name}")
    q, u, s = (budget[k].values for k in ("q", "u_face", "sgs_tendency"))
    blocks = metrics.time_blocks(q.shape[0], fractions, gap)
    feats = stencil_features(q, u, width=positive_int("width", width, minimum=0))
    n_feat = feats.shape[-1]

    def pairs(block):
        return feats[block].reshape(-1, n_feat), s[block].reshape(-1, 1)

    x_train, y_train = pairs(blocks[0])
    xs, ys = nn.Standardizer(x_train), nn.Standardizer(y_train)
    x_val, y_val = pairs(blocks[1])
    net = nn.mlp(n_feat, 1, hidden=tuple(hidden), seed=seed)
    nn.train(net, xs.transform(x_train), ys.transform(y_train), epochs=epochs, lr=lr,
             validation=(xs.transform(x_val), ys.transform(y_val)), patience=100, seed=seed)
    net.eval()
    closure = Closure.from_scalers(
        net, xs, ys, inputs=HOST_INPUTS, stencil_width=width, input_units=HOST_UNITS,
        output=HOST_OUTPUT[0], output_units=HOST_OUTPUT[1], name="tracer stencil closure",
        description=f"MLP {n_feat}-{'-'.join(map(str, hidden))}-1 (tanh) on stencils of "
                    f"half width {width} of q and u_face, trained on the budget residual")
    return closure, blocks


# --------------------------------------------------------------------------- agreement
def float64_twin(closure: Closure) -> Closure:
    """The same closure with its network promoted to float64 (the rounding-free reference)."""
    net = copy.deepcopy(closure.module).double()
    return Closure(net, inputs=closure.inputs, stencil_width=closure.stencil_width,
                   x_mean=closure.x_mean, x_std=closure.x_std, y_mean=closure.y_mean,
                   y_std=closure.y_std, output=closure.output,
                   output_units=closure.output_units, input_units=closure.input_units,
                   name=f"{closure.name} (float64)")


def perturbation_growth(q0, truth: xr.Dataset, factor: int, t_end: float, closure,
                        size: float = 1e-6, seeds=(0, 1, 2), save_every: float = 1.0) -> float:
    """How much the coupled model amplifies a small perturbation of its initial state.

    Runs ``tracer.run_coarse`` from ``q0`` and from ``q0 + size * N(0, 1)`` (one draw per
    seed) and returns the largest ratio ``max|dq(t)| / max|dq(0)|`` over times and seeds
    (1 at t = 0; below 1 everywhere for a damping model). An estimate, from random
    directions, of the propagator norm that turns per-step errors into trajectory errors.
    """
    ref = tracer.run_coarse(q0, truth, factor, t_end, closure=closure,
                            save_every=save_every)["q"].values
    growth = 1.0
    for seed in seeds:
        eps = positive("size", size) * np.random.default_rng(seed).standard_normal(
            np.shape(q0))
        run = tracer.run_coarse(np.asarray(q0) + eps, truth, factor, t_end, closure=closure,
                                save_every=save_every)["q"].values
        axes = tuple(range(1, run.ndim))
        growth = max(growth, float((np.abs(run - ref).max(axis=axes)).max()
                                   / np.abs(eps).max()))
    return growth


def float32_tolerance(run: xr.Dataset, truth: xr.Dataset, factor: int, *evaluations,
                      amplification: float = 1.0) -> dict:
    """How far two coupled runs with float32 networks may drift apart through rounding alone.

    Each of ``evaluations`` (closures or loaded artifacts, all float32 versions of one
    network, the first a :class:`Closure`) differs from the float64 twin of the first by
    ``dP_k = max |P_k - P_64|`` [1/h], measured on the states of ``run`` (a coupled run:
    ``q`` with dims (time, [member,] x)) with the face wind at their times. Two runs driven
    by ``P_j`` and ``P_k`` then separate by at most ``A * t_end * (dP_j + dP_k)``: every
    call's discrepancy added up coherently over the run, then amplified by at most ``A``
    (``amplification``, e.g. :func:`perturbation_growth`). Returns ``{"tolerance", "dP",
    "t_end", "amplification"}``; the two largest ``dP`` enter, so the bound holds for any
    pair.
    """
    if len(evaluations) < 2 or not isinstance(evaluations[0], Closure):
        raise ValueError("pass at least two evaluations of the network, the first a Closure")
    amplification = positive("amplification", amplification)
    setup = tracer.setup_of(truth)
    times = run["time"].values
    x_fine = (np.arange(setup.n) + 0.5) * setup.dx
    u_face = tracer.coarse_face_wind(tracer.Wind(setup)(x_fine, times), factor)
    q = run["q"].values
    if q.ndim == 3:  # (time, member, x): the wind is shared by the members
        u_face = np.broadcast_to(u_face[:, None, :], q.shape)
    reference = float64_twin(evaluations[0])(q, u_face)
    d_p = [float(np.max(np.abs(np.asarray(e(q, u_face)) - reference))) for e in evaluations]
    t_end = float(times[-1] - times[0])
    top = sorted(d_p)[-2:]
    return {"tolerance": amplification * t_end * sum(top), "dP": d_p, "t_end": t_end,
            "amplification": amplification}
