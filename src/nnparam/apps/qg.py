"""A community model: ocean mesoscale eddies in pyqg, judged with the m2lines benchmark.

The two-layer quasi-geostrophic model of pyqg is the standard test bed for machine-learned
ocean eddy closures; Ross, Li, Perezhogin, Fernandez-Granda & Zanna (2023, JAMES,
doi:10.1029/2022MS003258; github.com/m2lines/pyqg_parameterization_benchmarks) defined its
benchmark: two configurations (:data:`CONFIGS`), filtered and coarse-grained high-resolution
runs as training data, offline ``R^2`` and correlation, and online similarity scores of
coarse runs with a closure in the loop. This package runs it on a CPU with pyqg-jax, in
float64 (see :mod:`nnparam.apps.qg_model` for how 64-bit mode is enabled):

* :func:`simulate` (high resolution), :func:`online` (low resolution with a closure) and the
  benchmark's operators :func:`coarsen` and :func:`subgrid_forcing`;
* the data the chapter and the lab read, each cached on disk by its parameters
  (:mod:`nnparam.cache`; ``make data`` runs :func:`warm_cache`): :func:`truth`,
  :func:`forcing`, :func:`trained_fcnn`, :func:`benchmark_runs`, :func:`distance_table`.

**Sizes.** Ross et al. coarse-grain 256^2 runs (``dx = 3.9 km``, a quarter of the deformation
radius ``rd = 15 km``) to 64^2 (``dx = 15.6 km``, about ``rd``) and run 10 years per
simulation with many seeds. Here the truth is 128^2 (``dx = 7.8 km = rd / 2``), coarse-grained
by a factor 2 to the same 64^2 grid, with a 1.25-year (eddy) and 1-year (jet) record after a
spin-up; online runs use two seeds of 1.5 years each (:data:`ONLINE`). Cold, everything costs
about five minutes of one core (``make bench``).
"""

from __future__ import annotations

import contextlib
import hashlib

import numpy as np
import torch
import xarray as xr

from .. import cache
from .._validate import finite_array, positive, positive_int
from ..metrics import time_blocks
from .qg_loop import BASELINES, check_closure, closure_key, run
from .qg_model import (
    COMMON,
    CONFIGS,
    OPERATORS,
    YEAR,
    _check_nx,
    _steps,
    check_config,
    coarsen,
    grid_coords,
    initial_q,
    interpolate,
    invert,
    layer_parameters,
    model,
    spectral_filter,
    subgrid_forcing,
    tendency,
    wavenumbers,
)
from .qg_net import FCNN, QGClosure, train_fcnn

__all__ = ["BASELINES", "COMMON", "CONFIGS", "OPERATORS", "YEAR", "FCNN", "QGClosure",
           "benchmark_runs", "check_config", "closure_key", "coarsen", "distance_table",
           "forcing", "lab_run",
           "grid_coords", "initial_q", "interpolate", "invert", "layer_parameters", "model",
           "online", "simulate", "spectral_filter", "spun_up", "subgrid_forcing", "tendency",
           "train_fcnn", "trained_fcnn", "training_blocks", "truth", "warm_cache",
           "wavenumbers", "with_velocities"]

VERSION = 1  # of the numerics and cached layouts of this package (bump to recompute the cache)
HIGH_NX, LOW_NX = 128, 64
#: spin-up of a high-resolution run (years, discarded): on the ``spinup_nx`` grid from the
#: seeded initial state, then on the run's own grid after spectral interpolation (the 128^2
#: eddy run needs about 0.7 years to gain the energy that the 64^2 grid lacks)
DEFAULT_SPINUP = {"eddy": (2.0, 0.75), "jet": (2.5, 0.5)}
#: the truth records of the book: 128^2, saved every 3 days
TRUTH = {"eddy": {"years": 1.25}, "jet": {"years": 1.0}}
TRUTH_SAVE = 3 * 86400.0
#: online protocol: members, no-closure spin-up (years, shared by all closures), closure-on
#: adjustment (discarded), record, save interval (s)
ONLINE = {"members": 2, "spinup_years": {"eddy": 1.5, "jet": 2.0}, "adjust_years": 0.5,
          "years": 1.0, "save_every": 10 * 86400.0}
