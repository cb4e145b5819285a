"""Large-eddy simulation of forced 1-D Burgers turbulence: a truth run, a filter, closures.

The viscous Burgers equation with a large-scale random forcing ``f(x, t)``,

    du/dt + d(u^2/2)/dx = nu d2u/dx2 + f,

is the one-dimensional cartoon of turbulence: energy injected at large scales cascades into
shocks, where viscosity removes it. On a periodic domain ``[0, length)`` it is solved here
with a finite-volume scheme on the face-flux convention of :mod:`nnparam.grid` (cell ``i`` is
bounded by the faces ``i-1`` and ``i``; ``flux[i]`` crosses the right face of cell ``i``).

Conventions (used consistently by every function of this module)
---------------------------------------------------------------
* Resolved advective flux: the energy-conserving form
  ``F[i] = (u[i]^2 + u[i] u[i+1] + u[i+1]^2) / 6`` (an approximation of ``u^2/2`` at the face).
  It conserves momentum ``sum u dx`` and, without viscosity, the energy ``sum u^2/2 dx`` of the
  semi-discrete system, so every loss of energy is an explicit physical or subgrid term.
* Filter: the top-hat (box) filter of width ``Delta`` = one coarse cell. Coarse cell values are
  box averages over the coarse cell (:func:`nnparam.filters.coarse_grain`); the subgrid stress
  lives on coarse faces and uses a box of width ``Delta`` centred on the face.
* Subgrid stress **without** the 1/2 of the flux: ``tau = bar(u u) - bar(u) bar(u)``, so the
  filtered equation reads ``d ubar/dt + d(ubar^2/2)/dx = -d(tau/2)/dx + nu d2ubar/dx2 + fbar``.
  For the box filter ``tau`` is the variance of ``u`` inside the window, hence ``tau >= 0``.
* Smagorinsky in 1-D: a 1x1 tensor has no trace-free part, so the 1-D form models the whole
  stress, ``tau = -2 (C_s Delta)^2 |du/dx| du/dx``; with the 1/2 above this is an eddy
  viscosity ``nu_t = (C_s Delta)^2 |du/dx|`` added to ``nu``.

Units: nondimensional (length of the domain ``2 pi``, velocity of order 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import xarray as xr

from .. import _xp, cache
from .._validate import finite_array, positive, positive_int
from ..closure import Closure
from ..filters import coarse_grain, power_spectrum
from ..tracer import _ssprk3_step

__all__ = [
    "RandomForcing", "advective_flux", "tendency", "simulate", "simulate_ensemble", "sgs_stress",
    "model_consistent_stress", "forcing_power", "smagorinsky_stress", "stencil_features",
    "energy_spectrum", "sgs_dissipation", "viscous_dissipation", "fit_smagorinsky",
    "gradient_features", "network_closure", "clark_stress", "spectral_slope", "truth_runs",
    "CHAPTER_RUNS", "warm_cache",
]


@dataclass(frozen=True)
class RandomForcing:
    """Large-scale random forcing ``f(x, t) = sum_k a_k(t) cos(k x) + b_k(t) sin(k x)``.

    The amplitudes are drawn from a normal law at times ``0, refresh, 2 refresh, ...`` and
    interpolated linearly in time, so ``f`` is a deterministic, continuous function of ``(x, t)``
    that the truth run and every coarse run see identically, whatever their timestep.

    Attributes: ``wavenumbers`` (K,) integers; ``a``, ``b`` (n_knots, K); ``refresh`` (time);
    ``length`` of the periodic domain.
    """

    wavenumbers: np.ndarray
    a: np.ndarray
    b: np.ndarray
    refresh: float
    length: float

    @classmethod
    def draw(cls, t_end: float, amplitude: float = 1.0, wavenumbers=(1, 2, 3),
             refresh: float = 1.0, length: float = 2 * np.pi, seed: int = 0) -> RandomForcing:
        """Random amplitudes of standard deviation ``amplitude`` up to time ``t_end``."""
        t_end, amplitude = positive("t_end", t_end), positive("amplitude", amplitude)
        refresh, length = positive("refresh", refresh), positive("length", length)
        k = finite_array("wavenumbers", wavenumbers, ndim=1)
        if k.size == 0 or np.any(k < 1) or np.any(k != np.round(k)):
            raise ValueError(f"wavenumbers must be positive integers, got {wavenumbers!r}")
        n_knots = int(np.ceil(t_end / refresh)) + 2
        rng = np.random.default_rng(seed)
        scale = amplitude / np.sqrt(k.size)
        a = scale * rng.standard_normal((n_knots, k.size))
        b = scale * rng.standard_normal((n_knots, k.size))
        return cls(k.astype(int), a, b, refresh, length)

    def amplitudes(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """``(a_k(t), b_k(t))`` interpolated linearly between the knots."""
        s = float(t) / self.refresh
        if not 0 <= s <= self.a.shape[0] - 1:
            raise ValueError(f"t must lie in [0, {(self.a.shape[0] - 1) * self.refresh}], got {t}")
        j = min(int(s), self.a.shape[0] - 2)
        w = s - j
        return (1 - w) * self.a[j] + w * self.a[j + 1], (1 - w) * self.b[j] + w * self.b[j + 1]

    def basis(self, n_cells: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact cell averages of ``cos(k x)`` and ``sin(k x)`` on ``n_cells`` equal cells.

        Returns two arrays of shape (K, n_cells); ``f`` averaged over the cells at time ``t`` is
        ``a_k(t) @ cos_basis + b_k(t) @ sin_basis``.
        """
        n_cells = positive_int("n_cells", n_cells, minimum=2)
        dx = self.length / n_cells
        left = np.arange(n_cells) * dx
        kk = 2 * np.pi * self.wavenumbers[:, None] / self.length
        cos_avg = (np.sin(kk * (left + dx)) - np.sin(kk * left)) / (kk * dx)
        sin_avg = (np.cos(kk * left) - np.cos(kk * (left + dx))) / (kk * dx)
        return cos_avg, sin_avg

    def cell_average(self, n_cells: int, t: float) -> np.ndarray:
        """Forcing averaged over each of ``n_cells`` equal cells at time ``t``, shape (n_cells,)."""
        cos_avg, sin_avg = self.basis(n_cells)
        a, b = self.amplitudes(t)
        return a @ cos_avg + b @ sin_avg


