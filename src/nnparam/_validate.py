"""Input checks shared by the engine: each failure is a ValueError naming the argument."""

from __future__ import annotations

import numpy as np


def finite_array(name: str, value, ndim: int | None = None, dtype=float) -> np.ndarray:
    """Return ``value`` as a numpy array; refuse NaN/inf and a wrong number of dimensions."""
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numeric array-like, got {type(value).__name__}") from err
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf; expected finite values")
    return arr


def positive(name: str, value) -> float:
    """Return ``value`` as a float after checking that it is finite and strictly positive."""
    try:
        val = float(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a positive number, got {value!r}") from err
    if not np.isfinite(val) or val <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return val


def positive_int(name: str, value, minimum: int = 1) -> int:
    """Return ``value`` as an int after checking ``value >= minimum``."""
    if isinstance(value, bool) or int(value) != value or int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def real(name: str, value) -> float:
    """Return ``value`` as a finite float."""
    try:
        val = float(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a real number, got {value!r}") from err
    if not np.isfinite(val):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return val


def nonnegative(name: str, value) -> float:
    """Return ``value`` as a finite float after checking ``value >= 0``."""
    val = real(name, value)
    if val < 0:
        raise ValueError(f"{name} must be a non-negative finite number, got {value!r}")
    return val
