"""Two-scale Lorenz-96 (Lorenz 1996, in the form of Wilks 2005): the atmosphere application.

Slow variables ``X_k`` (``k = 0..K-1``, think of a latitude circle of large-scale weather) are
each coupled to ``J`` fast variables ``Y_{j,k}`` (think of convection in sector ``k``)::

    dX_k/dt     = -X_{k-1} (X_{k-2} - X_{k+1}) - X_k + F - (h c / b) sum_j Y_{j,k}
    dY_{j,k}/dt = -c b Y_{j+1,k} (Y_{j+2,k} - Y_{j-1,k}) - c Y_{j,k} + (h c / b) X_k

The ``X`` ring is cyclic in ``k``; the ``Y`` ring runs over all ``J*K`` fast variables in the
order ``(k, j)`` and is cyclic across sectors (``Y_{J,k}`` is ``Y_{0,k+1}``). All quantities are
nondimensional; time is in model time units (MTU; one MTU is roughly five atmospheric days).

The module gives

* :func:`simulate`: the two-scale "truth", fourth-order Runge-Kutta compiled with numba, and
  :func:`simulate_reference`, the same integration in plain numpy (the tests compare them);
* :func:`simulate_one_scale`: the coarse model ``dX_k/dt = ... + F + P(X)`` with any closure
  ``P`` (a numpy callable or a torch module), optionally plus an AR(1) stochastic term;
* offline helpers (:func:`fit_polynomial`, :func:`stencil`, :func:`neural_closure`,
  :func:`fit_ar1`) and the forecast runner :func:`forecast_rmse`. The climate metrics
  ``hellinger`` and ``autocorrelation`` moved to :mod:`nnparam.evaluation` (aliases here).
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


# --------------------------------------------------------------------------------------------
# the two-scale system in numpy: the readable reference
# --------------------------------------------------------------------------------------------
@lru_cache(maxsize=16)
def _neighbours(K: int, torch_index: bool = False) -> tuple:
    """Indices ``k - 1``, ``k - 2``, ``k + 1`` on a ring of ``K`` (shared: read-only numpy
    arrays, or torch tensors for indexing tensors)."""
    k = np.arange(K)
    out = (k - 1) % K, (k - 2) % K, (k + 1) % K
    if torch_index:
        import torch

        return tuple(torch.as_tensor(a) for a in out)
    for a in out:
        a.flags.writeable = False
    return out


def advection(X):
    """The quadratic Lorenz-96 term ``-X_{k-1} (X_{k-2} - X_{k+1})`` on the last axis of ``X``.

    It redistributes "energy" without creating it: ``sum_k X_k * advection(X)_k = 0``.
    numpy or torch (the differentiable one-scale model of :mod:`nnparam.aposteriori`).
    """
    torch_input = _xp.is_torch(X)
    X = X if torch_input else np.asarray(X, dtype=float)
    km1, km2, kp1 = _neighbours(X.shape[-1], torch_input)  # ~3x faster than rolls
    return -X[..., km1] * (X[..., km2] - X[..., kp1])


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
    dX = advection(X) + F - X - hcb * Y.sum(axis=-1)
    ring = Y.reshape(Y.shape[:-2] + (K * J,))  # the fast ring, cyclic across sectors
    dring = -c * b * np.roll(ring, -1, axis=-1) * (np.roll(ring, -2, axis=-1)
                                                   - np.roll(ring, 1, axis=-1)) - c * ring
    dY = dring.reshape(Y.shape) + hcb * X[..., None]
    return dX, dY


def _dataset(times, Xs, Ys, K, J, F, h, b, c, dt, integrator):
    hcb = h * c / b
    coords = {
        "time": ("time", times, {"units": TIME_UNITS, "long_name": "time"}),
        "k": ("k", np.arange(K), {"units": UNITS, "long_name": "slow-variable index"}),
        "j": ("j", np.arange(J), {"units": UNITS, "long_name": "fast-variable index in sector"}),
    }
    data = {
        "X": (("time", "k"), Xs, {"units": UNITS, "long_name": "slow variable X_k"}),
        "Y": (("time", "k", "j"), Ys, {"units": UNITS, "long_name": "fast variable Y_{j,k}"}),
        "coupling": (("time", "k"), -hcb * Ys.sum(axis=-1),
                     {"units": f"{UNITS} / {TIME_UNITS}",
                      "long_name": "coupling term -(h c / b) sum_j Y_{j,k} in dX_k/dt"}),
    }
    attrs = {"model": "two-scale Lorenz-96 (Wilks 2005 form)", "K": K, "J": J, "F": F,
             "h": h, "b": b, "c": c, "dt": dt, "integrator": integrator}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def simulate_reference(K=8, J=32, F=18.0, h=1.0, b=10.0, c=10.0, dt=0.001, n_steps=1000,
                       save_every=1, X0=None, Y0=None, seed=0) -> xr.Dataset:
    """Plain-numpy RK4 integration with the arguments and output of :func:`simulate`.

    About 50 times slower than :func:`simulate`; it exists so that the compiled kernel is
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
    return _dataset(times, Xs, Ys, K, J, F, h, b, c, dt, "RK4 (numpy reference)")


