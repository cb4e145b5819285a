"""Lab 5 checks: typical wrong answers are rejected with a message naming the mistake, valid
alternatives are accepted."""

import math

import numpy as np
import pytest

from nnparam import stochastic as st
from nnparam.labs import checks_stochastic as check
from nnparam.labs.feedback import LabCheckError

P = check.PARAMS
ALPHA, BETA, X0 = P["alpha"], P["beta"], P["x0"]
SIGMA_Y, LAM = P["sigma_y"], P["lam"]

# --- exercise 1: Green-Kubo -------------------------------------------------------------------


def _gk(y, dt, max_lag, estimator="unbiased", demean=0, lags=None, rule="trapezoid",
        members=None):
    y = np.asarray(y, dtype=float)
    if members is not None:
        y = y[:, members]
    if demean == 0:
        yp = y - y.mean(axis=0)
    elif demean == 1:
        yp = y - y.mean(axis=1, keepdims=True)
    elif demean is None:
        yp = y
    else:
        yp = y - y.mean()
    n = yp.shape[0]
    ks = range(max_lag + 1) if lags is None else lags
    if estimator == "unbiased":
        c = np.array([np.mean(yp[: n - k] * yp[k:]) for k in ks])
    else:  # biased: divide by n
        c = np.array([np.sum(yp[: n - k] * yp[k:]) / (n * yp.shape[1]) for k in ks])
    if rule == "trapezoid":
        return float(dt * (c.sum() - 0.5 * (c[0] + c[-1])))
    if rule == "left":
        return float(dt * c[:-1].sum())
    if rule == "right":
        return float(dt * c[1:].sum())
    return float(np.trapezoid(c, dx=dt))


@pytest.mark.parametrize("func", [
    _gk,
    lambda y, dt, k: _gk(y, dt, k, estimator="biased"),
    lambda y, dt, k: _gk(y, dt, k, rule="np.trapezoid"),
    lambda y, dt, k: np.float64(_gk(y, dt, k)),
], ids=["unbiased", "biased /n", "np.trapezoid", "numpy float"])
def test_green_kubo_accepts_valid_answers(func):
    assert check.green_kubo(func)


GK_WRONG = {
    "no mean removed": (lambda y, dt, k: _gk(y, dt, k, demean=None), "time mean"),
    "mean over members": (lambda y, dt, k: _gk(y, dt, k, demean=1), "axis=1"),
    "one global mean": (lambda y, dt, k: _gk(y, dt, k, demean="all"), "one mean"),
    "lags one short": (lambda y, dt, k: _gk(y, dt, k, lags=range(k)), "max_lag \\+ 1"),
    "left Riemann": (lambda y, dt, k: _gk(y, dt, k, rule="left"), "left Riemann"),
    "right Riemann": (lambda y, dt, k: _gk(y, dt, k, rule="right"), "right Riemann"),
    "forgot dt": (lambda y, dt, k: _gk(y, 1.0, k), "sampling interval"),
    "normalised": (lambda y, dt, k: _gk(y, dt, k) / np.var(y - y.mean(axis=0)),
                   "normalised autocorrelation"),
    "two-sided": (lambda y, dt, k: 2 * _gk(y, dt, k), "twice"),
    "first member only": (lambda y, dt, k: _gk(y, dt, k, members=[0]), "ALL members"),
    "members flattened": (lambda y, dt, k: _gk(np.asarray(y).reshape(-1, 1), dt, k),
                          "flattened"),
    "engine shortcut": (lambda y, dt, k: st.green_kubo(y, dt, k), "st.green_kubo|green_kubo"),
    "returns C": (lambda y, dt, k: np.ones(k + 1), "one number"),
    "negative": (lambda y, dt, k: -_gk(y, dt, k), "expected"),
    "a number instead of the function": (0.025, "function itself"),
}


@pytest.mark.parametrize("case", GK_WRONG, ids=str)
def test_green_kubo_rejects_typical_mistakes(case):
    func, message = GK_WRONG[case]
    with pytest.raises(LabCheckError, match=message):
        check.green_kubo(func)


def test_engine_shortcut_is_caught_when_imported_by_name():
    from nnparam.stochastic import green_kubo

    def shortcut(y, dt, max_lag):
        return green_kubo(y, dt, max_lag)

    with pytest.raises(LabCheckError, match="green_kubo"):
        check.green_kubo(shortcut)
    assert st.green_kubo(np.ones((10, 2)) + np.arange(10)[:, None], 1.0, 2) is not None


# --- exercise 2: the ensemble -------------------------------------------------------------------

