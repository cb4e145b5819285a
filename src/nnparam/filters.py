"""Spatial filters on periodic grids: block coarse-graining, top-hat and Gaussian filters.

Each function takes a numpy array (filtering along its last axis) or an ``xarray.DataArray``
(filtering along ``dim``, in memory or dask-chunked, with the same result). Filters keep the
grid; :func:`coarse_grain` maps ``N`` cells onto ``N // factor`` coarse cells, as a
finite-volume model sees the world.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ._validate import finite_array, positive, positive_int


def _check_field(field, dim: str):
    if isinstance(field, xr.DataArray):
        if dim not in field.dims:
            raise ValueError(f"dim {dim!r} is not a dimension of field {field.dims}")
        if field.chunks is None and not np.all(np.isfinite(field.values)):
            raise ValueError("field contains NaN or inf; expected finite values")
        return field
    arr = finite_array("field", field)
    if arr.ndim < 1:
        raise ValueError("field must have at least one axis (the x axis last)")
    return arr


def coarse_grain(field, factor: int, dim: str = "x"):
    """Average over non-overlapping blocks of ``factor`` cells (a finite-volume cell mean).

    Parameters
    ----------
    field : numpy array (..., N) or DataArray with dimension ``dim`` of length N
    factor : int, must divide N

    Returns the block means: shape (..., N // factor), or a DataArray whose ``dim`` coordinate
    is the mean of the fine coordinates in each block (attributes kept). Dask-chunked input
    stays lazy; chunks along ``dim`` that do not hold whole blocks are rechunked to multiples
    of ``factor``.
    """
    factor = positive_int("factor", factor)
    field = _check_field(field, dim)
    n = field.sizes[dim] if isinstance(field, xr.DataArray) else field.shape[-1]
    if n % factor:
        raise ValueError(f"factor must divide the number of cells along {dim!r} ({n}), "
                         f"got {factor}")
    if isinstance(field, xr.DataArray):
        if field.chunks is not None:
            chunks = field.chunksizes[dim]
            if any(c % factor for c in chunks[:-1]) or chunks[-1] % factor:
                size = max(factor, (max(chunks) // factor) * factor)
                field = field.chunk({dim: size})
        return field.coarsen({dim: factor}, coord_func="mean").mean(keep_attrs=True)
    return field.reshape(*field.shape[:-1], n // factor, factor).mean(axis=-1)


def top_hat_weights(width: float, dx: float) -> np.ndarray:
    """Discrete weights of a centred top-hat of total ``width`` on a grid of spacing ``dx``.

    ``width/dx = n`` cells: odd ``n`` gives ``n`` equal weights, even ``n`` gives ``n + 1``
    weights with halves at the two ends (a symmetric kernel of width n dx either way).
    """
    n = positive("width", width) / positive("dx", dx)
    if n < 1 - 1e-9:
        raise ValueError(f"width ({width}) must be at least the grid spacing dx ({dx})")
    if abs(n - round(n)) > 1e-6:
        raise ValueError(f"width must be a whole number of grid spacings, got width/dx = {n:g}")
    n = int(round(n))
    if n % 2:
        return np.full(n, 1.0 / n)
    w = np.full(n + 1, 1.0 / n)
    w[[0, -1]] = 0.5 / n
    return w


def _periodic_convolve(arr: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Centred periodic convolution along the last axis (kernel of odd length)."""
    n = arr.shape[-1]
    if weights.size > n:
        raise ValueError(f"filter kernel ({weights.size} cells) is wider than the domain ({n})")
    half = weights.size // 2
    kernel = np.zeros(n)
    kernel[np.arange(-half, half + 1) % n] += weights
    return np.fft.irfft(np.fft.rfft(arr, axis=-1) * np.fft.rfft(kernel), n=n, axis=-1)


def _apply(field, dim: str, func):
    field = _check_field(field, dim)
    if isinstance(field, xr.DataArray):
        if field.chunks is not None and len(field.chunksizes[dim]) > 1:
            field = field.chunk({dim: -1})  # a periodic filter needs whole rows
        return xr.apply_ufunc(func, field, input_core_dims=[[dim]], output_core_dims=[[dim]],
                              dask="parallelized", output_dtypes=[float], keep_attrs=True
                              ).transpose(*field.dims)
    return func(field)


def top_hat(field, width: float, dx: float, dim: str = "x"):
    """Periodic running mean of total ``width`` (same units as ``dx``), on the same grid."""
    weights = top_hat_weights(width, dx)
    return _apply(field, dim, lambda a: _periodic_convolve(a, weights))


def gaussian(field, width: float, dx: float, dim: str = "x"):
    """Periodic Gaussian filter of ``width`` Delta (standard deviation ``Delta / sqrt(12)``,
    the second moment of a top-hat of the same width, the usual LES convention).

    Applied exactly in Fourier space with the transfer function ``exp(-k^2 Delta^2 / 24)``.
    """
    width, dx = positive("width", width), positive("dx", dx)
    if width < dx:
        raise ValueError(f"width ({width}) must be at least the grid spacing dx ({dx})")

    def smooth(a):
        k = 2 * np.pi * np.fft.rfftfreq(a.shape[-1], d=dx)
        return np.fft.irfft(np.fft.rfft(a, axis=-1) * np.exp(-(k * width) ** 2 / 24),
                            n=a.shape[-1], axis=-1)

    return _apply(field, dim, smooth)


def power_spectrum(field, dx: float):
    """One-sided power spectrum along the last axis, averaged over leading axes.

    Returns ``(wavenumber, power)``: wavenumber in cycles per length unit of ``dx``
    (``k = m / L``), power such that its sum equals the mean of ``field**2`` minus the squared mean.
    """
    arr = finite_array("field", field)
    dx = positive("dx", dx)
    n = arr.shape[-1]
    spec = np.abs(np.fft.rfft(arr - arr.mean(axis=-1, keepdims=True), axis=-1)) ** 2 / n**2
    spec[..., 1:] *= 2
    if n % 2 == 0:
        spec[..., -1] /= 2
    spec = spec.reshape(-1, spec.shape[-1]).mean(axis=0)
    return np.fft.rfftfreq(n, d=dx)[1:], spec[1:]
