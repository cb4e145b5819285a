"""Tests of nnparam.uq against analytic references, sampling and bad input."""

import math

import numpy as np
import pytest
import torch

from nnparam import uq


# ------------------------------------------------------------------ Gaussian NLL
def test_gaussian_nll_matches_log_density():
    rng = np.random.default_rng(1)
    y, mu = rng.normal(size=50), rng.normal(size=50)
    var = rng.uniform(0.2, 3.0, size=50)
    density = np.exp(-(y - mu) ** 2 / (2 * var)) / np.sqrt(2 * np.pi * var)
    assert uq.gaussian_nll(y, mu, var) == pytest.approx(-np.mean(np.log(density)), rel=1e-12)


def test_gaussian_nll_torch_twin_agrees_with_numpy():
    rng = np.random.default_rng(2)
    y, mu, var = rng.normal(size=20), rng.normal(size=20), rng.uniform(0.5, 2, size=20)
    out = torch.tensor(np.stack([mu, var], axis=1))
    torch_val = float(uq.gaussian_nll_loss(out, torch.tensor(y[:, None])))
    assert torch_val == pytest.approx(uq.gaussian_nll(y, mu, var), rel=1e-10)


def test_gaussian_nll_is_minimised_by_the_sample_variance():
    y = np.random.default_rng(3).normal(2.0, 1.5, size=4000)
    best = y.var()
    values = [uq.gaussian_nll(y, np.full_like(y, y.mean()), np.full_like(y, v))
              for v in (0.8 * best, best, 1.25 * best)]
    assert values[1] < values[0] and values[1] < values[2]


def test_heteroscedastic_mlp_variance_is_positive_and_floored():
    model = uq.HeteroscedasticMLP(2, 1, hidden=(8,), seed=0, min_var=1e-3)
    out = model(torch.randn(100, 2) * 50)
    assert out.shape == (100, 2)
    assert bool((out[:, 1] >= 1e-3).all())


# ------------------------------------------------------------------ decomposition
def test_decompose_analytic_two_members():
    mu = np.array([[0.0, 1.0], [2.0, 1.0]])
    var = np.array([[1.0, 4.0], [3.0, 2.0]])
    aleatoric, epistemic = uq.decompose(mu, var)
    np.testing.assert_allclose(aleatoric, [2.0, 3.0])
    np.testing.assert_allclose(epistemic, [1.0, 0.0])  # population variance, divisor M


def test_decompose_sum_equals_mixture_variance_by_sampling():
    rng = np.random.default_rng(4)
    mu = rng.normal(0, 2, size=(5, 3))
    var = rng.uniform(0.1, 2.0, size=(5, 3))
    aleatoric, epistemic = uq.decompose(mu, var)
    samples = uq.sample_mixture(mu, var, 400_000, seed=5)
    assert samples.shape == (400_000, 3)
    total = aleatoric + epistemic
    # standard error of a sample variance ~ total * sqrt(kurtosis-ish / n): 1 % is > 5 sigma
    np.testing.assert_allclose(samples.var(axis=0), total, rtol=0.01)


def test_decompose_shapes_and_bad_input():
    mu = np.zeros((3, 7))
    a, e = uq.decompose(mu, np.ones((3, 7)))
    assert a.shape == e.shape == (7,)
    with pytest.raises(ValueError, match="var must have the shape"):
        uq.decompose(mu, np.ones((3, 6)))
    with pytest.raises(ValueError, match="var must be non-negative"):
        uq.decompose(mu, -np.ones((3, 7)))
    with pytest.raises(ValueError, match="M >= 2"):
        uq.decompose(np.zeros((1, 7)), np.ones((1, 7)))
    with pytest.raises(ValueError, match="mu must be 2-D"):
        uq.decompose(np.zeros(7), np.ones(7))
    with pytest.raises(ValueError, match="var contains NaN"):
        uq.decompose(mu, np.full((3, 7), np.nan))


def test_ood_flag_threshold_from_reference():
    flag, threshold = uq.ood_flag([0.1, 0.5, 2.0], reference=[0.1, 0.2, 0.3, 0.4], quantile=1.0)
    assert threshold == pytest.approx(0.4)
    assert flag.tolist() == [False, True, True]
    with pytest.raises(ValueError, match="epistemic must be non-negative"):
        uq.ood_flag([-1.0], [1.0])
    with pytest.raises(ValueError, match="reference must be non-negative"):
        uq.ood_flag([1.0], [-1.0])
    with pytest.raises(ValueError, match="quantile"):
        uq.ood_flag([1.0], [1.0], quantile=1.5)
    with pytest.raises(ValueError, match="factor"):
        uq.ood_flag([1.0], [1.0], factor=0)


# ------------------------------------------------------------------ ensembles
@pytest.fixture(scope="module")
def cubic_ensemble():
    x, y = uq.cubic_toy(20, seed=0)
    ens = uq.train_ensemble(x, y, members=3, hidden=(16, 16), activation="relu", warmup=200,
                            epochs=100, weight_decay=0.03, seed=0)
    return x, y, ens


