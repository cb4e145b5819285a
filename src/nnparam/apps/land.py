"""Land-surface application: subgrid heterogeneity of soil moisture and a nonlinear flux.

A land model carries one soil moisture ``m`` per grid cell, but inside the cell the soil
moisture ``s`` varies (soils, topography, patchy rain). Fluxes are nonlinear in ``s``:

* threshold runoff ``R(s) = rate * max(s - threshold, 0)`` (convex): soil wetter than the
  threshold drains at ``rate`` like an overflowing bucket. (Saturation-excess runoff proper is
  the rain falling on the saturated area, ``P * A_sat``; its cell mean has the same threshold
  structure, with the saturated fraction :func:`saturated_fraction_uniform`.)
* moisture-limited evapotranspiration ``E(s) = potential * min(s / s_star, 1)`` (concave).

For a nonlinear flux the cell mean of the flux is not the flux of the cell mean (Jensen's
inequality). For a subgrid distribution that is uniform on ``[m - w, m + w]`` with
``w = sqrt(3) * std`` the exact cell-mean fluxes follow in closed form (derived in the
docstrings below); they are the reference the learned closures are measured against. The
triangular distribution with the same mean and variance (:func:`mean_excess_triangular`,
:func:`sample_triangular_cells`) shows how much the answer depends on the shape.

Units: soil moisture ``s`` as a volumetric fraction (-), ``rate`` in 1/day so fluxes are in
(-)/day, ``potential`` in (-)/day, time in days.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._validate import finite_array, positive, positive_int

SQRT3 = np.sqrt(3.0)
SQRT6 = np.sqrt(6.0)


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


def mean_excess_triangular(mean, std, threshold: float) -> np.ndarray:
    """Exact ``E[max(s - threshold, 0)]`` for a symmetric triangular ``s`` of sd ``std``.

    The density is ``(a - |s - mean|) / a^2`` on ``[mean - a, mean + a]`` with
    ``a = sqrt(6) * std`` (so that the variance is ``std**2``): a longer wet tail than the
    uniform distribution's ``mean + sqrt(3) * std``. With ``d = mean + a - threshold``, the
    expectation is ``d^3 / (6 a^2)`` for ``mean <= threshold < mean + a`` and, by the symmetry
    ``E[max(s - c, 0)] - E[max(c - s, 0)] = mean - c``, ``mean - threshold + (threshold -
    mean + a)^3 / (6 a^2)`` for ``mean - a < threshold < mean``.
    """
    m = finite_array("mean", mean)
    sd = _nonneg("std", std)
    c = float(finite_array("threshold", threshold))
    m, sd = np.broadcast_arrays(m, sd)
    a = SQRT6 * sd
    safe = np.where(a > 0, a, 1.0)
    upper = np.clip(m + a - c, 0.0, None) ** 3 / (6 * safe**2)  # threshold above the mean
    lower = m - c + np.clip(c - m + a, 0.0, None) ** 3 / (6 * safe**2)  # below the mean
    return np.where(a > 0, np.where(c >= m, upper, lower), np.maximum(m - c, 0.0))


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


def sample_triangular_cells(mean, std, n_sub: int, seed: int = 0) -> np.ndarray:
    """Like :func:`sample_uniform_cells` for the symmetric triangular distribution.

    Each subgrid value is ``mean + sqrt(6) * std * (u1 + u2) / 2`` with ``u1, u2`` uniform on
    ``[-1, 1]``: the mean of two uniforms is triangular with variance 1/6. Shape
    (n_cells, n_sub).
    """
    m = finite_array("mean", mean, ndim=1)
    sd = _nonneg("std", std)
    if sd.shape != m.shape:
        raise ValueError(f"std must have the shape of mean {m.shape}, got {sd.shape}")
    n_sub = positive_int("n_sub", n_sub)
    u = np.random.default_rng(seed).uniform(-1.0, 1.0, size=(2, m.size, n_sub))
    return m[:, None] + SQRT6 * sd[:, None] * 0.5 * (u[0] + u[1])


def run_bucket(s0, precip, dt: float, mean_runoff: Callable, drainage_time: float = 20.0
               ) -> tuple[np.ndarray, np.ndarray]:
    """Cell-mean bucket ``dm/dt = P(t) - mean_runoff(m) - m / drainage_time`` (forward Euler).

    ``precip`` (n_steps,) rain rate in (-)/day held constant over each step, or
    (M, n_steps) for ``M`` members (rain seeds) advanced together in one vectorised call;
    ``s0`` is a number or one value per member. ``mean_runoff(m)`` is the closure for the
    cell-mean runoff: it receives the cell means, shape (M,) (``M = 1`` for a single run), and
    returns the runoff of each. ``drainage_time`` (days) sets a linear loss, which needs no
    closure because it commutes with the cell mean. Returns ``(m, runoff)``: the cell-mean
    soil moisture (n_steps + 1,) and the runoff of each step (n_steps,), or (M, n_steps + 1)
    and (M, n_steps) for members.
    """
    p = _nonneg("precip", finite_array("precip", precip))
    if p.ndim not in (1, 2) or p.shape[-1] < 1:
        raise ValueError(f"precip must have shape (n_steps,) or (M, n_steps), got {p.shape}")
    single = p.ndim == 1
    p = np.atleast_2d(p)
    dt = positive("dt", dt)
    tau = positive("drainage_time", drainage_time)
    if not callable(mean_runoff):
        raise ValueError("mean_runoff must be a callable mean_runoff(m) -> runoff")
    start = np.broadcast_to(np.asarray(finite_array("s0", s0), dtype=float), p.shape[:1])
    n_members, n_steps = p.shape
    m = np.empty((n_members, n_steps + 1))
    r = np.empty((n_members, n_steps))
    m[:, 0] = start
    for n in range(n_steps):
        out = np.asarray(mean_runoff(m[:, n]), dtype=float).reshape(-1)
        if out.size != n_members:
            raise ValueError(f"mean_runoff must return one runoff per member ({n_members}), "
                             f"got {out.size} values")
        r[:, n] = out
        m[:, n + 1] = m[:, n] + dt * (p[:, n] - r[:, n] - m[:, n] / tau)
    return (m[0], r[0]) if single else (m, r)