# --------------------------------------------------------------------------------------------
# the two-scale system compiled with numba
# --------------------------------------------------------------------------------------------
def _rk4_kernel(X, Y, F, hcb, cb, c, K, J, dt, n_steps, save_every, outX, outY):
    """Advance ``X`` (K,) and the flattened fast ring ``Y`` (K*J,) in place by RK4 steps.

    Written as scalar loops over preallocated buffers (no temporaries, no slicing): this both
    runs fast and keeps numba's compile time near one second. ``outX``/``outY`` receive the
    state every ``save_every`` steps, the initial state in row 0.
    """
    N = K * J
    kx = np.empty((4, K))
    ky = np.empty((4, N))
    tx = np.empty(K)
    ty = np.empty(N)
    for i in range(K):
        outX[0, i] = X[i]
    for i in range(N):
        outY[0, i] = Y[i]
    sixth = dt / 6.0
    for step in range(1, n_steps + 1):
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
            # the three fast variables whose stencil wraps around the ring (i+1, i+2 or i-1)
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
        for i in range(K):
            X[i] += sixth * (kx[0, i] + 2.0 * (kx[1, i] + kx[2, i]) + kx[3, i])
        for i in range(N):
            Y[i] += sixth * (ky[0, i] + 2.0 * (ky[1, i] + ky[2, i]) + ky[3, i])
        if step % save_every == 0:
            r = step // save_every
            for i in range(K):
                outX[r, i] = X[i]
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
             X0=None, Y0=None, seed=0) -> xr.Dataset:
    """Integrate the two-scale Lorenz-96 system with fourth-order Runge-Kutta (numba-compiled).

    Parameters
    ----------
    K, J : number of slow variables (``K >= 4``) and of fast variables per slow one.
    F : forcing; h : coupling strength; b : amplitude ratio; c : time-scale ratio (``b, c > 0``).
    dt : time step in MTU; n_steps : number of RK4 steps; save_every : keep every n-th state.
    X0 : shape ``(K,)``; Y0 : shape ``(K, J)``. Missing ones are drawn from a generator seeded
        with ``seed`` (``X ~ N(0, 1)``, ``Y ~ N(0, 0.1^2)``); given both, nothing is random.

    Returns an ``xarray.Dataset`` with ``X(time, k)``, ``Y(time, k, j)`` and
    ``coupling(time, k) = -(h c / b) sum_j Y_{j,k}``, ``n_steps // save_every + 1`` times
    including the initial state, ``time`` in MTU. The run starts from the given state: discard
    a spin-up of a few MTU before computing statistics.
    """
    K, J, F, h, b, c, dt, n_steps, save_every = _parameters(K, J, F, h, b, c, dt, n_steps,
                                                            save_every)
    X, Y = _initial_state(K, J, X0, Y0, seed)
    n_save = n_steps // save_every + 1
    outX, outY = np.empty((n_save, K)), np.empty((n_save, K * J))
    _rk4(X, Y.reshape(-1).copy(), F, h * c / b, c * b, c, K, J, dt, n_steps, save_every,
         outX, outY)
    if not np.all(np.isfinite(outX[-1])):
        raise FloatingPointError("the two-scale run blew up: reduce dt")
    times = np.arange(n_save) * save_every * dt
    return _dataset(times, outX, outY.reshape(n_save, K, J), K, J, F, h, b, c, dt,
                    "RK4 (numba)")


