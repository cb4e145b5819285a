"""nnparam.stochastic against closed forms: OU statistics, Ito/Stratonovich, Green-Kubo."""

import numpy as np
import pytest

from nnparam import stochastic as st

ALPHA, BETA, SIGMA, LAM = 1.0, 5.0, 1.0, 16.0
D0 = BETA**2 * SIGMA**2 / LAM


def test_diffusion_coefficient_formula():
    x = np.array([-2.0, 0.0, 0.5, 3.0])
    np.testing.assert_allclose(st.diffusion_coefficient(x, 2.0, 0.5, 4.0), x**2 / 4.0)
    assert st.diffusion_coefficient(1.0, BETA, SIGMA, LAM) == pytest.approx(D0)


def test_ou_process_stationary_statistics():
    dt = 0.1 / LAM
    y = st.ou_process(4000, dt, 0.5, LAM, n_members=200, seed=1)
    assert y.shape == (4001, 200)
    assert y.var() == pytest.approx(0.25, rel=0.03)
    acov = st.autocovariance(y, 20)
    np.testing.assert_allclose(acov / acov[0], np.exp(-LAM * dt * np.arange(21)), atol=0.02)


def test_green_kubo_matches_formula():
    dt = 0.1 / LAM
    y = st.ou_process(16000, dt, SIGMA, LAM, n_members=100, seed=1)
    gk = st.green_kubo(y, dt, max_lag=50)  # five correlation times
    # sampling spread ~1 %, biases ~1 % (mean removal, truncation at exp(-5))
    assert gk == pytest.approx(SIGMA**2 / LAM, rel=0.05)
    assert st.green_kubo(y, dt) == pytest.approx(SIGMA**2 / LAM, rel=0.05)  # zero crossing
    d_hat = st.diffusion_coefficient_green_kubo(2.0, BETA, y, dt, max_lag=50)
    assert d_hat == pytest.approx(st.diffusion_coefficient(2.0, BETA, SIGMA, LAM), rel=0.05)


def test_green_kubo_of_a_known_sequence():
    # alternating +-1: C[0] = 1, C[1] ~ -1, so the integral to max_lag=1 is ~ 0
    y = np.tile([1.0, -1.0], 500)
    assert st.green_kubo(y, 0.5, max_lag=1) == pytest.approx(0.0, abs=1e-2)
    with pytest.raises(ValueError, match="lag 1"):
        st.green_kubo(y, 0.5)


def test_full_system_log_statistics():
    m = 4000
    t, x, y = st.simulate_full(1.0, ALPHA, BETA, SIGMA, LAM, dt=0.05 / LAM, n_steps=320,
                               n_members=m, seed=1, save_every=80)
    assert x.shape == y.shape == (5, m) and t[-1] == pytest.approx(1.0)
    mean, var = st.log_moments(x)
    theory = st.log_variance_full(t, BETA, SIGMA, LAM)
    assert np.all(np.abs(mean - st.log_mean(t, 1.0, ALPHA)) <= 4 * np.sqrt(theory / m))
    np.testing.assert_allclose(var[1:], theory[1:], rtol=4 * np.sqrt(2 / m))


def test_log_variance_limits():
    t = np.array([1e-3, 1e3]) / LAM
    var = st.log_variance_full(t, BETA, SIGMA, LAM)
    assert var[0] == pytest.approx(BETA**2 * SIGMA**2 * t[0] ** 2, rel=1e-3)  # ballistic
    assert var[1] == pytest.approx(st.log_variance_sde(t[1], BETA, SIGMA, LAM), rel=2e-3)
    # E[x] of a log-normal: exp(mean + var/2)
    assert st.mean_x_sde(2.0, 1.0, ALPHA, BETA, SIGMA, LAM) == pytest.approx(
        np.exp(-2 * ALPHA + 0.5 * st.log_variance_sde(2.0, BETA, SIGMA, LAM)))
    assert st.mean_x_full(0.0, 3.0, ALPHA, BETA, SIGMA, LAM) == pytest.approx(3.0)