def _heun(d0, n_members, seed, **kw):
    amp = np.sqrt(2 * d0)
    args = {"dt": 0.01, "n_steps": 200, "save_every": 10} | kw
    return st.stochastic_heun(lambda x: -ALPHA * x, lambda x: amp * x, X0, args["dt"],
                              args["n_steps"], n_members=n_members, seed=seed,
                              save_every=args["save_every"])


def _ito_corrected(d0, n_members, seed):
    amp = np.sqrt(2 * d0)
    return st.euler_maruyama(lambda x: (d0 - ALPHA) * x, lambda x: amp * x, X0, 0.01, 200,
                             n_members=n_members, seed=seed, save_every=10)


def _exact(d0, n_members, seed):
    t = np.linspace(0, 2, 21)
    rng = np.random.default_rng(seed)
    dw = rng.standard_normal((20, n_members)) * np.sqrt(0.1)
    w = np.vstack([np.zeros(n_members), np.cumsum(dw, axis=0)])
    return t, X0 * np.exp(-ALPHA * t[:, None] + np.sqrt(2 * d0) * w)


def _own_loop(d0, n_members, seed):
    rng = np.random.default_rng(seed)
    x = np.full(n_members, X0)
    out, amp, dt = [x.copy()], np.sqrt(2 * d0), 0.01
    for n in range(1, 201):
        dw = np.sqrt(dt) * rng.standard_normal(n_members)
        pred = x - ALPHA * x * dt + amp * x * dw
        x = x + 0.5 * (-ALPHA * x - ALPHA * pred) * dt + 0.5 * amp * (x + pred) * dw
        if n % 10 == 0:
            out.append(x.copy())
    return list(np.arange(21) * 0.1), [list(row) for row in out]


@pytest.mark.parametrize("func", [_heun, _ito_corrected, _exact, _own_loop,
                                  lambda d0, n_members, seed: _heun(d0, n_members, seed,
                                                                    dt=0.005, n_steps=400,
                                                                    save_every=20)],
                         ids=["heun", "ito with corrected drift", "exact log-normal",
                              "own loop, lists", "finer step"])
def test_ensemble_accepts_valid_answers(func):
    assert check.reduced_ensemble(func)


def _em(d0, n_members, seed, amp_factor=1.0, drift=-ALPHA):
    amp = amp_factor * np.sqrt(2 * d0)
    return st.euler_maruyama(lambda x: drift * x, lambda x: amp * x, X0, 0.01, 200,
                             n_members=n_members, seed=seed, save_every=10)


def _w(f):
    """``f(d0, m, s)`` under the parameter names the lab uses (the check passes keywords)."""
    return lambda d0, n_members, seed: f(d0, n_members, seed)


ENS_WRONG = {
    "Ito reading": (_em, "as Ito"),
    "sqrt(D0)": (_w(lambda d0, m, s: _heun(d0 / 2, m, s)), "not sqrt\\(D\\(x\\)\\)"),
    "drift counted twice": (_w(lambda d0, m, s: st.stochastic_heun(
        lambda x: (d0 - ALPHA) * x, lambda x: np.sqrt(2 * d0) * x, X0, 0.01, 200,
        n_members=m, seed=s, save_every=10)), "counted twice"),
    "deterministic": (_w(lambda d0, m, s: _heun(0.0, m, s)), "no spread"),
    "+alpha drift": (_w(lambda d0, m, s: st.stochastic_heun(
        lambda x: ALPHA * x, lambda x: np.sqrt(2 * d0) * x, X0, 0.01, 200, n_members=m,
        seed=s, save_every=10)), "drift -alpha x"),
    "additive noise": (_w(lambda d0, m, s: st.stochastic_heun(
        lambda x: -ALPHA * x, lambda x: np.sqrt(2 * d0) + 0 * x, X0, 0.01, 200,
        n_members=m, seed=s, save_every=10)), "positive"),
    "2 D0 without root": (_w(lambda d0, m, s: _heun(2 * d0**2, m, s)),
                          "Var\\[ln x|amplitude"),
    "to t = 20": (_w(lambda d0, m, s: _heun(d0, m, s, n_steps=2000)), "runs too long"),
    "to t = 0.2": (_w(lambda d0, m, s: _heun(d0, m, s, n_steps=20)), "stops early"),
    "saved every step": (_w(lambda d0, m, s: _heun(d0, m, s, save_every=1)), "0.01 apart"),
    "fixed member count": (_w(lambda d0, m, s: _heun(d0, 200, s)), "returned 200 members"),
    "transposed": (_w(lambda d0, m, s: (_heun(d0, m, s)[0], _heun(d0, m, s)[1].T)),
                   "transposed"),
    "(x, t) swapped": (_w(lambda d0, m, s: _heun(d0, m, s)[::-1]), "shape"),
    "fitted D0 instead of d0": (_w(lambda d0, m, s: _heun(0.4, m, s)), "argument"),
    "seed ignored": (_w(lambda d0, m, s: _heun(d0, m, 0)), "different seeds"),
    "only x": (_w(lambda d0, m, s: _heun(d0, m, s)[1]), "pair"),
    "positional names": (lambda d0, m, s: _heun(d0, m, s), "unexpected keyword"),
}


