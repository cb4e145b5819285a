"""Ocean application: a tracer stirred by random mesoscale eddies, and its coarse closure.

The "truth" is a tracer ``q(x, y, t)`` in a doubly periodic box, advected by a field of
random eddies and weakly diffused (pseudo-spectral, RK4)::

    dq/dt + d(u q)/dx + d(v q)/dy = kappa_m * lap(q),   u = -dpsi/dy,  v = dpsi/dx.

The eddy streamfunction ``psi = A(x, t) * phi(x, y, t) / k_e`` is a band-limited random field
``phi`` (unit rms, wavenumbers near ``k_e``, red in time with correlation time ``tau``) whose
speed ``A = a_0 + a_1 |dQ/dx|`` grows with the local large-scale tracer gradient. The tracer
thus sets the strength of the flow that stirs it: an *active*, buoyancy-like tracer, a cartoon
of baroclinic eddies that draw their energy from the front they erode (the eddy diffusivity
grows with the gradient, as in the scaling of Visbeck et al. 1997).

The coarse model keeps the zonal (``y``) mean averaged over ``n_coarse`` cells in ``x`` on a
:class:`nnparam.grid.Grid1D`; the y-mean velocity vanishes, so the only unclosed term is the
eddy flux through the cell faces. The coarse-graining is exact for the spectral fields: cell
means are exact integrals of the trigonometric interpolant and the face flux is that field
evaluated at the face, so the coarse budget ``dQ/dt = divergence(F)`` closes to round-off.

Units: lengths in units of ``L_x / (2 pi)``, time in model units, ``q`` in tracer units;
fluxes in tracer units * length / time, diffusivities in length^2 / time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import scipy.fft as sfft
import torch
import xarray as xr
from torch import nn

from .. import cache
from .._validate import finite_array, positive, positive_int
from ..closure import Closure
from ..closure import stencil_features as periodic_stencils
from ..grid import Grid1D
from ..nn import mlp


@dataclass(frozen=True)
class EddySetup:
    """Parameters of the stirred-tracer truth (defaults run in about a second).

    nx, ny : fine grid points in x and y; length_x, length_y : domain size;
    n_coarse : coarse cells in x (must divide ``nx``); eddy_wavenumber, eddy_bandwidth :
    centre and half-width of the eddy band in |k| (1 / length); correlation_time : eddy
    memory (time); base_speed, gradient_speed : ``A = base_speed + gradient_speed*|dQ/dx|``
    (length / time); diffusivity : small explicit diffusivity ``kappa_m`` (length^2 / time).
    """

    nx: int = 128
    ny: int = 64
    length_x: float = 2 * np.pi
    length_y: float = np.pi
    n_coarse: int = 16
    eddy_wavenumber: float = 16.0
    eddy_bandwidth: float = 4.0
    correlation_time: float = 0.08
    base_speed: float = 0.5
    gradient_speed: float = 2.0
    diffusivity: float = 2e-3

    def __post_init__(self):
        positive_int("nx", self.nx, minimum=8)
        positive_int("ny", self.ny, minimum=8)
        positive_int("n_coarse", self.n_coarse, minimum=2)
        if self.nx % self.n_coarse:
            raise ValueError(f"n_coarse must divide nx={self.nx}, got {self.n_coarse}")
        for name in ("length_x", "length_y", "eddy_wavenumber", "eddy_bandwidth",
                     "correlation_time", "diffusivity"):
            positive(name, getattr(self, name))
        k_max = (2 / 3) * np.pi * min(self.nx / self.length_x, self.ny / self.length_y)
        if self.eddy_wavenumber - self.eddy_bandwidth >= k_max:
            raise ValueError(f"eddy_wavenumber - eddy_bandwidth must be below the dealiased "
                             f"wavenumber {k_max:.3g}, got {self.eddy_wavenumber}")
        for name in ("base_speed", "gradient_speed"):
            val = getattr(self, name)
            if not np.isfinite(val) or val < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {val!r}")

    @property
    def grid(self) -> Grid1D:
        """The coarse finite-volume grid."""
        return Grid1D.uniform(self.n_coarse, self.length_x)

    @property
    def x(self) -> np.ndarray:
        """Fine grid positions in x, shape (nx,)."""
        return np.arange(self.nx) * self.length_x / self.nx


class _Spectral:
    """Wavenumbers, masks and exact coarse-graining operators of one setup."""

    def __init__(self, s: EddySetup):
        self.s = s
        self.kx = 2 * np.pi / s.length_x * np.arange(s.nx // 2 + 1)
        self.ky = 2 * np.pi / s.length_y * np.fft.fftfreq(s.ny, 1.0 / s.ny)
        kx, ky = np.meshgrid(self.kx, self.ky)
        self.k2 = kx**2 + ky**2
        self.ikx, self.iky = 1j * kx, 1j * ky
        # 2/3-rule dealiasing (also removes the Nyquist modes)
        self.dealias = ((np.abs(kx) < (2 / 3) * self.kx.max())
                        & (np.abs(ky) < (2 / 3) * np.abs(self.ky).max()))
        kmag = np.sqrt(self.k2)
        self.band = ((np.abs(kmag - s.eddy_wavenumber) <= s.eddy_bandwidth)
                     & (kx > 0) & self.dealias)
        if not self.band.any():
            raise ValueError("eddy_wavenumber/eddy_bandwidth select no resolved wavenumber")
        self.n_modes = int(self.band.sum())
        self.damping = s.diffusivity * self.k2
        self.norm = s.nx * s.ny / np.sqrt(2 * self.n_modes)
        # evaluation of a 1-D rfft series (numpy normalisation): cell means and face values
        grid = s.grid
        weight = np.full(self.kx.size, 2.0)
        weight[0] = 1.0
        weight[-1] = 1.0 if s.nx % 2 == 0 else 2.0
        half = 0.5 * grid.widths[0]
        sinc = np.sinc(self.kx * half / np.pi)  # numpy sinc is sin(pi z)/(pi z)
        self.to_cells = weight * sinc * np.exp(1j * np.outer(grid.centers, self.kx)) / s.nx
        self.to_faces = weight * np.exp(1j * np.outer(grid.faces, self.kx)) / s.nx
        self.coarse_kx = self.kx <= s.n_coarse / 2

    def cells(self, fhat):
        return np.real(fhat @ self.to_cells.T)

    def faces(self, fhat):
        return np.real(fhat @ self.to_faces.T)


def _velocity(sp: _Spectral, q, coeffs):
    """Eddy velocities (u, v) on the fine grid for tracer ``q`` and eddy coefficients."""
    s = sp.s
    mean_hat = sfft.rfft(q.mean(axis=0))
    grad = sfft.irfft(1j * sp.kx * mean_hat * sp.coarse_kx, n=s.nx)
    speed = s.base_speed + s.gradient_speed * np.abs(grad)
    phi = sfft.irfft2(coeffs, s=(s.ny, s.nx)) * sp.norm
    psi_hat = sfft.rfft2(speed[None, :] * phi / s.eddy_wavenumber)
    u = sfft.irfft2(-sp.iky * psi_hat, s=(s.ny, s.nx))
    v = sfft.irfft2(sp.ikx * psi_hat, s=(s.ny, s.nx))
    return u, v


def _tendency(sp: _Spectral, q_hat, u, v):
    """Spectral tendency in flux form, and the rfft (in x) of the y-mean total flux."""
    s = sp.s
    q = sfft.irfft2(q_hat, s=(s.ny, s.nx))
    uq_hat = sfft.rfft2(u * q) * sp.dealias
    vq_hat = sfft.rfft2(v * q) * sp.dealias
    tend = -(sp.ikx * uq_hat + sp.iky * vq_hat) - sp.damping * q_hat
    flux_hat = (uq_hat[0] - s.diffusivity * sp.ikx[0] * q_hat[0]) / s.ny
    return tend, flux_hat


def coarse_budget(q, setup: EddySetup | None = None, seed: int = 0) -> dict:
    """Budget of one fine state ``q`` (ny, nx) on the coarse grid, for tests and teaching.

    Returns ``Q`` (n_coarse,) cell means of the y-mean, ``tendency`` (n_coarse,) the exact
    cell-mean tendency of the fine model, and ``face_flux`` (n_coarse,) the y-mean total flux
    at the right faces; ``setup.grid.divergence(face_flux)`` equals ``tendency``.
    """
    s = setup or EddySetup()
    q = finite_array("q", q, ndim=2)
    if q.shape != (s.ny, s.nx):
        raise ValueError(f"q must have shape (ny, nx) = {(s.ny, s.nx)}, got {q.shape}")
    sp = _Spectral(s)
    rng = np.random.default_rng(seed)
    coeffs = (rng.standard_normal(sp.band.shape) + 1j * rng.standard_normal(sp.band.shape))
    coeffs = coeffs * sp.band / np.sqrt(2)
    u, v = _velocity(sp, q, coeffs)
    q_hat = sfft.rfft2(q)
    tend, flux_hat = _tendency(sp, q_hat, u, v)
    return {"Q": sp.cells(q_hat[0] / s.ny), "tendency": sp.cells(tend[0] / s.ny),
            "face_flux": sp.faces(flux_hat)}


def simulate_truth(q0, t_end: float, dt: float, save_every: int = 1,
                   setup: EddySetup | None = None, seed: int = 0) -> dict:
    """Run the fine stirred-tracer model from the y-uniform profile ``q0`` (nx,).

    Parameters
    ----------
    q0 : array (nx,), initial tracer profile in x (tracer units), uniform in y.
    t_end, dt : run length and fine time step (time); ``save_every`` steps between records.

    Returns a dict with ``t`` (nt,), ``Q`` (nt, n_coarse) coarse-grained tracer, ``flux``
    (nt, n_coarse) total y-mean flux at the right faces (exact budget: ``dQ/dt =
    grid.divergence(flux)``), ``sgs_flux`` = ``flux`` minus the coarse model's own resolved
    diffusive flux (the closure target), ``speed_rms`` (nt,) rms eddy speed, ``q`` final fine field.
    """
    s = setup or EddySetup()
    q0 = finite_array("q0", q0, ndim=1)
    if q0.shape[0] != s.nx:
        raise ValueError(f"q0 must have nx={s.nx} values, got {q0.shape[0]}")
    t_end, dt = positive("t_end", t_end), positive("dt", dt)
    save_every = positive_int("save_every", save_every)
    n_steps = int(round(t_end / dt))
    if n_steps < 1:
        raise ValueError(f"t_end must be at least one step dt={dt}, got {t_end}")
    sp = _Spectral(s)
    rng = np.random.default_rng(seed)
    rho = np.exp(-dt / s.correlation_time)
    shape = sp.band.shape

    where = np.nonzero(sp.band)

    def noise():
        out = np.zeros(shape, dtype=complex)
        z = rng.standard_normal((2, sp.n_modes)) / np.sqrt(2)
        out[where] = z[0] + 1j * z[1]
        return out

    coeffs = noise()
    q_hat = sfft.rfft2(np.broadcast_to(q0, (s.ny, s.nx)))
    grid = s.grid
    times, Q, flux, speed = [], [], [], []
    for step in range(n_steps + 1):
        q = sfft.irfft2(q_hat, s=(s.ny, s.nx))
        u, v = _velocity(sp, q, coeffs)
        k1, f1 = _tendency(sp, q_hat, u, v)
        if step % save_every == 0:
            times.append(step * dt)
            Q.append(sp.cells(q_hat[0] / s.ny))
            flux.append(sp.faces(f1))
            speed.append(np.sqrt(np.mean(u**2 + v**2)))
        if step == n_steps:
            break
        k2, _ = _tendency(sp, q_hat + 0.5 * dt * k1, u, v)
        k3, _ = _tendency(sp, q_hat + 0.5 * dt * k2, u, v)
        k4, _ = _tendency(sp, q_hat + dt * k3, u, v)
        q_hat = q_hat + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        coeffs = rho * coeffs + np.sqrt(1 - rho**2) * noise()
        if not np.all(np.isfinite(q_hat)):
            raise ValueError(f"the fine run blew up at t={step * dt:.3g}; reduce dt")
    Q, flux = np.array(Q), np.array(flux)
    resolved = -s.diffusivity * grid.face_gradient(Q)
    return {"t": np.array(times), "Q": Q, "flux": flux, "sgs_flux": flux - resolved,
            "speed_rms": np.array(speed), "q": sfft.irfft2(q_hat, s=(s.ny, s.nx))}


# --------------------------------------------------------------------------- closures
def flux_gradient(kappa, Q, grid: Grid1D) -> np.ndarray:
    """Down-gradient face flux ``F = -kappa * dQ/dx`` (the closure-coefficient form).

    ``kappa`` is a scalar or an array broadcastable to ``Q`` (length^2 / time, >= 0);
    ``Q`` has shape (..., n). Returns face fluxes of the shape of ``Q``.
    """
    kappa = finite_array("kappa", kappa)
    if np.any(kappa < 0):
        raise ValueError("kappa must be >= 0 (a diffusivity)")
    return -kappa * grid.face_gradient(Q)


def fit_constant_kappa(grad, flux) -> float:
    """Least-squares constant diffusivity ``argmin_k sum (flux + k*grad)^2``, clipped at 0."""
    g = finite_array("grad", grad).ravel()
    f = finite_array("flux", flux).ravel()
    if g.shape != f.shape:
        raise ValueError(f"flux must have the shape of grad, got {f.size} and {g.size} values")
    den = float(np.sum(g * g))
    if den == 0:
        raise ValueError("grad is identically zero; kappa is undefined")
    return max(0.0, -float(np.sum(f * g)) / den)


def stencil_features_of_gradient(g, width: int, xp=np):
    """Face gradients ``g`` (..., n) -> (..., n, 2 width + 1) stencils (numpy or torch)."""
    return periodic_stencils(g, width=width, xp=xp)


def stencil_features(Q, grid: Grid1D, width: int = 1) -> np.ndarray:
    """Face gradients at each face and its ``width`` neighbours on each side.

    ``Q`` (..., n) -> array (..., n, 2*width+1); column ``width`` is the face's own gradient.
    """
    width = positive_int("width", width, minimum=0)
    return stencil_features_of_gradient(grid.face_gradient(Q), width)


class KappaNet(nn.Module):
    """Eddy diffusivity ``kappa = kappa_scale*softplus(mlp(|G|/g_scale)) >= 0`` at each face.

    Input ``x`` (n, m): the face-gradient stencil of :func:`stencil_features` (centre column
    ``m // 2``). ``forward`` returns the face flux ``-kappa * G_centre`` (n, 1) so that the net
    is trained on the flux; :meth:`kappa` returns the diffusivity itself.
    """

    def __init__(self, n_in: int = 3, hidden=(16, 16), g_scale: float = 1.0,
                 kappa_scale: float = 1.0, seed: int = 0):
        super().__init__()
        self.net = mlp(positive_int("n_in", n_in), 1, hidden, seed=seed)
        self.register_buffer("g_scale", torch.tensor(positive("g_scale", g_scale)))
        self.register_buffer("kappa_scale", torch.tensor(positive("kappa_scale", kappa_scale)))
        self.centre = n_in // 2

    def kappa(self, x: torch.Tensor) -> torch.Tensor:
        return self.kappa_scale * nn.functional.softplus(self.net(x.abs() / self.g_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -self.kappa(x) * x[:, self.centre:self.centre + 1]


class FluxNet(nn.Module):
    """Direct face flux ``F = flux_scale * mlp(G/g_scale)``: unconstrained in sign."""

    def __init__(self, n_in: int = 3, hidden=(16, 16), g_scale: float = 1.0,
                 flux_scale: float = 1.0, seed: int = 0):
        super().__init__()
        self.net = mlp(positive_int("n_in", n_in), 1, hidden, seed=seed)
        self.register_buffer("g_scale", torch.tensor(positive("g_scale", g_scale)))
        self.register_buffer("flux_scale", torch.tensor(positive("flux_scale", flux_scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.flux_scale * self.net(x / self.g_scale)


def network_closure(model: nn.Module, grid: Grid1D, width: int = 1) -> Closure:
    """Wrap a face-stencil network as ``closure(Q) -> face flux (n,)`` for :func:`run_coarse`.

    A :class:`nnparam.closure.Closure` whose features are the face gradients of ``Q`` and
    their ``width`` neighbours (:func:`stencil_features`); the network scales its own inputs.
    """
    width = positive_int("width", width, minimum=0)

    def features(Q, xp=np):
        g = grid.face_gradient(Q)
        return stencil_features_of_gradient(g, width, xp)

    names = [f"dQ/dx[f{o:+d}]" if o else "dQ/dx[f]" for o in range(-width, width + 1)]
    return Closure(model, inputs=("Q",), features=features, feature_names=names,
                   output="subgrid face flux", output_units="[Q] m/s", input_units=("[Q]",),
                   name=f"{type(model).__name__} face-gradient closure")


def run_coarse(Q0, grid: Grid1D, closure: Callable | None, dt: float, n_steps: int,
               diffusivity: float = 0.0) -> np.ndarray:
    """Integrate ``dQ/dt = divergence(-diffusivity*dQ/dx + closure(Q))`` with RK4.

    ``Q0`` (n,) initial cell means, or (M, n) for ``M`` members advanced together in one
    vectorised call; ``closure(Q)`` (a :class:`nnparam.closure.Closure` or a plain callable)
    receives states of the shape of ``Q0`` and returns the subgrid face fluxes of that shape,
    or is ``None`` (no closure). Returns the trajectory (n_steps + 1, n), or
    (n_steps + 1, M, n) for members. Being in flux form, every closure conserves
    ``grid.total(Q)`` to round-off. A member that leaves the finite numbers (or exceeds
    1e6) is stopped and the rest of its trajectory is NaN; the other members go on.
    """
    Q = finite_array("Q0", Q0)
    if Q.ndim not in (1, 2) or Q.shape[-1] != grid.n:
        raise ValueError(f"Q0 must have shape ({grid.n},) or (M, {grid.n}), got {Q.shape}")
    dt = positive("dt", dt)
    n_steps = positive_int("n_steps", n_steps)
    diffusivity = float(diffusivity)
    if not np.isfinite(diffusivity) or diffusivity < 0:
        raise ValueError(f"diffusivity must be a finite number >= 0, got {diffusivity!r}")
    single = Q.ndim == 1
    Q = np.array(Q[None] if single else Q, dtype=float)

    if closure is not None:  # a wrong output shape is a bug in the closure, not a blow-up
        probe = np.shape(closure(Q))
        if probe != Q.shape:
            raise ValueError(f"closure must return face fluxes of the shape of its input "
                             f"{Q.shape}, got {probe}")

    def rhs(state):
        flux = -diffusivity * grid.face_gradient(state)
        if closure is not None:
            flux = flux + np.asarray(closure(state), dtype=float)
        return grid.divergence(flux)

    def step(state):
        k1 = rhs(state)
        k2 = rhs(state + 0.5 * dt * k1)
        k3 = rhs(state + 0.5 * dt * k2)
        k4 = rhs(state + dt * k3)
        return state + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)

    def step_or_nan(member):
        try:
            return step(member[None])[0]
        except ValueError:
            return np.full_like(member, np.nan)

    out = np.full((n_steps + 1,) + Q.shape, np.nan)
    out[0] = Q
    alive = np.ones(Q.shape[0], bool)
    with np.errstate(over="ignore", invalid="ignore"):
        for n in range(n_steps):
            state = Q[alive]
            try:
                new = step(state)
            except ValueError:  # a non-finite stage reached a validated function:
                new = np.stack([step_or_nan(member) for member in state])  # find whose
            ok = np.all(np.isfinite(new), axis=-1) & (np.abs(new).max(axis=-1) <= 1e6)
            index = np.flatnonzero(alive)
            Q[index[ok]] = new[ok]
            alive[index[~ok]] = False
            if not alive.any():
                break
            out[n + 1, alive] = Q[alive]
    return out[:, 0] if single else out


def large_scale_variance(Q, grid: Grid1D) -> np.ndarray:
    """Width-weighted variance of the coarse tracer about its domain mean, over the last axis."""
    Q = finite_array("Q", Q)
    w = grid.widths / grid.length
    mean = np.sum(Q * w, axis=-1, keepdims=True)
    return np.sum((Q - mean) ** 2 * w, axis=-1)


# --------------------------------------------------------------------------- cached truths
def sine_profile(setup: EddySetup, modes, amplitudes, phases) -> np.ndarray:
    """Initial profile ``sum_j a_j sin(k_j x + phi_j)`` on the fine grid, shape (nx,)."""
    modes = finite_array("modes", modes, ndim=1)
    amplitudes = finite_array("amplitudes", amplitudes, ndim=1)
    phases = finite_array("phases", phases, ndim=1)
    if not modes.shape == amplitudes.shape == phases.shape:
        raise ValueError("modes, amplitudes and phases must have one value per mode each")
    k = 2 * np.pi * modes / setup.length_x
    return np.sum(amplitudes[:, None] * np.sin(k[:, None] * setup.x + phases[:, None]), axis=0)


def truth_runs(modes, amplitudes, phases, seeds, t_end: float = 2.0, dt: float = 0.004,
               save_every: int = 5, setup: EddySetup | None = None) -> xr.Dataset:
    """Stirring truths from one initial profile, one member per eddy seed, cached.

    The profile is :func:`sine_profile` of ``modes`` (integer wavenumbers on the domain),
    ``amplitudes`` and ``phases``; member ``m`` is :func:`simulate_truth` with
    ``seed=seeds[m]``, so the members are independent realisations of the eddies. Returns a
    Dataset on ``(time, member, x)`` with ``Q``, ``flux`` and ``sgs_flux`` (see
    :func:`simulate_truth`), ``speed_rms`` on ``(time, member)`` and the final fine field
    ``q_final`` on ``(member, y, xf)``. Computed once per parameter set
    (:func:`nnparam.cache.cached`).
    """
    s = setup or EddySetup()
    seeds = [int(v) for v in np.atleast_1d(seeds)]
    if not seeds:
        raise ValueError("seeds must hold at least one eddy seed")
    params = {"modes": np.asarray(modes, float).tolist(),
              "amplitudes": np.asarray(amplitudes, float).tolist(),
              "phases": np.asarray(phases, float).tolist(), "seeds": seeds,
              "t_end": float(t_end), "dt": float(dt), "save_every": int(save_every),
              "setup": asdict(s)}
    q0 = sine_profile(s, modes, amplitudes, phases)

    def compute() -> xr.Dataset:
        runs = [simulate_truth(q0, t_end, dt, save_every, s, seed) for seed in seeds]
        stack = {name: np.stack([r[name] for r in runs], axis=1)
                 for name in ("Q", "flux", "sgs_flux", "speed_rms")}
        cell = ("time", "member", "x")
        return xr.Dataset(
            {"Q": (cell, stack["Q"], {"long_name": "coarse tracer (y-mean cell means)"}),
             "flux": (cell, stack["flux"], {"long_name": "total face flux"}),
             "sgs_flux": (cell, stack["sgs_flux"], {"long_name": "subgrid face flux"}),
             "speed_rms": (("time", "member"), stack["speed_rms"]),
             "q_final": (("member", "y", "xf"), np.stack([r["q"] for r in runs]))},
            coords={"time": runs[0]["t"], "member": seeds, "x": s.grid.centers})

    return cache.cached("ocean-truth", params, compute, version=1)


#: the truths the ocean chapter reads: training (profile with wavenumbers 2 and 3, eddy
#: seed 1) and the independent evaluation ensemble (another profile, eight other seeds)
CHAPTER_RUNS = {
    "training": {"modes": [2, 3], "amplitudes": [1.0, 0.5], "phases": [0.0, 1.0],
                 "seeds": [1]},
    "evaluation": {"modes": [1, 4], "amplitudes": [1.0, 0.5], "phases": [0.3, 2.0],
                   "seeds": list(range(101, 109))},
}


def warm_cache() -> None:
    """Compute every run in :data:`CHAPTER_RUNS` (a producer of ``make data``)."""
    for kwargs in CHAPTER_RUNS.values():
        truth_runs(**kwargs)