def advective_flux(u: np.ndarray) -> np.ndarray:
    """Energy-conserving face flux ``(u_i^2 + u_i u_{i+1} + u_{i+1}^2)/6`` at right faces.

    ``u`` has shape (..., N), numpy or torch; returns the same shape (flux units: velocity^2).
    """
    up = _xp.roll(u, -1)
    return (u * u + u * up + up * up) / 6.0


def _check_state(u, name: str = "u") -> np.ndarray:
    u = finite_array(name, u)
    if u.ndim != 1 or u.size < 4:
        raise ValueError(f"{name} must be 1-D with at least 4 cells, got shape {u.shape}")
    return u


def tendency(u, length: float, nu: float, forcing=None, stress=None) -> np.ndarray:
    """``du/dt`` of each cell, shape (N,).

    Parameters
    ----------
    u : array (N,) cell averages of velocity.
    length : domain length; ``nu`` : viscosity (>= 0, length^2/time).
    forcing : optional array (N,), cell-averaged forcing (velocity/time).
    stress : optional array (N,), subgrid stress ``tau`` at right faces (velocity^2); enters the
        face flux as ``tau/2`` (see the module conventions).

    A torch ``u`` (..., N) (with torch ``forcing`` and ``stress`` or None) takes the same
    arithmetic without validation: the differentiable model of :mod:`nnparam.aposteriori`.
    """
    if _xp.is_torch(u):
        return _rhs(u, positive("length", length) / u.shape[-1], float(nu), forcing, stress)
    u = _check_state(u)
    length = positive("length", length)
    nu = float(nu)
    if not np.isfinite(nu) or nu < 0:
        raise ValueError(f"nu must be a finite number >= 0, got {nu!r}")
    if forcing is not None:
        forcing = finite_array("forcing", forcing)
        if forcing.shape != u.shape:
            raise ValueError(f"forcing must have shape {u.shape}, got {forcing.shape}")
    if stress is not None:
        stress = finite_array("stress", stress)
        if stress.shape != u.shape:
            raise ValueError(f"stress must have shape {u.shape}, got {stress.shape}")
    return _rhs(u, length / u.size, nu, forcing, stress)


