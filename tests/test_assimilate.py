"""nnparam.assimilate against the exact Kalman solution of linear-Gaussian problems."""

import numpy as np
import pytest

from nnparam import assimilate as da
from nnparam import l96


def _kalman(mean, cov, H, R, y):
    S = H @ cov @ H.T + R
    gain = cov @ H.T @ np.linalg.inv(S)
    return mean + gain @ (y - H @ mean), cov - gain @ H @ cov


def test_gaspari_cohn_values():
    r = np.array([0.0, 1.0, 2.0, 3.0, 0.5, 1.5])
    w = da.gaspari_cohn(r, radius=1.0)
    assert w[0] == 1.0 and w[2] == 0.0 and w[3] == 0.0
    assert w[1] == pytest.approx(5 / 24)  # both branches meet at z = 1
    assert w[4] == pytest.approx(-0.25 / 32 + 0.5 / 16 + 0.625 / 8 - 5 / 12 + 1)
    assert 0 < w[5] < w[1]
    loc = da.ring_localisation(8, 2.0)
    assert np.allclose(loc, loc.T) and np.allclose(np.diag(loc), 1.0)
    assert loc[0, 7] == loc[0, 1] and loc[0, 4] == pytest.approx(da.gaspari_cohn(4.0, 2.0))
    assert np.all(np.linalg.eigvalsh(loc) > -1e-12)  # a correlation: positive semi-definite


def test_enkf_mean_is_the_exact_kalman_update_of_the_ensemble():
    rng = np.random.default_rng(0)
    ens = rng.normal(size=(10, 6)) @ np.triu(np.ones((6, 6))) * 0.5 + 1.0
    idx, R, y = np.array([1, 4]), np.diag([0.3, 0.5]), np.array([2.0, -1.0])
    H = np.eye(6)[idx]
    mean, cov = ens.mean(axis=0), np.cov(ens.T)
    exact_mean, _ = _kalman(mean, cov, H, R, y)
    ana = da.enkf_analysis(ens, y, idx, R, rng=np.random.default_rng(1))
    np.testing.assert_allclose(ana.mean(axis=0), exact_mean, rtol=1e-12, atol=1e-12)


def test_enkf_covariance_matches_kalman_for_a_large_ensemble():
    rng = np.random.default_rng(2)
    n, m = 3, 40000
    cov = np.array([[1.0, 0.6, 0.2], [0.6, 2.0, 0.5], [0.2, 0.5, 1.5]])
    ens = rng.multivariate_normal([0.0, 1.0, -1.0], cov, size=m)
    idx, R, y = np.array([0]), np.array([[0.5]]), np.array([1.2])
    mean_a, cov_a = _kalman(ens.mean(axis=0), np.cov(ens.T), np.eye(n)[idx], R, y)
    ana = da.enkf_analysis(ens, y, idx, R, rng=rng)
    np.testing.assert_allclose(np.cov(ana.T), cov_a, atol=0.03)
    collapsed = da.enkf_analysis(ens, y, idx, R, perturb=False)
    assert np.var(collapsed[:, 0]) < 0.8 * cov_a[0, 0]  # no perturbations: too little spread
    np.testing.assert_allclose(collapsed.mean(axis=0), mean_a, atol=1e-10)


def test_inflation_and_localisation():
    rng = np.random.default_rng(3)
    ens = rng.normal(size=(5, 8))
    y, idx = np.array([0.0]), np.array([0])
    loc = da.ring_localisation(8, 1.0)
    ana = da.enkf_analysis(ens, y, idx, 1.0, localisation=loc, perturb=False)
    # components beyond 2 radii of the observation are untouched by a localised update
    far = [3, 4, 5]
    np.testing.assert_allclose(ana[:, far], ens[:, far])
    inflated = da.enkf_analysis(ens, y, idx, 1e12, inflation=1.5, perturb=False)
    np.testing.assert_allclose(inflated - inflated.mean(0), 1.5 * (ens - ens.mean(0)),
                               rtol=1e-9)