def test_bootstrap_counts_resample_each_member_differently(cubic_ensemble):
    _, _, ens = cubic_ensemble
    assert ens.size == 3
    np.testing.assert_array_equal(ens.counts.sum(axis=1), [20, 20, 20])
    assert not np.array_equal(ens.counts[0], ens.counts[1])
    # drawing with replacement leaves out about 1/e of the points per member
    assert np.all((ens.counts == 0).sum(axis=1) > 0)


def test_stacked_members_equal_standalone_networks(cubic_ensemble):
    x, _, ens = cubic_ensemble
    mu, var = ens.predict(x)
    assert mu.shape == var.shape == (3, 20)
    z = torch.as_tensor(ens.x_scale.transform(x[:, None]), dtype=torch.float32)
    for m in range(ens.size):
        with torch.no_grad():
            out = ens.member(m)(z).numpy()
        np.testing.assert_allclose(out[:, 0] * ens.y_std + ens.y_mean, mu[m], rtol=1e-4,
                                   atol=1e-3)
        np.testing.assert_allclose(out[:, 1] * ens.y_std**2, var[m], rtol=1e-4)


def test_members_differ_and_epistemic_grows_away_from_data(cubic_ensemble):
    _, _, ens = cubic_ensemble
    inside, outside = np.linspace(-3.5, 3.5, 30), np.linspace(6, 8, 10)
    _, ep_in = uq.decompose(*ens.predict(inside))
    _, ep_out = uq.decompose(*ens.predict(outside))
    assert ep_out.mean() > 5 * ep_in.mean()


def test_member_index_and_feature_count_are_checked(cubic_ensemble):
    _, _, ens = cubic_ensemble
    with pytest.raises(ValueError, match="m must be a member index"):
        ens.member(3)
    with pytest.raises(ValueError, match="x must have 1 features"):
        ens.predict(np.ones((4, 2)))


def test_validation_block_enables_early_stopping():
    x, y = uq.cubic_toy(40, seed=1)
    ens = uq.train_ensemble(x[::2], y[::2], members=2, hidden=(8,), epochs=2000, patience=20,
                            validation=(x[1::2], y[1::2]), seed=0)
    mu, var = ens.predict(x)
    assert mu.shape == var.shape == (2, 40)
    assert np.all(var > 0)


def test_train_ensemble_bad_input():
    x, y = uq.cubic_toy(20, seed=0)
    with pytest.raises(ValueError, match="members"):
        uq.train_ensemble(x, y, members=1)
    with pytest.raises(ValueError, match="y must have 20 samples"):
        uq.train_ensemble(x, y[:-1])
    with pytest.raises(ValueError, match="validation\\[0\\] must have 1 features"):
        uq.train_ensemble(x, y, validation=(np.ones((4, 2)), np.ones(4)), epochs=1)


# ------------------------------------------------------------------ pinball and quantiles
def test_pinball_loss_by_hand():
    y = np.array([1.0, 2.0, 3.0])
    q = np.array([2.0, 2.0, 2.0])
    # u = y - q = (-1, 0, 1): over-prediction costs (1 - tau), under-prediction tau
    assert uq.pinball_loss(y, q, 0.9) == pytest.approx((0.1 * 1 + 0 + 0.9 * 1) / 3)
    assert uq.pinball_loss(y, q, 0.5) == pytest.approx(1.0 / 3)
    losses = uq.pinball_loss(y, np.stack([q, q + 1], axis=1), [0.25, 0.75])
    assert losses.shape == (2,)
    # second column: u = (-2, -1, 0), tau = 0.75 -> 0.25 * (2 + 1) / 3
    np.testing.assert_allclose(losses, [(0.75 + 0.25) / 3, 0.25])


def test_pinball_minimiser_is_the_empirical_quantile():
    y = np.random.default_rng(6).exponential(size=2001)
    candidates = np.linspace(0, 4, 4001)
    losses = [uq.pinball_loss(y, np.full_like(y, c), 0.8) for c in candidates]
    assert candidates[int(np.argmin(losses))] == pytest.approx(np.quantile(y, 0.8), abs=2e-3)


def test_pinball_bad_input():
    y = np.zeros(4)
    for tau in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="tau must lie strictly between 0 and 1"):
            uq.pinball_loss(y, y, tau)
    with pytest.raises(ValueError, match="q must have shape \\(4,\\)"):
        uq.pinball_loss(y, np.zeros(3), 0.5)
    with pytest.raises(ValueError, match="q must have shape \\(4, 2\\)"):
        uq.pinball_loss(y, np.zeros((4, 3)), [0.1, 0.9])


def test_quantile_mlp_never_crosses():
    model = uq.QuantileMLP(1, [0.05, 0.25, 0.5, 0.75, 0.95], hidden=(8,), seed=1)
    q = model(torch.linspace(-100, 100, 500)[:, None]).detach().numpy()
    assert q.shape == (500, 5)
    assert np.all(np.diff(q, axis=1) > 0)
    with pytest.raises(ValueError, match="strictly increasing"):
        uq.QuantileMLP(1, [0.9, 0.1])


