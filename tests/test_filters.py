import numpy as np
import pytest
import xarray as xr

from nnparam import filters


@pytest.fixture
def field():
    rng = np.random.default_rng(0)
    return rng.normal(size=(5, 48))


def as_da(arr):
    return xr.DataArray(arr, dims=("time", "x"), coords={"x": np.arange(arr.shape[-1]) + 0.5},
                        attrs={"units": "1"})


def test_coarse_grain_numpy_is_block_mean(field):
    out = filters.coarse_grain(field, 4)
    assert out.shape == (5, 12)
    np.testing.assert_allclose(out[:, 2], field[:, 8:12].mean(axis=-1))
    np.testing.assert_allclose(out.mean(axis=-1), field.mean(axis=-1))  # conserves the mean


def test_coarse_grain_xarray_and_dask_agree(field):
    da = as_da(field)
    eager = filters.coarse_grain(da, 4)
    lazy = filters.coarse_grain(da.chunk({"time": 2, "x": 10}), 4)  # misaligned chunks
    assert lazy.chunks is not None
    np.testing.assert_allclose(eager.values, filters.coarse_grain(field, 4))
    np.testing.assert_allclose(lazy.compute().values, eager.values)
    np.testing.assert_allclose(eager["x"].values[:2], [2.0, 6.0])
    assert eager.attrs["units"] == "1"


def test_top_hat_and_gaussian_preserve_mean_and_damp_small_scales(field):
    x = np.arange(64)
    wave = np.sin(2 * np.pi * 16 * x / 64)  # wavelength 4 cells
    np.testing.assert_allclose(filters.top_hat(wave, 4.0, 1.0), 0.0, atol=1e-12)
    long_wave = np.sin(2 * np.pi * x / 64)
    assert np.abs(filters.gaussian(long_wave, 4.0, 1.0) - long_wave).max() < 0.01
    # exact transfer function of the Gaussian: exp(-k^2 width^2 / 24)
    k = 2 * np.pi * 4 / 64
    np.testing.assert_allclose(filters.gaussian(np.cos(k * x), 6.0, 1.0),
                               np.exp(-(k * 6.0) ** 2 / 24) * np.cos(k * x), atol=1e-12)
    for filt in (filters.top_hat, filters.gaussian):
        np.testing.assert_allclose(filt(field, 5.0, 1.0).mean(-1), field.mean(-1), atol=1e-12)
        np.testing.assert_allclose(filt(as_da(field).chunk({"time": 1}), 5.0, 1.0).values,
                                   filt(field, 5.0, 1.0))


def test_top_hat_even_width_kernel():
    w = filters.top_hat_weights(4.0, 1.0)
    np.testing.assert_allclose(w, [0.125, 0.25, 0.25, 0.25, 0.125])


def test_power_spectrum_parseval(field):
    k, p = filters.power_spectrum(field, 2.0)
    assert np.isclose(p.sum(), field.var(axis=-1).mean())
    assert np.isclose(k[0], 1 / 96.0)


@pytest.mark.parametrize("call, match", [
    (lambda f: filters.coarse_grain(f, 5), "factor"),
    (lambda f: filters.coarse_grain(f, 0), "factor"),
    (lambda f: filters.coarse_grain(as_da(f), 4, dim="y"), "dim"),
    (lambda f: filters.top_hat(f, 0.5, 1.0), "width"),
    (lambda f: filters.top_hat(f, 2.5, 1.0), "width"),
    (lambda f: filters.gaussian(f, 0.5, 1.0), "width"),
    (lambda f: filters.top_hat(f, 2.0, -1.0), "dx"),
    (lambda f: filters.coarse_grain(np.where(f > 1, np.nan, f), 4), "field"),
])
def test_bad_input(field, call, match):
    with pytest.raises(ValueError, match=match):
        call(field)
