import numpy as np
import pytest
import torch

from nnparam.grid import Grid1D, flux_divergence


def test_flux_divergence_formula_and_conservation():
    rng = np.random.default_rng(0)
    flux = rng.normal(size=(4, 10))
    width = rng.uniform(0.5, 2.0, 10)
    tend = flux_divergence(flux, width)
    np.testing.assert_allclose(tend[:, 3], -(flux[:, 3] - flux[:, 2]) / width[3])
    np.testing.assert_allclose(tend[:, 0], -(flux[:, 0] - flux[:, -1]) / width[0])  # periodic
    np.testing.assert_allclose((tend * width).sum(axis=-1), 0.0, atol=1e-13)


def test_flux_divergence_of_a_linear_flux_is_its_slope():
    grid = Grid1D.uniform(16, 8.0)
    flux = 3.0 * grid.faces  # dF/dx = 3 except at the periodic wrap
    np.testing.assert_allclose(grid.divergence(flux)[1:], -3.0)


def test_flux_divergence_torch_matches_numpy():
    flux = np.linspace(-1, 1, 12).reshape(2, 6) ** 2
    got = flux_divergence(torch.tensor(flux, requires_grad=True), 0.5)
    np.testing.assert_allclose(got.detach().numpy(), flux_divergence(flux, 0.5))


def test_grid_geometry():
    grid = Grid1D.stretched(20, 10.0, amplitude=0.4)
    assert grid.n == 20 and np.isclose(grid.length, 10.0)
    np.testing.assert_allclose(np.diff(grid.centers), grid.distances[:-1])
    q = np.sin(2 * np.pi * grid.centers / 10.0)
    assert grid.face_gradient(q).shape == (20,)
    assert np.isclose(grid.total(np.ones(20)), 10.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"face_flux": [1.0, np.nan, 2.0], "cell_width": 1.0}, "face_flux"),
    ({"face_flux": [1.0, 2.0, 3.0], "cell_width": [1.0, 2.0]}, "cell_width"),
    ({"face_flux": [1.0, 2.0, 3.0], "cell_width": 0.0}, "cell_width"),
    ({"face_flux": 1.0, "cell_width": 1.0}, "face_flux"),
])
def test_flux_divergence_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        flux_divergence(**kwargs)


def test_grid_bad_input():
    with pytest.raises(ValueError, match="widths"):
        Grid1D(np.array([1.0, -1.0, 2.0]))
    with pytest.raises(ValueError, match="amplitude"):
        Grid1D.stretched(10, 1.0, amplitude=1.5)
    with pytest.raises(ValueError, match="length"):
        Grid1D.uniform(10, -1.0)


def test_periodic_stencil_orders_neighbours_and_wraps():
    from nnparam.grid import periodic_stencil

    q = np.arange(5.0)
    np.testing.assert_array_equal(periodic_stencil(q, 1)[0], [4.0, 0.0, 1.0])
    np.testing.assert_array_equal(periodic_stencil(q, 2)[4], [2.0, 3.0, 4.0, 0.0, 1.0])
    assert periodic_stencil(np.ones((3, 5)), 1).shape == (3, 5, 3)