# --------------------------------------------------------------------------------------------
# the one-scale (parameterized) model
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AR1:
    """Red noise ``e(t + dt) = phi e(t) + sigma sqrt(1 - phi^2) z`` added to a closure.

    ``phi`` is the lag-one autocorrelation over one *model* time step and ``sigma`` the
    stationary standard deviation (units of the tendency, 1/MTU). Each ``X_k`` gets its own
    independent process, held constant during one RK4 step (Arnold et al. 2013).
    """

    phi: float
    sigma: float

    def __post_init__(self):
        phi = float(finite_array("phi", self.phi, ndim=0))
        if not 0 <= phi < 1:
            raise ValueError(f"phi must lie in [0, 1), got {self.phi!r}")
        sigma = float(finite_array("sigma", self.sigma, ndim=0))
        if sigma < 0:
            raise ValueError(f"sigma must be >= 0, got {self.sigma!r}")
        object.__setattr__(self, "phi", phi)
        object.__setattr__(self, "sigma", sigma)


def fit_ar1(residual, sample_dt: float, model_dt: float) -> AR1:
    """Fit the AR(1) term to a closure's residual ``coupling - P(X)``, shape ``(time, k)``.

    The lag-one autocorrelation ``r`` over the sampling interval ``sample_dt`` (MTU) is pooled
    over ``k`` and converted to the model step: ``phi = r ** (model_dt / sample_dt)``.
    """
    res = finite_array("residual", residual, ndim=2)
    if res.shape[0] < 3:
        raise ValueError(f"residual needs at least 3 times, got shape {res.shape}")
    sample_dt = positive("sample_dt", sample_dt)
    model_dt = positive("model_dt", model_dt)
    anom = res - res.mean(axis=0)
    r = float(np.sum(anom[1:] * anom[:-1]) / np.sum(anom * anom))
    r = min(max(r, 0.0), 0.999999)
    return AR1(phi=r ** (model_dt / sample_dt), sigma=float(anom.std()))


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