#: snapshots dropped between the training, validation and test blocks: 36 days, longer than
#: the 1/e decorrelation time of the coarse PV in either layer of either configuration
GAP = 12
#: the chapter's network: architecture and training (see :func:`trained_fcnn`)
FCNN_SETUP = {"widths": (8, 8, 8), "kernels": (5, 3, 3, 3), "epochs": 60, "lr": 3e-3,
              "batch_size": 8}
#: training seeds of the chapter's networks (each is run online like every closure)
NETWORK_SEEDS = (0, 1)
CLOSURES = ("none", *(f"fcnn{seed}" for seed in NETWORK_SEEDS), *BASELINES)


# ------------------------------------------------------------------------------------------
# the cache, with a lock so that two processes filling one entry compute it once
# ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(path):
    try:
        import fcntl
    except ImportError:  # no POSIX locks: both may compute, cache.cached stays atomic
        yield
        return
    with open(path.with_suffix(".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _cached(name: str, params: dict, compute) -> xr.Dataset:
    target = cache.path_of(name, params, VERSION)
    if target.exists():
        return cache.cached(name, params, compute, version=VERSION)
    with _locked(target):
        return cache.cached(name, params, compute, version=VERSION)


# ------------------------------------------------------------------------------------------
# runs
# ------------------------------------------------------------------------------------------


def _dataset(q, config, dt, t0, save_every, attrs) -> xr.Dataset:
    """PV records (..., time, lev, y, x) as a Dataset with units, coordinates and attributes
    (the cached form: the velocities follow from ``q``, see :func:`with_velocities`)."""
    nx = q.shape[-1]
    dims = ("time", "lev", "y", "x") if q.ndim == 4 else ("member", "time", "lev", "y", "x")
    time = t0 + save_every * np.arange(1, q.shape[-4] + 1)
    coords = {**grid_coords(nx),
              "time": ("time", time, {"units": "s", "long_name": "time since the initial state"})}
    if q.ndim == 5:
        coords["member"] = ("member", np.arange(q.shape[0]), {"long_name": "ensemble member"})
    params = {f"pyqg_{k}": v for k, v in {**COMMON, **CONFIGS[config]}.items()}
    return xr.Dataset(
        {"q": (dims, q, {"units": "1/s", "long_name": "potential vorticity anomaly"})},
        coords=coords, attrs={"model": "pyqg-jax QGModel, float64", "config": config,
                              "nx": nx, "dt": dt, "save_every": save_every, **params, **attrs})


def with_velocities(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with the velocities ``u``, ``v`` (m/s) of its PV ``q`` (:func:`invert`)."""
    q = ds["q"].values.astype(float)
    vel = invert(np.nan_to_num(q), ds.attrs["config"])
    bad = ~np.isfinite(q)
    dims = ds["q"].dims
    return ds.assign(
        u=(dims, np.where(bad, np.nan, vel["u"]),
           {"units": "m/s", "long_name": "zonal velocity anomaly (background U_i excluded)"}),
        v=(dims, np.where(bad, np.nan, vel["v"]),
           {"units": "m/s", "long_name": "meridional velocity"}))


def _years(name: str, value, allow_zero: bool = False) -> float:
    val = float(value) if not isinstance(value, bool) else np.nan
    if not np.isfinite(val) or val < 0 or (val == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a number of years {bound}, got {value!r}")
    return val


def simulate(nx: int = HIGH_NX, config: str = "eddy", years: float = 1.0, dt: float = 3600.0,
             seed: int = 0, save_every: float = TRUTH_SAVE, *, spinup=None,
             spinup_nx: int | None = None, use_cache: bool = True) -> xr.Dataset:
    """A seeded pyqg-jax two-layer run of the benchmark's ``config``: ``q``, ``u``, ``v``.

    Parameters
    ----------
    nx : grid points per side (even); the domain is ``L = 1000 km`` square and doubly periodic.
    config : ``"eddy"`` or ``"jet"`` (:data:`CONFIGS`).
    years : length of the saved record (360-day years, after the spin-up), > 0.
    dt : time step (s), > 0; the benchmark's 3600 s.
    seed : seed of the initial state (:func:`initial_q`).
    save_every : interval between saved states (s), a whole number of steps.
    spinup : ``(coarse_years, fine_years)`` discarded before saving: first on the
        ``spinup_nx`` grid (default ``min(nx, 64)``), then on the ``nx`` grid after spectral
        interpolation; default :data:`DEFAULT_SPINUP` of the config.
    use_cache : read and write the run in :mod:`nnparam.cache` (keyed by every argument).

    Returns a Dataset with ``q`` (1/s, stored as float32), ``u``, ``v`` (m/s) of dims ``(time,
    lev, y, x)``, coordinates in metres and seconds (time since the initial state), the model
    parameters as attributes and ``blew_up_at`` (s; NaN while the run stays finite).
    """
    nx = _check_nx("nx", nx)
    check_config(config)
    years, dt = _years("years", years), positive("dt", dt)
    seed = positive_int("seed", seed, minimum=0)
    save_every = positive("save_every", save_every)
    n_inner = _steps("save_every", save_every, dt)
    n_saves = _steps("years", years * YEAR, save_every)
    coarse_years, fine_years = DEFAULT_SPINUP[config] if spinup is None else spinup
    coarse_years = _years("spinup[0]", coarse_years)
    fine_years = _years("spinup[1]", fine_years, allow_zero=True)
    spinup_nx = min(nx, 64) if spinup_nx is None else _check_nx("spinup_nx", spinup_nx)
    if spinup_nx > nx:
        raise ValueError(f"spinup_nx ({spinup_nx}) must not exceed nx ({nx})")
    params = {"nx": nx, "config": config, "years": years, "dt": dt, "seed": seed,
              "save_every": save_every, "spinup": [coarse_years, fine_years],
              "spinup_nx": spinup_nx}

    def compute() -> xr.Dataset:
        spin_steps = _steps("spinup[0]", coarse_years * YEAR, dt)
        _, q_spun, _ = run(spinup_nx, config, None, initial_q(spinup_nx, config, seed)[None],
                           dt, 0, spin_steps, 1)
        q_start = interpolate(q_spun, nx) if spinup_nx < nx else q_spun
        fine_saves = _steps("spinup[1]", fine_years * YEAR, save_every)
        q, _, blew_up = run(nx, config, None, q_start, dt, fine_saves, n_inner, n_saves)
        return _dataset(q[0].astype(np.float32), config, dt, (coarse_years + fine_years) * YEAR,
                        save_every, {"seed": seed, "spinup_years": [coarse_years, fine_years],
                                     "spinup_nx": spinup_nx, "blew_up_at": float(blew_up[0])})

    if not use_cache:
        return with_velocities(compute())
    return with_velocities(_cached("qg-run", params, compute))


def spun_up(nx: int = LOW_NX, config: str = "eddy", seed: int = 0, members: int = 2,
            years: float | None = None, dt: float = 3600.0) -> np.ndarray:
    """Final PV (members, 2, nx, nx) of closure-free runs from ``initial_q(nx, config, seed +
    m)`` after ``years`` (default ``ONLINE["spinup_years"][config]``); cached."""
    nx = _check_nx("nx", nx)
    check_config(config)
    seed, members = positive_int("seed", seed, minimum=0), positive_int("members", members)
    years = _years("years", ONLINE["spinup_years"][config] if years is None else years)
    dt = positive("dt", dt)
    params = {"nx": nx, "config": config, "seed": seed, "members": members, "years": years,
              "dt": dt}

    def compute() -> xr.Dataset:
        start = np.stack([initial_q(nx, config, seed + m) for m in range(members)])
        _, final, _ = run(nx, config, None, start, dt, 0, _steps("years", years * YEAR, dt), 1)
        return xr.Dataset({"q": (("member", "lev", "y", "x"), final, {"units": "1/s"})},
                          coords={"member": np.arange(members)},
                          attrs={"config": config, "spinup_years": years})

    return _cached("qg-spinup", params, compute)["q"].values


def online(closure, nx: int = LOW_NX, config: str = "eddy", years: float = ONLINE["years"],
           seed: int = 0, *, members: int = ONLINE["members"], dt: float = 3600.0,
           spinup_years: float | None = None, adjust_years: float = ONLINE["adjust_years"],
           save_every: float = ONLINE["save_every"], q0=None,
           use_cache: bool = True) -> xr.Dataset:
    """The ``nx`` model of ``config`` with a closure in the loop, for ``members`` seeds.

    ``closure``: None (no closure), a name in :data:`BASELINES` (pyqg-jax's Smagorinsky,
    backscatter-biharmonic and Zanna-Bolton 2020 closures), a :class:`QGClosure` (its
    weights run in JAX inside the compiled loop), or any callable ``S_q = f(q)`` on numpy PV
    (2, nx, nx) (called from the loop through ``jax.pure_callback``, slowly). Member ``m``
    starts from the closure-free spin-up of seed ``seed + m`` (:func:`spun_up`, shared by
    every closure; or from ``q0`` (members, 2, nx, nx)), runs ``adjust_years`` with the
    closure on (discarded) and then ``years`` saved every ``save_every`` seconds. A member
    that blows up is stopped with a warning naming the step; its records are NaN.

    Returns ``q``, ``u``, ``v`` of dims ``(member, time, lev, y, x)`` and ``blew_up_at``
    (member; s after the start, NaN if finite). Runs of baselines and networks are cached,
    keyed by the closure's name or weights hash and every argument; plain callables are not.
    """
    nx = _check_nx("nx", nx)
    check_config(config)
    years, dt = _years("years", years), positive("dt", dt)
    seed, members = positive_int("seed", seed, minimum=0), positive_int("members", members)
    adjust_years = _years("adjust_years", adjust_years, allow_zero=True)
    save_every = positive("save_every", save_every)
    n_inner = _steps("save_every", save_every, dt)
    n_saves = _steps("years", years * YEAR, save_every)
    adjust_saves = _steps("adjust_years", adjust_years * YEAR, save_every)
    if q0 is None:
        spinup_years = _years("spinup_years", ONLINE["spinup_years"][config]
                              if spinup_years is None else spinup_years)
        start = spun_up(nx, config, seed, members, spinup_years, dt)
        start_key = ["spinup", spinup_years]
    else:
        start = finite_array("q0", q0)
        if start.shape != (members, 2, nx, nx):
            raise ValueError(f"q0 must have shape (members, 2, nx, nx) = {(members, 2, nx, nx)},"
                             f" got {start.shape}")
        start_key = ["q0", hashlib.sha256(start.tobytes()).hexdigest()[:16]]
        spinup_years = 0.0
    check_closure(closure, start)
    key = closure_key(closure)

    def compute() -> xr.Dataset:
        q, _, blew_up = run(nx, config, closure, start, dt, adjust_saves, n_inner, n_saves)
        name = key or getattr(closure, "__name__", type(closure).__name__)
        ds = _dataset(q.astype(np.float32), config, dt, adjust_years * YEAR, save_every,
                      {"closure": name, "seed": seed, "spinup_years": spinup_years,
                       "adjust_years": adjust_years})
        ds["blew_up_at"] = ("member", blew_up, {"units": "s", "long_name":
                                                "time the member left the finite numbers"})
        return ds

    if not use_cache or key is None:
        return with_velocities(compute())
    params = {"closure": key, "nx": nx, "config": config, "years": years, "seed": seed,
              "members": members, "dt": dt, "start": start_key, "adjust_years": adjust_years,
              "save_every": save_every}
    return with_velocities(_cached("qg-online", params, compute))


# ------------------------------------------------------------------------------------------
# the data of the chapter and the lab
# ------------------------------------------------------------------------------------------


def truth(config: str = "eddy") -> xr.Dataset:
    """The book's 128^2 truth record of ``config`` (:data:`TRUTH`, saved every 3 days)."""
    return simulate(HIGH_NX, check_config(config), years=TRUTH[config]["years"])


def forcing(config: str = "eddy", nx: int = LOW_NX, operator: str = "op1") -> xr.Dataset:
    """Coarse PV ``q`` and subgrid forcing ``S_q`` (time, lev, y, x) of every truth snapshot.

    :func:`subgrid_forcing` of :func:`truth` onto the ``nx`` grid with ``operator``; cached,
    stored in float32.
    """
    check_config(config)
    nx = _check_nx("nx", nx)
    spectral_filter(nx, operator)  # validates the operator

    def compute() -> xr.Dataset:
        hi = truth(config)
        out = subgrid_forcing(hi["q"].values, config, nx, operator)
        dims = ("time", "lev", "y", "x")
        return xr.Dataset(
            {"q": (dims, out["q"].astype(np.float32),
                   {"units": "1/s", "long_name": "filtered and coarse-grained PV"}),
             "S_q": (dims, out["S_q"].astype(np.float32),
                     {"units": "1/s^2", "long_name": "subgrid PV forcing"})},
            coords={**grid_coords(nx), "time": hi["time"]},
            attrs={"config": config, "nx": nx, "operator": operator,
                   "truth": hi.attrs.get("cache_key", "")})

    return _cached("qg-forcing", {"config": config, "nx": nx, "operator": operator}, compute)


def training_blocks(n_time: int) -> tuple[slice, slice, slice]:
    """Train / validation / test blocks of a record: 60/20/20 % in time, :data:`GAP` apart."""
    return time_blocks(positive_int("n_time", n_time), (0.6, 0.2, 0.2), gap=GAP)


def _net_dataset(net: FCNN, history: dict) -> xr.Dataset:
    data = {}
    for name, tensor in net.state_dict().items():
        arr = tensor.detach().cpu().numpy()
        data[name] = ([f"{name}_{i}" for i in range(arr.ndim)], arr)
    epochs = np.arange(len(history["train"]))
    data["train_loss"] = ("epoch", np.asarray(history["train"]))
    data["validation_loss"] = ("epoch", np.asarray(history["validation"]))
    return xr.Dataset(data, coords={"epoch": epochs},
                      attrs={"best_epoch": int(history["best_epoch"])})


def trained_fcnn(seed: int = 0, config: str = "eddy", nx: int = LOW_NX,
                 operator: str = "op1") -> tuple[QGClosure, dict]:
    """The chapter's :class:`FCNN` trained on the first 60 % of the ``config`` forcing record.

    :func:`train_fcnn` with :data:`FCNN_SETUP` and ``seed`` on the training block of
    :func:`training_blocks`, early stopping on the validation block; the test block is never
    seen. The weights and the loss history are cached, so a warm cache skips the training.
    Returns the closure and ``{"train", "validation", "best_epoch"}``.
    """
    seed = positive_int("seed", seed, minimum=0)
    check_config(config)
    params = {"seed": seed, "config": config, "nx": nx, "operator": operator, **FCNN_SETUP}

    def compute() -> xr.Dataset:
        data = forcing(config, nx, operator)
        train, val, _ = training_blocks(data.sizes["time"])
        torch.set_num_threads(1)
        net, history = train_fcnn(
            data["q"].values[train], data["S_q"].values[train],
            (data["q"].values[val], data["S_q"].values[val]), seed=seed, **FCNN_SETUP)
        return _net_dataset(net, history)

    ds = _cached("qg-fcnn", params, compute)
    net = FCNN(FCNN_SETUP["widths"], FCNN_SETUP["kernels"])
    net.load_state_dict({name: torch.as_tensor(ds[name].values) for name in net.state_dict()})
    history = {"train": ds["train_loss"].values.tolist(),
               "validation": ds["validation_loss"].values.tolist(),
               "best_epoch": int(ds.attrs["best_epoch"])}
    return QGClosure(net.eval(), config=config, nx=nx), history


def benchmark_runs(config: str = "eddy", seed: int = 0) -> dict:
    """Online runs of :data:`CLOSURES` in ``config`` with the :data:`ONLINE` protocol.

    ``"fcnn0"``, ``"fcnn1"`` are :func:`trained_fcnn` with the training seeds
    :data:`NETWORK_SEEDS` (trained on the eddy configuration), the other names the
    closure-free model and pyqg-jax's physical closures; ``seed`` seeds the initial states.
    Returns ``{name: dataset}`` (each cached).
    """
    check_config(config)
    nets = {f"fcnn{s}": trained_fcnn(s)[0] for s in NETWORK_SEEDS}
    closures = {"none": None, **nets, **{name: name for name in BASELINES}}
    return {name: online(closure, LOW_NX, config, seed=seed) for name, closure in
            closures.items()}


def distance_table(config: str = "eddy", seed: int = 0) -> xr.Dataset:
    """Distances of every benchmark run to the truth, per metric and member (cached).

    ``D`` (closure, metric, member): Wasserstein distances of the marginals and spectral
    RMS errors of :mod:`nnparam.apps.qg_metrics` against :func:`truth` of ``config``;
    ``score`` (closure, metric, member): the similarity score against the closure-free run
    (NaN for a member that blew up).
    """
    from . import qg_metrics

    check_config(config)
    runs = benchmark_runs(config, seed)
    params = {"config": config, "seed": seed,
              "runs": {name: ds.attrs.get("cache_key", "") for name, ds in runs.items()}}

    def compute() -> xr.Dataset:
        reference = qg_metrics.Truth(truth(config), config)
        dist = {name: qg_metrics.distances(ds, reference) for name, ds in runs.items()}
        d = np.array([[dist[n][m] for m in qg_metrics.METRICS] for n in CLOSURES])
        s = np.array([[qg_metrics.similarity(dist[n], dist["none"])[m]
                       for m in qg_metrics.METRICS] for n in CLOSURES])
        dims = ("closure", "metric", "member")
        return xr.Dataset({"D": (dims, d, {"long_name": "distance to the truth"}),
                           "score": (dims, s, {"long_name": "similarity score", "units": "1"})},
                          coords={"closure": list(CLOSURES), "metric": list(qg_metrics.METRICS),
                                  "member": np.arange(d.shape[-1])},
                          attrs={"config": config})

    return _cached("qg-distances", params, compute)


def warm_cache() -> None:
    """Compute everything the chapter and the lab read (``make data``)."""
    for config in CONFIGS:
        forcing(config)
        distance_table(config)
    forcing("eddy", operator="op2")
    lab_run(None)


def lab_run(closure) -> xr.Dataset:
    """The lab's short online run: one member from the first eddy spin-up of
    :func:`benchmark_runs` (shared, so it costs nothing extra), 0.25 years with the closure on
    (discarded), then 0.5 years saved every 10 days."""
    start = spun_up(LOW_NX, "eddy")[:1]
    return online(closure, LOW_NX, "eddy", years=0.5, members=1, adjust_years=0.25, q0=start)