def _shift_left(u):
    """``u[i+1]`` with periodic wrap on the last axis (a cheap ``np.roll(u, -1)``; or torch)."""
    if _xp.is_torch(u):
        return _xp.roll(u, -1)
    out = np.empty_like(u)
    out[..., :-1] = u[..., 1:]
    out[..., -1] = u[..., 0]
    return out


def _rhs(u, dx, nu, forcing, stress):
    up = _shift_left(u)
    flux = (u * u + u * up + up * up) / 6.0 - nu * (up - u) / dx
    if stress is not None:
        flux = flux + 0.5 * stress
    du = (_xp.roll(flux, 1) - flux) / dx  # flux[i-1] - flux[i]
    if forcing is not None:
        du = du + forcing
    return du


def forcing_interpolator(forcing: RandomForcing, n_cells: int) -> Callable:
    """``f(t)``: the cell-averaged forcing on ``n_cells`` cells at time ``t``, interpolated
    linearly between the knots; what :func:`simulate` adds to each stage. A scalar ``t`` gives
    shape (n_cells,), an array of times (...) gives (..., n_cells) (one time per member)."""
    cos_avg, sin_avg = forcing.basis(n_cells)
    knots = forcing.a @ cos_avg + forcing.b @ sin_avg  # forcing field at each knot time

    last = knots.shape[0] - 1

    def at(t):
        if np.ndim(t) == 0:  # the integrators' case: plain floats are fastest
            s = min(t / forcing.refresh, last)
            j = min(int(s), last - 1)
            w = s - j
        else:
            s = np.minimum(np.asarray(t, dtype=float) / forcing.refresh, last)
            j = np.minimum(s.astype(int), last - 1)
            w = (s - j)[..., None]
        return (1.0 - w) * knots[j] + w * knots[j + 1]

    at.t_max = last * forcing.refresh
    return at


def _run_settings(length, nu, dt, n_steps, save_every, closure, t0):
    """The validated settings shared by :func:`simulate` and :func:`simulate_ensemble`."""
    length, dt = positive("length", length), positive("dt", dt)
    n_steps = positive_int("n_steps", n_steps)
    save_every = positive_int("save_every", save_every)
    nu = float(nu)
    if not np.isfinite(nu) or nu < 0:
        raise ValueError(f"nu must be a finite number >= 0, got {nu!r}")
    if closure is not None and not callable(closure):
        raise ValueError("closure must be a callable closure(u) -> tau, or None")
    return length, nu, dt, n_steps, save_every, float(t0)


def _check_time_range(t0: float, duration: float, t_max: float) -> None:
    if t0 < 0 or t0 + duration > t_max * (1 + 1e-12):
        raise ValueError(f"the run [{t0}, {t0 + duration}] leaves the forcing's time "
                         f"range [0, {t_max}]: draw the forcing with a larger t_end")


