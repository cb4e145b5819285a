"""Land-surface application: subgrid heterogeneity of soil moisture and a nonlinear flux.

A land model carries one soil moisture ``m`` per grid cell, but inside the cell the soil
moisture ``s`` varies (soils, topography, patchy rain). Fluxes are nonlinear in ``s``:

* saturation-excess runoff ``R(s) = rate * max(s - threshold, 0)`` (convex, a threshold);
* moisture-limited evapotranspiration ``E(s) = potential * min(s / s_star, 1)`` (concave).

For a nonlinear flux the cell mean of the flux is not the flux of the cell mean (Jensen's
inequality). For a subgrid distribution that is uniform on ``[m - w, m + w]`` with
``w = sqrt(3) * std`` the exact cell-mean fluxes follow in closed form (derived in the
docstrings below); they are the reference the learned closures are measured against.

Units: soil moisture ``s`` as a volumetric fraction (-), ``rate`` in 1/day so fluxes are in
(-)/day, ``potential`` in (-)/day, time in days.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._validate import finite_array, positive, positive_int

SQRT3 = np.sqrt(3.0)


def _nonneg(name: str, value) -> np.ndarray:
    arr = finite_array(name, value)
    if np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0")
    return arr


def runoff(s, threshold: float = 0.6, rate: float = 1.0) -> np.ndarray:
    """Point runoff ``rate * max(s - threshold, 0)`` in (-)/day; ``s`` any shape."""
    s = finite_array("s", s)
    threshold = float(finite_array("threshold", threshold))
    return positive("rate", rate) * np.maximum(s - threshold, 0.0)


def evapotranspiration(s, potential: float = 0.05, s_star: float = 0.5) -> np.ndarray:
    """Point evapotranspiration ``potential * min(s / s_star, 1)`` in (-)/day (``s >= 0``)."""
    s = _nonneg("s", s)
    return positive("potential", potential) * np.minimum(s / positive("s_star", s_star), 1.0)


def mean_excess_uniform(mean, std, threshold: float) -> np.ndarray:
    """Exact ``E[max(s - threshold, 0)]`` for ``s`` uniform on ``[mean - w, mean + w]``.

    With ``w = sqrt(3)*std`` (so that the variance is ``std**2``) and ``a = mean - w``,
    ``b = mean + w``: the expectation is ``mean - threshold`` if ``threshold <= a``, ``0`` if
    ``threshold >= b``, and ``(b - threshold)**2 / (4 w)`` in between (the integral of
    ``(s - threshold) / (2 w)`` from ``threshold`` to ``b``). ``std = 0`` gives the point value.
    """
    m = finite_array("mean", mean)
    sd = _nonneg("std", std)
    c = float(finite_array("threshold", threshold))
    m, sd = np.broadcast_arrays(m, sd)
    w = SQRT3 * sd
    b = m + w
    out = np.maximum(m - c, 0.0)
    partial = (np.abs(m - c) < w)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(partial, (b - c) ** 2 / np.where(w > 0, 4 * w, 1.0), out)
    return out


def mean_runoff_uniform(mean, std, threshold: float = 0.6, rate: float = 1.0) -> np.ndarray:
    """Exact cell-mean runoff for a uniform subgrid distribution of mean ``mean``, sd ``std``."""
    return positive("rate", rate) * mean_excess_uniform(mean, std, threshold)


def saturated_fraction_uniform(mean, std, threshold: float = 0.6) -> np.ndarray:
    """Fraction of the cell with ``s > threshold`` (the contributing area of VIC-type schemes)."""
    m = finite_array("mean", mean)
    sd = _nonneg("std", std)
    c = float(finite_array("threshold", threshold))
    m, sd = np.broadcast_arrays(m, sd)
    w = SQRT3 * sd
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(w > 0, (m + w - c) / np.where(w > 0, 2 * w, 1.0), (m > c).astype(float))
    return np.clip(frac, 0.0, 1.0)


def mean_et_uniform(mean, std, potential: float = 0.05, s_star: float = 0.5) -> np.ndarray:
    """Exact cell-mean evapotranspiration for a uniform subgrid distribution.

    ``min(s, s_star) = s - max(s - s_star, 0)``, hence
    ``E[ET] = potential / s_star * (mean - E[max(s - s_star, 0)])`` (requires ``mean - w >= 0``).
    """
    m = finite_array("mean", mean)
    sd = _nonneg("std", std)
    if np.any(m - SQRT3 * sd < 0):
        raise ValueError("mean and std put part of the cell below s = 0; need mean >= sqrt(3)*std")
    ss = positive("s_star", s_star)
    return positive("potential", potential) / ss * (m - mean_excess_uniform(m, sd, ss))


def sample_uniform_cells(mean, std, n_sub: int, seed: int = 0) -> np.ndarray:
    """Subgrid soil moisture of each cell: ``n_sub`` uniform samples, shape (n_cells, n_sub).

    ``mean`` and ``std`` are 1-D arrays (n_cells,) of cell means and subgrid standard
    deviations. This is the "high-resolution" field that training data are computed from.
    """
    m = finite_array("mean", mean, ndim=1)
    sd = _nonneg("std", std)
    if sd.shape != m.shape:
        raise ValueError(f"std must have the shape of mean {m.shape}, got {sd.shape}")
    n_sub = positive_int("n_sub", n_sub)
    u = np.random.default_rng(seed).uniform(-1.0, 1.0, size=(m.size, n_sub))
    return m[:, None] + SQRT3 * sd[:, None] * u


def run_bucket(s0: float, precip, dt: float, mean_runoff: Callable, drainage_time: float = 20.0
               ) -> tuple[np.ndarray, np.ndarray]:
    """Cell-mean bucket model ``dm/dt = P(t) - mean_runoff(m) - m / drainage_time`` (forward Euler).

    ``precip`` (n_steps,) rain rate in (-)/day held constant over each step; ``mean_runoff(m)``
    is the closure for the cell-mean runoff; ``drainage_time`` (days) sets a linear loss,
    which needs no closure because it commutes with the cell mean. Returns ``(m, runoff)``:
    the cell-mean soil moisture (n_steps + 1,) and the runoff of each step (n_steps,).
    """
    p = _nonneg("precip", finite_array("precip", precip, ndim=1))
    dt = positive("dt", dt)
    tau = positive("drainage_time", drainage_time)
    m = np.empty(p.size + 1)
    r = np.empty(p.size)
    m[0] = float(finite_array("s0", s0))
    for n in range(p.size):
        r[n] = float(np.asarray(mean_runoff(m[n])).reshape(-1)[0])
        m[n + 1] = m[n] + dt * (p[n] - r[n] - m[n] / tau)
    return m, r