def test_heun_is_stratonovich_and_em_is_ito():
    m = 20000
    drift, diff = st.reduced_sde(ALPHA, BETA, SIGMA, LAM)
    t, xs = st.stochastic_heun(drift, diff, 1.0, 2e-3, 500, n_members=m, seed=3, save_every=250)
    _, xe = st.euler_maruyama(drift, diff, 1.0, 2e-3, 500, n_members=m, seed=3, save_every=250)
    ms, vs = st.log_moments(xs)
    me, _ = st.log_moments(xe)
    se = 4 * np.sqrt(st.log_variance_sde(t, BETA, SIGMA, LAM) / m)
    assert np.all(np.abs(ms - st.log_mean(t, 1.0, ALPHA)) <= se)
    np.testing.assert_allclose(vs[1:], st.log_variance_sde(t[1:], BETA, SIGMA, LAM),
                               rtol=4 * np.sqrt(2 / m))
    # same noise: the Ito reading of a Stratonovich SDE shifts E[ln x] by -D0 t
    np.testing.assert_allclose(me - ms, -D0 * t, rtol=0.03)
    # Euler-Maruyama with the Ito-equivalent drift (D0 - alpha) x recovers the Stratonovich law
    _, xi = st.euler_maruyama(lambda x: (D0 - ALPHA) * x, diff, 1.0, 2e-3, 500, n_members=m,
                              seed=3, save_every=250)
    np.testing.assert_allclose(st.log_moments(xi)[0], ms, atol=0.03)


def test_integrators_on_additive_noise_ou():
    # dx = -x dt + sqrt(2) dW: stationary variance 1 from x0 = 0, same law for Ito and Heun
    m = 5000
    for integ in (st.euler_maruyama, st.stochastic_heun):
        _, x = integ(lambda x: -x, lambda x: np.sqrt(2.0) * np.ones_like(x), 0.0, 0.01, 500,
                     n_members=m, seed=5)
        assert x[-1].var() == pytest.approx(1.0 - np.exp(-10), rel=0.06)
        assert x.shape == (501, m)


def test_seeded_and_save_every():
    drift, diff = st.reduced_sde(ALPHA, BETA, SIGMA, LAM)
    a = st.stochastic_heun(drift, diff, 1.0, 1e-2, 10, n_members=3, seed=7, save_every=5)
    b = st.stochastic_heun(drift, diff, 1.0, 1e-2, 10, n_members=3, seed=7)
    np.testing.assert_array_equal(a[1], b[1][::5])
    np.testing.assert_allclose(a[0], [0.0, 0.05, 0.1])


@pytest.mark.parametrize("call, name", [
    (lambda: st.diffusion_coefficient(1.0, 1.0, -1.0, 1.0), "sigma_y"),
    (lambda: st.diffusion_coefficient(1.0, 1.0, 1.0, 0.0), "lam"),
    (lambda: st.diffusion_coefficient([np.nan], 1.0, 1.0, 1.0), "x"),
    (lambda: st.ou_process(10, -0.1, 1.0, 1.0), "dt"),
    (lambda: st.ou_process(0, 0.1, 1.0, 1.0), "n_steps"),
    (lambda: st.ou_process(10, 0.1, 1.0, 1.0, n_members=2, y0=[1.0, 2.0, 3.0]), "y0"),
    (lambda: st.simulate_full(1.0, -1.0, 1.0, 1.0, 1.0, 0.1, 10), "alpha"),
    (lambda: st.simulate_full([1.0, 2.0], 1.0, 1.0, 1.0, 1.0, 0.1, 10, n_members=3), "x0"),
    (lambda: st.simulate_full(1.0, 1.0, 1.0, 1.0, 1.0, 0.1, 10, save_every=0), "save_every"),
    (lambda: st.euler_maruyama(1.0, lambda x: x, 1.0, 0.1, 10), "drift"),
    (lambda: st.stochastic_heun(lambda x: x, None, 1.0, 0.1, 10), "diffusion"),
    (lambda: st.stochastic_heun(lambda x: x, lambda x: x, 1.0, 0.0, 10), "dt"),
    (lambda: st.euler_maruyama(lambda x: x, lambda x: x, 1.0, 0.1, 10, n_members=0),
     "n_members"),
    (lambda: st.autocovariance(np.ones((3, 2, 2)), 1), "y"),
    (lambda: st.autocovariance(np.arange(5.0), 5), "max_lag"),
    (lambda: st.autocovariance(np.arange(5.0), None), "max_lag"),
    (lambda: st.autocovariance(np.arange(5.0), 1.5), "max_lag"),
    (lambda: st.green_kubo(np.arange(5.0), 0.0), "dt"),
    (lambda: st.green_kubo([1.0], 0.1), "y"),
    (lambda: st.log_moments([1.0, -1.0]), "x"),
    (lambda: st.log_mean(-1.0, 1.0, 1.0), "t"),
    (lambda: st.log_mean(1.0, 0.0, 1.0), "x0"),
    (lambda: st.log_variance_full(1.0, 1.0, 1.0, -2.0), "lam"),
    (lambda: st.mean_x_sde(1.0, 1.0, 1.0, np.inf, 1.0, 1.0), "beta"),
    (lambda: st.reduced_sde(1.0, 1.0, 0.0, 1.0), "sigma_y"),
])
def test_bad_input_names_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
