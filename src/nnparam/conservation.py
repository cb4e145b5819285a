"""Conservation by construction: what a neural closure should output, and how it is stepped.

A finite-volume model conserves its tracer because every flux that leaves one cell enters
its neighbour. A closure that outputs

(a) a **cell tendency** ``T_i`` breaks this unless it happens to satisfy ``sum V_i T_i = 0``;
(b) a **face flux** ``F_f``, turned into a tendency by :func:`nnparam.grid.flux_divergence`,
    conserves the domain total for any output, trained or not;
(c) a **closure coefficient** ``kappa_f >= 0`` with ``F_f = -kappa_f A_f (q_j - q_i) / d_f``
    conserves the total *and* can only remove tracer variance ``sum V_i q_i**2``.

Grid convention (as in :mod:`nnparam.grid`): face ``f = i`` is the right face of cell ``i``,
between cells ``i`` and ``j = i + 1`` (periodic); ``d_f`` is the centre-to-centre distance
across it and ``A_f`` its area (1 in one dimension, where the cell volume is its width).

The coarse grid here is **non-uniform** on purpose: coarse cells are blocks of *different
numbers* of fine cells of the tracer truth (:func:`block_grid`), so a plain mean and a
mass-weighted mean differ, and the coarse budget (:func:`coarse_budget`) is derived exactly
from the truth on that grid. The coarse model (:class:`CoarseModel`) carries block means with
a third-order-like upwind-biased flux-form scheme and the analytic wind at the coarse faces.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import xarray as xr
from torch import nn as tnn

from . import data, tracer
from . import nn as nnp
from ._validate import finite_array, positive, positive_int
from .closure import Closure
from .grid import Grid1D, flux_divergence

HEADS = ("tendency", "flux", "kappa")
#: how a closure enters the coarse model's time step (see :meth:`CoarseModel.run`)
MODES = ("unified", "sequential", "split", "parallel", "strang")


def _is_torch(x) -> bool:
    return isinstance(x, torch.Tensor)


_ROLL_INDEX: dict = {}


def _roll(x, shift: int):
    """Periodic shift along the last axis: ``_roll(x, 1)[..., i] == x[..., i - 1]``.

    numpy arrays are shifted by a cached index array (several times faster than ``np.roll``
    on short rows, which matters in 10**4-step coupled runs).
    """
    if _is_torch(x):
        return torch.roll(x, shift, dims=-1)
    n = x.shape[-1]
    idx = _ROLL_INDEX.get((n, shift))
    if idx is None:
        idx = _ROLL_INDEX[(n, shift)] = (np.arange(n) - shift) % n
    return x[..., idx]


def _volumes(cell_volume, n: int) -> np.ndarray:
    vol = finite_array("cell_volume", cell_volume)
    if vol.ndim not in (0, 1) or (vol.ndim == 1 and vol.shape[0] != n):
        raise ValueError(f"cell_volume must be a scalar or hold one volume per cell ({n}), "
                         f"got shape {vol.shape}")
    if np.any(vol <= 0):
        raise ValueError("cell_volume must be strictly positive")
    return vol


def _tendency(tendency) -> np.ndarray:
    arr = finite_array("tendency", tendency)
    if arr.ndim < 1:
        raise ValueError("tendency must have shape (..., N) with N cells, got a scalar")
    return arr


def domain_budget(tendency, cell_volume):
    """Domain-integrated tendency ``sum_i V_i T_i`` over the last axis.

    ``tendency`` (..., N) in [q]/time, ``cell_volume`` scalar or (N,) in length (1-D).
    Returns a float (or an array of shape ``tendency.shape[:-1]``) in [q] length / time:
    the rate of change of the domain total ``sum_i V_i q_i`` caused by this tendency.
    """
    arr = _tendency(tendency)
    vol = _volumes(cell_volume, arr.shape[-1])
    out = np.sum(arr * vol, axis=-1)
    return float(out) if out.ndim == 0 else out


def relative_domain_budget(tendency, cell_volume):
    """``sum V_i T_i / sum |V_i T_i|``: 0 for a conservative tendency, 1 for a one-signed one.

    Dimensionless, shape ``tendency.shape[:-1]``; 0 where the tendency is identically zero.
    """
    arr = _tendency(tendency)
    vol = _volumes(cell_volume, arr.shape[-1])
    num = np.sum(arr * vol, axis=-1)
    den = np.sum(np.abs(arr * vol), axis=-1)
    out = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return float(out) if out.ndim == 0 else out


def mass_weighted_fix(tendency, cell_volume) -> np.ndarray:
    """The usual post-hoc fix of a cell-tendency closure: subtract ``sum V T / sum V``.

    The result has a zero domain budget, but the correction is the same in every cell: an
    error made in one place is repaid everywhere, however far away. Shape of ``tendency``.
    """
    arr = _tendency(tendency)
    vol = _volumes(cell_volume, arr.shape[-1]) * np.ones(arr.shape[-1])
    return arr - (np.sum(arr * vol, axis=-1) / vol.sum())[..., None]


def kappa_flux(kappa, q, face_area, face_distance):
    """Down-gradient face flux ``F_f = -kappa_f A_f (q[f + 1] - q[f]) / d_f`` (periodic).

    ``kappa`` and ``q`` (..., N) numpy or torch (kappa in length**2 / time), ``face_area``
    scalar or (N,), ``face_distance`` (N,) or scalar in length. Returns (..., N) fluxes
    through the right faces, in [q] length / time (1-D, ``A_f = 1``).
    """
    if _is_torch(kappa) or _is_torch(q):
        dist = torch.as_tensor(face_distance, dtype=q.dtype)
        area = torch.as_tensor(face_area, dtype=q.dtype)
        return -kappa * area * (_roll(q, -1) - q) / dist
    q = finite_array("q", q)
    if q.ndim < 1:
        raise ValueError("q must have shape (..., N), got a scalar")
    n = q.shape[-1]
    kap = finite_array("kappa", kappa)
    try:
        ok = np.broadcast_shapes(kap.shape, q.shape) == q.shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"kappa must have (or broadcast to) the shape of q {q.shape}, "
                         f"got {kap.shape}")
    if np.any(kap < 0):
        raise ValueError("kappa must be >= 0 (a negative diffusivity creates variance)")
    out = []
    for name, val in (("face_area", face_area), ("face_distance", face_distance)):
        arr = finite_array(name, val)
        if arr.ndim not in (0, 1) or (arr.ndim == 1 and arr.shape[0] != n):
            raise ValueError(f"{name} must be a scalar or hold one value per face ({n}), "
                             f"got shape {arr.shape}")
        if np.any(arr <= 0):
            raise ValueError(f"{name} must be strictly positive")
        out.append(arr)
    area, dist = out
    return -kap * area * (np.roll(q, -1, axis=-1) - q) / dist


#: length of the real-axis stability interval of SSP-RK3: 1 + z + z^2/2 + z^3/6 = -1 there
SSPRK3_REAL_INTERVAL = 2.5127453266183286
#: the same for forward Euler (|1 + z| <= 1 on [-2, 0])
EULER_REAL_INTERVAL = 2.0


def diffusive_step_limit(kappa, cell_volume, face_distance, face_area=1.0,
                         interval: float = SSPRK3_REAL_INTERVAL) -> float:
    """Largest time step at which a frozen down-gradient closure cannot create variance.

    With ``kappa`` (N,) >= 0 fixed, the closure alone is the linear system ``dq/dt = D q``
    with ``D q = div(-kappa A grad q)`` (:func:`kappa_flux`); ``D`` is self-adjoint and
    negative semi-definite in the volume-weighted inner product, so its eigenvalues are real
    and <= 0. A one-step method whose stability function stays within [-1, 1] on the real
    interval ``[-interval, 0]`` then keeps ``sum V q**2`` from growing exactly when
    ``dt <= interval / rho(D)``. Returns that ``dt`` (time units of ``kappa``); ``inf`` when
    ``kappa`` is zero. Use :data:`SSPRK3_REAL_INTERVAL` or :data:`EULER_REAL_INTERVAL`.
    """
    kap = finite_array("kappa", kappa, ndim=1)
    if np.any(kap < 0):
        raise ValueError("kappa must be >= 0 (a negative diffusivity creates variance)")
    n = kap.size
    vol = _volumes(cell_volume, n) * np.ones(n)
    interval = positive("interval", interval)
    eye = np.eye(n)
    flux = kappa_flux(np.broadcast_to(kap, (n, n)), eye, face_area, face_distance)
    d = -(flux - np.roll(flux, 1, axis=-1)) / vol  # row j: D applied to the unit vector e_j
    sym = np.sqrt(vol)[:, None] * d.T / np.sqrt(vol)[None, :]
    rho = float(-np.linalg.eigvalsh(0.5 * (sym + sym.T)).min())
    return np.inf if rho <= 0 else interval / rho


def variance_tendency(tendency, q, cell_volume):
    """``d/dt sum_i V_i q_i**2`` due to ``tendency``: ``2 sum_i V_i q_i T_i`` over the last axis."""
    arr = _tendency(tendency)
    qq = finite_array("q", q)
    if qq.shape != arr.shape:
        raise ValueError(f"q must have the shape of tendency {arr.shape}, got {qq.shape}")
    vol = _volumes(cell_volume, arr.shape[-1])
    out = 2.0 * np.sum(vol * qq * arr, axis=-1)
    return float(out) if out.ndim == 0 else out


# --------------------------------------------------------------------------------------------
# the non-uniform coarse grid and its exact budget


def _sizes(block_sizes) -> np.ndarray:
    arr = finite_array("block_sizes", block_sizes, ndim=1)
    if arr.size < 2 or np.any(arr < 1) or np.any(arr != np.round(arr)):
        raise ValueError("block_sizes must hold at least 2 positive integers (fine cells per "
                         f"coarse cell), got {arr}")
    return arr.astype(int)


def block_grid(block_sizes, fine_dx: float) -> Grid1D:
    """Coarse grid whose cell ``i`` is ``block_sizes[i]`` consecutive fine cells of width
    ``fine_dx`` (length): a non-uniform grid on which the coarse budget is exact."""
    return Grid1D(_sizes(block_sizes) * positive("fine_dx", fine_dx))


def alternating_blocks(n_fine: int, small: int, large: int) -> np.ndarray:
    """Block sizes ``small, large, small, ...`` covering ``n_fine`` fine cells exactly."""
    n_fine, small, large = (positive_int("n_fine", n_fine), positive_int("small", small),
                            positive_int("large", large))
    if n_fine % (small + large):
        raise ValueError(f"small + large must divide n_fine={n_fine}, got {small} + {large}")
    return np.tile([small, large], n_fine // (small + large))


def coarse_grain_blocks(field, block_sizes) -> np.ndarray:
    """Means of ``field`` (..., n_fine) over consecutive blocks -> (..., len(block_sizes))."""
    sizes = _sizes(block_sizes)
    arr = finite_array("field", field)
    if arr.ndim < 1 or arr.shape[-1] != sizes.sum():
        raise ValueError(f"field must have {sizes.sum()} fine cells on its last axis, "
                         f"got shape {arr.shape}")
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return np.add.reduceat(arr, starts, axis=-1) / sizes


def upwind_coefficients(widths) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weights ``(c_prev, c_here, c_next)`` of :func:`upwind_face_value` on cells of ``widths``.

    The blend ``2/3 centred + 1/3 upwind-extrapolated`` of the two linear reconstructions on
    a non-uniform grid: on a uniform grid it is exactly the third-order upwind-biased value
    ``(-q[i-1] + 5 q[i] + 2 q[i+1]) / 6`` of the tracer truth. The weights sum to 1.
    """
    w = finite_array("widths", widths, ndim=1)
    if np.any(w <= 0):
        raise ValueError("widths must be strictly positive")
    w_prev, w_next = np.roll(w, 1), np.roll(w, -1)
    a = w_next / (w + w_next)  # centred: a q[i] + (1 - a) q[i+1]
    b = w / (w + w_prev)  # upwind: q[i] + b (q[i] - q[i-1])
    return -b / 3.0, 2.0 * a / 3.0 + (1.0 + b) / 3.0, 2.0 * (1 - a) / 3.0


