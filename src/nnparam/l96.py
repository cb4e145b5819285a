"""Two-scale Lorenz-96 (Lorenz 1996, in the form of Wilks 2005): the atmosphere application.

Slow variables ``X_k`` (``k = 0..K-1``, think of a latitude circle of large-scale weather) are
each coupled to ``J`` fast variables ``Y_{j,k}`` (think of convection in sector ``k``)::

    dX_k/dt     = -X_{k-1} (X_{k-2} - X_{k+1}) - X_k + F - (h c / b) sum_j Y_{j,k}
    dY_{j,k}/dt = -c b Y_{j+1,k} (Y_{j+2,k} - Y_{j-1,k}) - c Y_{j,k} + (h c / b) X_k

The ``X`` ring is cyclic in ``k``; the ``Y`` ring runs over all ``J*K`` fast variables in the
order ``(k, j)`` and is cyclic across sectors (``Y_{J,k}`` is ``Y_{0,k+1}``). All quantities are
nondimensional; time is in model time units (MTU; one MTU is roughly five atmospheric days).

The module gives

* the two-scale "truth": :func:`simulate` (fourth-order Runge-Kutta compiled with numba),
  :func:`simulate_reference` (the same in plain numpy, for the tests) and
  :func:`truth_run` (a spun-up run read from :mod:`nnparam.cache`);
* the one-scale (coarse) model ``dX_k/dt = ... + F + P(X)_k`` with any closure ``P``:
  :func:`simulate_one_scale`, which advances an ensemble of members in one vectorised call,
  optionally with a stochastic term (:class:`AR1`, :class:`StateDependentAR1`,
  :class:`MultiplicativeAR1`, after Arnold et al. 2013). Its equations are written once
  (:func:`one_scale_tendency`, :func:`rk4_step`, against an array namespace) and run either by
  the readable numpy loop or, for long runs, by a compiled JAX loop over the same functions;
* the training targets: the instantaneous coupling (``simulate(...).coupling``) and the
  coarse-step target of Wilks (2005) and Arnold et al. (2013), :func:`coarse_step_target`;
* offline fits (:func:`fit_polynomial`, :func:`stencil`, :func:`neural_closure`,
  :func:`fit_ar1`, :func:`fit_state_dependent_ar1`, :func:`fit_multiplicative_ar1`) and the
  forecast runners :func:`forecast_ensemble`, :func:`forecast_rmse`.

Every metric lives in :mod:`nnparam.evaluation` (``hellinger`` and ``autocorrelation`` are
re-exported here for older code).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import xarray as xr

from . import _xp
from ._validate import finite_array, positive, positive_int
from .closure import Closure, as_closure, is_torch_module
from .evaluation import autocorrelation, hellinger, rmse_by_lead  # noqa: F401
from .grid import periodic_stencil

try:  # numba is pinned in requirements.txt; the numpy reference keeps working without it
    from numba import njit
except ImportError:  # pragma: no cover - exercised only without numba
    njit = None

UNITS = "1"  # every Lorenz-96 variable is nondimensional
TIME_UNITS = "MTU"
BLOW_UP = 1e6  # |X| beyond this marks a member of a one-scale run as blown up


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------
def _parameters(K, J, F, h, b, c, dt, n_steps, save_every):
    K = positive_int("K", K, minimum=4)
    J = positive_int("J", J, minimum=1)
    F = float(finite_array("F", F, ndim=0))
    h = float(finite_array("h", h, ndim=0))
    b = positive("b", b)
    c = positive("c", c)
    dt = positive("dt", dt)
    n_steps = positive_int("n_steps", n_steps, minimum=0)
    save_every = positive_int("save_every", save_every)
    return K, J, F, h, b, c, dt, n_steps, save_every


def _initial_state(K, J, X0, Y0, seed):
    rng = np.random.default_rng(seed)
    if X0 is None:
        X = rng.standard_normal(K)
    else:
        X = finite_array("X0", X0, ndim=1)
        if X.shape != (K,):
            raise ValueError(f"X0 must have shape (K,) = ({K},), got {X.shape}")
    if Y0 is None:
        Y = 0.1 * rng.standard_normal((K, J))
    else:
        Y = finite_array("Y0", Y0, ndim=2)
        if Y.shape != (K, J):
            raise ValueError(f"Y0 must have shape (K, J) = ({K}, {J}), got {Y.shape}")
    return X.astype(float).copy(), Y.astype(float).copy()


def _members(name: str, value, K: int) -> np.ndarray:
    """An ensemble of states ``(K,)`` or ``(M, K)``: numeric, finite in every member."""
    try:
        arr = np.array(value, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numeric array-like, got {type(value).__name__}"
                         ) from err
    if arr.ndim not in (1, 2) or arr.shape[-1] != K or arr.size == 0:
        raise ValueError(f"{name} must have shape (K,) or (M, K) with K={K}, got {arr.shape}")
    bad = ~np.all(np.isfinite(arr.reshape(-1, K)), axis=1)
    if bad.any():
        raise ValueError(f"{name} holds NaN or inf in member(s) {np.flatnonzero(bad).tolist()}"
                         "; every member needs a finite initial state")
    return arr


# --------------------------------------------------------------------------------------------
# the equations, written once against an array namespace (numpy or jax.numpy)
# --------------------------------------------------------------------------------------------
@lru_cache(maxsize=16)
def _neighbours(K: int) -> tuple:
    """Indices ``k - 1``, ``k - 2``, ``k + 1`` on a ring of ``K`` (read-only, shared)."""
    k = np.arange(K)
    out = (k - 1) % K, (k - 2) % K, (k + 1) % K
    for a in out:
        a.flags.writeable = False
    return out


def _advection(X, xp):
    if xp is np:  # index arrays: several times faster than np.roll in the inner loop
        km1, km2, kp1 = _neighbours(X.shape[-1])
        return -X[..., km1] * (X[..., km2] - X[..., kp1])
    return -xp.roll(X, 1, -1) * (xp.roll(X, 2, -1) - xp.roll(X, -1, -1))


def advection(X):
    """The quadratic Lorenz-96 term ``-X_{k-1} (X_{k-2} - X_{k+1})`` on the last axis of ``X``.

    It redistributes "energy" without creating it: ``sum_k X_k * advection(X)_k = 0``.
    numpy or torch (the differentiable one-scale model of :mod:`nnparam.aposteriori`).
    """
    if _xp.is_torch(X):  # the differentiable one-scale model of nnparam.aposteriori
        import torch

        return _advection(X, torch)
    return _advection(np.asarray(X, dtype=float), np)


def one_scale_tendency(X, F, P, xp=np):
    """Right-hand side of the one-scale model, ``advection(X) - X + F + P`` (per MTU).

    ``X`` and the closure value ``P`` share a shape ``(..., K)``; ``xp`` is ``numpy``,
    ``jax.numpy`` or ``torch``, so the numpy reference, the compiled fast path and the
    differentiable model share this one source.
    """
    return _advection(X, xp) - X + F + P


def rk4_step(X, tendency: Callable, dt: float, k1=None):
    """One classical fourth-order Runge-Kutta step of ``dX/dt = tendency(X)`` (any xp).

    ``k1``, the tendency at ``X``, may be passed when the caller has it already.
    """
    k1 = tendency(X) if k1 is None else k1
    k2 = tendency(X + 0.5 * dt * k1)
    k3 = tendency(X + 0.5 * dt * k2)
    k4 = tendency(X + dt * k3)
    return X + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


def coupling(Y, h: float = 1.0, b: float = 10.0, c: float = 10.0):
    """The fast-to-slow forcing ``-(h c / b) sum_j Y_{j,k}``; ``Y`` has shape ``(..., K, J)``."""
    Y = finite_array("Y", Y)
    if Y.ndim < 2:
        raise ValueError(f"Y must have shape (..., K, J), got {Y.shape}")
    return -(float(h) * positive("c", c) / positive("b", b)) * Y.sum(axis=-1)


def tendencies(X, Y, F: float = 18.0, h: float = 1.0, b: float = 10.0, c: float = 10.0):
    """Right-hand sides ``(dX/dt, dY/dt)`` of the two-scale system (numpy, any leading axes).

    ``X`` has shape ``(..., K)`` and ``Y`` shape ``(..., K, J)``; the returned arrays have the
    same shapes, in nondimensional units per MTU.
    """
    X = finite_array("X", X)
    Y = finite_array("Y", Y)
    if X.ndim < 1 or Y.shape[:-1] != X.shape:
        raise ValueError(f"Y must have shape X.shape + (J,), got X {X.shape} and Y {Y.shape}")
    K, J = Y.shape[-2:]
    hcb = float(h) * c / b
    dX = one_scale_tendency(X, F, -hcb * Y.sum(axis=-1))
    ring = Y.reshape(Y.shape[:-2] + (K * J,))  # the fast ring, cyclic across sectors
    dring = -c * b * np.roll(ring, -1, axis=-1) * (np.roll(ring, -2, axis=-1)
                                                   - np.roll(ring, 1, axis=-1)) - c * ring
    dY = dring.reshape(Y.shape) + hcb * X[..., None]
    return dX, dY


def _dataset(times, Xs, Ys, Us, K, J, F, h, b, c, dt, integrator):
    coords = {
        "time": ("time", times, {"units": TIME_UNITS, "long_name": "time"}),
        "k": ("k", np.arange(K), {"units": UNITS, "long_name": "slow-variable index"}),
    }
    data = {
        "X": (("time", "k"), Xs, {"units": UNITS, "long_name": "slow variable X_k"}),
        "coupling": (("time", "k"), Us,
                     {"units": f"{UNITS} / {TIME_UNITS}",
                      "long_name": "coupling term -(h c / b) sum_j Y_{j,k} in dX_k/dt"}),
    }
    if Ys is not None:
        coords["j"] = ("j", np.arange(J), {"units": UNITS,
                                          "long_name": "fast-variable index in sector"})
        data["Y"] = (("time", "k", "j"), Ys, {"units": UNITS,
                                              "long_name": "fast variable Y_{j,k}"})
    attrs = {"model": "two-scale Lorenz-96 (Wilks 2005 form)", "K": K, "J": J, "F": F,
             "h": h, "b": b, "c": c, "dt": dt, "integrator": integrator}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def simulate_reference(K=8, J=32, F=18.0, h=1.0, b=10.0, c=10.0, dt=0.001, n_steps=1000,
                       save_every=1, X0=None, Y0=None, seed=0) -> xr.Dataset:
    """Plain-numpy RK4 integration with the arguments and output of :func:`simulate`.

    Hundreds of times slower than :func:`simulate`; it exists so that the compiled kernel is
    tested against an independent, readable implementation.
    """
    K, J, F, h, b, c, dt, n_steps, save_every = _parameters(K, J, F, h, b, c, dt, n_steps,
                                                            save_every)
    X, Y = _initial_state(K, J, X0, Y0, seed)
    n_save = n_steps // save_every + 1
    Xs, Ys = np.empty((n_save, K)), np.empty((n_save, K, J))
    Xs[0], Ys[0] = X, Y

    def f(x, y):
        return tendencies(x, y, F, h, b, c)

    for step in range(1, n_steps + 1):
        k1x, k1y = f(X, Y)
        k2x, k2y = f(X + 0.5 * dt * k1x, Y + 0.5 * dt * k1y)
        k3x, k3y = f(X + 0.5 * dt * k2x, Y + 0.5 * dt * k2y)
        k4x, k4y = f(X + dt * k3x, Y + dt * k3y)
        X = X + dt / 6 * (k1x + 2 * k2x + 2 * k3x + k4x)
        Y = Y + dt / 6 * (k1y + 2 * k2y + 2 * k3y + k4y)
        if step % save_every == 0:
            Xs[step // save_every], Ys[step // save_every] = X, Y
    times = np.arange(n_save) * save_every * dt
    return _dataset(times, Xs, Ys, -(h * c / b) * Ys.sum(axis=-1), K, J, F, h, b, c, dt,
                    "RK4 (numpy reference)")


# --------------------------------------------------------------------------------------------
# the two-scale system compiled with numba
# --------------------------------------------------------------------------------------------
def _rk4_kernel(X, Y, F, hcb, cb, c, K, J, dt, n_steps, save_every, keep_y, outX, outY, outU):
    """Advance ``X`` (K,) and the flattened fast ring ``Y`` (K*J,) in place by RK4 steps.

    Written as scalar loops over preallocated buffers (no temporaries, no slicing): this both
    runs fast and keeps numba's compile time near one second. Every ``save_every`` steps
    ``outX`` receives ``X``, ``outU`` the coupling ``-hcb sum_j Y`` and, when ``keep_y``,
    ``outY`` the fast ring; row 0 holds the initial state.
    """
    N = K * J
    kx = np.empty((4, K))
    ky = np.empty((4, N))
    tx = np.empty(K)
    ty = np.empty(N)
    for step in range(0, n_steps + 1):
        if step > 0:
            for i in range(K):
                tx[i] = X[i]
            for i in range(N):
                ty[i] = Y[i]
            for s in range(4):  # the four RK4 stages; (tx, ty) holds the stage's input state
                for k in range(K):
                    km1 = k - 1 if k >= 1 else k - 1 + K
                    km2 = k - 2 if k >= 2 else k - 2 + K
                    kp1 = k + 1 if k + 1 < K else k + 1 - K
                    acc = 0.0
                    for j in range(J):
                        acc += ty[k * J + j]
                    kx[s, k] = -tx[km1] * (tx[km2] - tx[kp1]) - tx[k] + F - hcb * acc
                for i in range(1, N - 2):  # interior of the fast ring: no wrap-around
                    ky[s, i] = -cb * ty[i + 1] * (ty[i + 2] - ty[i - 1]) - c * ty[i]
                # the three fast variables whose stencil wraps around the ring
                ky[s, 0] = -cb * ty[1] * (ty[2] - ty[N - 1]) - c * ty[0]
                ky[s, N - 2] = -cb * ty[N - 1] * (ty[0] - ty[N - 3]) - c * ty[N - 2]
                ky[s, N - 1] = -cb * ty[0] * (ty[1] - ty[N - 2]) - c * ty[N - 1]
                for k in range(K):
                    forcing = hcb * tx[k]
                    for j in range(J):
                        ky[s, k * J + j] += forcing
                w = 0.5 * dt if s < 2 else dt
                for i in range(K):
                    tx[i] = X[i] + w * kx[s, i]
                for i in range(N):
                    ty[i] = Y[i] + w * ky[s, i]
            sixth = dt / 6.0
            for i in range(K):
                X[i] += sixth * (kx[0, i] + 2.0 * (kx[1, i] + kx[2, i]) + kx[3, i])
            for i in range(N):
                Y[i] += sixth * (ky[0, i] + 2.0 * (ky[1, i] + ky[2, i]) + ky[3, i])
        if step % save_every == 0:
            r = step // save_every
            for k in range(K):
                outX[r, k] = X[k]
                acc = 0.0
                for j in range(J):
                    acc += Y[k * J + j]
                outU[r, k] = -hcb * acc
            if keep_y:
                for i in range(N):
                    outY[r, i] = Y[i]


def _jit(func):
    """Compile with numba, caching on disk when a cache location is writable (else in memory)."""
    try:
        return njit(cache=True, fastmath=False)(func)
    except RuntimeError:  # no writable cache directory (read-only install): compile per process
        return njit(cache=False, fastmath=False)(func)


_rk4 = _jit(_rk4_kernel) if njit is not None else _rk4_kernel


def simulate(K=8, J=32, F=18.0, h=1.0, b=10.0, c=10.0, dt=0.001, n_steps=1000, save_every=1,
             X0=None, Y0=None, seed=0, keep_Y: bool = True) -> xr.Dataset:
    """Integrate the two-scale Lorenz-96 system with fourth-order Runge-Kutta (numba-compiled).

    Parameters
    ----------
    K, J : number of slow variables (``K >= 4``) and of fast variables per slow one.
    F : forcing; h : coupling strength; b : amplitude ratio; c : time-scale ratio (``b, c > 0``).
    dt : time step in MTU; n_steps : number of RK4 steps; save_every : keep every n-th state.
    X0 : shape ``(K,)``; Y0 : shape ``(K, J)``. Missing ones are drawn from a generator seeded
        with ``seed`` (``X ~ N(0, 1)``, ``Y ~ N(0, 0.1^2)``); given both, nothing is random.
    keep_Y : store the fast variables (``False`` keeps only ``X`` and the coupling, which is
        what long climate records need: ``J`` times less memory).

    Returns an ``xarray.Dataset`` with ``X(time, k)``, ``coupling(time, k) = -(h c / b)
    sum_j Y_{j,k}`` and (``keep_Y``) ``Y(time, k, j)``, ``n_steps // save_every + 1`` times
    including the initial state, ``time`` in MTU. The run starts from the given state: discard
    a spin-up of a few MTU before computing statistics (or use :func:`truth_run`).
    """
    K, J, F, h, b, c, dt, n_steps, save_every = _parameters(K, J, F, h, b, c, dt, n_steps,
                                                            save_every)
    X, Y = _initial_state(K, J, X0, Y0, seed)
    n_save = n_steps // save_every + 1
    outX, outU = np.empty((n_save, K)), np.empty((n_save, K))
    outY = np.empty((n_save if keep_Y else 1, K * J))
    _rk4(X, Y.reshape(-1).copy(), F, h * c / b, c * b, c, K, J, dt, n_steps, save_every,
         bool(keep_Y), outX, outY, outU)
    if not np.all(np.isfinite(outX[-1])):
        raise FloatingPointError("the two-scale run blew up: reduce dt")
    times = np.arange(n_save) * save_every * dt
    Ys = outY.reshape(n_save, K, J) if keep_Y else None
    return _dataset(times, outX, Ys, outU, K, J, F, h, b, c, dt, "RK4 (numba)")


def truth_run(F: float = 20.0, c: float = 10.0, n_mtu: float = 500.0,
              sample_dt: float = 0.005, spinup_mtu: float = 10.0, seed: int = 0,
              keep_Y: bool = False, K: int = 8, J: int = 32, h: float = 1.0, b: float = 10.0,
              dt: float = 0.001) -> xr.Dataset:
    """A spun-up two-scale truth, computed once and then read from :mod:`nnparam.cache`.

    ``spinup_mtu`` MTU from a seeded random state are integrated and thrown away; the run then
    continues for ``n_mtu`` MTU, saved every ``sample_dt`` MTU (a multiple of ``dt``), with
    time starting at 0 after the spin-up. About a second per 1000 MTU on one core when the
    cache is cold.
    """
    from . import cache

    n_mtu, spinup_mtu = positive("n_mtu", n_mtu), positive("spinup_mtu", spinup_mtu)
    every = _multiple("sample_dt", sample_dt, "dt", dt)
    params = {"F": float(F), "c": float(c), "n_mtu": n_mtu, "sample_dt": float(sample_dt),
              "spinup_mtu": spinup_mtu, "seed": int(seed), "keep_Y": bool(keep_Y), "K": K,
              "J": J, "h": float(h), "b": float(b), "dt": float(dt)}

    def compute():
        kw = dict(K=K, J=J, F=F, h=h, b=b, c=c, dt=dt)
        spin = simulate(n_steps=int(round(spinup_mtu / dt)), save_every=int(round(
            spinup_mtu / dt)), seed=seed, **kw)
        run = simulate(n_steps=int(round(n_mtu / dt)), save_every=every, X0=spin.X[-1].values,
                       Y0=spin.Y[-1].values, keep_Y=keep_Y, **kw)
        run.attrs["spinup_mtu"] = spinup_mtu
        return run

    return cache.cached("l96-truth", params, compute, version=1)


def _multiple(name: str, value, base_name: str, base) -> int:
    ratio = positive(name, value) / positive(base_name, base)
    every = int(round(ratio))
    if every < 1 or not np.isclose(ratio, every):
        raise ValueError(f"{name} must be a multiple of {base_name}, got {value} / {base}")
    return every


def coarse_step_target(X, dt: float, F: float) -> np.ndarray:
    """The coupling as the coarse model sees it over one of its steps (Wilks 2005; Arnold et
    al. 2013): ``U(t) = (X(t + dt) - X(t)) / dt - f(X(t))``.

    ``X`` is a truth record ``(time, K)`` sampled every ``dt`` MTU (the coarse model's time
    step), ``f = advection(X) - X + F`` the closure-free one-scale tendency. The mean tendency
    over a step differs from the instantaneous one by about ``(dt / 2) d^2X/dt^2``, so this
    target carries a time-discretisation term the instantaneous coupling lacks. Returns
    ``(time - 1, K)``, aligned with ``X[:-1]``, in the book's sign convention
    ``dX/dt = f + U`` (the papers write ``f - U``).
    """
    X = finite_array("X", X, ndim=2)
    if X.shape[0] < 2:
        raise ValueError(f"X needs at least 2 times, got shape {X.shape}")
    dt = positive("dt", dt)
    F = float(finite_array("F", F, ndim=0))
    return (X[1:] - X[:-1]) / dt - one_scale_tendency(X[:-1], F, 0.0)


def warm_cache() -> None:
    """Compute the truth runs the atmosphere chapter and lab 7 read (``make data``)."""
    from .labs import checks_l96

    for setting in CHAPTER_TRUTHS:
        truth_run(**setting)
    checks_l96.make_truth()
    checks_l96.make_climate_record()


#: the truth runs of the atmosphere chapter: the three published settings of Wilks (2005) and
#: Arnold et al. (2013) for the fits, and a long climate record of the main setting
CHAPTER_TRUTHS = (
    {"F": 20.0, "c": 10.0, "n_mtu": 500.0, "sample_dt": 0.005, "seed": 1},
    {"F": 18.0, "c": 10.0, "n_mtu": 500.0, "sample_dt": 0.005, "seed": 2},
    {"F": 20.0, "c": 4.0, "n_mtu": 500.0, "sample_dt": 0.005, "seed": 3},
    {"F": 20.0, "c": 10.0, "n_mtu": 3200.0, "sample_dt": 0.05, "seed": 4},
)


# --------------------------------------------------------------------------------------------
# stochastic terms
# --------------------------------------------------------------------------------------------
def _phi(value) -> float:
    phi = float(finite_array("phi", value, ndim=0))
    if not 0 <= phi < 1:
        raise ValueError(f"phi must lie in [0, 1), got {value!r}")
    return phi


def _sigma(name: str, value) -> float:
    sigma = float(finite_array(name, value, ndim=0))
    if sigma < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return sigma


class _RedNoise:
    """A stochastic term ``amplitude(X, P) * eta`` with ``eta`` a unit-variance AR(1) process,
    ``eta(t + dt) = phi eta(t) + sqrt(1 - phi^2) z``: one independent process per member and
    ``k``, refreshed once per model step and held over the RK4 stages (Arnold et al. 2013).
    The amplitude is ``a + b |X| + c P`` with the coefficients of :meth:`coefficients`.
    """

    def coefficients(self) -> tuple[float, float, float]:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class AR1(_RedNoise):
    """Additive red noise ``e(t + dt) = phi e(t) + sigma sqrt(1 - phi^2) z``.

    ``phi`` is the lag-one autocorrelation over one *model* time step and ``sigma`` the
    stationary standard deviation (units of the tendency, 1/MTU). Each ``X_k`` gets its own
    independent process, held constant during one RK4 step (Arnold et al. 2013).
    """

    phi: float
    sigma: float

    def __post_init__(self):
        object.__setattr__(self, "phi", _phi(self.phi))
        object.__setattr__(self, "sigma", _sigma("sigma", self.sigma))

    def coefficients(self):
        return self.sigma, 0.0, 0.0


@dataclass(frozen=True)
class StateDependentAR1(_RedNoise):
    """Red noise whose standard deviation grows with the state: ``(sigma0 + sigma1 |X_k|)
    eta_k`` (the state-dependent scheme of Arnold et al. 2013), 1/MTU."""

    phi: float
    sigma0: float
    sigma1: float

    def __post_init__(self):
        object.__setattr__(self, "phi", _phi(self.phi))
        object.__setattr__(self, "sigma0", _sigma("sigma0", self.sigma0))
        object.__setattr__(self, "sigma1", _sigma("sigma1", self.sigma1))

    def coefficients(self):
        return self.sigma0, self.sigma1, 0.0


@dataclass(frozen=True)
class MultiplicativeAR1(_RedNoise):
    """Multiplicative red noise ``sigma P(X)_k eta_k``: the deterministic closure scaled by
    ``1 + sigma eta`` (the multiplicative scheme of Arnold et al. 2013); ``sigma`` is
    dimensionless."""

    phi: float
    sigma: float

    def __post_init__(self):
        object.__setattr__(self, "phi", _phi(self.phi))
        object.__setattr__(self, "sigma", _sigma("sigma", self.sigma))

    def coefficients(self):
        return 0.0, 0.0, self.sigma


def _noise_amplitude(X, P, coefficients, xp=np):
    a, b, c = coefficients
    return a + b * xp.abs(X) + c * P


def _lag_one(series: np.ndarray) -> float:
    """Lag-one autocorrelation over axis 0, pooled over the other axes (NaN ignored)."""
    anom = series - np.nanmean(series, axis=0)
    both = np.isfinite(anom[1:]) & np.isfinite(anom[:-1])
    num = np.sum(np.where(both, anom[1:] * anom[:-1], 0.0))
    den = np.nansum(anom * anom)
    if not den > 0:
        raise ValueError("residual is constant: its autocorrelation is undefined")
    return min(max(float(num / den), 0.0), 0.999999)


def _step_ratio(sample_dt, model_dt) -> float:
    return positive("model_dt", model_dt) / positive("sample_dt", sample_dt)


def _residual(residual, name="residual") -> np.ndarray:
    res = finite_array(name, residual, ndim=2)
    if res.shape[0] < 3:
        raise ValueError(f"{name} needs at least 3 times, got shape {res.shape}")
    return res


def fit_ar1(residual, sample_dt: float, model_dt: float) -> AR1:
    """Fit the AR(1) term to a closure's residual ``coupling - P(X)``, shape ``(time, k)``.

    The lag-one autocorrelation ``r`` over the sampling interval ``sample_dt`` (MTU) is pooled
    over ``k`` and converted to the model step: ``phi = r ** (model_dt / sample_dt)``.
    """
    res = _residual(residual)
    ratio = _step_ratio(sample_dt, model_dt)
    return AR1(phi=_lag_one(res) ** ratio, sigma=float((res - res.mean(axis=0)).std()))


def fit_state_dependent_ar1(residual, X, sample_dt: float, model_dt: float,
                            bins: int = 20) -> StateDependentAR1:
    """Fit ``(sigma0 + sigma1 |X|) eta`` to a residual ``(time, k)`` of the states ``X``.

    The residual's standard deviation in ``bins`` equally populated bins of ``|X|`` is fitted
    by a straight line in the bins' mean ``|X|`` (``sigma0``, ``sigma1``); ``phi`` is the lag-one
    autocorrelation of the rescaled residual ``residual / (sigma0 + sigma1 |X|)``, converted to
    the model step as in :func:`fit_ar1`.
    """
    res = _residual(residual)
    step_ratio = _step_ratio(sample_dt, model_dt)
    x = finite_array("X", X, ndim=2)
    if x.shape != res.shape:
        raise ValueError(f"X must have the residual's shape {res.shape}, got {x.shape}")
    bins = positive_int("bins", bins, minimum=2)
    ax, r = np.abs(x).ravel(), res.ravel()
    edges = np.quantile(ax, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, ax, side="right") - 1, 0, bins - 1)
    counts = np.maximum(np.bincount(which, minlength=bins), 1)
    means = np.bincount(which, weights=ax, minlength=bins) / counts
    mean_r = np.bincount(which, weights=r, minlength=bins) / counts
    var_r = np.bincount(which, weights=r * r, minlength=bins) / counts - mean_r ** 2
    stds = np.sqrt(np.maximum(var_r, 0.0))
    sigma1, sigma0 = np.polyfit(means, stds, 1)
    sigma0, sigma1 = max(float(sigma0), 0.0), max(float(sigma1), 0.0)
    eta = res / np.maximum(sigma0 + sigma1 * np.abs(x), 1e-12)
    return StateDependentAR1(phi=_lag_one(eta) ** step_ratio, sigma0=sigma0, sigma1=sigma1)


def fit_multiplicative_ar1(residual, P, sample_dt: float, model_dt: float,
                           min_abs: float = 2.0) -> MultiplicativeAR1:
    """Fit ``sigma P eta`` to a residual ``(time, k)`` of the deterministic closure values ``P``.

    Only samples with ``|P| >= min_abs`` are used (the ratio ``residual / P`` is ill-defined
    where the closure crosses zero); ``sigma`` is the standard deviation of that ratio and
    ``phi`` its lag-one autocorrelation (pairs of consecutive retained samples), converted to
    the model step as in :func:`fit_ar1`.
    """
    res = _residual(residual)
    step_ratio = _step_ratio(sample_dt, model_dt)
    p = finite_array("P", P, ndim=2)
    if p.shape != res.shape:
        raise ValueError(f"P must have the residual's shape {res.shape}, got {p.shape}")
    min_abs = positive("min_abs", min_abs)
    keep = np.abs(p) >= min_abs
    if keep.sum() < 10:
        raise ValueError(f"fewer than 10 samples have |P| >= min_abs={min_abs}")
    ratio = np.where(keep, res / np.where(keep, p, 1.0), np.nan)
    return MultiplicativeAR1(phi=_lag_one(ratio) ** step_ratio,
                             sigma=float(np.nanstd(ratio)))


# --------------------------------------------------------------------------------------------
# closures
# --------------------------------------------------------------------------------------------
def _horner(coef, X):
    out = coef[0] + 0.0 * X
    for c in coef[1:]:
        out = out * X + c
    return out


@dataclass(frozen=True)
class Polynomial:
    """A local closure ``P(X_k) = sum_n coef[n] X_k^(deg - n)`` (highest power first)."""

    coef: np.ndarray

    def __call__(self, X):
        return _horner(np.asarray(self.coef, dtype=float), np.asarray(X, dtype=float))


def fit_polynomial(x, y, degree: int) -> Polynomial:
    """Least-squares polynomial of ``degree`` from samples ``x`` to ``y`` (any equal shapes)."""
    x = finite_array("x", x).ravel()
    y = finite_array("y", y).ravel()
    if x.shape != y.shape:
        raise ValueError(f"y must have as many samples as x, got {y.size} and {x.size}")
    degree = positive_int("degree", degree, minimum=0)
    if x.size <= degree:
        raise ValueError(f"x needs more than degree={degree} samples, got {x.size}")
    # normal equations in the standardised variable z = (x - m) / s: well conditioned for the
    # low degrees of closures and ten times faster than an SVD on millions of samples
    m, s = x.mean(), x.std()
    s = s if s > 0 else 1.0
    V = np.vander((x - m) / s, degree + 1)
    in_z = np.poly1d(np.linalg.lstsq(V.T @ V, V.T @ y, rcond=None)[0])
    in_x = in_z(np.poly1d([1.0 / s, -m / s])).coeffs
    return Polynomial(np.concatenate([np.zeros(degree + 1 - in_x.size), in_x]))


def stencil(X, width: int = 0) -> np.ndarray:
    """Local features of each ``X_k``: ``[X_{k-w}, ..., X_k, ..., X_{k+w}]`` (cyclic in ``k``).

    ``X`` has shape ``(..., K)``; the result has shape ``(..., K, 2 w + 1)``.
    """
    X = finite_array("X", X)
    if X.ndim < 1:
        raise ValueError("X must have shape (..., K)")
    width = positive_int("width", width, minimum=0)
    return periodic_stencil(X, width)


def neural_closure(model, width: int = 0, x_scaler=None, y_scaler=None) -> Closure:
    """Wrap a torch module mapping ``(n, 2 width + 1)`` stencils to ``(n, 1)`` as ``P(X)``.

    ``x_scaler`` / ``y_scaler`` are optional :class:`nnparam.nn.Standardizer` objects fitted on
    the training inputs / targets. Returns a :class:`nnparam.closure.Closure` mapping
    ``X (..., K)`` to ``P (..., K)`` (a fast numpy twin evaluates it in online runs).
    """
    if not is_torch_module(model):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return Closure.from_scalers(model, x_scaler, y_scaler, inputs=("X",),
                                stencil_width=positive_int("width", width, minimum=0),
                                input_units=(UNITS,), output="coupling",
                                output_units=f"{UNITS} / {TIME_UNITS}",
                                name="Lorenz-96 stencil closure")


def _as_closure(closure) -> Callable:
    if closure is None:
        return lambda X: np.zeros_like(X)
    if is_torch_module(closure):
        first = next(m for m in closure.modules() if hasattr(m, "in_features"))
        n_in = first.in_features
        if n_in % 2 != 1:
            raise ValueError(f"closure must take an odd stencil 2*width+1 of inputs, got {n_in}")
        return neural_closure(closure, width=n_in // 2)
    return as_closure(closure)


# --------------------------------------------------------------------------------------------
# the one-scale (parameterized) model
# --------------------------------------------------------------------------------------------
FAST_PATH_MIN_STEPS = 20_000  # run length (steps) from which backend="auto" uses JAX


def simulate_one_scale(closure=None, K=8, F=18.0, dt=0.005, n_steps=1000, save_every=1,
                       X0=None, noise: _RedNoise | None = None, seed=0,
                       backend: str = "auto") -> xr.Dataset:
    """Integrate the one-scale model ``dX_k/dt = -X_{k-1}(X_{k-2}-X_{k+1}) - X_k + F + P(X)_k``.

    Parameters
    ----------
    closure : the parameterization ``P``: a callable mapping ``X (..., K)`` to ``(..., K)``
        (a local polynomial like :func:`fit_polynomial` simply acts elementwise), a
        :class:`nnparam.closure.Closure`, or a torch module taking ``(n, 2 w + 1)`` stencils
        (see :func:`neural_closure`); ``None`` means ``P = 0``.
    X0 : shape ``(K,)`` or ``(M, K)`` for an ensemble of ``M`` members advanced together in
        one vectorised call; drawn from ``N(0, 1)`` (``seed``) when missing.
    noise : optional :class:`AR1`, :class:`StateDependentAR1` or :class:`MultiplicativeAR1`;
        refreshed once per step and held over the RK4 stages, independently for every member
        and ``k`` (draws from a generator seeded with ``seed``).
    backend : ``"numpy"`` (the readable reference loop), ``"jax"`` (the same equations,
        :func:`one_scale_tendency` and :func:`rk4_step`, compiled with ``jax.lax.scan``; for
        polynomials, ``None`` and per-column stencil Closures built from ``Linear`` layers and
        Tanh/ReLU/SiLU/Softplus) or ``"auto"`` (JAX when the closure allows it and the run has
        at least ``FAST_PATH_MIN_STEPS`` steps: compiling pays off only for long runs, the
        numpy loop is faster for short ones of any ensemble size). Both draw the same random
        numbers and agree to round-off of the closure's precision.

    Returns a Dataset with ``X`` and ``closure`` (the value of ``P`` plus noise at the saved
    times), dims ``(time, k)`` or ``(time, member, k)``, and ``blow_up_time`` (MTU per member,
    NaN for a member that stayed bounded). An unstable closure does not raise: once any
    ``|X_k|`` of a member exceeds 1e6 (or turns NaN) that member holds NaN from then on, the
    others carry on, and the attribute ``blew_up_at`` gives the earliest blow-up (NaN if none).
    """
    K = positive_int("K", K, minimum=4)
    F = float(finite_array("F", F, ndim=0))
    dt = positive("dt", dt)
    n_steps = positive_int("n_steps", n_steps, minimum=0)
    save_every = positive_int("save_every", save_every)
    if noise is not None and not isinstance(noise, _RedNoise):
        raise ValueError("noise must be an AR1, StateDependentAR1 or MultiplicativeAR1 "
                         f"instance or None, got {type(noise).__name__}")
    if backend not in ("auto", "numpy", "jax"):
        raise ValueError(f"backend must be 'auto', 'numpy' or 'jax', got {backend!r}")
    P = _as_closure(closure)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal(K) if X0 is None else _members("X0", X0, K)
    single = X.ndim == 1
    X = X.reshape(-1, K)
    plan = _jax_plan(closure, P) if backend != "numpy" else None
    if backend == "jax" and plan is None:
        raise ValueError("closure cannot run on the JAX backend (use a Polynomial, None or a "
                         "per-column stencil Closure of Linear layers), or pass "
                         "backend='numpy'")
    use_jax = plan is not None and (backend == "jax" or n_steps >= FAST_PATH_MIN_STEPS)
    run = _run_jax if use_jax else _run_numpy
    Xs, Ps, blown = run(P, plan, X, F, dt, n_steps, save_every, noise, rng)
    n_save = Xs.shape[0]
    if single:
        Xs, Ps, blown = Xs[:, 0], Ps[:, 0], blown[0]
    dims = ("time", "k") if single else ("time", "member", "k")
    coords = {"time": ("time", np.arange(n_save) * save_every * dt,
                       {"units": TIME_UNITS, "long_name": "time"}),
              "k": ("k", np.arange(K), {"units": UNITS, "long_name": "slow-variable index"})}
    if not single:
        coords["member"] = ("member", np.arange(Xs.shape[1]), {"long_name": "ensemble member"})
    data = {"X": (dims, Xs, {"units": UNITS, "long_name": "slow variable X_k"}),
            "closure": (dims, Ps, {"units": f"{UNITS} / {TIME_UNITS}",
                                   "long_name": "parameterized coupling P(X)_k (+ noise)"}),
            "blow_up_time": (() if single else ("member",), blown,
                             {"units": TIME_UNITS, "long_name": "time of blow-up (NaN: none)"})}
    attrs = {"model": "one-scale Lorenz-96 with closure", "K": K, "F": F, "dt": dt,
             "stochastic": int(noise is not None), "noise": repr(noise),
             "blew_up_at": float(np.nanmin(blown)) if np.isfinite(blown).any() else np.nan,
             "backend": "jax" if use_jax else "numpy"}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _tendency(closure_of: Callable, F: float, s, xp) -> Callable:
    """The one-scale tendency with the closure and a stochastic term ``s`` held fixed."""
    return lambda x: one_scale_tendency(x, F, closure_of(x) + s, xp)


def _run_numpy(P, plan, X, F, dt, n_steps, save_every, noise, rng):
    """The readable reference loop: ``X (M, K)`` -> saved ``X``, ``P + noise``, blow-up times."""
    coefficients = (0.0, 0.0, 0.0) if noise is None else noise.coefficients()
    phi = 0.0 if noise is None else noise.phi
    kick = np.sqrt(1.0 - phi ** 2)
    eta = np.zeros_like(X) if noise is None else rng.standard_normal(X.shape)

    def closure_of(x):
        # members that blew up hold NaN: only the live ones are handed to the closure, so a
        # closure that validates its input never sees them
        live = np.all(np.isfinite(x), axis=-1)
        if live.all():
            p = np.asarray(P(x), dtype=float)
        else:
            p = np.full_like(x, np.nan)
            if live.any():
                p[live] = np.asarray(P(x[live]), dtype=float).reshape(x[live].shape)
        if p.shape != x.shape:
            raise ValueError(f"closure must return the shape of X {x.shape}, got {p.shape}")
        return p

    def forcing(x):  # closure value and the stochastic term held over the next step
        p = closure_of(x)
        return p, _noise_amplitude(x, p, coefficients) * eta

    n_save = n_steps // save_every + 1
    Xs, Ps = np.full((n_save,) + X.shape, np.nan), np.full((n_save,) + X.shape, np.nan)
    p0, s = forcing(X)
    Xs[0], Ps[0] = X, p0 + s
    blown = np.full(X.shape[0], np.nan)
    with np.errstate(over="ignore", invalid="ignore"):
        for step in range(1, (n_save - 1) * save_every + 1):
            # the first RK4 stage reuses the closure value computed at the end of the last step
            X = rk4_step(X, _tendency(closure_of, F, s, np), dt,
                         k1=one_scale_tendency(X, F, p0 + s))
            if noise is not None:
                eta = phi * eta + kick * rng.standard_normal(X.shape)
            if step % save_every == 0:  # a member beyond BLOW_UP (or NaN) is marked and dropped
                bad = ~np.all(np.abs(X) <= BLOW_UP, axis=-1)  # NaN fails the comparison too
                blown[bad & np.isnan(blown)] = step * dt
                X[bad] = np.nan
            p0, s = forcing(X)
            if step % save_every == 0:
                Xs[step // save_every], Ps[step // save_every] = X, p0 + s
                if np.isfinite(blown).all():
                    break
    return Xs, Ps, blown


# ------------------------------------------------------------------ the compiled fast path
_JAX_ACTIVATIONS = {"Tanh": "tanh", "ReLU": "relu", "SiLU": "silu", "Softplus": "softplus",
                    "Identity": "identity"}


@dataclass(frozen=True)
class _Plan:
    """What the JAX path needs of a closure: a structure key and its parameters."""

    key: tuple
    params: dict


def _jax_plan(closure, P) -> _Plan | None:
    """Describe ``closure`` for the compiled path, or ``None`` if only numpy can run it."""
    if closure is None:
        return _Plan(("poly", 5), {"coef": np.zeros(5)})
    if isinstance(closure, Polynomial):
        coef = np.asarray(closure.coef, dtype=float)
        # leading zeros leave Horner's scheme exact, so polynomials of degree <= 4 share one
        # compiled loop
        width = max(5, coef.size)
        return _Plan(("poly", width), {"coef": np.concatenate([np.zeros(width - coef.size),
                                                               coef])})
    if not isinstance(P, Closure) or not P.per_column or P._features is not None:
        return None
    import torch

    module = P.module
    if not isinstance(module, torch.nn.Sequential) or P.y_std.size != 1:
        return None
    layers, names = [], []
    for layer in module:
        if isinstance(layer, torch.nn.Linear):
            w = layer.weight.detach().cpu().numpy().T
            bias = (np.zeros(w.shape[1], w.dtype) if layer.bias is None
                    else layer.bias.detach().cpu().numpy())
            layers.append((w, bias))
            names.append("linear")
        elif type(layer).__name__ in _JAX_ACTIVATIONS and (
                not isinstance(layer, torch.nn.Softplus)
                or (layer.beta == 1 and layer.threshold == 20)):
            names.append(_JAX_ACTIVATIONS[type(layer).__name__])
        else:
            return None
    if not names or names[0] != "linear":
        return None
    dtype = str(layers[0][0].dtype)
    key = ("mlp", P.stencil_width, tuple(names), tuple(w.shape for w, _ in layers), dtype)
    params = {"layers": layers, "x_mean": P.x_mean, "x_std": P.x_std, "y_mean": P.y_mean,
              "y_std": P.y_std}
    return _Plan(key, params)


def _jax_closure(key: tuple):
    """The closure of structure ``key`` as a function ``(params, X) -> P`` in jax.numpy."""
    import jax.numpy as jnp

    if key[0] == "poly":
        return lambda params, X: _horner(params["coef"], X)
    _, width, names, _, dtype = key
    acts = {"tanh": jnp.tanh, "relu": lambda z: jnp.maximum(z, 0.0),
            "silu": lambda z: z / (1.0 + jnp.exp(-z)), "softplus": lambda z: jnp.logaddexp(0.0, z),
            "identity": lambda z: z}

    def mlp(params, X):
        layers = iter(params["layers"])
        # the first (Linear) layer on the stencil as a sum over offsets: the same numbers as
        # stencil features @ weights, without a contraction of length 2w + 1, which XLA runs
        # slowly on CPU
        w, z = next(layers)
        mean, std = params["x_mean"], params["x_std"]
        for i, offset in enumerate(range(-width, width + 1)):
            j = i if mean.shape[0] > 1 else 0
            feature = ((jnp.roll(X, -offset, -1) - mean[j]) / std[j if std.shape[0] > 1
                                                                   else 0]).astype(dtype)
            z = z + feature[..., None] * w[i]
        for name in names[1:]:
            if name == "linear":
                w, b = next(layers)
                z = z @ w + b
            else:
                z = acts[name](z)
        return z[..., 0].astype(X.dtype) * params["y_std"][0] + params["y_mean"][0]

    return mlp


_JAX_LOOPS: dict = {}
_UNROLL = 1  # steps unrolled per iteration of the inner scan (1 measured fastest on CPU)


def _jax_loop(key: tuple, save_every: int, stochastic: bool):
    """A jitted function advancing ``(X, eta, P, s, blown)`` through a chunk of saves.

    Arguments: ``(params, coefficients, phi, F, dt, state, z)`` with ``z`` the normal draws of
    the chunk, shape ``(saves, save_every, M, K)`` (``(saves, save_every, 1, 1)`` zeros when
    not ``stochastic``); ``P`` and ``s`` are the closure value and the stochastic term at
    ``X``, carried so that each step evaluates the closure four times, as the numpy loop does.
    Returns the new state and the saved ``X`` and ``P + s`` of each save in the chunk.
    """
    cache_key = (key, save_every, stochastic)
    if cache_key in _JAX_LOOPS:
        return _JAX_LOOPS[cache_key]
    import jax
    import jax.numpy as jnp

    closure = _jax_closure(key)

    def loop(params, coefficients, phi, F, dt, state, z):
        def closure_of(x):
            return closure(params, x)

        def one_step(carry, z_step):
            X, eta, p0, s = carry
            X = rk4_step(X, _tendency(closure_of, F, s, jnp), dt,
                         k1=one_scale_tendency(X, F, p0 + s, jnp))
            if stochastic:
                eta = phi * eta + jnp.sqrt(1.0 - phi ** 2) * z_step
            p0 = closure_of(X)
            return (X, eta, p0, _noise_amplitude(X, p0, coefficients, jnp) * eta), None

        def one_save(carry, z_save):
            (X, eta, p0, s), _ = jax.lax.scan(one_step, carry[:4], z_save, unroll=_UNROLL)
            blown, index = carry[4], carry[5] + 1
            bad = ~jnp.all(jnp.abs(X) <= BLOW_UP, axis=-1)  # NaN fails the comparison too
            blown = jnp.where(bad & (blown < 0), index, blown)
            X = jnp.where(bad[:, None], jnp.nan, X)
            return (X, eta, p0, s, blown, index), (X, p0 + s)

        return jax.lax.scan(one_save, state, z)

    _JAX_LOOPS[cache_key] = jax.jit(loop)
    return _JAX_LOOPS[cache_key]


def _run_jax(P, plan, X, F, dt, n_steps, save_every, noise, rng):
    """The compiled twin of :func:`_run_numpy`: same equations, same random numbers."""
    import jax

    M, K = X.shape
    stochastic = noise is not None
    coefficients = (0.0, 0.0, 0.0) if noise is None else noise.coefficients()
    phi = 0.0 if noise is None else noise.phi
    eta = np.zeros_like(X) if noise is None else rng.standard_normal(X.shape)
    p0 = np.asarray(P(X), dtype=float)
    if p0.shape != X.shape:
        raise ValueError(f"closure must return the shape of X {X.shape}, got {p0.shape}")
    s = _noise_amplitude(X, p0, coefficients) * eta
    n_out = n_steps // save_every
    Xs, Ps = np.full((n_out + 1, M, K), np.nan), np.full((n_out + 1, M, K), np.nan)
    Xs[0], Ps[0] = X, p0 + s
    blown_saves = np.full(M, -1)
    if n_out:
        _jax_compilation_cache()
        per_chunk = max(1, min(n_out, 4096 // save_every))
        with jax.enable_x64(True):
            loop = _jax_loop(plan.key, save_every, stochastic)
            state = (X, eta, p0, s, blown_saves, 0)
            for start in range(1, n_out + 1, per_chunk):
                if stochastic:  # drawn in the order of the numpy loop: one (M, K) per step
                    z = rng.standard_normal((per_chunk, save_every, M, K))
                else:
                    z = np.zeros((per_chunk, save_every, 1, 1))
                state, (xs, ps) = loop(plan.params, coefficients, phi, F, dt, state, z)
                stop = min(start + per_chunk, n_out + 1)
                Xs[start:stop] = np.asarray(xs)[: stop - start]
                Ps[start:stop] = np.asarray(ps)[: stop - start]
                if np.all(np.asarray(state[4]) >= 0):
                    break
            blown_saves = np.asarray(state[4])
    blown = np.where(blown_saves >= 0, blown_saves * save_every * dt, np.nan)
    return Xs, Ps, blown


def _jax_compilation_cache() -> None:
    """Keep JAX's compiled loops on disk beside the data cache (unless the user chose a
    folder), so that a notebook's second run does not compile them again."""
    import jax

    if jax.config.jax_compilation_cache_dir:
        return
    from . import cache

    jax.config.update("jax_compilation_cache_dir", str(cache.cache_dir() / "jax"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def climate_sample(run: xr.Dataset, spinup: float, every: int = 1) -> np.ndarray:
    """The states of a one-scale run after its spin-up, ``(time, member, k)`` as numpy.

    ``spinup`` (MTU) is dropped from the start of every member; ``every`` thins the saved
    times. Raises ``ValueError`` naming the members that blew up (a climate of a partly NaN
    ensemble is no climate).
    """
    if not isinstance(run, xr.Dataset) or "X" not in run:
        raise ValueError("run must be a Dataset from simulate_one_scale")
    spinup = float(finite_array("spinup", spinup, ndim=0))
    every = positive_int("every", every)
    x = run["X"].sel(time=slice(spinup, None)).values[::every]
    if x.ndim == 2:
        x = x[:, None, :]
    if x.shape[0] < 2:
        raise ValueError(f"spinup={spinup} leaves fewer than 2 saved times of the run")
    bad = ~np.all(np.isfinite(x), axis=(0, 2))
    if bad.any():
        raise ValueError(f"run has NaN in member(s) {np.flatnonzero(bad).tolist()} (blown up "
                         "at " + ", ".join(f"{t:.1f}" for t in np.atleast_1d(
                             run["blow_up_time"].values)[bad]) + " MTU)")
    return x


# --------------------------------------------------------------------------------------------
# forecasts
# --------------------------------------------------------------------------------------------
def _forecast_setup(truth_X, starts, n_leads, sample_dt, model_dt):
    truth = finite_array("truth_X", truth_X, ndim=2)
    starts = np.asarray(starts)
    if starts.ndim != 1 or starts.size == 0 or not np.issubdtype(starts.dtype, np.integer):
        raise ValueError("starts must be a non-empty 1-D array of integer time indices")
    n_leads = positive_int("n_leads", n_leads)
    if starts.min() < 0 or starts.max() + n_leads >= truth.shape[0]:
        raise ValueError(f"starts must lie in [0, {truth.shape[0] - n_leads - 1}] so that "
                         f"n_leads={n_leads} samples of truth follow each")
    every = _multiple("sample_dt", sample_dt, "model_dt", model_dt)
    obs = np.stack([truth[starts + lead] for lead in range(n_leads + 1)])
    return truth, starts, n_leads, every, obs


def forecast_ensemble(truth_X, starts, n_leads: int, sample_dt: float, members: int = 20,
                      closure=None, noise: _RedNoise | None = None, model_dt: float = 0.005,
                      F: float = 18.0, seed: int = 0, backend: str = "auto"):
    """Ensemble forecasts of the one-scale model from perfect initial states of a truth.

    ``truth_X`` is ``(time, K)`` sampled every ``sample_dt`` MTU (a multiple of ``model_dt``);
    from each index in ``starts``, ``members`` copies of the true state run ``n_leads``
    samples with the closure and (for a stochastic closure) independent noise, all in one
    vectorised call. Returns ``(forecast, observed)``: ``(n_leads + 1, n_starts, members, K)``
    and the matching truth ``(n_leads + 1, n_starts, K)``. Without noise every member is the
    same (an ensemble of a deterministic closure has no spread; Arnold et al. 2013 start from
    perfect initial conditions so that only model uncertainty is represented).
    """
    truth, starts, n_leads, every, obs = _forecast_setup(truth_X, starts, n_leads, sample_dt,
                                                         model_dt)
    members = positive_int("members", members)
    X0 = np.repeat(truth[starts], members, axis=0)  # start-major: (start, member) flattened
    run = simulate_one_scale(closure, K=truth.shape[1], F=F, dt=model_dt,
                             n_steps=n_leads * every, save_every=every, X0=X0, noise=noise,
                             seed=seed, backend=backend)
    fc = run["X"].values.reshape(n_leads + 1, starts.size, members, truth.shape[1])
    return fc, obs


def forecast_rmse(truth_X, starts, n_leads: int, sample_dt: float, closure=None,
                  noise: _RedNoise | None = None, model_dt: float = 0.005, F: float = 18.0,
                  seed: int = 0) -> np.ndarray:
    """RMSE of one-scale forecasts against the truth, for lead times ``0..n_leads`` samples.

    ``truth_X`` has shape ``(time, K)`` sampled every ``sample_dt`` MTU; a forecast starts from
    each index in ``starts`` (an ensemble integrated together) with the closure and runs
    ``n_leads`` samples. Returns the RMSE over starts and ``k``, shape ``(n_leads + 1,)``.
    """
    fc, obs = forecast_ensemble(truth_X, starts, n_leads, sample_dt, members=1,
                                closure=closure, noise=noise, model_dt=model_dt, F=F,
                                seed=seed)
    return rmse_by_lead(fc[:, :, 0], obs)


def advance_one_scale(X, closure=None, F: float = 18.0, dt: float = 0.005,
                      n_steps: int = 1) -> np.ndarray:
    """``n_steps`` RK4 steps of the one-scale model from ``X (..., K)``; the final state.

    The lean array core for callers that stop every few steps (a data-assimilation cycle):
    no validation, no Dataset, no noise. :func:`simulate_one_scale` is the full interface.
    """
    def tendency(x):
        return one_scale_tendency(x, F, 0.0 if closure is None else closure(x))

    for _ in range(n_steps):
        X = rk4_step(X, tendency, dt)
    return X
