"""Results as self-describing ``xarray.Dataset`` objects (units, long names) and netCDF I/O."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from ._validate import finite_array

#: units and long names of the coordinates used across the book
COORDS = {
    "time": ("h", "time"),
    "x": ("km", "cell centre position"),
}


def coordinate(name: str, values) -> xr.DataArray:
    """A 1-D coordinate with the book's units and long name (``time`` in h, ``x`` in km)."""
    if name not in COORDS:
        raise ValueError(f"name must be one of {sorted(COORDS)}, got {name!r}")
    units, long_name = COORDS[name]
    return xr.DataArray(finite_array(name, values, ndim=1), dims=name,
                        attrs={"units": units, "long_name": long_name})


def fields_to_dataset(time, x, attrs: dict | None = None, **fields) -> xr.Dataset:
    """Build a ``(time, x)`` dataset.

    Each keyword is ``name=(array of shape (n_time, n_x), units, long_name)``.
    """
    coords = {"time": coordinate("time", time), "x": coordinate("x", x)}
    shape = (coords["time"].size, coords["x"].size)
    data_vars = {}
    for name, spec in fields.items():
        if not (isinstance(spec, tuple) and len(spec) == 3):
            raise ValueError(f"{name} must be a tuple (array, units, long_name)")
        values, units, long_name = spec
        arr = np.asarray(values)
        if arr.shape != shape:
            raise ValueError(f"{name} must have shape (time, x) = {shape}, got {arr.shape}")
        data_vars[name] = xr.DataArray(arr, dims=("time", "x"),
                                       attrs={"units": units, "long_name": long_name})
    return xr.Dataset(data_vars, coords=coords, attrs=dict(attrs or {}))


def require_units(ds: xr.Dataset, variables=None) -> None:
    """Raise ``ValueError`` naming every variable or coordinate that lacks a ``units`` attribute."""
    names = list(variables) if variables is not None else list(ds.variables)
    missing = [n for n in names if n not in ds.variables]
    if missing:
        raise ValueError(f"ds is missing the variables {missing}")
    unitless = [n for n in names if "units" not in ds[n].attrs]
    if unitless:
        raise ValueError(f"ds variables {unitless} have no 'units' attribute")


def save_netcdf(ds: xr.Dataset, path) -> Path:
    """Write ``ds`` to netCDF-4 (float64 kept exactly, so a load returns the same bits)."""
    if not isinstance(ds, xr.Dataset):
        raise ValueError(f"ds must be an xarray.Dataset, got {type(ds).__name__}")
    path = Path(path)
    ds.to_netcdf(path, engine="netcdf4")
    return path


def load_netcdf(path, chunks=None) -> xr.Dataset:
    """Open a dataset written by :func:`save_netcdf`; ``chunks`` gives a lazy dask-backed view."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"path {path} does not exist")
    ds = xr.open_dataset(path, engine="netcdf4", chunks=chunks)
    return ds if chunks is not None else ds.load()