def simulate_one_scale(closure=None, K=8, F=18.0, dt=0.005, n_steps=1000, save_every=1,
                       X0=None, noise: AR1 | None = None, seed=0) -> xr.Dataset:
    """Integrate the one-scale model ``dX_k/dt = -X_{k-1}(X_{k-2}-X_{k+1}) - X_k + F + P(X)_k``.

    Parameters
    ----------
    closure : the parameterization ``P``: a callable mapping ``X (..., K)`` to ``(..., K)``
        (a local polynomial like :func:`fit_polynomial` simply acts elementwise), or a torch
        module taking ``(n, 2 w + 1)`` stencils (see :func:`neural_closure`); ``None`` means
        ``P = 0``.
    X0 : shape ``(K,)`` or ``(M, K)`` for an ensemble of ``M`` members integrated together;
        drawn from ``N(0, 1)`` (``seed``) when missing.
    noise : optional :class:`AR1`; its value is refreshed once per step and held over the
        RK4 stages, independently for every member and ``k``.

    Returns a Dataset with ``X`` and ``closure`` (the value of ``P`` plus noise at the saved
    times), dims ``(time, k)`` or ``(time, member, k)``. An unstable closure does not raise:
    once any ``|X|`` exceeds 1e6 the run stops, later times hold NaN and the attribute
    ``blew_up_at`` gives the time in MTU (NaN for a run that stayed bounded).
    """
    K = positive_int("K", K, minimum=4)
    F = float(finite_array("F", F, ndim=0))
    dt = positive("dt", dt)
    n_steps = positive_int("n_steps", n_steps, minimum=0)
    save_every = positive_int("save_every", save_every)
    if noise is not None and not isinstance(noise, AR1):
        raise ValueError(f"noise must be an AR1 instance or None, got {type(noise).__name__}")
    P = _as_closure(closure)
    rng = np.random.default_rng(seed)
    if X0 is None:
        X = rng.standard_normal(K)
    else:
        X = finite_array("X0", X0).copy()
        if X.ndim not in (1, 2) or X.shape[-1] != K:
            raise ValueError(f"X0 must have shape (K,) or (M, K) with K={K}, got {X.shape}")
    e = np.zeros_like(X)
    if noise is not None:
        e = noise.sigma * rng.standard_normal(X.shape)
        kick = noise.sigma * np.sqrt(1 - noise.phi ** 2)

    km1, km2, kp1 = (np.arange(K) - 1) % K, (np.arange(K) - 2) % K, (np.arange(K) + 1) % K

    def closure_of(x):
        p = np.asarray(P(x), dtype=float)
        if p.shape != x.shape:
            raise ValueError(f"closure must return the shape of X {x.shape}, got {p.shape}")
        return p

    def rhs(x):
        return -x[..., km1] * (x[..., km2] - x[..., kp1]) - x + F + closure_of(x) + e

    n_save = n_steps // save_every + 1
    Xs, Ps = np.empty((n_save,) + X.shape), np.empty((n_save,) + X.shape)
    Xs[0], Ps[0] = X, closure_of(X) + e
    blew_up = np.nan
    for step in range(1, n_steps + 1):
        with np.errstate(over="ignore", invalid="ignore"):
            k1 = rhs(X)
            k2 = rhs(X + 0.5 * dt * k1)
            k3 = rhs(X + 0.5 * dt * k2)
            k4 = rhs(X + dt * k3)
            X = X + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        if not np.all(np.isfinite(X)) or np.abs(X).max() > 1e6:
            # an unstable closure: keep what was computed, mark the rest as missing
            blew_up = step * dt
            Xs[step // save_every + (step % save_every > 0):] = np.nan
            Ps[step // save_every + (step % save_every > 0):] = np.nan
            break
        if noise is not None:
            e = noise.phi * e + kick * rng.standard_normal(X.shape)
        if step % save_every == 0:
            Xs[step // save_every] = X
            Ps[step // save_every] = closure_of(X) + e
    dims = ("time", "k") if X.ndim == 1 else ("time", "member", "k")
    coords = {"time": ("time", np.arange(n_save) * save_every * dt,
                       {"units": TIME_UNITS, "long_name": "time"}),
              "k": ("k", np.arange(K), {"units": UNITS, "long_name": "slow-variable index"})}
    data = {"X": (dims, Xs, {"units": UNITS, "long_name": "slow variable X_k"}),
            "closure": (dims, Ps, {"units": f"{UNITS} / {TIME_UNITS}",
                                   "long_name": "parameterized coupling P(X)_k (+ noise)"})}
    attrs = {"model": "one-scale Lorenz-96 with closure", "K": K, "F": F, "dt": dt,
             "stochastic": int(noise is not None), "blew_up_at": blew_up}
    return xr.Dataset(data, coords=coords, attrs=attrs)


# --------------------------------------------------------------------------------------------
# offline fits and online diagnostics
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Polynomial:
    """A local closure ``P(X_k) = sum_n coef[n] X_k^(deg - n)`` (highest power first)."""

    coef: np.ndarray

    def __call__(self, X):
        X = np.asarray(X, dtype=float)
        out = np.full_like(X, self.coef[0])
        for coef in self.coef[1:]:  # Horner's scheme
            out = out * X + coef
        return out


def fit_polynomial(x, y, degree: int) -> Polynomial:
    """Least-squares polynomial of ``degree`` from samples ``x`` to ``y`` (any equal shapes)."""
    x = finite_array("x", x).ravel()
    y = finite_array("y", y).ravel()
    if x.shape != y.shape:
        raise ValueError(f"y must have as many samples as x, got {y.size} and {x.size}")
    degree = positive_int("degree", degree, minimum=0)
    if x.size <= degree:
        raise ValueError(f"x needs more than degree={degree} samples, got {x.size}")
    return Polynomial(np.polyfit(x, y, degree))


def forecast_rmse(truth_X, starts, n_leads: int, sample_dt: float, closure=None,
                  noise: AR1 | None = None, model_dt: float = 0.005, F: float = 18.0,
                  seed: int = 0) -> np.ndarray:
    """RMSE of one-scale forecasts against the truth, for lead times ``0..n_leads`` samples.

    ``truth_X`` has shape ``(time, K)`` sampled every ``sample_dt`` MTU; a forecast starts from
    each index in ``starts`` (an ensemble integrated together) with the closure and runs
    ``n_leads`` samples. Returns the RMSE over starts and ``k``, shape ``(n_leads + 1,)``.
    """
    truth = finite_array("truth_X", truth_X, ndim=2)
    starts = np.asarray(starts)
    if starts.ndim != 1 or starts.size == 0 or not np.issubdtype(starts.dtype, np.integer):
        raise ValueError("starts must be a non-empty 1-D array of integer time indices")
    n_leads = positive_int("n_leads", n_leads)
    if starts.min() < 0 or starts.max() + n_leads >= truth.shape[0]:
        raise ValueError(f"starts must lie in [0, {truth.shape[0] - n_leads - 1}] so that "
                         f"n_leads={n_leads} samples of truth follow each")
    ratio = positive("sample_dt", sample_dt) / positive("model_dt", model_dt)
    every = int(round(ratio))
    if every < 1 or not np.isclose(ratio, every):
        raise ValueError(f"sample_dt must be a multiple of model_dt, got {sample_dt}/{model_dt}")
    run = simulate_one_scale(closure, K=truth.shape[1], F=F, dt=model_dt,
                             n_steps=n_leads * every, save_every=every, X0=truth[starts],
                             noise=noise, seed=seed)
    fc = run["X"].values  # (lead, member, k)
    obs = np.stack([truth[starts + lead] for lead in range(n_leads + 1)])
    return rmse_by_lead(fc, obs)


def one_scale_tendency(X, F: float, closure=None) -> np.ndarray:
    """Right-hand side of the one-scale model, ``advection(X) - X + F + P(X)``, for states
    ``X (..., K)``; ``closure`` is ``P`` (callable, shape-preserving) or ``None``."""
    rhs = advection(X) - X + F
    return rhs if closure is None else rhs + closure(X)


def advance_one_scale(X, closure=None, F: float = 18.0, dt: float = 0.005,
                      n_steps: int = 1) -> np.ndarray:
    """``n_steps`` RK4 steps of the one-scale model from ``X (..., K)``; the final state.

    The lean array core for callers that stop every few steps (a data-assimilation cycle):
    no validation, no Dataset, no noise. :func:`simulate_one_scale` is the full interface.
    """
    for _ in range(n_steps):
        k1 = one_scale_tendency(X, F, closure)
        k2 = one_scale_tendency(X + 0.5 * dt * k1, F, closure)
        k3 = one_scale_tendency(X + 0.5 * dt * k2, F, closure)
        k4 = one_scale_tendency(X + dt * k3, F, closure)
        X = X + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return X
