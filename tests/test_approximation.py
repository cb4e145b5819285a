"""Tests of the universal-approximation experiments against known answers."""

import numpy as np
import pytest
from torch import nn

from nnparam import approximation as ua
from nnparam import metrics


def test_tendency_and_equilibrium_slope():
    assert ua.tendency(0.0) == pytest.approx(0.0)
    eps = 1e-6
    assert (ua.tendency(eps) - ua.tendency(-eps)) / (2 * eps) == pytest.approx(-2.2, rel=1e-6)


def test_width_sweep_error_falls():
    x = np.linspace(-2, 2, 101)
    nets = ua.width_sweep(x, ua.tendency(x), (1, 4, 8), iterations=60)
    err = [metrics.rmse(ua.tendency(x), ua.evaluate(m, x)) for m in nets]
    assert err[0] > err[1] > err[2]
    assert [m[0].out_features for m in nets] == [1, 4, 8]


def test_memory_skill_matches_the_best_regression_on_data():
    # least squares on the exact basis tanh(2 x_{t-k}), k = 0..L, is the conditional mean
    d = ua.memory_series(200_000, memory=0.8, seed=5)
    y = d["y"][100:]
    for n_lags in (0, 4, 10):
        basis = np.tanh(2.0 * ua.lagged(d["x"], n_lags))[100 - n_lags:]
        design = np.column_stack([basis, np.ones(len(y))])
        fit = design @ np.linalg.lstsq(design, y, rcond=None)[0]
        assert metrics.r2_score(y, fit) == pytest.approx(ua.memory_skill(0.8, n_lags),
                                                         abs=0.005)
    assert ua.memory_skill(0.8, 0) == pytest.approx(0.36)
    with pytest.raises(ValueError, match="memory"):
        ua.memory_skill(1.0, 3)
    with pytest.raises(ValueError, match="n_lags"):
        ua.memory_skill(0.5, -1)


def test_add_hidden_unit_with_zero_weight_keeps_function():
    x = np.linspace(-2, 2, 51)
    net = ua.fit_shallow(x, ua.tendency(x), 3, iterations=20)
    grown = ua.add_hidden_unit(net, 5.0, 1.0, 0.0)
    assert np.allclose(ua.evaluate(net, x), ua.evaluate(grown, x), atol=1e-12)
    steep = ua.add_hidden_unit(net, 100.0, 0.0, 0.01)
    assert ua.slope(steep, 0.0) - ua.slope(net, 0.0) == pytest.approx(1.0, rel=1e-3)


def test_stochastic_samples_have_known_moments():
    d = ua.stochastic_samples(200_000, seed=0)
    resid = (d["y"] - d["mean"]) / d["noise_std"]
    assert resid.mean() == pytest.approx(0.0, abs=0.01)
    assert resid.std() == pytest.approx(1.0, abs=0.01)
    assert np.mean(d["y"] < d["median"]) == pytest.approx(0.5, abs=0.01)


def test_memory_series_recursion_and_lags():
    s = ua.memory_series(50, memory=0.5, seed=0)
    y_prev = s["y"][:-1]
    assert np.allclose(s["y"][1:], 0.5 * y_prev + 0.5 * np.tanh(2 * s["x"][1:]))
    lag = ua.lagged(np.arange(6.0), 2)
    assert lag.tolist() == [[2, 1, 0], [3, 2, 1], [4, 3, 2], [5, 4, 3]]


def test_diffusion_tendency_conserves_and_matches_fourier():
    n, kappa = 32, 0.01
    x = (np.arange(n) + 0.5) / n
    q = np.cos(2 * np.pi * x)
    t = ua.diffusion_tendency(q, kappa)
    assert abs(t.sum()) < 1e-13
    # second-order centred Laplacian of cos(kx): -(4/h^2) sin^2(kh/2) cos(kx)
    h, k = 1 / n, 2 * np.pi
    assert np.allclose(t, -kappa * 4 / h**2 * np.sin(k * h / 2) ** 2 * q)


def test_euler_run_linear_decay():
    run = ua.euler_run(lambda q: -q, np.array([1.0]), 0.1, 10)
    assert run[-1, 0] == pytest.approx(0.9**10)


def test_equilibrium_of_shifted_net():
    net = nn.Sequential(nn.Linear(1, 1), nn.Tanh(), nn.Linear(1, 1))
    with __import__("torch").no_grad():
        net[0].weight.fill_(1.0)
        net[0].bias.fill_(-0.3)
        net[2].weight.fill_(1.0)
        net[2].bias.fill_(0.0)
    assert ua.equilibrium(net, -1, 1) == pytest.approx(0.3, abs=1e-5)


@pytest.mark.parametrize("call, name", [
    (lambda: ua.fit_shallow([0, 1], [0, 1, 2], 2), "y"),
    (lambda: ua.fit_shallow([0, 1], [0, 1], 0), "width"),
    (lambda: ua.width_sweep([0, 1], [0, 1], (4, 2)), "widths"),
    (lambda: ua.stochastic_samples(1), "n"),
    (lambda: ua.memory_series(10, memory=1.0), "memory"),
    (lambda: ua.lagged([1.0, 2.0], 5), "n_lags"),
    (lambda: ua.diffusion_tendency(np.ones((2, 2, 2))), "q"),
    (lambda: ua.diffusion_tendency(np.ones(8), kappa=-1), "kappa"),
    (lambda: ua.euler_run(lambda q: q, [1.0], 0.0, 3), "dt"),
    (lambda: ua.euler_run(lambda q: q, [1.0], 0.1, 0), "n_steps"),
    (lambda: ua.add_hidden_unit(nn.Sequential(nn.Linear(1, 1)), 1, 0, 0), "model"),
    (lambda: ua.tendency([np.nan]), "q"),
])
def test_bad_input(call, name):
    with pytest.raises(ValueError, match=name):
        call()