def test_fit_quantiles_covers_held_out_data():
    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, 1500)
    y = np.sin(3 * x) + (0.1 + 0.3 * (x + 1)) * rng.standard_normal(x.size)
    model = uq.fit_quantiles(x[:1000], y[:1000], (0.1, 0.5, 0.9), hidden=(16,), epochs=400,
                             seed=0)
    q = model.predict(x[1000:])
    assert q.shape == (500, 3)
    cov = uq.coverage(y[1000:], q[:, 0], q[:, 2])
    assert 0.74 < cov < 0.86
    # heteroscedastic: the interval is wider where the noise is larger
    width = q[:, 2] - q[:, 0]
    assert width[x[1000:] > 0.5].mean() > 2 * width[x[1000:] < -0.5].mean()


def test_mixture_cdf_is_the_average_of_member_cdfs():
    from scipy import stats
    mu = np.array([[0.0, 1.0], [2.0, 1.0]])
    var = np.array([[1.0, 4.0], [1.0, 1.0]])
    y = np.array([1.0, 0.0])
    expected = [0.5 * (stats.norm.cdf(1.0) + stats.norm.cdf(-1.0)),
                0.5 * (stats.norm.cdf(-0.5) + stats.norm.cdf(-1.0))]
    np.testing.assert_allclose(uq.mixture_cdf(mu, var, y), expected, rtol=1e-12)
    draws = uq.sample_mixture(mu, var, 200_000, seed=3)
    np.testing.assert_allclose(np.mean(draws <= y, axis=0), expected, atol=0.005)
    with pytest.raises(ValueError, match="y"):
        uq.mixture_cdf(mu, var, np.ones(3))


def test_conformal_margin_gives_the_promised_coverage_on_exchangeable_data():
    rng = np.random.default_rng(0)
    hits = []
    for _ in range(200):  # a deliberately too narrow interval [-1, 1] for N(0, 2^2)
        y_cal, y_new = 2 * rng.standard_normal(99), 2 * rng.standard_normal(1000)
        margin = uq.conformal_margin(y_cal, -np.ones(99), np.ones(99), level=0.8)
        hits.append(np.mean(np.abs(y_new) <= 1 + margin))
    assert 0.8 <= np.mean(hits) < 0.83  # at least the level, and not much more (n = 99)
    assert uq.conformal_margin(np.array([0.0, 0.5]), np.zeros(2) - 1, np.ones(2),
                               level=0.5) == pytest.approx(-0.5)  # rank ceil(3 / 2) = 2
    with pytest.raises(ValueError, match="too few"):
        uq.conformal_margin(np.zeros(3), -np.ones(3), np.ones(3), level=0.9)
    with pytest.raises(ValueError, match="level"):
        uq.conformal_margin(np.zeros(3), -np.ones(3), np.ones(3), level=1.0)


def test_coverage_by_hand_and_bad_input():
    assert uq.coverage([0, 1, 2, 3], [0, 0, 0, 0], [1, 1, 1, 1]) == 0.5
    with pytest.raises(ValueError, match="lower must not exceed upper"):
        uq.coverage([0.0], [1.0], [0.0])
    with pytest.raises(ValueError, match="upper must have 2 samples"):
        uq.coverage([0.0, 1.0], [0.0, 0.0], [1.0])


def test_cubic_toy_definition():
    x, y = uq.cubic_toy(20000, seed=3)
    assert x.min() >= -4 and x.max() <= 4 and np.all(np.diff(x) >= 0)
    resid = y - x**3
    assert resid.std() == pytest.approx(3.0, rel=0.03)
    assert math.isclose(resid.mean(), 0.0, abs_tol=0.1)
    with pytest.raises(ValueError, match="x_range"):
        uq.cubic_toy(x_range=(1.0, -1.0))
    with pytest.raises(ValueError, match="noise_std"):
        uq.cubic_toy(noise_std=-1)


def test_bootstrap_weights_equal_resampled_training_and_validation_counts_once():
    from nnparam.uq import _weighted_nll

    rng = np.random.default_rng(8)
    y = rng.normal(size=(6, 1))
    out = torch.tensor(np.stack([rng.normal(size=(2, 6)), rng.uniform(0.5, 2, (2, 6))], -1))
    idx = [np.array([0, 0, 1, 3, 5, 5]), np.array([2, 2, 2, 4, 4, 1])]
    counts = torch.tensor(np.array([np.bincount(i, minlength=6) for i in idx]), dtype=out.dtype)
    loss_fn = _weighted_nll(counts)
    mu, var = out[..., 0].numpy(), out[..., 1].numpy()
    resampled = sum(uq.gaussian_nll(y[i, 0], mu[m, i], var[m, i]) for m, i in enumerate(idx))
    assert float(loss_fn(out, torch.tensor(y))) == pytest.approx(resampled, rel=1e-10)
    with torch.no_grad():
        plain = sum(uq.gaussian_nll(y[:, 0], mu[m], var[m]) for m in range(2))
        assert float(loss_fn(out, torch.tensor(y))) == pytest.approx(plain, rel=1e-10)
