"""nnparam.evaluation against closed forms, an independent library and each other."""

import numpy as np
import pytest
import scoringrules as sr
from scipy import integrate, stats

from nnparam import evaluation as ev
from nnparam import l96, metrics

RNG = np.random.default_rng(42)


# ------------------------------------------------------------------------ offline skill
def test_r2_rmse_correlation_closed_forms():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert ev.r2_score(y, y) == 1.0
    assert np.isclose(ev.r2_score(y, np.full(4, y.mean())), 0.0)
    assert np.isclose(ev.rmse(y, y + 2.0), 2.0)
    assert np.isclose(ev.correlation(y, 3 * y - 1), 1.0)
    # the benchmark's R^2 centres on the global mean, not per column
    yy = np.stack([y, y + 10])
    row_means = np.broadcast_to(yy.mean(axis=1, keepdims=True), yy.shape)
    # SST about the global mean holds the offset (25 per element) and var(y) = 1.25
    assert ev.r2_score(yy, row_means) == pytest.approx(1 - 1.25 / 26.25)


def test_aliases_point_to_evaluation():
    assert metrics.r2_score is ev.r2_score and metrics.rmse is ev.rmse
    assert l96.hellinger is ev.hellinger and l96.autocorrelation is ev.autocorrelation


def test_rmse_by_lead():
    fc = np.zeros((3, 4, 2))
    ob = np.arange(3)[:, None, None] * np.ones((3, 4, 2))
    np.testing.assert_allclose(ev.rmse_by_lead(fc, ob), [0.0, 1.0, 2.0])
    np.testing.assert_allclose(ev.rmse_by_lead(fc.transpose(1, 0, 2), ob.transpose(1, 0, 2),
                                               lead_axis=1), [0.0, 1.0, 2.0])


# ------------------------------------------------------------------------ distances
def test_hellinger_analytic():
    a = RNG.normal(size=1000)
    assert ev.hellinger(a, a) == 0.0
    assert ev.hellinger([0.0, 0.1], [0.9, 1.0], bins=2, range=(0, 1)) == pytest.approx(1.0)
    # p = (1, 0), q = (1/2, 1/2): H^2 = 1 - sqrt(1/2)
    h = ev.hellinger([0.1, 0.2], [0.1, 0.9], bins=2, range=(0, 1))
    assert h == pytest.approx(np.sqrt(1 - np.sqrt(0.5)))


def test_wasserstein_of_a_shift_and_against_quantiles():
    a = RNG.normal(size=4000)
    assert ev.wasserstein(a, a + 0.7) == pytest.approx(0.7, rel=1e-12)
    # W1 between N(0,1) and N(0, 2^2) is E|Z| (2 - 1) = sqrt(2/pi)
    b = 2 * stats.norm.ppf((np.arange(20000) + 0.5) / 20000)
    c = stats.norm.ppf((np.arange(20000) + 0.5) / 20000)
    assert ev.wasserstein(b, c) == pytest.approx(np.sqrt(2 / np.pi), rel=2e-3)


def test_similarity_score():
    assert ev.similarity_score(0.0, 2.0) == 1.0
    assert ev.similarity_score(2.0, 2.0) == 0.0
    assert ev.similarity_score(3.0, 2.0) == -0.5
    np.testing.assert_allclose(ev.similarity_score([1.0, 4.0], [2.0, 2.0]), [0.5, -1.0])
    with pytest.raises(ValueError, match="distance_lowres"):
        ev.similarity_score(1.0, 0.0)
    with pytest.raises(ValueError, match="distance_param"):
        ev.similarity_score(-1.0, 1.0)


