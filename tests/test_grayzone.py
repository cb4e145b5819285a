"""Tests of the gray-zone convection toy against exact identities and limits."""

import numpy as np
import pytest

from nnparam import grayzone as gz


@pytest.fixture(scope="module")
def field():
    return gz.plume_field(2.0, seed=0)


def test_field_has_requested_coverage_and_no_overlap(field):
    assert field.length_km == pytest.approx(200.0)
    coverage = field.n_plumes * np.pi * field.radius_km**2 / field.length_km**2
    assert coverage == pytest.approx(gz.COVERAGE, rel=0.05)
    dx = np.abs(field.x_km[:, None] - field.x_km[None, :])
    dy = np.abs(field.y_km[:, None] - field.y_km[None, :])
    dx, dy = np.minimum(dx, 200 - dx), np.minimum(dy, 200 - dy)
    dist = np.hypot(dx, dy) + np.eye(field.n_plumes) * 1e9
    assert dist.min() >= 2.5 * field.radius_km


def test_profile_is_smooth_bell():
    r = np.array([0.0, 1.0, 2.0, 3.0])
    assert np.allclose(gz.plume_profile(r, 2.0), [1.0, 0.5, 0.0, 0.0])


@pytest.mark.parametrize("dx", [0.5, 3.0, 25.0])
def test_resolved_plus_subgrid_is_total(field, dx):
    part = gz.coarse_grain(field, dx)
    assert part.resolved + part.subgrid == pytest.approx(part.total, rel=1e-12)
    assert part.subgrid_flux.mean() == pytest.approx(part.subgrid, rel=1e-12)
    assert part.w_bar.mean() == pytest.approx(0.0, abs=1e-12)


def test_total_flux_matches_analytic_integral(field):
    # integral of W*Phi*b^2 over a disc of radius R is W*Phi*(3/8 - 2/pi^2)*pi*R^2 ... computed
    # independently here by 2-D quadrature on a fine polar grid
    r = np.linspace(0, 2.0, 4001)
    b = gz.plume_profile(r, 2.0)
    i1 = np.trapezoid(b * 2 * np.pi * r, r)
    i2 = np.trapezoid(b**2 * 2 * np.pi * r, r)
    area = 200.0**2
    mean_w = np.sum(field.w_peak) * i1 / area
    mean_phi = np.sum(field.phi_peak) * i1 / area
    total = np.sum(field.w_peak * field.phi_peak) * i2 / area - mean_w * mean_phi
    part = gz.coarse_grain(field, 5.0)  # 40 cells, no stretching
    assert part.total == pytest.approx(total, rel=2e-3)


def test_fraction_limits_and_monotone():
    dxs = [0.25, 0.5, 1, 2, 3, 5, 8, 12, 25, 50, 100]
    fr = np.array([gz.subgrid_fraction(dx) for dx in dxs])
    assert fr[0] < 0.02, "dx << L_c: almost everything resolved"
    assert fr[-1] > 0.99, "dx >> L_c: almost everything subgrid"
    assert np.all(np.diff(fr) > 0), f"not monotone: {fr}"


def test_fraction_depends_on_dx_over_radius_only():
    assert gz.subgrid_fraction(3.0, 2.0) == pytest.approx(gz.subgrid_fraction(1.5, 1.0), rel=1e-9)


def test_double_counting_worse_in_gray_zone():
    assert gz.double_counting(3.0) > 10 * gz.double_counting(25.0)
    assert gz.double_counting(25.0) == pytest.approx(1 - gz.subgrid_fraction(25.0))


def test_published_partitions():
    assert gz.arakawa_wu_partition(np.array([1.0, 3.0]), 2.0).tolist() == [0.0, 0.0]
    sigma = np.pi * 4 / 100
    assert gz.arakawa_wu_partition(10.0, 2.0) == pytest.approx((1 - sigma) ** 2)
    # Honnert: P(1) = (1 + 0.07) / (1 + 3/21 + 3/42)
    assert gz.honnert_partition(4.0, 4.0) == pytest.approx(1.07 / (1 + 3 / 21 + 3 / 42))
    p = gz.honnert_partition(np.logspace(-2, 2, 50), 1.0)
    assert p[0] < 0.2 and p[-1] > 0.99


def test_samples_and_feature():
    s = gz.samples([5.0, 25.0], seeds=(0,))
    assert set(s) == {"w_bar", "phi_bar", "dx_km", "flux", "seed"}
    assert len({len(v) for v in s.values()}) == 1
    assert set(np.unique(s["dx_km"])) == {5.0, 25.0}
    assert gz.dx_feature(2.0, 2.0) == pytest.approx(0.0)


@pytest.mark.parametrize("call, name", [
    (lambda: gz.subgrid_fraction(0.0), "dx_km"),
    (lambda: gz.subgrid_fraction(-3.0), "dx_km"),
    (lambda: gz.subgrid_fraction(3.0, plume_radius_km=0.0), "plume_radius_km"),
    (lambda: gz.subgrid_fraction(3.0, plume_radius_km=-1.0), "plume_radius_km"),
    (lambda: gz.plume_field(2.0, n_plumes=0), "n_plumes"),
    (lambda: gz.PlumeField([], [], [], [], 2.0, 200.0), "x_km"),
    (lambda: gz.PlumeField([1.0], [1.0, 2.0], [1.0], [1.0], 2.0, 200.0), "y_km"),
    (lambda: gz.PlumeField([1.0], [1.0], [1.0], [1.0], 0.0, 200.0), "radius_km"),
    (lambda: gz.coarse_grain(gz.plume_field(), 150.0), "dx_km"),
    (lambda: gz.coarse_grain("plumes", 3.0), "field"),
    (lambda: gz.honnert_partition([0.0, 1.0], 2.0), "dx_km"),
    (lambda: gz.arakawa_wu_partition(3.0, -2.0), "plume_radius_km"),
    (lambda: gz.samples([], seeds=(0,)), "dx_km_values"),
    (lambda: gz.dx_feature([-1.0]), "dx_km"),
    (lambda: gz.plume_field(2.0, n_plumes=5000), "n_plumes"),
])
def test_bad_input(call, name):
    with pytest.raises(ValueError, match=name):
        call()
