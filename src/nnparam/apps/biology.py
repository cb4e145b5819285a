"""Fast-slow reaction networks: Michaelis-Menten kinetics from full mass action.

The enzyme reaction ``E + S <-> C -> E + P`` with rate constants ``k1`` (association,
1/(concentration time)), ``k_minus1`` (dissociation, 1/time) and ``k2`` (catalysis, 1/time)
obeys, by mass action,

    dS/dt = -k1 E S + k_minus1 C
    dE/dt = -k1 E S + (k_minus1 + k2) C
    dC/dt =  k1 E S - (k_minus1 + k2) C
    dP/dt =  k2 C,      conserving  E + C = E0  and  S + C + P = S0.

The complex ``C`` relaxes on the fast time ``1 / (k1 (S + Km))`` while the substrate is used up
on the slow time ``(S0 + Km) / Vmax``. Eliminating ``C`` gives the reduced (slow) model of the
*substrate not yet turned into product*, ``s = S0 - P = S + C``:

    ds/dt = -v(s),   v = k2 C  (the unresolved term: the closure)

and the quasi-steady-state approximation (QSSA) closes it with the Michaelis-Menten law
``v = Vmax s / (Km + s)``, ``Vmax = k2 E0``, ``Km = (k_minus1 + k2) / k1``. The QSSA is accurate
when ``epsilon = E0 / (S0 + Km)`` is small (Segel and Slemrod, 1989).

Units are the caller's (for example micromolar and seconds), used consistently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .._validate import finite_array, positive, positive_int

__all__ = [
    "Enzyme", "segel_slemrod_epsilon", "full_rhs", "full_jacobian", "simulate_full",
    "qssa_rate", "michaelis_menten_exact", "integrate_reduced", "euler_full",
    "max_stable_dt_full", "max_stable_dt_reduced",
]


@dataclass(frozen=True)
class Enzyme:
    """Rate constants of ``E + S <-> C -> E + P``.

    ``k1`` in 1/(concentration time); ``k_minus1`` and ``k2`` in 1/time.
    """

    k1: float
    k_minus1: float
    k2: float

    def __post_init__(self):
        positive("k1", self.k1)
        positive("k2", self.k2)
        km1 = float(self.k_minus1)
        if not np.isfinite(km1) or km1 < 0:
            raise ValueError(f"k_minus1 must be a finite number >= 0, got {self.k_minus1!r}")

    @property
    def km(self) -> float:
        """Michaelis constant ``(k_minus1 + k2) / k1`` (concentration)."""
        return (self.k_minus1 + self.k2) / self.k1

    def vmax(self, e0: float) -> float:
        """Maximal rate ``k2 E0`` (concentration/time)."""
        return self.k2 * positive("e0", e0)


def _check_enzyme(enzyme):
    if not isinstance(enzyme, Enzyme):
        raise ValueError(f"enzyme must be an Enzyme, got {type(enzyme).__name__}")
    return enzyme


def segel_slemrod_epsilon(e0: float, s0: float, enzyme: Enzyme) -> float:
    """Time-scale ratio ``E0 / (S0 + Km)`` that controls the accuracy of the QSSA."""
    return positive("e0", e0) / (positive("s0", s0) + _check_enzyme(enzyme).km)


def _check_state(state):
    y = finite_array("state", state)
    if y.shape[-1:] != (4,):
        raise ValueError(f"state must have shape (..., 4) holding (S, E, C, P), got {y.shape}")
    return y


def full_rhs(state, e0: float | None = None, enzyme: Enzyme | None = None) -> np.ndarray:
    """Mass-action tendencies of ``state = (S, E, C, P)`` (shape (..., 4)), same shape.

    All four species are integrated; the conservation laws ``E + C = E0`` and
    ``S + C + P = S0`` are properties of the tendencies (their sums vanish), not imposed.
    ``e0`` is unused (kept for a uniform signature) and may be None.
    """
    y = _check_state(state)
    k = _check_enzyme(enzyme)
    s, e, c = y[..., 0], y[..., 1], y[..., 2]
    bind = k.k1 * e * s
    unbind = k.k_minus1 * c
    cat = k.k2 * c
    return np.stack([-bind + unbind, -bind + unbind + cat, bind - unbind - cat, cat], axis=-1)


def full_jacobian(state, e0: float | None = None, enzyme: Enzyme | None = None) -> np.ndarray:
    """Jacobian of :func:`full_rhs` with respect to ``(S, E, C, P)``, shape (..., 4, 4).

    Two of its eigenvalues are zero (the two conservation laws); the others are real and
    negative, the fast one close to ``-k1 (S + E + Km)``.
    """
    y = _check_state(state)
    k = _check_enzyme(enzyme)
    s, e = y[..., 0], y[..., 1]
    jac = np.zeros(y.shape[:-1] + (4, 4))
    d_bind = np.stack([k.k1 * e, k.k1 * s], axis=-1)  # d(bind)/d(S, E)
    for row, sign in ((0, -1), (1, -1), (2, 1)):
        jac[..., row, 0:2] = sign * d_bind
    jac[..., 0, 2] = k.k_minus1
    jac[..., 1, 2] = k.k_minus1 + k.k2
    jac[..., 2, 2] = -(k.k_minus1 + k.k2)
    jac[..., 3, 2] = k.k2
    return jac


def simulate_full(s0: float, e0: float, enzyme: Enzyme, times) -> dict:
    """Solve the full mass-action model from ``S = S0, E = E0, C = P = 0`` (stiff solver).

    ``times`` (n,) increasing, starting at 0. Returns a dict of arrays (n,): ``t``, ``S``,
    ``E``, ``C``, ``P`` and ``s_total = S + C`` (substrate not yet turned into product).
    Solver: LSODA (switches to BDF when stiff), relative tolerance 1e-9.
    """
    from scipy.integrate import solve_ivp

    s0, e0 = positive("s0", s0), positive("e0", e0)
    enzyme = _check_enzyme(enzyme)
    t = finite_array("times", times, ndim=1)
    if t.size < 2 or t[0] != 0 or np.any(np.diff(t) <= 0):
        raise ValueError("times must be strictly increasing, start at 0 and hold >= 2 values")
    k1, km1, k2 = enzyme.k1, enzyme.k_minus1, enzyme.k2

    def rhs(_, y):  # lean copies of full_rhs / full_jacobian: the solver calls them often
        bind, unbind, cat = k1 * y[1] * y[0], km1 * y[2], k2 * y[2]
        return [unbind - bind, unbind + cat - bind, bind - unbind - cat, cat]

    def jac(_, y):
        a, b = k1 * y[1], k1 * y[0]
        return [[-a, -b, km1, 0.0], [-a, -b, km1 + k2, 0.0],
                [a, b, -km1 - k2, 0.0], [0.0, 0.0, k2, 0.0]]

    sol = solve_ivp(rhs, (0.0, t[-1]), [s0, e0, 0.0, 0.0], method="LSODA", t_eval=t,
                    rtol=1e-9, atol=1e-11 * (s0 + e0), jac=jac)
    if not sol.success:  # pragma: no cover - LSODA on this smooth system does not fail
        raise RuntimeError(sol.message)
    s, e, c, p = sol.y
    return {"t": t, "S": s, "E": e, "C": c, "P": p, "s_total": s + c}


def qssa_rate(s, e0, enzyme: Enzyme) -> np.ndarray:
    """Michaelis-Menten closure ``Vmax s / (Km + s)`` (concentration/time), shape of ``s``."""
    s = finite_array("s", s)
    if np.any(s < 0):
        raise ValueError("s must be >= 0 (a concentration)")
    e0 = finite_array("e0", e0)
    if np.any(e0 <= 0):
        raise ValueError("e0 must be > 0 (a concentration)")
    enzyme = _check_enzyme(enzyme)
    return enzyme.k2 * e0 * s / (enzyme.km + s)


def michaelis_menten_exact(s0: float, e0: float, enzyme: Enzyme, times) -> np.ndarray:
    """Exact solution of ``ds/dt = -Vmax s / (Km + s)``: ``s = Km W((s0/Km) e^{(s0 - Vmax t)/Km})``.

    ``W`` is the principal branch of the Lambert function. Returns ``s`` at ``times`` (n,).
    """
    from scipy.special import lambertw

    s0, e0 = positive("s0", s0), positive("e0", e0)
    enzyme = _check_enzyme(enzyme)
    t = finite_array("times", times, ndim=1)
    km = enzyme.km
    arg = (s0 / km) * np.exp((s0 - enzyme.vmax(e0) * t) / km)
    return km * np.real(lambertw(arg))


def integrate_reduced(rate: Callable, s0, dt, n_steps: int, method: str = "rk4") -> np.ndarray:
    """Integrate ``ds/dt = -rate(s)`` for a batch of independent reduced models, fixed steps.

    Parameters
    ----------
    rate : callable mapping ``s`` (n_batch,) to the consumption rate (n_batch,) >= 0.
    s0, dt : arrays (n_batch,) (or scalars) of initial substrates and timesteps.
    n_steps : number of steps; ``method`` : ``"rk4"`` or ``"euler"`` (explicit).

    Returns ``s`` of shape (n_steps + 1, n_batch). The explicit schemes make the timestep
    limit of the reduced model visible (see :func:`max_stable_dt_reduced`).
    """
    s = np.atleast_1d(finite_array("s0", s0)).astype(float)
    h = np.broadcast_to(np.atleast_1d(finite_array("dt", dt)), s.shape).astype(float)
    if np.any(h <= 0):
        raise ValueError("dt must be > 0")
    n_steps = positive_int("n_steps", n_steps)
    if method not in ("rk4", "euler"):
        raise ValueError(f"method must be 'rk4' or 'euler', got {method!r}")
    if not callable(rate):
        raise ValueError("rate must be a callable rate(s) -> array")

    def f(v):
        return -np.asarray(rate(v), dtype=float).reshape(v.shape)

    out = np.empty((n_steps + 1, s.size))
    out[0] = s
    for i in range(n_steps):
        if method == "euler":
            s = s + h * f(s)
        else:
            k1 = f(s)
            k2 = f(s + 0.5 * h * k1)
            k3 = f(s + 0.5 * h * k2)
            k4 = f(s + h * k3)
            s = s + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        out[i + 1] = s
    return out


def euler_full(s0: float, e0: float, enzyme: Enzyme, dt: float, n_steps: int) -> np.ndarray:
    """Explicit Euler on the full model from ``(S0, E0, 0, 0)``; states (n_steps + 1, 4).

    Steps beyond the stability limit make the fast variables oscillate and grow; the run stops
    filling (the rest is NaN) once a concentration exceeds ``1e6 (S0 + E0)`` in magnitude.
    """
    s0, e0, dt = positive("s0", s0), positive("e0", e0), positive("dt", dt)
    enzyme = _check_enzyme(enzyme)
    n_steps = positive_int("n_steps", n_steps)
    out = np.full((n_steps + 1, 4), np.nan)
    y = np.array([s0, e0, 0.0, 0.0])
    out[0] = y
    bound = 1e6 * (s0 + e0)
    for i in range(n_steps):
        y = y + dt * full_rhs(y, e0, enzyme)
        if not np.all(np.abs(y) <= bound):
            break
        out[i + 1] = y
    return out


def max_stable_dt_full(states, enzyme: Enzyme) -> float:
    """Largest explicit-Euler step ``2 / max |lambda|`` over the states (n, 4) of a trajectory.

    The nonzero eigenvalues of the Jacobian are real and negative here, so Euler is stable for
    ``dt < 2 / |lambda_fast|`` with ``lambda_fast`` close to ``-k1 (S + E + Km)``.
    """
    y = finite_array("states", states)
    if y.ndim != 2 or y.shape[1] != 4:
        raise ValueError(f"states must have shape (n, 4), got {y.shape}")
    eig = np.linalg.eigvals(full_jacobian(y, None, enzyme))
    return float(2.0 / np.max(np.abs(eig)))


def max_stable_dt_reduced(rate: Callable, s_values) -> float:
    """Largest explicit-Euler step ``2 / max |d rate / ds|`` over ``s_values`` (n,).

    The derivative is a centred difference; for the Michaelis-Menten law the limit is
    ``2 Km / Vmax``, reached as ``s -> 0``.
    """
    s = finite_array("s_values", s_values, ndim=1)
    if s.size < 1 or np.any(s < 0):
        raise ValueError("s_values must be a non-empty array of concentrations >= 0")
    if not callable(rate):
        raise ValueError("rate must be a callable rate(s) -> array")
    h = 1e-6 * max(float(np.max(s)), 1e-12)
    lo = np.maximum(s - h, 0.0)
    hi = s + h
    slope = (np.asarray(rate(hi), dtype=float) - np.asarray(rate(lo), dtype=float)) / (hi - lo)
    return float(2.0 / np.max(np.abs(slope)))