@pytest.mark.parametrize("case", ENS_WRONG, ids=str)
def test_ensemble_rejects_typical_mistakes(case):
    func, message = ENS_WRONG[case]
    with pytest.raises(LabCheckError, match=message):
        check.reduced_ensemble(func)


def test_unseeded_ensemble_is_rejected():
    rng = np.random.default_rng(0)

    def unseeded(d0, n_members, seed):
        return _heun(d0, n_members, int(rng.integers(1000)))

    with pytest.raises(LabCheckError, match="same seed"):
        check.reduced_ensemble(unseeded)


# --- exercise 3: the variance of the full system -------------------------------------------------

def _exact_var(t):
    t = np.asarray(t, dtype=float)
    return 2 * BETA**2 * SIGMA_Y**2 * (LAM * t - 1 + np.exp(-LAM * t)) / LAM**2


def _quadrature(t):
    t = np.asarray(t, dtype=float)
    out = np.empty(t.shape)
    for idx, tt in np.ndenumerate(t):
        tau = np.linspace(0, tt, 2001)
        f = 2 * (tt - tau) * SIGMA_Y**2 * np.exp(-LAM * tau)
        out[idx] = BETA**2 * np.trapezoid(f, tau)
    return out if out.ndim else float(out)


@pytest.mark.parametrize("func", [
    _exact_var,
    lambda t: 2 * BETA**2 * SIGMA_Y**2 * (LAM * np.asarray(t) + np.expm1(-LAM * np.asarray(t)))
    / LAM**2,
    _quadrature,
    lambda t: (_exact_var(t).tolist() if np.ndim(t) else float(_exact_var(t))),
], ids=["closed form", "expm1", "quadrature", "lists"])
def test_variance_accepts_valid_answers(func):
    assert check.log_variance_full(func)


VAR_WRONG = {
    "white-noise law": (lambda t: 2 * BETA**2 * SIGMA_Y**2 / LAM * np.asarray(t), "2 D0 t"),
    "ballistic": (lambda t: BETA**2 * SIGMA_Y**2 * np.asarray(t) ** 2, "ballistic"),
    "1/lam": (lambda t: _exact_var(t) * LAM, "factor lam"),
    "factor 2 missing": (lambda t: _exact_var(t) / 2, "half"),
    "exp(+lam t)": (lambda t: 2 * BETA**2 * SIGMA_Y**2 * (LAM * np.asarray(t) - 1
                                                         + np.exp(LAM * np.asarray(t)))
                    / LAM**2, "times the expected"),
    "sign error": (lambda t: 2 * BETA**2 * SIGMA_Y**2 * (LAM * np.asarray(t) + 1
                                                        - np.exp(-LAM * np.asarray(t)))
                   / LAM**2, "differs"),
    "math.exp": (lambda t: 2 * BETA**2 * SIGMA_Y**2 * (LAM * t - 1 + math.exp(-LAM * t))
                 / LAM**2, "raised TypeError"),
    "scalar out": (lambda t: float(np.mean(_exact_var(t))), "shape"),
    "engine shortcut": (lambda t: st.log_variance_full(t, BETA, SIGMA_Y, LAM), "yourself"),
    "flattened": (lambda t: _exact_var(np.ravel(t)), "shape"),
    "value not function": (_exact_var(np.ones(3)), "function itself"),
}


@pytest.mark.parametrize("case", VAR_WRONG, ids=str)
def test_variance_rejects_typical_mistakes(case):
    func, message = VAR_WRONG[case]
    with pytest.raises(LabCheckError, match=message):
        check.log_variance_full(func)


def test_written_answer_numbers():
    """The model answer: at lam t = 1 the closure gives e times the spread; after twenty
    correlation times about 5 % too much."""
    d0 = BETA**2 * SIGMA_Y**2 / LAM
    ratio = lambda t: _exact_var(t) / (2 * d0 * t)  # noqa: E731
    assert abs(1 / ratio(1 / LAM) - np.e) < 1e-9
    assert abs(ratio(20 / LAM) - 0.95) < 1e-9
