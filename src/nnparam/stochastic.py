"""Stochastic closures from a fast-slow toy: the bilinear system, SDE integrators, Green-Kubo.

The resolved variable ``x`` is slow, the unresolved ``y`` is a fast Ornstein-Uhlenbeck (OU)
process of variance ``sigma_y**2`` and correlation time ``1/lam``::

    dx/dt = -alpha*x + beta*x*y,        dy = -lam*y dt + sigma_y*sqrt(2*lam) dW.

Because ``d ln x / dt = -alpha + beta*y`` exactly, ``ln x`` is the time integral of a Gaussian
process, and every statistic used in the book has a closed form (functions ``log_mean``,
``log_variance_full``, ``log_variance_sde``, ``mean_x_full``, ``mean_x_sde``). When ``lam`` is
large the fast forcing ``beta*y`` acts like white noise of intensity ``2*beta**2*sigma_y**2/lam``
and the reduced (homogenised) model is the Stratonovich SDE::

    dx = -alpha*x dt + sqrt(2*D(x)) o dW,   D(x) = beta**2 * sigma_y**2 * x**2 / lam,

whose diffusion coefficient is the Green-Kubo integral of the autocovariance of the forcing.

Conventions: times in model time units, rates (``alpha``, ``lam``) in 1/time, ``x`` and ``y``
dimensionless. Ensembles are arrays of shape ``(n_time, n_members)``; integrators are vectorised
over members and seeded through ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._validate import finite_array, nonnegative, positive, positive_int, real

__all__ = [
    "autocovariance",
    "diffusion_coefficient",
    "diffusion_coefficient_green_kubo",
    "euler_maruyama",
    "green_kubo",
    "log_mean",
    "log_moments",
    "log_variance_full",
    "log_variance_sde",
    "mean_x_full",
    "mean_x_sde",
    "ou_process",
    "reduced_sde",
    "simulate_full",
    "stochastic_heun",
]


def _times(t) -> np.ndarray:
    t = finite_array("t", t)
    if np.any(t < 0):
        raise ValueError("t must be >= 0 (time since the common initial state)")
    return t


def _initial(name: str, value, n_members: int) -> np.ndarray:
    """A scalar or an ``(n_members,)`` array of initial values, broadcast to ``(n_members,)``."""
    arr = finite_array(name, value)
    if arr.ndim == 0:
        return np.full(n_members, float(arr))
    if arr.shape != (n_members,):
        raise ValueError(f"{name} must be a scalar or have shape ({n_members},), got {arr.shape}")
    return arr.astype(float).copy()


# --------------------------------------------------------------------------- the fast process

def ou_process(n_steps: int, dt: float, sigma_y: float, lam: float, n_members: int = 1,
               y0=None, seed: int = 0) -> np.ndarray:
    """Sample an Ornstein-Uhlenbeck process exactly on a regular time grid.

    ``y[n+1] = y[n]*exp(-lam*dt) + sigma_y*sqrt(1 - exp(-2*lam*dt))*xi`` with ``xi ~ N(0, 1)``,
    which is the exact transition law (no time-step error). Without ``y0`` the initial values
    are drawn from the stationary law ``N(0, sigma_y**2)``.

    Returns an array of shape ``(n_steps + 1, n_members)``; autocovariance
    ``sigma_y**2 * exp(-lam*|tau|)``.
    """
    n_steps = positive_int("n_steps", n_steps)
    dt = positive("dt", dt)
    sigma_y = positive("sigma_y", sigma_y)
    lam = positive("lam", lam)
    n_members = positive_int("n_members", n_members)
    rng = np.random.default_rng(seed)
    y = np.empty((n_steps + 1, n_members))
    y[0] = sigma_y * rng.standard_normal(n_members) if y0 is None else \
        _initial("y0", y0, n_members)
    decay = np.exp(-lam * dt)
    kick = sigma_y * np.sqrt(1.0 - decay**2)
    noise = rng.standard_normal((n_steps, n_members))
    for n in range(n_steps):
        y[n + 1] = decay * y[n] + kick * noise[n]
    return y


def simulate_full(x0, alpha: float, beta: float, sigma_y: float, lam: float, dt: float,
                  n_steps: int, n_members: int = 1, y0=None, seed: int = 0,
                  save_every: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integrate the bilinear fast-slow system ``dx/dt = -alpha*x + beta*x*y`` with OU ``y``.

    ``y`` is sampled exactly (:func:`ou_process`); ``x`` is advanced with the exact solution
    of its linear equation for a given ``y``, ``x[n+1] = x[n]*exp(-alpha*dt + beta*int y)``,
    the integral of ``y`` over the step taken by the trapezoidal rule. ``dt`` should resolve the
    fast time, ``lam*dt <= 0.1``. ``x0`` is a scalar (a common initial state) or shape
    ``(n_members,)``; without ``y0`` each member starts from an independent stationary ``y``.

    Returns ``(t, x, y)``: ``t`` of shape ``(n_saved,)`` and ``x``, ``y`` of shape
    ``(n_saved, n_members)``, keeping every ``save_every``-th step (always the first).
    """
    alpha = nonnegative("alpha", alpha)
    beta = real("beta", beta)
    n_members = positive_int("n_members", n_members)
    save_every = positive_int("save_every", save_every)
    x_init = _initial("x0", x0, n_members)
    y = ou_process(n_steps, dt, sigma_y, lam, n_members=n_members, y0=y0, seed=seed)
    increments = -alpha * dt + beta * 0.5 * (y[1:] + y[:-1]) * dt
    log_growth = np.concatenate([np.zeros((1, n_members)), np.cumsum(increments, axis=0)])
    x = x_init * np.exp(log_growth[::save_every])
    t = dt * np.arange(n_steps + 1)
    return t[::save_every], x, y[::save_every].copy()


