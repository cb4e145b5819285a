"""The book's coarse models as steppers that run on numpy arrays *or* torch tensors.

Each class wraps equations that already live in their own module (the stability toy's
forward-Euler step, the tracer's flux-form finite volumes and SSP-RK3, the Burgers
finite-volume flux, the one-scale Lorenz-96 advection): it holds the parameters and advances
a state by one *sampling interval* ``dt`` (the spacing of the truth it is compared with),
calling those same functions. Given numpy arrays it is an ordinary integrator; given torch
tensors every operation is recorded by autograd, so a loss on the trajectory can be
differentiated with respect to the closure's weights (and the initial state). One source of
the equations: the numpy runs elsewhere in the book and these steps agree to round-off.

A state has the cells on its last axis and any leading axes (ensemble members, a batch of
training windows); ``t`` is a scalar or one time per member (shape ``state.shape[:-1]``).
A closure is ``None``, a :class:`nnparam.closure.Closure` (its numpy twin for arrays,
:meth:`~nnparam.closure.Closure.torch` for tensors) or a plain callable of the same fields.
"""

from __future__ import annotations

import numpy as np

from .. import _xp, l96, tracer
from .._validate import positive, positive_int
from ..apps import burgers
from ..closure import Closure
from ..stability import SteepClosureToy


def closure_function(closure, state):
    """The callable to use for ``closure`` on ``state``: numpy twin or differentiable map."""
    if closure is None or not isinstance(closure, Closure):
        return closure
    return closure.torch if _xp.is_torch(state) else closure


class CoarseModel:
    """Base class: a coarse model advanced by :meth:`step`, one sampling interval at a time.

    Attributes: ``dt`` (time between two states, in the model's time unit), ``n`` (cells),
    ``time_unit`` and ``closure_output`` (what the closure returns, for messages).
    """

    dt: float
    n: int
    time_unit: str = ""
    closure_output: str = "tendency"

    def step(self, state, t, closure=None):  # pragma: no cover - interface
        raise NotImplementedError

    def rollout(self, state0, t0, n_steps: int, closure=None):
        """States at ``t0, t0 + dt, ..., t0 + n_steps dt``: shape ``(n_steps + 1,) +
        state0.shape``, numpy or torch like ``state0`` (differentiable for torch)."""
        n_steps = positive_int("n_steps", n_steps, minimum=0)
        states, x = [state0], state0
        for k in range(n_steps):
            x = self.step(x, t0 + k * self.dt, closure)
            states.append(x)
        if _xp.is_torch(state0):
            import torch

            return torch.stack(states)
        return np.stack(states)


class RelaxationModel(CoarseModel):
    """The stability chapter's host model: forward Euler at step ``h`` (s) of
    ``dq/dt = -lam q + F(x, t) + P(q)`` (:meth:`SteepClosureToy.euler_step`).

    ``closure(q)`` returns the subgrid tendency ([q]/s) for states ``q`` (..., n).
    """

    time_unit = "s"

    def __init__(self, toy: SteepClosureToy, h: float):
        if not isinstance(toy, SteepClosureToy):
            raise ValueError(f"toy must be a SteepClosureToy, got {type(toy).__name__}")
        self.toy, self.dt, self.n = toy, positive("h", h), toy.n

    def step(self, q, t, closure=None):
        fn = closure_function(closure, q)
        return self.toy.euler_step(q, t, self.dt, 0.0 if fn is None else fn(q))


class TracerModel(CoarseModel):
    """The tracer's coarse model (flux form, SSP-RK3) on ``n // factor`` cells.

    One :meth:`step` covers ``save_every`` hours in ``ceil(save_every / dt)`` equal substeps,
    as :func:`nnparam.tracer.run_coarse` does; the wind is the coarse face wind of the truth's
    setup. ``closure(q, u_face)`` returns a cell tendency [1/h] (flux-form closures return
    the divergence of their face flux, for example through
    :func:`nnparam.grid.flux_divergence`, which accepts tensors).
    """

    time_unit = "h"

    def __init__(self, setup: tracer.TracerSetup, factor: int = 16, save_every: float = 1.0,
                 dt: float | None = None):
        if not isinstance(setup, tracer.TracerSetup):
            raise ValueError(f"setup must be a TracerSetup, got {type(setup).__name__}")
        self.setup, self.factor = setup, positive_int("factor", factor, minimum=2)
        if setup.n % factor or factor % 2:
            raise ValueError(f"factor must be even and divide n={setup.n}, got {factor}")
        self.n = setup.n // factor
        self.dx = setup.dx * factor
        self.dt = positive("save_every", save_every)
        h = dt or tracer.stable_dt(self.dx, setup.u_mean * (1 + setup.gust))
        self.substeps = int(np.ceil(self.dt / positive("dt", h)))
        self._wind = tracer.Wind(setup)
        self._x_fine = (np.arange(setup.n) + 0.5) * setup.dx

    def face_wind(self, t):
        """Coarse face wind [km/h] at time(s) ``t`` [h]: (n,) or ``t.shape + (n,)``."""
        return tracer.coarse_face_wind(self._wind(self._x_fine, t), self.factor)

    def step(self, q, t, closure=None):
        fn = closure_function(closure, q)
        s = self.setup

        def rhs(x, tt):
            t_np = tt.detach().numpy() if _xp.is_torch(tt) else tt
            u_face = _xp.like(np.broadcast_to(self.face_wind(t_np), x.shape), x)
            out = tracer.tendency(x, u_face, self.dx, s.lam, s.alpha)
            return out if fn is None else out + fn(x, u_face)

        h = self.dt / self.substeps
        t = _as_time(t, q)
        for i in range(self.substeps):
            q = tracer._ssprk3_step(q, t + i * h, h, rhs)
        return q


