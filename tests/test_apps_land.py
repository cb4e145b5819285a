"""Tests of nnparam.apps.land against quadrature of the uniform subgrid distribution."""

import numpy as np
import pytest

from nnparam.apps import land as ld


def _quadrature(func, mean, std, n=200_000):
    """Cell mean of ``func`` for a uniform distribution, by the midpoint rule."""
    w = np.sqrt(3) * std
    s = mean - w + (np.arange(n) + 0.5) * (2 * w / n)
    return func(s).mean()


@pytest.mark.parametrize("mean, std", [(0.4, 0.05), (0.58, 0.1), (0.62, 0.05), (0.8, 0.1),
                                       (0.6, 0.12)])
def test_mean_runoff_matches_quadrature(mean, std):
    ref = _quadrature(lambda s: ld.runoff(s, 0.6, 2.0), mean, std)
    assert ld.mean_runoff_uniform(mean, std, 0.6, 2.0) == pytest.approx(ref, abs=1e-9)


@pytest.mark.parametrize("mean, std", [(0.3, 0.1), (0.5, 0.08), (0.7, 0.1)])
def test_mean_et_and_saturated_fraction_match_quadrature(mean, std):
    ref = _quadrature(lambda s: ld.evapotranspiration(s, 0.05, 0.5), mean, std)
    assert ld.mean_et_uniform(mean, std, 0.05, 0.5) == pytest.approx(ref, abs=1e-10)
    frac = _quadrature(lambda s: (s > 0.6).astype(float), mean, std)
    assert ld.saturated_fraction_uniform(mean, std, 0.6) == pytest.approx(frac, abs=1e-5)


def test_homogeneous_cell_and_jensen():
    m = np.linspace(0.3, 0.9, 13)
    np.testing.assert_allclose(ld.mean_runoff_uniform(m, 0.0), ld.runoff(m))
    np.testing.assert_allclose(ld.mean_et_uniform(m, 0.0), ld.evapotranspiration(m))
    assert np.all(ld.mean_runoff_uniform(m, 0.1) >= ld.runoff(m))  # convex flux
    assert np.all(ld.mean_et_uniform(m, 0.1) <= ld.evapotranspiration(m) + 1e-15)  # concave


def test_samples_have_the_requested_moments():
    mean = np.array([0.3, 0.7])
    std = np.array([0.05, 0.1])
    sub = ld.sample_uniform_cells(mean, std, 200_000, seed=1)
    np.testing.assert_allclose(sub.mean(axis=1), mean, atol=1e-3)
    np.testing.assert_allclose(sub.std(axis=1), std, rtol=1e-2)
    mc = ld.runoff(sub).mean(axis=1)
    np.testing.assert_allclose(mc, ld.mean_runoff_uniform(mean, std), atol=1e-3)


def test_bucket_model_follows_the_euler_recursion():
    p = np.full(50, 0.04)
    m, r = ld.run_bucket(0.2, p, 0.5, lambda s: 0.0, drainage_time=10.0)
    a = 1 - 0.5 / 10.0
    n = np.arange(51)
    expected = 0.4 + (0.2 - 0.4) * a**n  # steady state P * tau = 0.4
    np.testing.assert_allclose(m, expected, atol=1e-12)
    assert np.all(r == 0.0)


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="std"):
        ld.mean_runoff_uniform(0.5, -0.1)
    with pytest.raises(ValueError, match="rate"):
        ld.runoff(0.5, rate=0.0)
    with pytest.raises(ValueError, match="s "):
        ld.runoff(np.nan)
    with pytest.raises(ValueError, match="s_star"):
        ld.evapotranspiration(0.3, s_star=-1)
    with pytest.raises(ValueError, match="mean"):
        ld.mean_et_uniform(0.05, 0.1)
    with pytest.raises(ValueError, match="n_sub"):
        ld.sample_uniform_cells([0.5], [0.1], 0)
    with pytest.raises(ValueError, match="std"):
        ld.sample_uniform_cells([0.5, 0.6], [0.1], 5)
    with pytest.raises(ValueError, match="precip"):
        ld.run_bucket(0.3, [-0.1, 0.2], 1.0, lambda s: 0.0)
    with pytest.raises(ValueError, match="dt"):
        ld.run_bucket(0.3, [0.1], 0.0, lambda s: 0.0)
    with pytest.raises(ValueError, match="drainage_time"):
        ld.run_bucket(0.3, [0.1], 1.0, lambda s: 0.0, drainage_time=0)


def _triangular_quadrature(func, mean, std, n=400_000):
    a = np.sqrt(6) * std
    s = mean - a + (np.arange(n) + 0.5) * (2 * a / n)
    weight = (a - np.abs(s - mean)) / a**2 * (2 * a / n)
    return np.sum(func(s) * weight)


@pytest.mark.parametrize("mean", [0.3, 0.4, 0.45, 0.55, 0.6, 0.7, 0.9])
def test_triangular_excess_matches_quadrature_and_the_review_numbers(mean):
    ref = _triangular_quadrature(lambda s: np.maximum(s - 0.6, 0.0), mean, 0.1)
    assert ld.mean_excess_triangular(mean, 0.1, 0.6) == pytest.approx(ref, abs=1e-8)


def test_triangular_tail_is_longer_than_the_uniform_one():
    m = np.array([0.40, 0.45, 0.55, 0.60])
    tri, uni = ld.mean_excess_triangular(m, 0.1, 0.6), ld.mean_excess_uniform(m, 0.1, 0.6)
    # far below the threshold only the triangular tail reaches it; near it, less runoff
    np.testing.assert_allclose(tri, [0.00025, 0.00238, 0.0206, 0.0408], atol=5e-5)
    np.testing.assert_allclose(uni, [0.0, 0.00078, 0.0219, 0.0433], atol=5e-5)
    np.testing.assert_allclose(ld.mean_excess_triangular(m, 0.0, 0.6), np.maximum(m - 0.6, 0))
    sub = ld.sample_triangular_cells(m, np.full(4, 0.1), 200_000, seed=2)
    np.testing.assert_allclose(sub.std(axis=1), 0.1, rtol=1e-2)
    assert np.all(np.abs(sub - m[:, None]) <= np.sqrt(6) * 0.1 + 1e-12)


def test_bucket_members_equal_single_runs():
    rng = np.random.default_rng(0)
    precip = rng.exponential(0.05, size=(4, 30))

    def closure(m):
        return ld.mean_runoff_uniform(m, 0.1)

    m, r = ld.run_bucket([0.3, 0.4, 0.5, 0.6], precip, 0.5, closure)
    assert m.shape == (4, 31) and r.shape == (4, 30)
    for k, s0 in enumerate([0.3, 0.4, 0.5, 0.6]):
        m1, r1 = ld.run_bucket(s0, precip[k], 0.5, closure)
        np.testing.assert_allclose(m[k], m1, atol=1e-15)
        np.testing.assert_allclose(r[k], r1, atol=1e-15)
    with pytest.raises(ValueError, match="one runoff per member"):
        ld.run_bucket(0.3, precip, 0.5, lambda s: 0.0 * s[:1])
    with pytest.raises(ValueError, match="precip"):
        ld.run_bucket(0.3, np.zeros((2, 2, 3)), 0.5, closure)
