"""Checks for the lab "Fit a stochastic closure" (``solutions/lab05_fit_a_stochastic_closure``).

The lab's system is the bilinear fast-slow toy of :mod:`nnparam.stochastic` with the
parameters in :data:`PARAMS`. Each check calls the student's function on inputs it makes:
``green_kubo_integral`` on series with per-member offsets and slow decay (so that a missing
mean removal, a wrong axis, a lost member or a lag too few show) and on the lab's data;
``closure_ensemble`` with diffusion coefficients of its own, whose exact log-normal
statistics it knows; ``var_log_full`` on arrays, lists and scalars of times. Engine shortcuts
the exercises rule out are switched off while the student's code runs. Wrong answers are
recognised by the factor by which they miss: a normalised autocorrelation, a two-sided or
un-weighted sum, an Ito integration of the Stratonovich SDE, an amplitude ``sqrt(D)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import stochastic as st
from .feedback import (LabCheckError, as_array, as_scalar, call, call_without,
                       expect_times, lab_check, passed, ratio_text, require)

#: parameters of the lab (time in units of 1/alpha)
PARAMS = {"alpha": 1.0, "beta": 4.0, "sigma_y": 0.5, "lam": 10.0, "x0": 1.0,
          "dt_y": 0.02, "max_lag": 25}
#: the ensemble the lab asks for: from x0 to t = 2, steps of 0.01, saved every 10 steps
ENSEMBLE = {"t_end": 2.0, "dt": 0.01, "save_every": 10}

_NO_GK = "the exercise asks you to compute the autocovariance and its integral with numpy"
_NO_VAR = "the exercise asks you to derive the formula and write it yourself"


def _d0() -> float:
    p = PARAMS
    return p["beta"] ** 2 * p["sigma_y"] ** 2 / p["lam"]


def _close(ratio: float, target: float, tol: float) -> bool:
    return abs(ratio / target - 1.0) < tol


def _acov(y, max_lag, mean_axis=0, lags=None):
    yp = y - y.mean(axis=mean_axis, keepdims=True)
    n = yp.shape[0]
    lags = range(max_lag + 1) if lags is None else lags
    return np.array([np.mean(yp[: n - k] * yp[k:]) for k in lags])


def _trapezoid(c, dt):
    return dt * (c.sum() - 0.5 * (c[0] + c[-1]))


def _gk_reference(y, dt, max_lag):
    return _trapezoid(_acov(y, max_lag), dt)


def _gk_probes():
    """(y, dt, max_lag) probes: slow decay, few lags, per-member offsets, one member."""
    probes = []
    for n_steps, dt, lam, members, max_lag, seed in ((6000, 0.05, 2.0, 6, 4, 1),
                                                     (3000, 0.1, 0.5, 5, 12, 2),
                                                     (4000, 0.02, 10.0, 1, 25, 3)):
        y = st.ou_process(n_steps, dt, sigma_y=0.7, lam=lam, n_members=members, seed=seed)
        offsets = np.linspace(-2.0, 3.0, members) if members > 1 else np.array([1.5])
        probes.append((y + offsets, dt, max_lag))
    return probes


@lab_check
def green_kubo(func) -> bool:
    """``func(y, dt, max_lag)``: the one-sided Green-Kubo integral (trapezoidal rule over the
    lags 0..max_lag) of the autocovariance of ``y`` (n_time, n_members), each member's time
    mean removed, lagged products averaged over time and members. Finally the lab's own data
    must give sigma_y**2 / lam within 5 %."""
    if isinstance(func, int | float | np.ndarray):
        raise LabCheckError("pass your function itself: `check.green_kubo(green_kubo_integral)`")
    forbidden = {"nnparam.stochastic.green_kubo": _NO_GK,
                 "nnparam.stochastic.diffusion_coefficient_green_kubo": _NO_GK}
    for y, dt, max_lag in _gk_probes():
        inputs = f"y of shape {y.shape}, dt = {dt}, max_lag = {max_lag}"
        got = as_scalar("green_kubo_integral(y, dt, max_lag)",
                        call_without("green_kubo_integral", func, forbidden, y.copy(), dt,
                                     max_lag, inputs=inputs))
        want = _gk_reference(y, dt, max_lag)
        if _close(got, want, 5e-3):
            continue
        c = _acov(y, max_lag)
        variants = {
            "you did not remove each member's time mean: y' = y - y.mean(axis=0)":
                _trapezoid(np.array([np.mean(y[: y.shape[0] - k] * y[k:])
                                     for k in range(max_lag + 1)]), dt),
            "you removed the mean across the members at each time (axis=1); remove each "
            "member's TIME mean, y.mean(axis=0)": _trapezoid(_acov(y, max_lag, 1), dt),
            "you removed one mean over all the data; remove each member's own time mean, "
            "y.mean(axis=0)": _trapezoid(_acov(y, max_lag, None), dt),
            "you used the lags 0..max_lag-1: the integral runs to max_lag * dt, so it needs "
            "max_lag + 1 lags": _trapezoid(_acov(y, max_lag - 1), dt),
            "a left Riemann sum counts the zero lag fully: use the trapezoidal rule (half "
            "weight at both ends)": dt * c[:-1].sum(),
            "a right Riemann sum drops the zero lag: use the trapezoidal rule (half weight at "
            "both ends)": dt * c[1:].sum(),
            "you summed C over the lags without multiplying by the sampling interval dt":
                _trapezoid(c, 1.0),
            "you integrated the normalised autocorrelation C(tau)/C(0); Green-Kubo needs the "
            "autocovariance C(tau) = <y'(t) y'(t+tau)>, which keeps the variance of y":
                _trapezoid(c / c[0], dt),
            "that is twice the one-sided integral (from -inf to +inf); the 2 is already in "
            "sqrt(2 D)": 2 * _trapezoid(c, dt),
            "you used only the first member: average the lagged products over ALL members":
                _trapezoid(_acov(y[:, :1], max_lag), dt),
            "you flattened the members into one series (y.ravel() interleaves them): treat "
            "each column as its own time series": _trapezoid(_acov(y.reshape(-1, 1),
                                                                   max_lag), dt),
        }
        for hint, variant in variants.items():
            if np.isfinite(variant) and _close(got, variant, 5e-3):
                raise LabCheckError(f"for {inputs}: {hint}")
        raise LabCheckError(f"for {inputs} your integral is {got:.5g}, {ratio_text(got, want)} "
                            f"(expected {want:.5g}). Check: each member's mean removed, "
                            f"autocovariance (not correlation), lags 0..max_lag, trapezoidal "
                            f"rule, times dt")
    p = PARAMS
    y = st.ou_process(n_steps=20_000, dt=p["dt_y"], sigma_y=p["sigma_y"], lam=p["lam"],
                      n_members=50, seed=5)
    value = as_scalar("green_kubo_integral(y, DT_Y, MAX_LAG)",
                      call("green_kubo_integral", func, y, p["dt_y"], p["max_lag"]))
    exact = p["sigma_y"] ** 2 / p["lam"]
    require(_close(value, exact, 0.05),
            f"on the lab's data your integral is {value:.5g}, {ratio_text(value, exact)} of "
            f"sigma_y^2/lam = {exact:.5g}")
    return passed(f"Green-Kubo integral {value:.5f} vs sigma_y^2/lam = {exact:.5f} "
                  f"({value / exact - 1:+.1%}); D(x) = beta^2 * {value:.5f} * x^2")


def _log_stats(x, rows):
    lx = np.log(x[rows])
    return lx.mean(axis=-1), lx.var(axis=-1)


@lab_check
def reduced_ensemble(func) -> bool:
    """``func(d0, n_members, seed)``: ``(t, x)`` of the reduced Stratonovich SDE
    ``dx = -alpha x dt + sqrt(2 d0) x o dW`` from ``x0``, up to t = 2 with steps of 0.01, saved
    every 10 steps: ``t`` (21,), ``x`` (21, n_members); the same seed gives the same ensemble."""
    if isinstance(func, tuple | np.ndarray):
        raise LabCheckError("pass your function itself: "
                            "`check.reduced_ensemble(closure_ensemble)`")
    p = PARAMS
    e = ENSEMBLE
    n_saved = int(round(e["t_end"] / (e["dt"] * e["save_every"]))) + 1
    m = 1500
    for d0 in (0.8 * _d0(), 1.6 * _d0()):
        inputs = f"d0 = {d0:.3f}, n_members = {m}, seed = 3"
        out = call("closure_ensemble", func, d0, n_members=m, seed=3, inputs=inputs)
        require(isinstance(out, tuple | list) and len(out) == 2,
                f"closure_ensemble should return the pair (t, x), got {type(out).__name__}")
        t, x = out
        t = as_array("t", t)
        x = as_array("x", x)
        if x.shape == (m, t.size):
            raise LabCheckError(f"`x` has shape {x.shape}: transposed. Keep time first, "
                                f"(len(t), n_members) = ({t.size}, {m})")
        require(t.ndim == 1 and x.ndim == 2 and x.shape[0] == t.size,
                f"`x` should have shape (len(t), n_members) = ({t.size}, {m}), got {x.shape}")
        require(x.shape[1] == m, f"closure_ensemble(d0, n_members={m}, ...) returned "
                                 f"{x.shape[1]} members: use the argument n_members")
        expect_times("t", t, start=0.0, end=e["t_end"], step=e["dt"] * e["save_every"],
                     count=n_saved)
        require(np.allclose(x[0], p["x0"]), f"all members should start from x0 = {p['x0']}")
        require(np.all(x > 0), "x must stay positive: sqrt(2 D(x)) is proportional to x, so "
                "the exact solution never crosses zero (a noise term without the factor x, "
                "sqrt(2 d0) dW, can push it below zero)")
        rows = np.array([5, 10, n_saved - 1])
        times = t[rows]
        mean, var = _log_stats(x, rows)
        mean_ok = np.log(p["x0"]) - p["alpha"] * times
        var_ok = 2 * d0 * times
        tol_mean = 4 * np.sqrt(var_ok / m) + 0.02
        tol_var = 4 * np.sqrt(2.0 / m) + 0.05
        t_end, v_end, m_end = times[-1], var[-1], mean[-1]
        require(v_end > 1e-12, "the ensemble has no spread: this is the deterministic closure. "
                "The reduced model needs the noise term sqrt(2 D(x)) o dW.")
        require(not _close(v_end, d0 * t_end, tol_var),
                f"Var[ln x] = {v_end:.3f} is half of 2 d0 t = {var_ok[-1]:.3f}: the noise "
                f"amplitude must be sqrt(2 D(x)), not sqrt(D(x)).")
        require(not _close(v_end, 4 * d0 * t_end, tol_var),
                f"Var[ln x] = {v_end:.3f} is twice 2 d0 t = {var_ok[-1]:.3f}: the noise "
                f"amplitude is sqrt(2 d0) x, not 2 d0 x.")
        shift = d0 * t_end
        if abs(m_end - (mean_ok[-1] - shift)) < tol_mean[-1] < abs(m_end - mean_ok[-1]):
            raise LabCheckError(
                f"E[ln x] = {m_end:.3f} sits d0 t = {shift:.3f} below ln x0 - alpha t = "
                f"{mean_ok[-1]:.3f}: you integrated the Stratonovich SDE as Ito "
                f"(Euler-Maruyama) and lost the noise-induced drift d0 x. Use "
                f"st.stochastic_heun, or add d0 x to the drift.")
        if abs(m_end - (mean_ok[-1] + shift)) < tol_mean[-1] < abs(m_end - mean_ok[-1]):
            raise LabCheckError(
                f"E[ln x] = {m_end:.3f} sits d0 t above ln x0 - alpha t: the noise-induced "
                f"drift was counted twice (Ito-equivalent drift (d0 - alpha) x integrated with "
                f"a Stratonovich scheme).")
        for i, tt in enumerate(times):
            require(abs(mean[i] - mean_ok[i]) < tol_mean[i],
                    f"E[ln x(t={tt:g})] = {mean[i]:.3f}, expected ln x0 - alpha t = "
                    f"{mean_ok[i]:.3f} (+- {tol_mean[i]:.3f}). Check the drift -alpha x and "
                    f"that d0 is the argument (not D0_HAT).")
            require(abs(var[i] / var_ok[i] - 1) < tol_var,
                    f"Var[ln x(t={tt:g})] = {var[i]:.3f}, expected 2 d0 t = {var_ok[i]:.3f} "
                    f"(+- {tol_var:.0%}). Check the amplitude sqrt(2 d0) x and that d0 is the "
                    f"argument of your function.")
    again = call("closure_ensemble", func, 0.8 * _d0(), n_members=m, seed=3)
    other = call("closure_ensemble", func, 0.8 * _d0(), n_members=m, seed=4)
    first = call("closure_ensemble", func, 0.8 * _d0(), n_members=m, seed=3)
    require(np.array_equal(np.asarray(again[1]), np.asarray(first[1])),
            "the same seed gave two different ensembles: draw the noise from a generator "
            "seeded with `seed` (st.stochastic_heun(..., seed=seed) does)")
    require(not np.array_equal(np.asarray(other[1]), np.asarray(first[1])),
            "different seeds gave the same ensemble: pass `seed` on to the integrator")
    return passed(f"E[ln x] and Var[ln x] follow ln x0 - alpha t and 2 d0 t at t = 0.5, 1, 2 "
                  f"for two values of d0 ({m} members)")


@lab_check
def log_variance_full(fn: Callable) -> bool:
    """Check ``fn(t)``, the variance of ``ln x(t)`` in the full system: an array of times in,
    an array of the same shape out (a scalar for a scalar), zero at t = 0."""
    if not callable(fn):
        raise LabCheckError("pass your function itself: "
                            "`check.log_variance_full(var_log_full)`")
    p = PARAMS
    beta, sig, lam = p["beta"], p["sigma_y"], p["lam"]
    forbidden = {"nnparam.stochastic.log_variance_full": _NO_VAR}
    t = np.geomspace(1e-2, 1e2, 41) / lam
    got = as_array("var_log_full(t)",
                   call_without("var_log_full", fn, forbidden, t.copy(),
                                inputs="an array of 41 times"), shape=t.shape)
    exact = st.log_variance_full(t, beta, sig, lam)
    rel = np.abs(got / exact - 1)
    if not np.all(rel < 1e-3):
        white = st.log_variance_sde(t, beta, sig, lam)
        require(not np.allclose(got, white, rtol=1e-3),
                "your variance is 2 D0 t, the white-noise (Markov) law of the reduced SDE. It "
                "holds only for lam t >> 1; at lam t ~ 1 the forcing still remembers its "
                "initial value. Integrate the autocovariance: Var = 2 * int_0^t (t - tau) "
                "C(tau) dtau.")
        require(not np.allclose(got, beta**2 * sig**2 * t**2, rtol=1e-3),
                "your variance is beta^2 sigma_y^2 t^2, the ballistic law: y frozen at its "
                "initial value. It holds only for lam t << 1; later y decorrelates and the "
                "growth becomes linear in t.")
        require(not np.allclose(got * lam, exact, rtol=1e-3) and
                not np.allclose(got / lam, exact, rtol=1e-3),
                "your variance is off by a factor lam: check the units. beta^2 sigma_y^2 has "
                "units 1/time^2, so the prefactor of (lam t - 1 + exp(-lam t)) needs 1/lam^2.")
        require(not np.allclose(got, exact / 2, rtol=1e-3),
                "your variance is half the exact one: the double integral over s and s' counts "
                "each pair twice, Var = 2 beta^2 sigma_y^2 (lam t - 1 + exp(-lam t)) / lam^2")
        worst = int(np.argmax(rel))
        raise LabCheckError(f"your variance differs from the exact result by up to "
                            f"{ratio_text(got[worst], exact[worst])} at lam t = "
                            f"{lam * t[worst]:.3g} (got {got[worst]:.4g}, expected "
                            f"{exact[worst]:.4g}). Compare both limits: beta^2 sigma_y^2 t^2 "
                            f"for lam t << 1 and 2 D0 t for lam t >> 1.")
    grid = (np.array([[0.05, 0.5], [2.0, 8.0]]), "a 2-D array of times")
    got2 = as_array("var_log_full(t)", call("var_log_full", fn, grid[0], inputs=grid[1]),
                    shape=grid[0].shape)
    require(np.allclose(got2, st.log_variance_full(grid[0], beta, sig, lam), rtol=1e-3),
            "for a 2-D array of times your function gives other values: compute it element "
            "by element (numpy functions, not math.exp or a loop over a flattened copy)")
    one = as_scalar("var_log_full(0.3)", call("var_log_full", fn, 0.3, inputs="t = 0.3"))
    require(np.isclose(one, float(st.log_variance_full(0.3, beta, sig, lam)), rtol=1e-3),
            "for one time (a float) your function gives another value than for an array")
    zero = as_scalar("var_log_full(0.0)", call("var_log_full", fn, 0.0, inputs="t = 0"))
    require(abs(zero) < 1e-12, f"at t = 0 the variance should be 0, got {zero:.3g}")
    return passed("Var[ln x(t)] = 2 beta^2 sigma_y^2 (lam t - 1 + exp(-lam t)) / lam^2 on "
                  "0.01 < lam t < 100: ballistic at first, diffusive later")