def test_eki_one_iteration_is_the_exact_posterior_for_a_linear_problem():
    rng = np.random.default_rng(4)
    A = np.array([[1.0, 0.5], [0.0, 2.0], [1.0, -1.0]])
    m0, C0 = np.array([0.5, -0.5]), np.diag([1.0, 0.5])
    gamma = np.diag([0.2, 0.1, 0.3])
    y = A @ np.array([1.0, 0.2]) + rng.multivariate_normal(np.zeros(3), gamma)
    prior = rng.multivariate_normal(m0, C0, size=40000)
    post = da.eki(lambda th: A @ th, prior, y, gamma, n_iter=1, seed=5)
    mean, cov = _kalman(m0, C0, A, gamma, y)
    np.testing.assert_allclose(post.mean(axis=0), mean, atol=0.01)
    np.testing.assert_allclose(np.cov(post.T), cov, atol=0.01)
    # n iterations assimilate the data n times: the posterior of gamma / n
    post3 = da.eki(lambda th: th @ A.T, prior, y, gamma, n_iter=3, seed=6, vectorized=True)
    mean3, cov3 = _kalman(m0, C0, A, gamma / 3, y)
    np.testing.assert_allclose(post3.mean(axis=0), mean3, atol=0.01)
    np.testing.assert_allclose(np.cov(post3.T), cov3, atol=0.01)


def test_eki_calibrates_a_nonlinear_forward_with_few_members():
    def forward(th):  # statistics of a two-parameter model
        return np.array([th[0] ** 2 + th[1], np.exp(0.3 * th[1])])

    truth = np.array([1.5, 0.5])
    rng = np.random.default_rng(7)
    prior = rng.normal([1.0, 0.0], 0.5, size=(20, 2))
    final, hist, outs = da.eki(forward, prior, forward(truth), np.diag([1e-4, 1e-4]),
                               n_iter=10, return_history=True)
    np.testing.assert_allclose(final.mean(axis=0), truth, atol=0.02)
    assert len(hist) == 11 and len(outs) == 10
    assert np.std(final, axis=0).max() < 0.2 * np.std(prior, axis=0).min()  # collapse


def test_run_enkf_tracks_a_truth_better_than_the_free_model():
    truth = l96.simulate_one_scale(None, dt=0.005, n_steps=4000, save_every=10, seed=1)
    X = truth["X"].values[100:]  # after 5 MTU of spin-up
    idx = np.arange(0, 8, 2)
    obs = da.observe(X, idx, 0.5, seed=2)
    ds = da.run_enkf(obs, idx, 0.5, n_members=20, steps_per_cycle=10, seed=3)
    assert ds["increment"].shape == (X.shape[0], 8)
    err_a = np.sqrt(np.mean((ds["analysis"].values[50:] - X[50:]) ** 2))
    assert err_a < 0.5  # below the observation error, unobserved components included
    assert np.isclose(ds.attrs["cycle_length"], 0.05)


def test_bad_input():
    ens = np.zeros((5, 8))
    with pytest.raises(ValueError, match="at least 2 members"):
        da.enkf_analysis(np.zeros((1, 8)), [0.0], [0], 1.0)
    with pytest.raises(ValueError, match="obs_idx"):
        da.enkf_analysis(ens, [0.0], [8], 1.0)
    with pytest.raises(ValueError, match="obs_idx"):
        da.enkf_analysis(ens, [0.0, 1.0], [2, 2], 1.0)
    with pytest.raises(ValueError, match="y must hold one value"):
        da.enkf_analysis(ens, [0.0, 1.0], [0], 1.0)
    with pytest.raises(ValueError, match="positive definite"):
        da.enkf_analysis(ens, [0.0, 1.0], [0, 1], np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="inflation"):
        da.enkf_analysis(ens, [0.0], [0], 1.0, inflation=0.9)
    with pytest.raises(ValueError, match="noise_cov"):
        da.eki(lambda t: t, np.zeros((4, 2)), np.zeros(2), -np.eye(2), 1)
    with pytest.raises(ValueError, match="prior needs at least 2 members"):
        da.eki(lambda t: t, np.zeros((1, 2)), np.zeros(2), np.eye(2), 1)
    with pytest.raises(ValueError, match="forward must return 3 statistics"):
        da.eki(lambda t: t, np.ones((4, 2)), np.zeros(3), np.eye(3), 1)
    with pytest.raises(ValueError, match="observations must have one column"):
        da.run_enkf(np.zeros((5, 3)), [0, 2], 0.5)