def simulate(u0, length: float, nu: float, dt: float, n_steps: int, *,
             forcing: RandomForcing | None = None, closure: Callable | None = None,
             save_every: int = 1, t0: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Integrate the finite-volume Burgers model with the SSP Runge-Kutta 3 scheme.

    Parameters
    ----------
    u0 : array (N,) initial cell averages.
    length, nu, dt : domain length, viscosity (>= 0), timestep (time).
    n_steps : number of steps; ``save_every`` : keep one state in every ``save_every`` steps.
    forcing : optional :class:`RandomForcing` (evaluated as exact cell averages).
    closure : optional callable ``closure(u) -> tau`` returning the subgrid stress (N,) at the
        right faces for the state ``u`` (N,); ``None`` runs without subgrid model.
    t0 : start time (the forcing is evaluated at ``t0 + t``).

    Returns ``(t, u)`` of shapes (n_saved,) and (n_saved, N), including the initial state.
    Raises ``FloatingPointError`` if the run blows up (non-finite state).
    """
    u = _check_state(u0, "u0").copy()
    length, nu, dt, n_steps, save_every, t0 = _run_settings(length, nu, dt, n_steps,
                                                            save_every, closure, t0)
    n, dx = u.size, length / u.size
    if forcing is not None:
        if not isinstance(forcing, RandomForcing):
            raise ValueError("forcing must be a RandomForcing or None")
        forcing_at = forcing_interpolator(forcing, n)
        t_max = forcing_at.t_max
        _check_time_range(t0, n_steps * dt, t_max)

    def rhs(v, t):
        f = None if forcing is None else forcing_at(t)
        tau = None if closure is None else np.asarray(closure(v), dtype=float)
        return _rhs(v, dx, nu, f, tau)

    times, states = [t0], [u.copy()]
    t = t0
    for step in range(1, n_steps + 1):
        u = _ssprk3_step(u, t, dt, rhs)  # the tracer's SSP-RK3: one scheme for both models
        t = t0 + step * dt
        if step % save_every == 0:
            if not np.all(np.isfinite(u)):
                raise FloatingPointError(f"the Burgers run blew up before t = {t:.3g}")
            times.append(t)
            states.append(u.copy())
    return np.array(times), np.array(states)


def _member_knots(forcing, n_members: int, n_cells: int):
    """Forcing fields at the knots, ``(n_knots, M, n_cells)``, for one shared forcing or one
    per member; and the time range ``[0, t_max]`` they cover."""
    members = [forcing] * n_members if isinstance(forcing, RandomForcing) else list(forcing)
    if len(members) != n_members or not all(isinstance(f, RandomForcing) for f in members):
        raise ValueError(f"forcing must be a RandomForcing or a sequence of {n_members} "
                         "RandomForcing (one per member)")
    first = members[0]
    if any(f.refresh != first.refresh or f.length != first.length
           or f.a.shape[0] != first.a.shape[0] for f in members):
        raise ValueError("the members' forcings must share refresh, length and time range")
    knots = np.stack([f.a @ b[0] + f.b @ b[1] for f, b in
                      ((f, f.basis(n_cells)) for f in members)], axis=1)
    return knots, (knots.shape[0] - 1) * first.refresh, first.refresh


def simulate_ensemble(u0, length: float, nu: float, dt: float, n_steps: int, *,
                      forcing=None, closure: Callable | None = None, save_every: int = 1,
                      t0: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """:func:`simulate` for ``M`` members advanced together in one vectorised call.

    ``u0`` has shape (M, N). ``forcing`` is one :class:`RandomForcing` seen by every member
    (members then differ only by their initial state, and synchronise), a sequence of ``M``
    forcings (independent realisations; they must share ``refresh``, ``length`` and the time
    range), or ``None``. ``closure(u) -> tau`` receives the states (M, N) and returns the
    stresses (M, N) at the right faces (a :class:`nnparam.closure.Closure` or a plain
    callable). Same SSP Runge-Kutta 3 steps as :func:`simulate`: member ``m`` equals
    ``simulate(u0[m], ...)`` with its own forcing, to round-off.

    Returns ``(t, u)`` of shapes (n_saved,) and (n_saved, M, N). Raises
    ``FloatingPointError`` if any member blows up.
    """
    u = finite_array("u0", u0)
    if u.ndim != 2 or u.shape[1] < 4:
        raise ValueError(f"u0 must have shape (M, N) with N >= 4 cells, got {u.shape}")
    u = u.copy()
    length, nu, dt, n_steps, save_every, t0 = _run_settings(length, nu, dt, n_steps,
                                                            save_every, closure, t0)
    n_members, n = u.shape
    dx = length / n
    knots = None
    if forcing is not None:
        knots, t_max, refresh = _member_knots(forcing, n_members, n)  # (n_knots, M, N)
        _check_time_range(t0, n_steps * dt, t_max)

    def rhs(v, t):  # v: (M, N); _rhs acts on the last axis (the cells) of every member
        f = None
        if knots is not None:
            s = min(t / refresh, knots.shape[0] - 1)
            j = min(int(s), knots.shape[0] - 2)
            w = s - j
            f = (1.0 - w) * knots[j] + w * knots[j + 1]
        tau = None
        if closure is not None:
            tau = np.asarray(closure(v), dtype=float)
            if tau.shape != v.shape:
                raise ValueError(f"closure must return stresses of shape {v.shape}, "
                                 f"got {tau.shape}")
        return _rhs(v, dx, nu, f, tau)

    times, states = [t0], [u.copy()]
    t = t0
    for step in range(1, n_steps + 1):
        u = _ssprk3_step(u, t, dt, rhs)  # the scheme of simulate, member by member
        t = t0 + step * dt
        if step % save_every == 0:
            if not np.all(np.isfinite(u)):
                bad = np.flatnonzero(~np.all(np.isfinite(u), axis=1)).tolist()
                raise FloatingPointError(f"members {bad} of the Burgers ensemble blew up "
                                         f"before t = {t:.3g}")
            times.append(t)
            states.append(u.copy())
    return np.array(times), np.array(states)


def _check_fine(u_fine, factor):
    u = finite_array("u_fine", u_fine)
    if u.ndim not in (1, 2):
        raise ValueError(f"u_fine must have shape (N,) or (n_time, N), got {u.shape}")
    factor = positive_int("factor", factor, minimum=2)
    if factor % 2 or u.shape[-1] % factor:
        raise ValueError(f"factor must be even and divide the {u.shape[-1]} fine cells, "
                         f"got {factor}")
    return u, factor


def sgs_stress(u_fine, factor: int) -> np.ndarray:
    """Exact subgrid stress ``tau = bar(u u) - bar(u)^2`` at the right face of each coarse cell.

    The bar is a box of ``factor`` fine cells (width ``Delta``) centred on the coarse face.
    ``u_fine`` has shape (..., N); returns (..., N // factor), non-negative (velocity^2).
    """
    u, factor = _check_fine(u_fine, factor)
    shifted = np.roll(u, -(factor // 2), axis=-1)  # fine cells centred on the coarse faces
    mean = coarse_grain(shifted, factor)
    return np.maximum(coarse_grain(shifted ** 2, factor) - mean ** 2, 0.0)


def model_consistent_stress(u_fine, factor: int, length: float, nu: float) -> np.ndarray:
    """Face stress that makes the *coarse finite-volume model* reproduce the truth exactly.

    The cell average of the truth obeys ``d ubar_i/dt = -(F[i] - F[i-1]) / Delta + fbar_i``
    with ``F`` the fine model's total flux (advective + viscous) at the coarse faces. The
    coarse model computes its own flux from ``ubar``; twice the difference (the factor 2 of the
    ``tau/2`` convention) is the stress a closure must supply. It contains the subgrid stress
    *and* the coarse discretization error: the budget residual of the principles chapters.
    Unlike ``tau`` it is not Galilean invariant: adding a uniform ``U`` to the flow changes it
    by ``2 U [(u_f^- + u_f^+)/2 - (ubar_I + ubar_I+1)/2]`` (fine face average minus coarse
    central average), the advective discretization error.

    ``u_fine`` has shape (..., N); returns (..., N // factor) in velocity^2.
    """
    u, factor = _check_fine(u_fine, factor)
    length = positive("length", length)
    nu = float(nu)
    if not np.isfinite(nu) or nu < 0:
        raise ValueError(f"nu must be a finite number >= 0, got {nu!r}")
    n_fine = u.shape[-1]
    up = np.roll(u, -1, axis=-1)
    fine_flux = advective_flux(u) - nu * (up - u) / (length / n_fine)
    at_faces = fine_flux[..., factor - 1::factor]
    ub = coarse_grain(u, factor)
    ubp = np.roll(ub, -1, axis=-1)
    coarse_flux = advective_flux(ub) - nu * (ubp - ub) / (length / ub.shape[-1])
    return 2.0 * (at_faces - coarse_flux)


def forcing_power(times, u, forcing: RandomForcing) -> np.ndarray:
    """Energy input ``<u f>`` (velocity^2/time) of each state ``u`` (n_time, n) at ``times``.

    In a statistically steady state the mean input equals the mean total dissipation, so this
    is the dissipation rate measured the same way for the truth and for every coarse model.
    """
    u = finite_array("u", u, ndim=2)
    times = finite_array("times", times, ndim=1)
    if times.size != u.shape[0]:
        raise ValueError(f"times must have {u.shape[0]} entries, got {times.size}")
    if not isinstance(forcing, RandomForcing):
        raise ValueError("forcing must be a RandomForcing")
    cos_avg, sin_avg = forcing.basis(u.shape[1])
    f = np.array([a @ cos_avg + b @ sin_avg for a, b in map(forcing.amplitudes, times)])
    return np.mean(u * f, axis=-1)


def _face_gradient(u_bar, delta):
    return (np.roll(u_bar, -1, axis=-1) - u_bar) / delta


def smagorinsky_stress(u_bar, length: float, c_s: float) -> np.ndarray:
    """1-D Smagorinsky stress ``-2 (c_s Delta)^2 |S| S`` with ``S = du/dx`` at the right faces.

    ``u_bar`` has shape (..., n) coarse cell averages; ``Delta = length / n``. Returns (..., n).
    """
    u = finite_array("u_bar", u_bar)
    if u.ndim < 1 or u.shape[-1] < 4:
        raise ValueError(f"u_bar must have shape (..., n) with n >= 4, got {u.shape}")
    delta = positive("length", length) / u.shape[-1]
    c_s = float(c_s)
    if not np.isfinite(c_s) or c_s < 0:
        raise ValueError(f"c_s must be a finite number >= 0, got {c_s!r}")
    s = _face_gradient(u, delta)
    return -2.0 * (c_s * delta) ** 2 * np.abs(s) * s


def stencil_features(u_bar, length: float) -> np.ndarray:
    """Network inputs at each right face: the three neighbouring gradients ``du/dx``.

    For the face between cells ``i`` and ``i+1``: the gradients across faces ``i-1``, ``i``,
    ``i+1`` (1/time). Differences only, so the closure is Galilean invariant (a uniform shift
    of ``u`` changes neither inputs nor ``tau``), like the exact stress.
    (A closure of these inputs trained on :func:`model_consistent_stress` is invariant, but
    its target is not: it then works only at the mean velocity it was trained at.)
    ``u_bar`` has shape (n_time, n) or (n,); returns (n_time * n, 3) or (n, 3).
    """
    u = finite_array("u_bar", u_bar)
    if u.ndim not in (1, 2) or u.shape[-1] < 4:
        raise ValueError(f"u_bar must have shape (n,) or (n_time, n) with n >= 4, got {u.shape}")
    g = _face_gradient(u, positive("length", length) / u.shape[-1])
    feats = np.stack([np.roll(g, 1, axis=-1), g, np.roll(g, -1, axis=-1)], axis=-1)
    return feats.reshape(-1, 3)


def gradient_features(u_bar, length: float, xp=np):
    """:func:`stencil_features` keeping the leading axes: (..., n) -> (..., n, 3).

    ``xp`` is ``numpy`` or ``torch`` (one source for both, so a network trained through a
    torch solver sees the same inputs as the numpy runs).
    """
    delta = positive("length", length) / u_bar.shape[-1]
    g = (_xp.roll(u_bar, -1) - u_bar) / delta
    return xp.stack([_xp.roll(g, 1), g, _xp.roll(g, -1)], -1)


def network_closure(module, length: float, x_scaler=None, y_scaler=None,
                    name: str = "") -> Closure:
    """Wrap a network of the three face gradients as a stress closure ``closure(u) -> tau``.

    ``module`` maps standardised ``(n_faces, 3)`` gradient stencils (:func:`gradient_features`)
    to the standardised stress ``(n_faces, 1)``; ``x_scaler`` and ``y_scaler`` are the
    :class:`nnparam.nn.Standardizer` objects fitted on the training data. The closure accepts
    states ``(n,)`` or ``(M, n)`` and returns stresses of the same shape (velocity^2).
    """
    length = positive("length", length)

    def features(u, xp=np):
        return gradient_features(u, length, xp)

    return Closure.from_scalers(
        module, x_scaler, y_scaler, inputs=("u",), features=features,
        feature_names=("du/dx[f-1]", "du/dx[f]", "du/dx[f+1]"), output="subgrid stress tau",
        output_units="velocity^2", input_units=("velocity",),
        name=name or "Burgers face-stress network")


def clark_stress(u_bar, length: float) -> np.ndarray:
    """Gradient (Clark) model of the top-hat stress: ``Delta^2 / 12 (du/dx)^2`` at right faces.

    The leading term of the Taylor expansion of ``bar(u u) - bar(u)^2`` for a box filter of
    width ``Delta = length / n`` (Clark, Ferziger and Reynolds 1979); non-negative like the
    exact stress. ``u_bar`` (..., n) -> (..., n) in velocity^2.
    """
    u = finite_array("u_bar", u_bar)
    if u.ndim < 1 or u.shape[-1] < 4:
        raise ValueError(f"u_bar must have shape (..., n) with n >= 4, got {u.shape}")
    delta = positive("length", length) / u.shape[-1]
    return delta ** 2 / 12.0 * _face_gradient(u, delta) ** 2


def spectral_slope(k, spectrum, k_range: tuple[float, float]) -> float:
    """Least-squares slope of ``log E`` against ``log k`` over ``k_min <= k <= k_max``."""
    k = finite_array("k", k, ndim=1)
    e = finite_array("spectrum", spectrum, ndim=1)
    if e.shape != k.shape or np.any(e <= 0):
        raise ValueError("spectrum must be positive and have the shape of k")
    keep = (k >= k_range[0]) & (k <= k_range[1])
    if keep.sum() < 2:
        raise ValueError(f"k_range {k_range} holds fewer than two wavenumbers")
    return float(np.polyfit(np.log(k[keep]), np.log(e[keep]), 1)[0])


def energy_spectrum(u, length: float, average: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Energy spectrum ``E(k)`` of cell values, averaged over the leading axes.

    ``u`` has shape (..., n); returns angular wavenumbers ``k = 2 pi m / length``, ``m = 1..n/2``
    (integers for a ``2 pi`` domain) and ``E(k)`` (velocity^2 * length), normalised so that
    ``sum_k E(k) dk`` is half the variance of ``u`` (Parseval). A wrapper of
    :func:`nnparam.filters.power_spectrum` in the units of turbulence. With
    ``average=False`` the spectrum of every state is returned, shape (..., n // 2): their
    mean over the leading axes is the averaged spectrum (used to bootstrap spectra in time).
    """
    u = finite_array("u", u)
    if u.ndim < 1 or u.shape[-1] < 4:
        raise ValueError(f"u must have shape (..., n) with n >= 4, got {u.shape}")
    length = positive("length", length)
    dk = 2 * np.pi / length
    if average:
        freq, power = power_spectrum(u, length / u.shape[-1])
        return 2 * np.pi * freq, 0.5 * power / dk
    n = u.shape[-1]
    freq, _ = power_spectrum(u[(0,) * (u.ndim - 1)], length / n)
    # the normalisation of filters.power_spectrum, keeping the leading axes
    spec = np.abs(np.fft.rfft(u - u.mean(axis=-1, keepdims=True), axis=-1)) ** 2 / n**2
    spec[..., 1:] *= 2
    if n % 2 == 0:
        spec[..., -1] /= 2
    return 2 * np.pi * freq, 0.5 * spec[..., 1:] / dk


def viscous_dissipation(u, length: float, nu: float) -> np.ndarray:
    """Resolved viscous dissipation ``nu <(du/dx)^2>`` (velocity^2/time) of each state (..., n)."""
    u = finite_array("u", u)
    if u.ndim < 1 or u.shape[-1] < 4:
        raise ValueError(f"u must have shape (..., n) with n >= 4, got {u.shape}")
    nu = positive("nu", nu)
    return nu * np.mean(_face_gradient(u, positive("length", length) / u.shape[-1]) ** 2,
                        axis=-1)


def sgs_dissipation(u_bar, stress, length: float) -> np.ndarray:
    """Energy drained from resolved scales by the stress: ``-<(tau/2) du/dx>`` at the faces.

    Positive means forward transfer (dissipation), negative means backscatter. ``u_bar`` and
    ``stress`` have shape (..., n); returns shape (...) in velocity^2/time.
    """
    u = finite_array("u_bar", u_bar)
    tau = finite_array("stress", stress)
    if u.ndim < 1 or u.shape[-1] < 4:
        raise ValueError(f"u_bar must have shape (..., n) with n >= 4, got {u.shape}")
    if tau.shape != u.shape:
        raise ValueError(f"stress must have the shape of u_bar {u.shape}, got {tau.shape}")
    s = _face_gradient(u, positive("length", length) / u.shape[-1])
    return -np.mean(0.5 * tau * s, axis=-1)


def fit_smagorinsky(u_bar, stress, length: float) -> float:
    """Smagorinsky constant that matches the mean subgrid dissipation of the data (Lilly style).

    ``C_s^2 = <-(tau/2) S> / (Delta^2 <|S|^3>)`` over all samples; ``u_bar`` and ``stress`` have
    shape (n_time, n). Raises ``ValueError`` if the data show net backscatter.
    """
    eps = float(np.mean(sgs_dissipation(u_bar, stress, length)))
    u = finite_array("u_bar", u_bar)
    delta = positive("length", length) / u.shape[-1]
    s = _face_gradient(u, delta)
    if eps <= 0:
        raise ValueError("stress drains no energy on average (net backscatter): no C_s fits")
    return float(np.sqrt(eps / (delta ** 2 * np.mean(np.abs(s) ** 3))))


# --------------------------------------------------------------------------- cached truths
def truth_runs(seeds, *, n_cells: int = 256, nu: float = 0.03, dt: float = 0.008,
               t_end: float = 60.0, save: float = 0.04, amplitude: float = 1.0,
               wavenumbers=(1, 2, 3), length: float = 2 * np.pi) -> xr.Dataset:
    """Forced Burgers truths from rest, one member per forcing seed, computed once and cached.

    Each member ``m`` is driven by ``RandomForcing.draw(t_end + 1, amplitude, wavenumbers,
    seed=seeds[m])``; all members run together (:func:`simulate_ensemble`) on ``n_cells``
    cells with step ``dt``, and a state is kept every ``save`` time units (a multiple of
    ``dt``). Returns a Dataset with ``u`` on ``(time, member, x)`` (velocity; cell averages)
    and the seeds as the ``member`` coordinate. Cached under :func:`nnparam.cache.cached`,
    keyed by every argument.
    """
    seeds = [int(s) for s in np.atleast_1d(seeds)]
    if not seeds:
        raise ValueError("seeds must hold at least one forcing seed")
    n_cells = positive_int("n_cells", n_cells, minimum=4)
    dt, t_end, save = positive("dt", dt), positive("t_end", t_end), positive("save", save)
    every = int(round(save / dt))
    if every < 1 or abs(every * dt - save) > 1e-9 * save:
        raise ValueError(f"save must be a multiple of dt={dt}, got {save}")
    params = {"seeds": seeds, "n_cells": n_cells, "nu": float(nu), "dt": dt, "t_end": t_end,
              "save": save, "amplitude": float(amplitude),
              "wavenumbers": [int(k) for k in wavenumbers], "length": float(length)}

    def compute() -> xr.Dataset:
        forcings = [RandomForcing.draw(t_end + 1, amplitude, wavenumbers, length=length,
                                       seed=s) for s in seeds]
        t, u = simulate_ensemble(np.zeros((len(seeds), n_cells)), length, nu, dt,
                                 int(round(t_end / dt)), forcing=forcings, save_every=every)
        x = (np.arange(n_cells) + 0.5) * length / n_cells
        return xr.Dataset(
            {"u": (("time", "member", "x"), u,
                   {"units": "1", "long_name": "velocity (cell average)"})},
            coords={"time": t, "member": seeds, "x": x},
            attrs={k: str(v) for k, v in params.items()})

    return cache.cached("burgers-truth", params, compute, version=1)


#: the truth runs the Burgers chapter reads: training (forcing seed 1), the resolution check
#: (the same forcing on twice the cells) and the independent evaluation ensemble
CHAPTER_RUNS = {
    "training": {"seeds": [1], "t_end": 60.0},
    "resolution": {"seeds": [1], "n_cells": 512, "dt": 0.002, "t_end": 60.0},
    "evaluation": {"seeds": [101, 102, 103, 104, 105, 106], "t_end": 45.0},
}


def warm_cache() -> None:
    """Compute every run in :data:`CHAPTER_RUNS` (a producer of ``make data``)."""
    for kwargs in CHAPTER_RUNS.values():
        truth_runs(**kwargs)