# --------------------------------------------------------------------------- SDE integrators

def _check_sde(drift, diffusion, x0, dt, n_steps, n_members, save_every):
    if not callable(drift):
        raise ValueError("drift must be a callable a(x) returning an array shaped like x")
    if not callable(diffusion):
        raise ValueError("diffusion must be a callable b(x) returning an array shaped like x")
    dt = positive("dt", dt)
    n_steps = positive_int("n_steps", n_steps)
    n_members = positive_int("n_members", n_members)
    save_every = positive_int("save_every", save_every)
    return _initial("x0", x0, n_members), dt, n_steps, n_members, save_every


def _integrate(step, x, dt, n_steps, n_members, seed, save_every):
    rng = np.random.default_rng(seed)
    n_saved = n_steps // save_every + 1
    out = np.empty((n_saved, n_members))
    out[0] = x
    sqdt = np.sqrt(dt)
    for n in range(1, n_steps + 1):
        x = step(x, sqdt * rng.standard_normal(n_members))
        if n % save_every == 0:
            out[n // save_every] = x
    t = dt * save_every * np.arange(n_saved)
    return t, out


def euler_maruyama(drift: Callable, diffusion: Callable, x0, dt: float, n_steps: int,
                   n_members: int = 1, seed: int = 0,
                   save_every: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Euler-Maruyama for the **Ito** SDE ``dx = a(x) dt + b(x) dW``, vectorised over members.

    ``x[n+1] = x[n] + a(x[n])*dt + b(x[n])*dW``, ``dW ~ N(0, dt)``; strong order 1/2, weak
    order 1. Applied to an SDE meant in the Stratonovich sense it silently drops the
    noise-induced drift ``b(x)*b'(x)/2``.

    ``drift`` and ``diffusion`` map an array of shape ``(n_members,)`` to the same shape.
    The Wiener increments depend only on ``seed``, ``n_members`` and the step, so
    :func:`stochastic_heun` with the same arguments sees the same noise.

    Returns ``(t, x)`` with ``t`` of shape ``(n_saved,)`` and ``x`` of shape
    ``(n_saved, n_members)``, ``n_saved = n_steps // save_every + 1``.
    """
    x, dt, n_steps, n_members, save_every = _check_sde(drift, diffusion, x0, dt, n_steps,
                                                       n_members, save_every)

    def step(x, dw):
        return x + drift(x) * dt + diffusion(x) * dw

    return _integrate(step, x, dt, n_steps, n_members, seed, save_every)


def stochastic_heun(drift: Callable, diffusion: Callable, x0, dt: float, n_steps: int,
                    n_members: int = 1, seed: int = 0,
                    save_every: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Stochastic Heun (predictor-corrector) for the **Stratonovich** SDE ``dx = a dt + b o dW``.

    Predictor ``x~ = x + a(x) dt + b(x) dW``; corrector
    ``x[n+1] = x + (a(x) + a(x~)) dt/2 + (b(x) + b(x~)) dW/2``. Evaluating ``b`` at both ends of
    the step is what produces the Stratonovich (midpoint) integral; weak order 1 for a single
    noise. Arguments and return value as in :func:`euler_maruyama`.
    """
    x, dt, n_steps, n_members, save_every = _check_sde(drift, diffusion, x0, dt, n_steps,
                                                       n_members, save_every)

    def step(x, dw):
        a0, b0 = drift(x), diffusion(x)
        pred = x + a0 * dt + b0 * dw
        return x + 0.5 * (a0 + drift(pred)) * dt + 0.5 * (b0 + diffusion(pred)) * dw

    return _integrate(step, x, dt, n_steps, n_members, seed, save_every)


# --------------------------------------------------------------------------- diffusion, Green-Kubo

def diffusion_coefficient(x, beta: float, sigma_y: float, lam: float):
    """Homogenised diffusion coefficient ``D(x) = beta**2 * sigma_y**2 * x**2 / lam``.

    Units of ``x**2`` per unit time; ``x`` is a scalar or an array (the result has its shape).
    """
    x = finite_array("x", x)
    beta = real("beta", beta)
    sigma_y = positive("sigma_y", sigma_y)
    lam = positive("lam", lam)
    return beta**2 * sigma_y**2 * x**2 / lam


def autocovariance(y, max_lag: int) -> np.ndarray:
    """Sample autocovariance ``C[k] = <y'(t) y'(t + k dt)>`` for ``k = 0..max_lag``.

    ``y`` has shape ``(n_time,)`` or ``(n_time, n_members)``; each member is one realisation
    (its own time mean removed) and the lagged products are pooled over members. The biased
    normalisation (divide by ``n_time``) is used, computed with an FFT.
    """
    y = finite_array("y", y)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2:
        raise ValueError(f"y must be 1-D or 2-D (n_time, n_members), got shape {y.shape}")
    n = y.shape[0]
    if max_lag is None or isinstance(max_lag, str):
        raise ValueError(f"max_lag must be an integer >= 0 (number of lags), got {max_lag!r}")
    max_lag = positive_int("max_lag", max_lag, minimum=0)
    if max_lag >= n:
        raise ValueError(f"max_lag must be < n_time = {n}, got {max_lag}")
    yp = y - y.mean(axis=0)
    nfft = 1 << int(np.ceil(np.log2(2 * n)))
    spec = np.fft.rfft(yp, n=nfft, axis=0)
    acov = np.fft.irfft(spec * np.conj(spec), n=nfft, axis=0)[: max_lag + 1] / n
    return acov.mean(axis=1)


def green_kubo(y, dt: float, max_lag: int | None = None) -> float:
    """Green-Kubo integral ``int_0^T C(tau) dtau`` of the autocovariance of ``y``.

    The one-sided integral (trapezoidal rule over lags ``0..max_lag``); units of ``y**2`` times
    time. For an OU process it converges to ``sigma_y**2 / lam``. The sample autocovariance is
    noisy at long lags, so the integral is truncated: at ``max_lag`` if given (a few correlation
    times is a good choice), otherwise at the first zero crossing of ``C``.
    """
    dt = positive("dt", dt)
    y = finite_array("y", y)
    n = y.shape[0] if y.ndim else 0
    if n < 2:
        raise ValueError(f"y must hold at least 2 time samples, got shape {y.shape}")
    if max_lag is None:
        acov = autocovariance(y, n - 1)
        crossing = np.flatnonzero(acov <= 0)
        acov = acov[: crossing[0]] if crossing.size else acov
    else:
        acov = autocovariance(y, max_lag)
    if acov.size < 2:
        raise ValueError("the autocovariance falls to zero at lag 1: dt is longer than the "
                         "correlation time, refine the sampling of y")
    return float(dt * (acov.sum() - 0.5 * (acov[0] + acov[-1])))


def diffusion_coefficient_green_kubo(x, beta: float, y, dt: float,
                                     max_lag: int | None = None):
    """Green-Kubo estimate ``D(x) = beta**2 * x**2 * int_0^T C_y(tau) dtau`` from samples of ``y``.

    The forcing of ``x`` by the fast variable is ``beta*x*y``; its integrated autocovariance at
    fixed ``x`` is the diffusion coefficient of the reduced SDE. ``y`` is a simulated (or
    observed) fast series sampled every ``dt``, see :func:`green_kubo`.
    """
    x = finite_array("x", x)
    beta = real("beta", beta)
    return beta**2 * x**2 * green_kubo(y, dt, max_lag)


def reduced_sde(alpha: float, beta: float, sigma_y: float,
                lam: float) -> tuple[Callable, Callable]:
    """Drift and noise amplitude of the reduced Stratonovich SDE ``dx = -alpha x dt + b o dW``.

    ``a(x) = -alpha*x`` and ``b(x) = beta*sigma_y*sqrt(2/lam)*x``, so ``b(x)**2 = 2*D(x)``
    (the sign of ``b`` is immaterial for a single Wiener process). Integrate with
    :func:`stochastic_heun`; the equivalent Ito drift is ``a(x) + D(x)/x = (D0 - alpha)*x``
    with ``D0 = beta**2*sigma_y**2/lam``.
    """
    alpha = nonnegative("alpha", alpha)
    beta = real("beta", beta)
    sigma_y = positive("sigma_y", sigma_y)
    lam = positive("lam", lam)
    amp = beta * sigma_y * np.sqrt(2.0 / lam)

    def drift(x):
        return -alpha * x

    def diffusion(x):
        return amp * x

    return drift, diffusion


# --------------------------------------------------------------------------- closed forms

def log_moments(x) -> tuple[np.ndarray, np.ndarray]:
    """Ensemble mean and (population) variance of ``ln x`` over the last axis (the members).

    ``x`` must be strictly positive, shape ``(..., n_members)``.
    """
    x = finite_array("x", x)
    if np.any(x <= 0):
        raise ValueError("x must be strictly positive to take its logarithm")
    lx = np.log(x)
    return lx.mean(axis=-1), lx.var(axis=-1)


def log_mean(t, x0: float, alpha: float) -> np.ndarray:
    """``E[ln x(t)] = ln x0 - alpha*t``: the same for the full system and the reduced SDE."""
    return np.log(positive("x0", x0)) - nonnegative("alpha", alpha) * _times(t)


def log_variance_full(t, beta: float, sigma_y: float, lam: float) -> np.ndarray:
    """``Var[ln x(t)]`` of the full system with stationary OU ``y`` at ``t = 0``.

    ``2*beta**2*sigma_y**2*(lam*t - 1 + exp(-lam*t))/lam**2``: ballistic
    (``beta**2*sigma_y**2*t**2``) for ``lam*t << 1``, diffusive (``2*D0*t``) for ``lam*t >> 1``.
    """
    t = _times(t)
    beta, sigma_y, lam = real("beta", beta), positive("sigma_y", sigma_y), positive("lam", lam)
    return 2 * beta**2 * sigma_y**2 * (lam * t - 1.0 + np.exp(-lam * t)) / lam**2


def log_variance_sde(t, beta: float, sigma_y: float, lam: float) -> np.ndarray:
    """``Var[ln x(t)] = 2*beta**2*sigma_y**2*t/lam`` of the reduced SDE (a Brownian ``ln x``)."""
    t = _times(t)
    beta, sigma_y, lam = real("beta", beta), positive("sigma_y", sigma_y), positive("lam", lam)
    return 2 * beta**2 * sigma_y**2 * t / lam


def mean_x_sde(t, x0: float, alpha: float, beta: float, sigma_y: float,
               lam: float) -> np.ndarray:
    """``E[x(t)] = x0*exp((beta**2*sigma_y**2/lam - alpha)*t)`` of the reduced SDE."""
    d0 = real("beta", beta) ** 2 * positive("sigma_y", sigma_y) ** 2 / positive("lam", lam)
    return positive("x0", x0) * np.exp((d0 - nonnegative("alpha", alpha)) * _times(t))


def mean_x_full(t, x0: float, alpha: float, beta: float, sigma_y: float,
                lam: float) -> np.ndarray:
    """``E[x(t)] = x0*exp(-alpha*t + Var[ln x(t)]/2)`` of the full system (``ln x`` Gaussian)."""
    var = log_variance_full(t, beta, sigma_y, lam)
    return positive("x0", x0) * np.exp(-nonnegative("alpha", alpha) * _times(t) + 0.5 * var)