def upwind_face_value(q, widths, coefficients=None):
    """Face value between cells ``i`` and ``i + 1`` for a wind blowing towards ``+x`` (u > 0),
    from cell means ``q`` (..., N), numpy or torch; see :func:`upwind_coefficients`."""
    c_prev, c_here, c_next = coefficients or upwind_coefficients(widths)
    if _is_torch(q):
        c_prev, c_here, c_next = (torch.as_tensor(c, dtype=q.dtype)
                                  for c in (c_prev, c_here, c_next))
    return c_prev * _roll(q, 1) + c_here * q + c_next * _roll(q, -1)


def _div(flux, widths):
    """Unvalidated flux divergence for inner loops (see :func:`nnparam.grid.flux_divergence`)."""
    return -(flux - _roll(flux, 1)) / widths


class CoarseModel:
    """The coarse tracer model on a block grid: ``dq/dt = -div(u_f q_f) + closure``.

    ``u_f`` is the analytic wind of ``setup`` at the coarse faces, ``q_f`` the centred face
    value (:func:`upwind_face_value`); pure transport (the source of ``setup`` is ignored,
    use ``lam = alpha = 0`` for the truth). ``closure(q, u_face) -> tendency`` as in
    :func:`nnparam.tracer.run_coarse`.
    """

    def __init__(self, setup: tracer.TracerSetup, block_sizes):
        self.setup = setup
        self.block_sizes = _sizes(block_sizes)
        if self.block_sizes.sum() != setup.n:
            raise ValueError(f"block_sizes must cover the {setup.n} fine cells, "
                             f"got {self.block_sizes.sum()}")
        self.grid = block_grid(self.block_sizes, setup.dx)
        self.x_faces = self.grid.faces
        self._wind = tracer.Wind(setup)

    def u_face(self, t) -> np.ndarray:
        """Wind [km/h] at the coarse right faces at time ``t`` (h); (N,) or (n_t, N)."""
        return self._wind(self.x_faces, t)

    def resolved_flux(self, q, u_face):
        return u_face * upwind_face_value(q, self.grid.widths)

    def resolved_tendency(self, q, u_face):
        return _div(self.resolved_flux(q, u_face), self.grid.widths)

    def stable_dt(self, courant: float = 0.8) -> float:
        """Time step [h] at Courant number ``courant`` on the narrowest cell."""
        return tracer.stable_dt(self.grid.widths.min(), self.setup.u_mean * (1 + self.setup.gust),
                                courant)

    def run(self, q0, n_steps: int, dt: float, closure: Callable | None = None,
            mode: str = "unified", integrator: str = "ssprk3", save_every: int = 1,
            t0: float = 0.0, closure_integrator: str = "euler") -> xr.Dataset:
        """Integrate ``n_steps`` steps of ``dt`` hours from ``q0`` (N,), or from a batch of
        ``M`` states ``q0`` (M, N) stepped together (``closure`` then gets and returns (M, N)).

        How the closure enters the step (``mode``; the terms of Williamson 2002 in brackets):

        * ``"unified"``: the closure is part of the right-hand side of every stage of the
          integrator (resolved and subgrid fluxes combined before the divergence);
        * ``"sequential"`` (time-split): one integrator step of the resolved dynamics, then
          the closure sub-step from the state the dynamics produced; ``"split"`` is the same;
        * ``"parallel"`` (process-split): the dynamics and the closure sub-step both start
          from the same state, and their increments are added;
        * ``"strang"``: half a closure sub-step, a full resolved step, half a closure
          sub-step (symmetric splitting).

        ``integrator``: ``"ssprk3"`` (third order) or ``"heun"`` (second order) for the
        dynamics (and for everything in ``"unified"``). ``closure_integrator`` steps the
        closure sub-steps of the split modes: ``"euler"`` (forward Euler; in sequential mode
        with the wind at the end of the step, the physics-after-dynamics convention) or
        ``"ssprk3"`` / ``"heun"``, so that the splitting error can be told from the closure
        sub-step's own order. Returns a Dataset with ``q`` (time, x) every ``save_every``
        steps and ``total`` (time,) = ``sum V_i q_i`` [km]; for a batch, ``q`` (time, member,
        x), ``total`` (time, member).
        """
        q = finite_array("q0", q0).copy()
        if q.ndim not in (1, 2) or q.shape[-1] != self.grid.n:
            raise ValueError(f"q0 must have shape ({self.grid.n},) or (M, {self.grid.n}), "
                             f"got {q.shape}")
        n_steps, save_every = positive_int("n_steps", n_steps), positive_int("save_every",
                                                                           save_every)
        dt = positive("dt", dt)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        mode = "sequential" if mode == "split" else mode
        if integrator not in _STEPPERS:
            raise ValueError(f"integrator must be one of {sorted(_STEPPERS)}, got {integrator!r}")
        if closure_integrator not in ("euler", *_STEPPERS):
            raise ValueError(f"closure_integrator must be 'euler' or one of "
                             f"{sorted(_STEPPERS)}, got {closure_integrator!r}")
        step = _STEPPERS[integrator]
        # the wind at every stage time, in one vectorised call (stages at t, t + dt, t + dt/2)
        t_nodes = t0 + dt * np.arange(n_steps + 1)
        u_nodes = self.u_face(t_nodes)
        u_half = self.u_face(t_nodes[:-1] + 0.5 * dt)
        if closure is not None and mode == "strang" and closure_integrator != "euler":
            u_quarter = self.u_face(t_nodes[:-1] + 0.25 * dt)
            u_three_quarter = self.u_face(t_nodes[:-1] + 0.75 * dt)
        widths = self.grid.widths
        coefs = upwind_coefficients(widths)
        unified = closure is not None and mode == "unified"

        def rhs(state, u):
            out = _div(u * upwind_face_value(state, widths, coefs), widths)
            return out + closure(state, u) if unified else out

        def closure_rhs(state, u):
            return closure(state, u)

        def sub(state, h, u0, u1, uh, euler_wind):
            """The closure alone over a sub-step of length h (winds at its stage times)."""
            if closure_integrator == "euler":
                return state + h * closure(state, euler_wind)
            return _STEPPERS[closure_integrator](state, h, closure_rhs, u0, u1, uh)

        times, states = [t0], [q.copy()]
        for k in range(n_steps):
            u0, u1, uh = u_nodes[k], u_nodes[k + 1], u_half[k]
            if closure is None or mode == "unified":
                q = step(q, dt, rhs, u0, u1, uh)
            elif mode == "sequential":
                q = sub(step(q, dt, rhs, u0, u1, uh), dt, u0, u1, uh, u1)
            elif mode == "parallel":
                q = step(q, dt, rhs, u0, u1, uh) + sub(q, dt, u0, u1, uh, u0) - q
            else:  # strang: the half sub-steps span [t, t + dt/2] and [t + dt/2, t + dt]
                euler = closure_integrator == "euler"
                q = sub(q, 0.5 * dt, u0, uh, None if euler else u_quarter[k], u0)
                q = step(q, dt, rhs, u0, u1, uh)
                q = sub(q, 0.5 * dt, uh, u1, None if euler else u_three_quarter[k], uh)
            if (k + 1) % save_every == 0:
                if not np.all(np.isfinite(q)) or np.abs(q).max() > 1e6:
                    raise FloatingPointError(f"the run blew up before t = {t_nodes[k + 1]:.1f} h")
                times.append(t_nodes[k + 1])
                states.append(q.copy())
        states = np.array(states)
        if states.ndim == 2:
            ds = data.fields_to_dataset(np.array(times), self.grid.centers,
                                        q=(states, "1", "coarse-model tracer"))
        else:
            ds = xr.Dataset({"q": (("time", "member", "x"), states,
                                   {"units": "1", "long_name": "coarse-model tracer"})},
                            coords={"time": data.coordinate("time", np.array(times)),
                                    "x": data.coordinate("x", self.grid.centers)})
        ds["total"] = xr.DataArray(self.grid.total(states), dims=ds["q"].dims[:-1],
                                   attrs={"units": "km", "long_name": "domain total sum V q"})
        return ds