def test_isotropic_spectrum_parseval_and_single_mode():
    n, dx = 64, 1.0
    x = np.arange(n) * dx
    X, Y = np.meshgrid(x, x)
    k0 = 2 * np.pi * 5 / (n * dx)
    field = np.cos(k0 * X)
    k, E = ev.isotropic_spectrum(field, dx)
    dk = k[0]
    assert k[np.argmax(E)] == pytest.approx(k0)
    assert np.sum(E) * dk == pytest.approx(np.mean(field**2))  # 1/2
    # a smooth random field with modes inside the inscribed circle: Parseval holds exactly
    f = sum(RNG.normal() * np.cos(2 * np.pi * (i * X + j * Y) / n + RNG.uniform(0, 6))
            for i in range(-6, 7) for j in range(-6, 7) if 0 < i * i + j * j <= 36)
    k, E = ev.isotropic_spectrum(f - f.mean(), dx)
    assert np.sum(E) * dk == pytest.approx(np.mean((f - f.mean()) ** 2), rel=1e-12)


def test_spectral_rmse():
    k = np.arange(1.0, 11.0)
    a, b = k**-3.0, 2 * k**-3.0
    assert ev.spectral_rmse(a, b, log=True) == pytest.approx(np.log10(2.0))
    assert ev.spectral_rmse(a, a) == 0.0
    assert ev.spectral_rmse(a, b, k, k_range=(5, 10)) == pytest.approx(
        np.sqrt(np.mean(k[4:] ** -6.0)))
    with pytest.raises(ValueError, match="wavenumbers"):
        ev.spectral_rmse(a, b, k_range=(1, 2))


# ------------------------------------------------------------------------ CRPS
def _crps_by_integration(cdf, y, lo, hi):
    left = integrate.quad(lambda x: cdf(x) ** 2, lo, y, limit=200)[0]
    right = integrate.quad(lambda x: (1 - cdf(x)) ** 2, y, hi, limit=200)[0]
    return left + right


@pytest.mark.parametrize("mu,sigma,y", [(0.0, 1.0, 0.0), (1.0, 2.0, -1.5), (-3, 0.5, -2.0)])
def test_crps_gaussian_closed_form(mu, sigma, y):
    exact = _crps_by_integration(stats.norm(mu, sigma).cdf, y, mu - 30 * sigma, mu + 30 * sigma)
    assert ev.crps_gaussian(mu, sigma, y) == pytest.approx(exact, rel=1e-7)
    assert ev.crps_gaussian(mu, sigma, y) == pytest.approx(float(sr.crps_normal(y, mu, sigma)))


def test_crps_gaussian_at_the_mean_is_known():
    # CRPS(N(0, s^2), 0) = s (sqrt(2) - 1) / sqrt(pi)
    assert ev.crps_gaussian(0.0, 3.0, 0.0) == pytest.approx(3 * (np.sqrt(2) - 1) / np.sqrt(np.pi))


def test_crps_ensemble_matches_pairwise_and_scoringrules():
    ens = RNG.normal(size=(7, 50))  # 7 members, 50 cases
    obs = RNG.normal(size=50)
    ours = ev.crps_ensemble(ens, obs)
    brute = (np.abs(ens - obs).mean(axis=0)
             - 0.5 * np.abs(ens[:, None] - ens[None]).mean(axis=(0, 1)))
    np.testing.assert_allclose(ours, brute, rtol=1e-12)
    np.testing.assert_allclose(ours, sr.crps_ensemble(obs, ens, m_axis=0, estimator="nrg",
                                                       backend="numpy"), rtol=1e-10)
    fair = ev.crps_ensemble(ens, obs, fair=True)
    np.testing.assert_allclose(fair, sr.crps_ensemble(obs, ens, m_axis=0, estimator="fair",
                                                       backend="numpy"), rtol=1e-10)
    # member axis last gives the same
    np.testing.assert_allclose(ev.crps_ensemble(ens.T, obs, member_axis=-1), ours)