class BurgersModel(CoarseModel):
    """The Burgers LES model: ``n`` finite-volume cells, SSP-RK3 at ``dt_model``, one
    :meth:`step` = ``save_every`` model steps (:func:`nnparam.apps.burgers.simulate`).

    ``closure(u)`` returns the subgrid stress ``tau`` at the right faces (velocity^2), which
    enters the face flux as ``tau / 2``: a flux-form closure by construction.
    """

    time_unit = "time"
    closure_output = "face stress"

    def __init__(self, n: int, length: float, nu: float, dt_model: float,
                 forcing: burgers.RandomForcing | None = None, save_every: int = 1):
        self.n = positive_int("n", n, minimum=4)
        self.length, self.dt_model = positive("length", length), positive("dt_model", dt_model)
        self.nu = float(nu)
        if not np.isfinite(self.nu) or self.nu < 0:
            raise ValueError(f"nu must be a finite number >= 0, got {nu!r}")
        self.save_every = positive_int("save_every", save_every)
        self.dt = self.dt_model * self.save_every
        if forcing is not None and not isinstance(forcing, burgers.RandomForcing):
            raise ValueError("forcing must be a RandomForcing or None")
        self._forcing = None if forcing is None else burgers.forcing_interpolator(forcing, n)

    def step(self, u, t, closure=None):
        fn = closure_function(closure, u)
        dx = self.length / self.n

        def rhs(v, tt):
            t_np = tt.detach().numpy() if _xp.is_torch(tt) else tt
            f = None if self._forcing is None else _xp.like(self._forcing(t_np), v)
            return burgers._rhs(v, dx, self.nu, f, None if fn is None else fn(v))

        t = _as_time(t, u)
        for i in range(self.save_every):
            u = tracer._ssprk3_step(u, t + i * self.dt_model, self.dt_model, rhs)
        return u


class Lorenz96Model(CoarseModel):
    """The one-scale Lorenz-96 model ``dX/dt = advection(X) - X + F + P(X)`` with RK4 at
    ``dt_model`` (MTU), one :meth:`step` = ``substeps`` RK4 steps (as
    :func:`nnparam.l96.simulate_one_scale`, deterministic closures).

    ``closure(X)`` returns the parameterized coupling (..., K) per MTU.
    """

    time_unit = "MTU"

    def __init__(self, K: int = 8, F: float = 18.0, dt_model: float = 0.005,
                 substeps: int = 1):
        self.n = positive_int("K", K, minimum=4)
        self.F = float(F)
        self.dt_model = positive("dt_model", dt_model)
        self.substeps = positive_int("substeps", substeps)
        self.dt = self.dt_model * self.substeps

    def tendency(self, X, closure=None):
        """``dX/dt`` of the coupled model (numpy or torch), per MTU: the one-scale model's
        own right-hand side, :func:`nnparam.l96.one_scale_tendency`."""
        fn = closure_function(closure, X)
        xp = _xp.namespace(X)
        return l96.one_scale_tendency(X, self.F, 0.0 if fn is None else fn(X), xp=xp)

    def step(self, X, t=None, closure=None):
        for _ in range(self.substeps):  # the one-scale model's RK4 step, l96.rk4_step
            X = l96.rk4_step(X, lambda x: self.tendency(x, closure), self.dt_model)
        return X


def _as_time(t, state):
    """``t`` as a float or, for one time per member, an array shaped ``state.shape[:-1]``."""
    if np.ndim(t) == 0 and not _xp.is_torch(t):
        return float(t)
    arr = t.detach().numpy() if _xp.is_torch(t) else np.asarray(t, dtype=float)
    if arr.shape != tuple(state.shape[:-1]):
        raise ValueError(f"t must be a scalar or one time per member, shape "
                         f"{tuple(state.shape[:-1])}, got {arr.shape}")
    return arr