def _ssprk3(q, dt, rhs, u0, u1, uh):
    q1 = q + dt * rhs(q, u0)
    q2 = 0.75 * q + 0.25 * (q1 + dt * rhs(q1, u1))
    return q / 3.0 + 2.0 / 3.0 * (q2 + dt * rhs(q2, uh))


def _heun(q, dt, rhs, u0, u1, uh):
    k1 = rhs(q, u0)
    k2 = rhs(q + dt * k1, u1)
    return q + 0.5 * dt * (k1 + k2)


_STEPPERS = {"ssprk3": _ssprk3, "heun": _heun}


def coarse_budget(truth: xr.Dataset, block_sizes) -> xr.Dataset:
    """The exact budget of a pure-transport :func:`nnparam.tracer.truth_run` on a block grid.

    Block means of a flux-form truth change only through the fine fluxes at the block
    boundaries, so ``true_tendency_i = -(F_true[i] - F_true[i-1]) / V_i`` exactly, with
    ``F_true`` the truth's own flux (wind times third-order face value) at the coarse faces.
    The subgrid flux is what the coarse model's resolved flux misses:
    ``sgs_flux = F_true - u_f q_f(qbar)`` and ``sgs_tendency = div(sgs_flux)``.

    Returns a Dataset (time, x) with ``q``, ``u_face``, ``true_tendency``,
    ``resolved_tendency``, ``sgs_tendency`` (1/h), ``sgs_flux`` (km/h), and ``widths`` (x).
    """
    if not isinstance(truth, xr.Dataset) or "q" not in truth:
        raise ValueError("truth must be an xarray.Dataset made by tracer.truth_run")
    setup = tracer.setup_of(truth)
    if setup.lam != 0 or setup.alpha != 0:
        raise ValueError(f"truth must be pure transport (lam = alpha = 0), got lam={setup.lam}, "
                         f"alpha={setup.alpha}")
    model = CoarseModel(setup, block_sizes)
    sizes = model.block_sizes
    q_fine = truth["q"].values
    times = truth["time"].values
    end = np.cumsum(sizes) - 1  # fine cell whose right face is each coarse right face
    u_face = model.u_face(times)
    f_true = u_face * tracer.face_values(q_fine)[..., end]
    qbar = coarse_grain_blocks(q_fine, sizes)
    widths = model.grid.widths
    true = flux_divergence(f_true, widths)
    resolved = model.resolved_tendency(qbar, u_face)
    sgs_flux = f_true - model.resolved_flux(qbar, u_face)
    x = data.coordinate("x", model.grid.centers)
    dims = ("time", "x")
    meta = {"q": (qbar, "1", "block-mean tracer"),
            "u_face": (u_face, "km/h", "wind at coarse right faces"),
            "true_tendency": (true, "1/h", "tendency of the block means in the truth"),
            "resolved_tendency": (resolved, "1/h", "coarse model's resolved tendency"),
            "sgs_tendency": (true - resolved, "1/h", "subgrid tendency (budget residual)"),
            "sgs_flux": (sgs_flux, "km/h", "subgrid flux at coarse right faces")}
    ds = xr.Dataset({k: (dims, v, {"units": u, "long_name": ln})
                     for k, (v, u, ln) in meta.items()},
                    coords={"time": truth["time"], "x": x}, attrs=dict(truth.attrs))
    ds["widths"] = xr.DataArray(widths, dims="x", attrs={"units": "km", "long_name": "cell width"})
    ds.attrs["block_sizes"] = sizes.tolist()
    return ds