def test_crps_ensemble_limits():
    assert ev.crps_ensemble(np.array([2.0]), 2.0) == 0.0  # perfect deterministic forecast
    assert ev.crps_ensemble(np.array([2.0]), 5.0) == 3.0  # a single member: absolute error
    # a large ensemble drawn from N(mu, s) approaches the Gaussian CRPS
    draws = stats.norm.ppf((np.arange(4000) + 0.5) / 4000) * 2.0 + 1.0
    assert ev.crps_ensemble(draws, 0.3) == pytest.approx(ev.crps_gaussian(1.0, 2.0, 0.3),
                                                         rel=2e-3)


# ------------------------------------------------------------------------ ensembles
def test_spread_skill_reliable_ensemble_has_ratio_one_with_the_correction():
    m, n = 3, 40000
    centre = RNG.normal(size=n)  # forecast uncertainty shared by members and truth
    obs = centre + RNG.normal(size=n)
    ens = centre + RNG.normal(size=(m, n))
    res = ev.spread_skill(ens, obs)
    assert res.spread == pytest.approx(1.0, rel=0.02)
    assert res.ratio == pytest.approx(1.0, abs=0.03)
    # without the (M+1)/M factor the ratio would be sqrt(4/3): the correction is what fixes it
    assert res.rmse / res.spread == pytest.approx(np.sqrt(4 / 3), rel=0.03)
    under = ev.spread_skill(centre + 0.3 * RNG.normal(size=(m, n)), obs)
    assert under.ratio > 1.5


def test_rank_histogram_flat_for_reliable_and_edges_for_biased():
    m, n = 9, 20000
    ens, obs = RNG.normal(size=(m, n)), RNG.normal(size=n)
    counts = ev.rank_histogram(ens, obs)
    assert counts.shape == (m + 1,) and counts.sum() == n
    assert stats.chisquare(counts).pvalue > 0.001
    high = ev.rank_histogram(ens, obs + 10)
    assert high[-1] == n
    # a repeated deterministic forecast equal to the obs: ties spread over all ranks
    tied = ev.rank_histogram(np.zeros((4, 5000)), np.zeros(5000))
    assert tied.min() > 800


def test_pit_values_and_histogram():
    mu, sigma = RNG.normal(size=20000), np.full(20000, 2.0)
    y = mu + sigma * RNG.normal(size=20000)
    u = ev.pit_gaussian(mu, sigma, y)
    edges, density = ev.pit(u, bins=10)
    assert edges.shape == (11,) and np.isclose(np.sum(density) * 0.1, 1.0)
    assert np.all(np.abs(density - 1) < 0.1)
    over = ev.pit(ev.pit_gaussian(mu, 0.5 * sigma, y))[1]  # too narrow: a U shape
    # exact density at the centre: 0.5 phi(z/2) / phi(z) ~ 0.5
    assert over[0] > 2 and over[-1] > 2 and 0.45 < over[5] < 0.6
    ens = mu + sigma * RNG.normal(size=(19, 20000))
    assert np.all(np.abs(ev.pit(ev.pit_ensemble(ens, y))[1] - 1) < 0.1)
    with pytest.raises(ValueError, match="cdf_values"):
        ev.pit([0.5, 1.2])


def test_exceedance_and_quantile_reliability():
    y = RNG.normal(size=50000)
    z = stats.norm.ppf(0.9)
    below, above = ev.exceedance_rates(y, -z, z)
    assert below == pytest.approx(0.1, abs=0.01) and above == pytest.approx(0.1, abs=0.01)
    skew = ev.exceedance_rates(y, -z + 0.8, z + 0.8)  # same width, shifted: unequal tails
    assert skew[0] > 0.25 and skew[1] < 0.03
    taus = np.array([0.1, 0.5, 0.9])
    q = np.broadcast_to(stats.norm.ppf(taus), (y.size, 3))
    np.testing.assert_allclose(ev.quantile_reliability(q, y, taus), taus, atol=0.01)


# ------------------------------------------------------------------------ intervals
def _ar1(n, phi, rng):
    x = np.empty(n)
    x[0] = rng.normal()
    for i in range(1, n):
        x[i] = phi * x[i - 1] + np.sqrt(1 - phi**2) * rng.normal()
    return x


