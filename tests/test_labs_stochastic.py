"""The checks of lab 5 accept the solution and reject each typical mistake with its message."""

import numpy as np
import pytest

from nnparam import stochastic as st
from nnparam.labs import checks_stochastic as check
from nnparam.labs.feedback import LabCheckError

P = check.PARAMS
ALPHA, BETA, SIG, LAM, X0 = P["alpha"], P["beta"], P["sigma_y"], P["lam"], P["x0"]
DT, LAG = P["dt_y"], P["max_lag"]
D0 = BETA**2 * SIG**2 / LAM


@pytest.fixture(scope="module")
def acov():
    y = st.ou_process(n_steps=20_000, dt=DT, sigma_y=SIG, lam=LAM, n_members=50, seed=5)
    return st.autocovariance(y, LAG)


def trapezoid(c):
    return DT * (c.sum() - 0.5 * (c[0] + c[-1]))


def test_green_kubo_accepts_solution(acov, capsys):
    assert check.green_kubo(trapezoid(acov))
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (lambda c: trapezoid(c / c[0]), "normalised autocorrelation"),
    (lambda c: 2 * trapezoid(c), "one-sided"),
    (lambda c: trapezoid(c) / DT, "without multiplying by the sampling interval dt"),
    (lambda c: DT * c.sum(), "trapezoidal rule"),
    (lambda c: -trapezoid(c), "should be positive"),
    (lambda c: 0.5 * trapezoid(c), "times the exact"),
    (lambda c: np.array([trapezoid(c), 1.0]), "one number"),
    (lambda c: None, "None"),
])
def test_green_kubo_rejects_mistakes(acov, wrong, message):
    with pytest.raises(LabCheckError, match=message):
        check.green_kubo(wrong(acov))


def _ensemble(drift, amp, integrator=st.stochastic_heun, m=2000, x0=X0):
    return integrator(drift, lambda x: amp * x, x0, 0.01, 200, n_members=m, seed=7,
                      save_every=10)


def test_reduced_ensemble_accepts_solution(capsys):
    assert check.reduced_ensemble(*_ensemble(lambda x: -ALPHA * x, np.sqrt(2 * D0)))
    assert "[ok]" in capsys.readouterr().out
    # the Ito-equivalent drift with Euler-Maruyama is right too
    assert check.reduced_ensemble(*_ensemble(lambda x: (D0 - ALPHA) * x, np.sqrt(2 * D0),
                                             st.euler_maruyama))


@pytest.mark.parametrize("args, message", [
    ((lambda x: -ALPHA * x, np.sqrt(2 * D0), st.euler_maruyama), "as Ito"),
    ((lambda x: -ALPHA * x, np.sqrt(D0)), r"sqrt\(2 D\(x\)\), not sqrt\(D\(x\)\)"),
    ((lambda x: -ALPHA * x, 0.0), "deterministic closure"),
    ((lambda x: (D0 - ALPHA) * x, np.sqrt(2 * D0)), "counted twice"),
    ((lambda x: -2 * ALPHA * x, np.sqrt(2 * D0)), "Check the drift"),
    ((lambda x: -ALPHA * x, np.sqrt(3 * D0)), "Check D0"),
])
def test_reduced_ensemble_rejects_mistakes(args, message):
    with pytest.raises(LabCheckError, match=message):
        check.reduced_ensemble(*_ensemble(*args))


def test_reduced_ensemble_rejects_bad_shapes():
    t, x = _ensemble(lambda x: -ALPHA * x, np.sqrt(2 * D0), m=100)
    with pytest.raises(LabCheckError, match="at least 500"):
        check.reduced_ensemble(t, x)
    t, x = _ensemble(lambda x: -ALPHA * x, np.sqrt(2 * D0))
    with pytest.raises(LabCheckError, match="shape"):
        check.reduced_ensemble(t[:-1], x)
    with pytest.raises(LabCheckError, match="start from x0"):
        check.reduced_ensemble(*_ensemble(lambda x: -ALPHA * x, np.sqrt(2 * D0), x0=2.0))


def exact(t):
    return 2 * BETA**2 * SIG**2 * (LAM * t - 1 + np.exp(-LAM * t)) / LAM**2


def test_log_variance_accepts_solution(capsys):
    assert check.log_variance_full(exact)
    assert "[ok]" in capsys.readouterr().out


def _not_written(t):
    raise NotImplementedError("Exercise: replace this line with your code")


@pytest.mark.parametrize("fn, message", [
    (lambda t: 2 * D0 * t, "white-noise"),
    (lambda t: BETA**2 * SIG**2 * t**2, "ballistic"),
    (lambda t: exact(t) * LAM, "factor lam"),
    (lambda t: 2 * BETA**2 * SIG**2 * (LAM * t - 1 + np.exp(-2 * LAM * t)) / LAM**2, "worst at"),
    (lambda t: 1.0, "shape"),
    (_not_written, "not written yet"),
    ("exact", "pass your function"),
])
def test_log_variance_rejects_mistakes(fn, message):
    with pytest.raises(LabCheckError, match=message):
        check.log_variance_full(fn)