# --------------------------------------------------------------------------------------------
# three output heads for one local network


class ClosureHead(tnn.Module):
    """A local MLP closure on a (non-uniform) periodic grid with one of three output heads.

    Input ``x`` of shape (batch, 2N): the state ``q`` (N) then the face wind ``u_face`` (N).
    Output: the subgrid tendency (batch, N) in 1/h, always. ``kind`` decides how:

    * ``"tendency"``: the net maps the cell stencil ``q[i-2..i+2], u[i-1], u[i], V_i`` to
      ``T_i`` directly;
    * ``"flux"``: the net maps the face stencil ``q[i-1..i+2], u[i], V_i, V_{i+1}`` to the face
      flux ``F_i``, and ``T = flux_divergence(F, V)``;
    * ``"kappa"``: the same face stencil gives ``kappa_i = softplus(net) >= 0`` (km**2/h) and
      ``F_i = -kappa_i A_i (q[i+1] - q[i]) / d_i`` (:func:`kappa_flux`).

    Input and output scales are set by :meth:`fit_scales` from training data only. The
    torch operators can be swapped (the lab plugs in a student's own): ``divergence(flux,
    widths)``, ``kappa_transform(raw) -> kappa`` and ``kappa_to_flux(kappa, q, distances)``.
    """

    def __init__(self, kind: str, widths, hidden=(16,), seed: int = 0,
                 dtype=torch.float64, divergence: Callable | None = None,
                 kappa_transform: Callable | None = None,
                 kappa_to_flux: Callable | None = None):
        super().__init__()
        if kind not in HEADS:
            raise ValueError(f"kind must be one of {HEADS}, got {kind!r}")
        self._ops = {"divergence": divergence or flux_divergence,
                     "kappa_transform": kappa_transform or torch.nn.functional.softplus,
                     "kappa_to_flux": kappa_to_flux
                     or (lambda kappa, q, dist: kappa_flux(kappa, q, 1.0, dist))}
        grid = Grid1D(widths)
        self.kind = kind
        self.n = grid.n
        self.net = nnp.mlp(8 if kind == "tendency" else 7, 1, hidden, "tanh", seed, dtype)
        self.register_buffer("widths", torch.as_tensor(grid.widths, dtype=dtype))
        self.register_buffer("distances", torch.as_tensor(grid.distances, dtype=dtype))
        self.register_buffer("scales", torch.ones(5, dtype=dtype))  # q0, sq, u0, su, out
        self._np = None

    def fit_scales(self, q, u_face, target) -> ClosureHead:
        """Standardise the inputs and scale the output head from training arrays (time, N)."""
        q, u = finite_array("q", q), finite_array("u_face", u_face)
        target = finite_array("target", target)
        t_rms = float(np.sqrt(np.mean(target**2)))
        out = {"tendency": t_rms,
               "flux": t_rms * float(self.widths.mean()),
               # small initial kappa: start near "no closure", not strongly diffusive
               "kappa": 0.1 * t_rms * float(self.distances.mean()) ** 2
               / max(float(q.std()), 1e-12)}
        vals = [q.mean(), q.std() or 1.0, u.mean(), u.std() or 1.0, out[self.kind] or 1.0]
        self.scales = torch.as_tensor(np.array(vals, dtype=float), dtype=self.scales.dtype)
        self._np = None
        return self

    def _width_columns(self, widths) -> list:
        wn = widths / widths.mean() - 1.0
        return [wn] if self.kind == "tendency" else [wn, _roll(wn, -1)]

    def _features(self, q, u, wcols, xp):
        s = self.scales if xp is torch else self._np["scales"]
        zq, zu = (q - s[0]) / s[1], (u - s[2]) / s[3]
        if self.kind == "tendency":
            cols = [_roll(zq, k) for k in (2, 1, 0, -1, -2)] + [_roll(zu, 1), zu]
        else:
            cols = [_roll(zq, k) for k in (1, 0, -1, -2)] + [zu]
        expand = (lambda c: c.expand_as(zq)) if xp is torch else (
            lambda c: np.broadcast_to(c, zq.shape))
        return xp.stack(cols + [expand(c) for c in wcols], -1)

    def _head(self, raw, q, widths, distances, xp):
        # torch: the public (or plugged-in) operators; numpy (coupled runs): the same inline
        s = self.scales if xp is torch else self._np["scales"]
        if self.kind == "tendency":
            return raw * s[4], None, None
        if xp is torch:
            div, soft = self._ops["divergence"], self._ops["kappa_transform"]
        else:
            div, soft = _div, (lambda r: np.logaddexp(0.0, r))
        if self.kind == "flux":
            flux = raw * s[4]
            return div(flux, widths), flux, None
        kappa = soft(raw) * s[4]
        if xp is torch:
            flux = self._ops["kappa_to_flux"](kappa, q, distances)
        else:
            flux = -kappa * (_roll(q, -1) - q) / distances  # kappa_flux with A_f = 1
        return div(flux, widths), flux, kappa

    def parts(self, x):
        """``(tendency, face_flux or None, kappa or None)`` for input ``x`` (batch, 2N)."""
        q, u = x[..., : self.n], x[..., self.n:]
        raw = self.net(self._features(q, u, self._width_columns(self.widths), torch))
        raw = raw.squeeze(-1)
        return self._head(raw, q, self.widths, self.distances, torch)

    def forward(self, x):
        return self.parts(x)[0]

    def numpy_closure(self) -> Callable:
        """The trained head as a fast numpy ``closure(q, u_face) -> tendency`` (float64), for
        long coupled runs where torch's per-call overhead would dominate."""
        layers = [(m.weight.detach().double().numpy().T, m.bias.detach().double().numpy())
                  if isinstance(m, tnn.Linear) else None for m in self.net]
        self._np = {"scales": self.scales.double().numpy()}
        sc = self._np["scales"]
        widths = self.widths.double().numpy()
        distances = self.distances.double().numpy()
        n = self.n
        # first layer split by input group: one gather per field instead of a stack of rolls
        q_shifts, u_shifts = ((2, 1, 0, -1, -2), (1, 0)) if self.kind == "tendency" else \
            ((1, 0, -1, -2), (0,))
        q_idx = (np.arange(n)[:, None] - np.array(q_shifts)) % n
        u_idx = (np.arange(n)[:, None] - np.array(u_shifts)) % n
        w1, b1 = layers[0]
        nq, nu = len(q_shifts), len(u_shifts)
        w_q, w_u, w_w = w1[:nq] / sc[1], w1[nq:nq + nu] / sc[3], w1[nq + nu:]
        const = np.stack(self._width_columns(widths), -1) @ w_w + b1 \
            - sc[0] * w_q.sum(0) - sc[2] * w_u.sum(0)  # (n, hidden)

        def closure(q, u_face):
            h = q[..., q_idx] @ w_q + u_face[..., u_idx] @ w_u + const
            for layer in layers[1:]:
                h = np.tanh(h) if layer is None else h @ layer[0] + layer[1]
            return self._head(h[..., 0], q, widths, distances, np)[0]

        return closure


    def as_closure(self) -> Closure:
        """The trained head as a :class:`nnparam.closure.Closure` on the fields
        ``(q, u_face)``, evaluated by its numpy twin (:meth:`numpy_closure`) online and by
        the head itself (differentiable) through :meth:`Closure.torch`."""
        fast = self.numpy_closure()
        n = self.n

        def forward(flat):  # the whole-field closure sees q and u_face concatenated
            return fast(flat[..., :n], flat[..., n:])

        return Closure(self, inputs=("q", "u_face"), per_column=False, numpy_forward=forward,
                       output="subgrid tendency", output_units="1/h",
                       input_units=("1", "km/h"), name=f"{self.kind} head",
                       description="conservation chapter: local MLP with a "
                                   f"{self.kind} output head on a non-uniform grid")