def test_block_bootstrap_mean_of_iid_matches_theory():
    x = RNG.normal(size=4000)
    ci = ev.block_bootstrap(np.mean, x, block=1, n_boot=2000, level=0.9)
    half = 0.5 * (ci.high - ci.low)
    assert half == pytest.approx(stats.norm.ppf(0.95) / np.sqrt(x.size), rel=0.1)
    assert ci.estimate == pytest.approx(x.mean())


def test_block_bootstrap_sees_autocorrelation_only_with_blocks():
    phi, n = 0.9, 4000
    x = _ar1(n, phi, np.random.default_rng(3))
    theory = np.sqrt((1 + phi) / (1 - phi) / n)  # std of the mean of an AR(1)
    blocked = ev.block_bootstrap(np.mean, x, block=100, n_boot=1000, level=0.6827)
    naive = ev.block_bootstrap(np.mean, x, block=1, n_boot=1000, level=0.6827)
    assert 0.5 * (blocked.high - blocked.low) == pytest.approx(theory, rel=0.3)
    assert 0.5 * (naive.high - naive.low) < 0.4 * theory


def test_block_bootstrap_two_records_and_paired():
    a, b = RNG.normal(size=500), RNG.normal(size=300) + 1
    ci = ev.block_bootstrap(lambda u, v: v.mean() - u.mean(), a, b, block=10)
    assert ci.contains(1.0) and not ci.contains(0.0)
    with pytest.raises(ValueError, match="paired"):
        ev.block_bootstrap(lambda u, v: 0.0, a, b, block=10, paired=True)


def test_noise_floor_falls_with_sample_size():
    x = RNG.normal(size=40000)
    short = ev.noise_floor(ev.hellinger, x, 200, 400, n_draws=30)
    long = ev.noise_floor(ev.hellinger, x, 4000, 8000, n_draws=30)
    assert long.estimate < 0.5 * short.estimate
    assert short.low <= short.estimate <= short.high
    with pytest.raises(ValueError, match="shorter than"):
        ev.noise_floor(ev.hellinger, x, 30000, 20000)


def test_decorrelation_time_of_ar1():
    phi = 0.8
    x = _ar1(20000, phi, np.random.default_rng(5))
    # acf(lag) = phi**lag falls below 1/e at lag ceil(-1/ln phi) = 5
    assert ev.decorrelation_time(x, dt=0.5) == pytest.approx(5 * 0.5)
    assert ev.autocorrelation(x, 2)[1] == pytest.approx(phi, abs=0.02)


# ------------------------------------------------------------------------ bad input
def test_bad_input_names_the_argument():
    ens = np.zeros((5, 10))
    with pytest.raises(ValueError, match="obs must have the ensemble's shape"):
        ev.crps_ensemble(ens, np.zeros(9))
    bad = ens.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"member\(s\) \[3\]"):
        ev.spread_skill(bad, np.zeros(10))
    with pytest.raises(ValueError, match="member_axis"):
        ev.rank_histogram(ens, np.zeros(10), member_axis=2)
    with pytest.raises(ValueError, match="at least 2 members"):
        ev.spread_skill(np.zeros((1, 10)), np.zeros(10))
    with pytest.raises(ValueError, match="block"):
        ev.block_bootstrap(np.mean, np.zeros(20), block=21)
    with pytest.raises(ValueError, match="statistic"):
        ev.block_bootstrap("mean", np.zeros(20), block=2)
    with pytest.raises(ValueError, match="level"):
        ev.block_bootstrap(np.mean, np.zeros(20), block=2, level=1.5)
    with pytest.raises(ValueError, match="sigma"):
        ev.crps_gaussian(0.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="y_pred"):
        ev.rmse(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="field"):
        ev.isotropic_spectrum(np.zeros(8), 1.0)
    with pytest.raises(ValueError, match="taus"):
        ev.quantile_reliability(np.zeros((4, 2)), np.zeros(4), [0.5, 1.0])
