"""Checks for the lab "Fit a stochastic closure" (``solutions/lab05_fit_a_stochastic_closure``).

The lab's system is the bilinear fast-slow toy of :mod:`nnparam.stochastic` with the
parameters in :data:`PARAMS`. Each check compares a student's answer with the closed form and,
when it is wrong, recognises the typical mistakes by the factor by which the answer misses:
a normalised autocorrelation or a two-sided or un-weighted Green-Kubo sum, an Ito integration
of the Stratonovich SDE, a noise amplitude ``sqrt(D)`` instead of ``sqrt(2D)``, a variance law
with the wrong time dependence.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import stochastic as st
from .feedback import LabCheckError, as_array, passed, require

#: parameters of the lab (time in units of 1/alpha)
PARAMS = {"alpha": 1.0, "beta": 4.0, "sigma_y": 0.5, "lam": 10.0, "x0": 1.0,
          "dt_y": 0.02, "max_lag": 25}


def _d0() -> float:
    p = PARAMS
    return p["beta"] ** 2 * p["sigma_y"] ** 2 / p["lam"]


def _close(ratio: float, target: float, tol: float) -> bool:
    return abs(ratio / target - 1.0) < tol


def green_kubo(gk) -> bool:
    """Check the one-sided Green-Kubo integral ``int_0^T C_y(tau) dtau`` of the lab's ``y``.

    ``gk`` is a number in units of ``y**2`` times time; the exact value is ``sigma_y**2/lam``.
    """
    p = PARAMS
    value = float(as_array("gk", gk).squeeze()) if np.size(gk) == 1 else None
    if value is None:
        raise LabCheckError(f"`gk` should be one number (the integral), got an array of shape "
                            f"{np.shape(gk)}")
    exact = p["sigma_y"] ** 2 / p["lam"]
    ratio = value / exact
    if _close(ratio, 1.0, 0.05):
        return passed(f"Green-Kubo integral {value:.5f} vs sigma_y^2/lam = {exact:.5f} "
                      f"({ratio - 1:+.1%}); D(x) = beta^2 * {value:.5f} * x^2")
    require(value > 0, f"`gk` = {value:.4g} should be positive: the autocovariance of an OU "
            "process is positive at every lag. Did you subtract instead of add, or integrate "
            "far into the noisy tail?")
    require(not _close(ratio, 1.0 / p["sigma_y"] ** 2, 0.05),
            f"`gk` is {ratio:.2f} times the exact value, i.e. 1/sigma_y^2: you integrated the "
            "normalised autocorrelation C(tau)/C(0). Green-Kubo needs the autocovariance "
            "C(tau) = <y'(t) y'(t+tau)>, which keeps the variance of y.")
    require(not _close(ratio, 2.0, 0.05),
            "`gk` is twice the exact value: you integrated over tau from -inf to +inf (or "
            "doubled the one-sided integral). The diffusion coefficient D uses the one-sided "
            "integral from 0 to infinity; the 2 is already in sqrt(2 D).")
    require(not _close(ratio, 1.0 / p["dt_y"], 0.05),
            f"`gk` is {ratio:.0f} times the exact value, i.e. 1/dt: you summed C over the lags "
            "without multiplying by the sampling interval dt. An integral over tau needs dt.")
    require(not _close(ratio, 1.0 + 0.5 * p["lam"] * p["dt_y"], 0.03),
            f"`gk` is {ratio - 1:+.0%} off, which is C(0)*dt/2: a left Riemann sum counts the "
            "zero lag fully. Use the trapezoidal rule (half weight at both ends).")
    raise LabCheckError(f"`gk` = {value:.5g} is {ratio:.3g} times the exact sigma_y^2/lam = "
                        f"{exact:.5g}. Check: mean removed, autocovariance (not correlation), "
                        f"one-sided, times dt, truncated at max_lag = {p['max_lag']} lags.")


def reduced_ensemble(t, x) -> bool:
    """Check an ensemble of the reduced Stratonovich SDE ``dx = -alpha x dt + sqrt(2D) o dW``.

    ``t`` has shape ``(n_saved,)`` and ``x`` shape ``(n_saved, n_members)`` (as returned by the
    integrators of :mod:`nnparam.stochastic`), started from ``x0``; at least 500 members.
    """
    p = PARAMS
    t = as_array("t", t)
    x = as_array("x", x)
    require(t.ndim == 1 and x.ndim == 2 and x.shape[0] == t.size,
            f"`x` should have shape (len(t), n_members) = ({t.size}, M), got {x.shape}")
    m = x.shape[1]
    require(m >= 500, f"use at least 500 ensemble members to check statistics, got {m}")
    require(np.allclose(x[0], p["x0"]), f"all members should start from x0 = {p['x0']}")
    require(np.all(x[-1] > 0), "x must stay positive: sqrt(2 D(x)) is proportional to x, so the "
            "exact solution never crosses zero. Is your time step too long?")
    t_end = float(t[-1])
    require(t_end >= 0.5, f"integrate to t >= 0.5 (got t = {t_end}) so that the effects show")
    d0 = _d0()
    lx = np.log(x[-1])
    mean, var = lx.mean(), lx.var()
    mean_ok = np.log(p["x0"]) - p["alpha"] * t_end
    var_ok = 2 * d0 * t_end
    tol_mean = 4 * np.sqrt(var_ok / m) + 0.02
    tol_var = 4 * np.sqrt(2.0 / m) + 0.05
    require(var > 1e-12, "the ensemble has no spread: this is the deterministic closure. The "
            "reduced model needs the noise term sqrt(2 D(x)) o dW.")
    require(not _close(var, d0 * t_end, tol_var),
            f"Var[ln x] = {var:.3f} is half of 2 D0 t = {var_ok:.3f}: the noise amplitude must "
            "be sqrt(2 D(x)), not sqrt(D(x)).")
    require(not (abs(mean - (mean_ok - d0 * t_end)) < tol_mean and abs(mean - mean_ok) > tol_mean),
            f"E[ln x] = {mean:.3f} sits D0 t = {d0 * t_end:.3f} below ln x0 - alpha t = "
            f"{mean_ok:.3f}: you integrated the Stratonovich SDE as Ito (Euler-Maruyama) and "
            "lost the noise-induced drift D0 x. Use st.stochastic_heun, or add D0 x to the drift.")
    require(not (abs(mean - (mean_ok + d0 * t_end)) < tol_mean and abs(mean - mean_ok) > tol_mean),
            f"E[ln x] = {mean:.3f} sits D0 t above ln x0 - alpha t: the noise-induced drift was "
            "counted twice (Ito-equivalent drift (D0 - alpha) x integrated with a Stratonovich "
            "scheme).")
    require(abs(mean - mean_ok) < tol_mean,
            f"E[ln x(t={t_end:g})] = {mean:.3f}, expected ln x0 - alpha t = {mean_ok:.3f} "
            f"(+- {tol_mean:.3f}). Check the drift -alpha x.")
    require(abs(var / var_ok - 1) < tol_var,
            f"Var[ln x(t={t_end:g})] = {var:.3f}, expected 2 D0 t = {var_ok:.3f} "
            f"(+- {tol_var:.0%}). Check D0 = beta^2 * gk and the amplitude sqrt(2 D0) x.")
    return passed(f"E[ln x] = {mean:.3f} (theory {mean_ok:.3f}), Var[ln x] = {var:.3f} "
                  f"(theory {var_ok:.3f}) at t = {t_end:g} with {m} members")


def log_variance_full(fn: Callable) -> bool:
    """Check ``fn(t)``, the variance of ``ln x(t)`` in the full system, on times ``0 < t``.

    ``fn`` takes an array of times (units of 1/alpha) and returns an array of the same shape.
    """
    if not callable(fn):
        raise LabCheckError("pass your function itself: "
                            "`check.log_variance_full(var_log_full)`")
    p = PARAMS
    beta, sig, lam = p["beta"], p["sigma_y"], p["lam"]
    t = np.geomspace(1e-2, 1e2, 41) / lam
    try:
        got = as_array("var_log_full(t)", fn(t), shape=t.shape)
    except LabCheckError:
        raise
    except NotImplementedError as err:
        raise LabCheckError("`var_log_full` is not written yet: replace the "
                            "NotImplementedError line with your formula") from err
    except Exception as err:  # any failure of the student function becomes feedback
        raise LabCheckError(f"calling your function on an array of times failed: {err!r}") from err
    exact = st.log_variance_full(t, beta, sig, lam)
    rel = np.abs(got / exact - 1)
    if np.all(rel < 1e-3):
        return passed("Var[ln x(t)] = 2 beta^2 sigma_y^2 (lam t - 1 + exp(-lam t)) / lam^2 on "
                      "0.01 < lam t < 100: ballistic at first, diffusive later")
    white = st.log_variance_sde(t, beta, sig, lam)
    require(not np.allclose(got, white, rtol=1e-3),
            "your variance is 2 D0 t, the white-noise (Markov) law of the reduced SDE. It holds "
            "only for lam t >> 1; at lam t ~ 1 the forcing still remembers its initial value. "
            "Integrate the autocovariance: Var = 2 * int_0^t (t - tau) C(tau) dtau.")
    require(not np.allclose(got, beta**2 * sig**2 * t**2, rtol=1e-3),
            "your variance is beta^2 sigma_y^2 t^2, the ballistic law: y frozen at its initial "
            "value. It holds only for lam t << 1; later y decorrelates and the growth becomes "
            "linear in t.")
    require(not np.allclose(got * lam, exact, rtol=1e-3) and
            not np.allclose(got / lam, exact, rtol=1e-3),
            "your variance is off by a factor lam: check the units. beta^2 sigma_y^2 has units "
            "1/time^2, so the prefactor of (lam t - 1 + exp(-lam t)) needs 1/lam^2.")
    worst = int(np.argmax(rel))
    raise LabCheckError(f"your variance differs from the exact result by up to {rel[worst]:.0%}, "
                        f"worst at lam t = {lam * t[worst]:.3g} (got {got[worst]:.4g}, expected "
                        f"{exact[worst]:.4g}). Compare both limits: beta^2 sigma_y^2 t^2 for "
                        "lam t << 1 and 2 D0 t for lam t >> 1.")