def torch_closure(head: tnn.Module) -> Callable:
    """Any trained torch head as ``closure(q, u_face) -> tendency`` for :meth:`CoarseModel.run`
    (slower per call than :meth:`ClosureHead.numpy_closure`, but runs whatever operators the
    head was built with)."""
    dtype = next(head.parameters()).dtype

    def closure(q, u_face):
        x = torch.as_tensor(np.concatenate([q, u_face])[None], dtype=dtype)
        with torch.no_grad():
            return head(x)[0].numpy().astype(float)

    return closure


def stack_inputs(q, u_face) -> np.ndarray:
    """Network input (time, 2N) from ``q`` and ``u_face`` (time, N)."""
    q, u = finite_array("q", q), finite_array("u_face", u_face)
    if q.shape != u.shape or q.ndim != 2:
        raise ValueError(f"q and u_face must both be (time, N), got {q.shape} and {u.shape}")
    return np.concatenate([q, u], axis=-1)


def fit_head(kind: str, budget: xr.Dataset, train: slice, validation: slice,
             hidden=(16,), epochs: int = 400, lr: float = 2e-2, patience: int = 100,
             seed: int = 0, **operators) -> tuple[ClosureHead, dict]:
    """Train a :class:`ClosureHead` of ``kind`` on ``budget`` (:func:`coarse_budget`) to the
    subgrid tendency, full-batch in float64 over the time blocks ``train``/``validation``.

    Every head is fitted to the *same* target with the same loss (mean squared tendency
    error, normalised by the target's variance), so only the output form differs.
    ``operators`` (``divergence``, ``kappa_transform``, ``kappa_to_flux``) go to
    :class:`ClosureHead`. Returns ``(head, history)``.
    """
    if not isinstance(budget, xr.Dataset) or "sgs_tendency" not in budget:
        raise ValueError("budget must be a Dataset made by coarse_budget")
    q, u = budget["q"].values, budget["u_face"].values
    y = budget["sgs_tendency"].values
    head = ClosureHead(kind, budget["widths"].values, hidden=hidden, seed=seed, **operators)
    head.fit_scales(q[train], u[train], y[train])
    var = float(np.mean(y[train] ** 2))

    def loss(pred, target):
        return torch.mean((pred - target) ** 2) / var

    hist = nnp.train(head, stack_inputs(q[train], u[train]), y[train], epochs=epochs, lr=lr,
                     validation=(stack_inputs(q[validation], u[validation]), y[validation]),
                     patience=patience, loss_fn=loss, seed=seed)
    return head, hist


def random_inputs(n_samples: int, n_cells: int, seed: int = 0) -> np.ndarray:
    """Random network inputs (n_samples, 2 n_cells): white-noise ``q`` ~ N(1, 1) and positive
    winds ~ U(10, 70) km/h, far outside any training set."""
    rng = np.random.default_rng(seed)
    n_samples, n_cells = positive_int("n_samples", n_samples), positive_int("n_cells", n_cells)
    return np.concatenate([rng.normal(1.0, 1.0, (n_samples, n_cells)),
                           rng.uniform(10.0, 70.0, (n_samples, n_cells))], axis=-1)
