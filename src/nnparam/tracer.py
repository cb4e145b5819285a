"""The book's first model: a 1-D tracer carried by a gusty wind, and its closure problem.

    dq/dt + d(u q)/dx = -lam q + alpha q**2          (x in km, t in h, u in km/h, q unitless)

on a periodic domain. The default source is logistic (``lam = alpha = -0.1 / h``: growth at
0.1 / h towards the carrying capacity ``lam / alpha = 1``), so the tracer never dies out or
blows up; ``lam = alpha = 0`` gives pure transport, which conserves the total exactly.

The wind ``u(x, t) = u_mean (1 + sum_m a_m sin(2 pi m x / L - omega_m t + phi_m))`` holds
travelling gusts from large to small scales, stays positive, and is known analytically, so
the model is kinematic: only the tracer is prognostic.

Numerics (truth and coarse model alike): finite volume in flux form, face values from the
third-order upwind-biased reconstruction ``(-q[i-1] + 5 q[i] + 2 q[i+1]) / 6`` (u > 0), and the
three-stage strong-stability-preserving Runge-Kutta scheme (SSP-RK3).

The coarse model sees the block means ``qbar`` of the truth (``factor`` fine cells per coarse
cell) and the wind averaged over one coarse width around each coarse face. The subgrid (SGS)
tendency is the budget residual

    sgs = d(qbar)/dt|true - R(qbar)

where ``d(qbar)/dt|true`` is the coarse-grained tendency of the truth and ``R`` the coarse
model's resolved tendency. It splits exactly into the eddy-flux divergence ``-d tau(u, q)/dx``,
the source correction ``alpha * tau(q, q)`` and a remainder (the difference between the
flux at a face and its filtered value, plus the coarse scheme's truncation error). Here
``tau(a, b) = mean(a b) - mean(a) mean(b)`` is the generalised central moment of the filter
(Germano 1992), which needs no Reynolds rules.

Two targets (``filter_width`` of :func:`sgs_budget`):

* **implicit (grid) filtering**, ``filter_width = 0``: the filter is the model's own cell
  average. The residual is what this coarse model needs, numerics included; for the book's
  tracer it is almost entirely the coarse scheme's numerical remainder.
* **explicit filtering**, ``filter_width > 0``: the truth is first smoothed by a Gaussian of
  that width (km, wider than the coarse cell), then cell-averaged. The closure terms of the
  combined filter are then a physical, grid-independent sub-filter target and the numerical
  remainder vanishes as the coarse grid is refined at fixed filter width.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import xarray as xr

from . import _xp, data
from ._validate import finite_array, positive, positive_int
from .filters import coarse_grain, gaussian
from .grid import flux_divergence

SCHEME_ORDER = 3  # formal order of the spatial scheme (third-order upwind-biased)


@dataclass(frozen=True)
class TracerSetup:
    """Parameters of the tracer problem (units in brackets)."""

    n: int = 512  # fine ("truth") cells
    length: float = 2000.0  # domain length [km]
    u_mean: float = 40.0  # mean wind [km/h]
    lam: float = -0.1  # linear loss rate [1/h]; negative = growth
    alpha: float = -0.1  # quadratic coefficient [1/h]
    n_modes: int = 8  # gust modes in the wind
    min_gust_mode: int = 20  # smallest gust wavenumber (waves per domain)
    max_mode: int = 40  # largest gust wavenumber (waves per domain)
    gust: float = 0.6  # relative wind variability (< 1 keeps u > 0)
    seed: int = 0

    def __post_init__(self):
        positive_int("n", self.n, minimum=8)
        positive("length", self.length)
        positive("u_mean", self.u_mean)
        positive_int("n_modes", self.n_modes)
        positive_int("max_mode", self.max_mode, minimum=2)
        if not 0 <= self.gust < 1:
            raise ValueError(f"gust must lie in [0, 1) so that the wind stays positive, "
                             f"got {self.gust}")
        if 2 * self.max_mode > self.n // 4:
            raise ValueError(f"max_mode={self.max_mode} is under-resolved by n={self.n} cells; "
                             f"need n >= 8 * max_mode")
        finite_array("lam", self.lam)
        finite_array("alpha", self.alpha)

    @property
    def dx(self) -> float:
        """Fine cell width [km]."""
        return self.length / self.n


@lru_cache(maxsize=8)
def _spatial_basis(k: bytes, phases: bytes, x: bytes) -> tuple[np.ndarray, np.ndarray]:
    """``sin`` and ``cos`` of ``k x + phase``, shape (modes, n), for the few grids in use.

    A small module-level cache rather than one per object: dask workers keep many
    deserialised copies of a task's closures, and a cache on each copy would grow with them.
    """
    arg = np.outer(np.frombuffer(k), np.frombuffer(x)) + np.frombuffer(phases)[:, None]
    sin, cos = np.sin(arg), np.cos(arg)
    sin.flags.writeable = cos.flags.writeable = False  # shared by every caller of the cache
    return sin, cos


class TravellingWaves:
    """``sum_m a_m sin(k_m x - omega_m t + phi_m)``, with the x-dependence precomputed."""

    def __init__(self, amplitudes, k, omega, phases):
        self.a, self.omega = np.asarray(amplitudes, float), np.asarray(omega, float)
        self.k, self.phases = np.asarray(k, float), np.asarray(phases, float)

    def __call__(self, x, t):
        x = np.ascontiguousarray(x, dtype=float)
        sin, cos = _spatial_basis(self.k.tobytes(), self.phases.tobytes(), x.tobytes())
        wt = np.multiply.outer(t, self.omega)
        return (self.a * np.cos(wt)) @ sin - (self.a * np.sin(wt)) @ cos


class Wind:
    """The analytic gusty wind of a :class:`TracerSetup`.

    ``u = u_mean (1 + L + (1 + L)**2 G)``: a large-scale part ``L`` (waves 1 to 3, relative
    amplitude ``gust / 2``) and small-scale gusts ``G`` (``n_modes`` waves geometrically spaced
    from ``min_gust_mode`` to ``max_mode`` per domain, relative amplitude ``gust / 4``) that
    are stronger where the large-scale wind is strong, so the eddy flux varies along the
    domain the way gustiness follows the weather.
    """

    def __init__(self, setup: TracerSetup):
        rng = np.random.default_rng(setup.seed)
        self.setup = setup
        small = np.unique(np.round(np.geomspace(setup.min_gust_mode, setup.max_mode,
                                                setup.n_modes)))
        self.modes = np.concatenate([[1.0, 2.0, 3.0], small])
        parts = []
        for modes, total in ((self.modes[:3], setup.gust / 2), (small, setup.gust / 4)):
            amp = modes ** (-1.0 / 3.0) * rng.uniform(0.5, 1.0, modes.size)
            k = 2 * np.pi * modes / setup.length  # [rad/km]
            parts.append(TravellingWaves(total * amp / amp.sum(), k,
                                k * rng.uniform(-15.0, 15.0, modes.size),  # [rad/h]
                                rng.uniform(0, 2 * np.pi, modes.size)))
        self._large, self._gusts = parts

    def __call__(self, x, t) -> np.ndarray:
        """Wind [km/h] at positions ``x`` (shape (n,), km) and times ``t`` (scalar or (n_t,), h).

        Returns shape (n,) for scalar ``t`` and (n_t, n) otherwise.
        """
        x = np.asarray(x, dtype=float)
        t = np.asarray(t, dtype=float)
        envelope = 1.0 + self._large(x, t)
        return self.setup.u_mean * (envelope + envelope**2 * self._gusts(x, t))


def face_values(q) -> np.ndarray:
    """Third-order upwind-biased value at each right face from cell means (for u > 0).

    numpy or torch (the differentiable coarse model of :mod:`nnparam.aposteriori`)."""
    ext = _xp.pad_periodic(q, 1)  # one periodic ghost each side
    return (-ext[..., :-2] + 5.0 * q + 2.0 * ext[..., 2:]) / 6.0


def centred_face_values(q) -> np.ndarray:
    """Second-order centred value ``(q[i] + q[i+1]) / 2`` at each right face (periodic)."""
    return 0.5 * (q + np.roll(q, -1, axis=-1))


def source(q, lam: float, alpha: float) -> np.ndarray:
    """Local source ``-lam q + alpha q**2`` [1/h] (numpy or torch)."""
    return -lam * q + alpha * q**2


def tendency(q, u_face, dx: float, lam: float, alpha: float) -> np.ndarray:
    """Resolved tendency [1/h] of cell means ``q`` (..., n) given the wind at right faces.

    Unvalidated on purpose: it is the inner loop of every run (the callers validate).
    numpy or torch: one source for the integrators and the differentiable coarse model.
    """
    flux = u_face * face_values(q)
    return -(flux - _xp.roll(flux, 1)) / dx + source(q, lam, alpha)


def _ssprk3_step(q, t, dt, rhs):
    """One SSP-RK3 step of ``dq/dt = rhs(q, t)``; pure arithmetic, so numpy or torch."""
    q1 = q + dt * rhs(q, t)
    q2 = 0.75 * q + 0.25 * (q1 + dt * rhs(q1, t + dt))
    return q / 3.0 + 2.0 / 3.0 * (q2 + dt * rhs(q2, t + 0.5 * dt))


def _integrate(q0, rhs, t_end, dt, save_every, t0=0.0):
    """SSP-RK3 from ``t0`` to ``t0 + t_end``; returns (times, states) every ``save_every`` h."""
    n_save = int(round(t_end / save_every))
    if n_save < 1 or not np.isclose(n_save * save_every, t_end):
        raise ValueError(f"t_end ({t_end}) must be a positive multiple of save_every "
                         f"({save_every})")
    sub = int(np.ceil(save_every / dt))
    h = save_every / sub
    q, t = np.array(q0, dtype=float), t0
    out = [q.copy()]
    for _ in range(n_save):
        for _ in range(sub):
            q = _ssprk3_step(q, t, h, rhs)
            t += h
        if not np.all(np.isfinite(q)):
            raise FloatingPointError(f"the run blew up before t = {t:.1f} h")
        out.append(q.copy())
    return t0 + save_every * np.arange(n_save + 1), np.array(out)


def stable_dt(dx: float, u_max: float, courant: float = 0.8) -> float:
    """Time step [h] at Courant number ``courant`` (SSP-RK3 with this scheme: stable below ~1.6)."""
    return positive("courant", courant) * positive("dx", dx) / positive("u_max", u_max)


def initial_state(setup: TracerSetup) -> np.ndarray:
    """A smooth random initial tracer around the carrying capacity, shape (n,)."""
    rng = np.random.default_rng(setup.seed + 1)
    x = (np.arange(setup.n) + 0.5) * setup.dx
    q = np.ones(setup.n)
    for m in range(1, 6):
        q += rng.uniform(0, 0.3 / m) * np.sin(2 * np.pi * m * x / setup.length
                                                  + rng.uniform(0, 2 * np.pi))
    return q


def truth_run(setup: TracerSetup | None = None, t_end: float = 300.0, spinup: float = 50.0,
              save_every: float = 1.0) -> xr.Dataset:
    """High-resolution "truth": ``q`` and ``u`` at the fine cell centres every ``save_every`` h.

    The first ``spinup`` hours are discarded so that the saved record starts in statistical
    equilibrium; saved times run from 0 to ``t_end`` h. The setup is stored in the attributes.
    """
    setup = setup or TracerSetup()
    t_end, save_every = positive("t_end", t_end), positive("save_every", save_every)
    if spinup < 0:
        raise ValueError(f"spinup must be >= 0 h, got {spinup}")
    wind = Wind(setup)
    x = (np.arange(setup.n) + 0.5) * setup.dx
    faces = x + 0.5 * setup.dx
    dt = stable_dt(setup.dx, setup.u_mean * (1 + setup.gust))

    def rhs(q, t):
        return tendency(q, wind(faces, t), setup.dx, setup.lam, setup.alpha)

    q = initial_state(setup)
    if spinup > 0:
        q = _integrate(q, rhs, spinup, dt, spinup, t0=-spinup)[1][-1]
    times, qs = _integrate(q, rhs, t_end, dt, save_every)
    return data.fields_to_dataset(
        times, x, attrs={f"setup_{k}": v for k, v in asdict(setup).items()},
        q=(qs, "1", "tracer mixing ratio (relative to carrying capacity)"),
        u=(wind(x, times), "km/h", "wind at cell centres"),
    )


def setup_of(ds: xr.Dataset) -> TracerSetup:
    """The :class:`TracerSetup` stored in a dataset's attributes by :func:`truth_run`."""
    kw = {k[len("setup_"):]: v for k, v in ds.attrs.items() if k.startswith("setup_")}
    if not kw:
        raise ValueError("ds has no setup_* attributes: pass a dataset made by truth_run")
    types = {f: type(v) for f, v in asdict(TracerSetup()).items()}
    return TracerSetup(**{k: types[k](v) for k, v in kw.items()})


def _window_mean(field, factor: int):
    """Mean over the ``factor`` fine cells centred on each coarse right face (factor even)."""
    return coarse_grain(np.roll(field, -(factor // 2), axis=-1), factor)


def coarse_face_wind(u_centres, factor: int) -> np.ndarray:
    """The coarse model's wind: the fine centre wind averaged over one coarse width around
    each coarse right face; ``u_centres`` (..., n) -> (..., n // factor)."""
    factor = positive_int("factor", factor, minimum=2)
    if factor % 2:
        raise ValueError(f"factor must be even so that windows centre on coarse faces, "
                         f"got {factor}")
    return _window_mean(finite_array("u_centres", u_centres), factor)


def _explicit_filter(filter_width, dx: float):
    """The explicit filter of :func:`budget_terms`: identity for width 0, else a Gaussian."""
    width = float(finite_array("filter_width", filter_width, ndim=0))
    if width == 0:
        return lambda field: field
    if width < dx:
        raise ValueError(f"filter_width must be 0 (grid filter only) or at least the fine cell "
                         f"width {dx:g} km, got {filter_width!r}")
    return lambda field: gaussian(field, width, dx)


def budget_terms(q, u_centres, u_faces, factor: int, dx: float, lam: float,
                 alpha: float, filter_width: float = 0.0) -> dict:
    """The coarse budget of fine fields; all arrays (..., n) fine, results (..., n // factor).

    ``u_faces`` is the fine wind at the fine right faces (what the truth used). Returns a dict
    with ``q`` (block means), ``u_face`` (coarse face wind), ``true_tendency``,
    ``resolved_tendency``, ``sgs_tendency``, ``eddy_flux`` (at coarse faces, km/h),
    ``eddy_flux_divergence``, ``source_correction`` and ``remainder`` (tendencies in 1/h).

    With ``filter_width = 0`` (km) the filter is the coarse cell average alone (implicit or
    grid filtering). With ``filter_width > 0`` every fine field, product and tendency is first
    smoothed by a periodic Gaussian of that width (:func:`nnparam.filters.gaussian`) and then
    cell-averaged (explicit filtering): ``q`` is then the cell mean of the filtered tracer and
    ``u_face`` the filtered coarse face wind the coarse model must be run with. Either way
    the eddy flux is the generalised central moment ``tau(u, q) = F(u q) - F(u) F(q)`` of the
    filter ``F`` centred on each coarse face, and the source correction is
    ``alpha * tau(q, q)`` at the cell centres, a kernel-weighted variance with the sign of
    ``alpha``.
    """
    q = finite_array("q", q)
    u_centres = finite_array("u_centres", u_centres)
    u_faces = finite_array("u_faces", u_faces)
    if not (q.shape == u_centres.shape == u_faces.shape):
        raise ValueError(f"q, u_centres and u_faces must share one shape, got {q.shape}, "
                         f"{u_centres.shape}, {u_faces.shape}")
    smooth = _explicit_filter(filter_width, positive("dx", dx))
    u_face = coarse_face_wind(smooth(u_centres), factor)
    coarse_dx = dx * factor
    q_smooth = smooth(q)
    qbar = coarse_grain(q_smooth, factor)
    true = coarse_grain(smooth(tendency(q, u_faces, dx, lam, alpha)), factor)
    resolved = tendency(qbar, u_face, coarse_dx, lam, alpha)
    eddy_flux = _window_mean(smooth(u_centres * q), factor) - u_face * _window_mean(q_smooth,
                                                                                    factor)
    eddy_div = flux_divergence(eddy_flux, coarse_dx)
    source_corr = alpha * (coarse_grain(smooth(q**2), factor) - qbar**2)
    sgs = true - resolved
    return {"q": qbar, "u_face": u_face, "true_tendency": true, "resolved_tendency": resolved,
            "sgs_tendency": sgs, "eddy_flux": eddy_flux, "eddy_flux_divergence": eddy_div,
            "source_correction": source_corr, "remainder": sgs - eddy_div - source_corr}


def closure_share(budget) -> float:
    """Share of the SGS target's variance that the closure terms explain (dimensionless).

    ``1 - sum(remainder**2) / sum(sgs_tendency**2)`` over all times and cells of a budget
    (the dict of :func:`budget_terms` or the Dataset of :func:`sgs_budget`): 1 when the target
    is the eddy-flux divergence plus the source correction alone (a physical sub-filter
    target), near 0 (or below) when the coarse scheme's numerical remainder dominates it.
    """
    if not all(k in budget for k in ("remainder", "sgs_tendency")):
        raise ValueError("budget must hold 'remainder' and 'sgs_tendency' (a dict from "
                         "budget_terms or a Dataset from sgs_budget)")
    rem = finite_array("remainder", np.asarray(budget["remainder"]))
    sgs = finite_array("sgs_tendency", np.asarray(budget["sgs_tendency"]))
    total = float(np.sum(sgs**2))
    if total == 0:
        raise ValueError("sgs_tendency is identically zero: the share is undefined")
    return 1.0 - float(np.sum(rem**2)) / total


_BUDGET_META = {
    "q": ("1", "coarse-grained tracer"),
    "u_face": ("km/h", "filtered wind at coarse right faces"),
    "true_tendency": ("1/h", "coarse-grained tendency of the truth"),
    "resolved_tendency": ("1/h", "tendency of the coarse model on the coarse state"),
    "sgs_tendency": ("1/h", "subgrid tendency (budget residual)"),
    "eddy_flux": ("km/h", "eddy flux tau(u, q) at coarse right faces"),
    "eddy_flux_divergence": ("1/h", "eddy-flux divergence -d tau(u, q)/dx"),
    "source_correction": ("1/h", "source correction alpha * tau(q, q)"),
    "remainder": ("1/h", "remainder: face-flux filtering and truncation error"),
}


def sgs_budget(truth: xr.Dataset, factor: int = 16, filter_width: float = 0.0) -> xr.Dataset:
    """Coarse-grain a :func:`truth_run` and return its budget on the coarse grid.

    Variables (time, x): see :func:`budget_terms`; ``sgs_tendency`` is the training target.
    ``filter_width = 0`` (the default, used by every tracer chapter and lab) gives the
    implicit, grid-filtered target of this coarse model; ``filter_width > 0`` (km) the
    explicitly filtered target (Gaussian of that width, then the cell average), stored in
    the attribute ``filter_width``.
    Works time-block by time-block through ``xarray.apply_ufunc``, so a dask-backed ``truth``
    (chunked in time) gives a lazy result that is computed chunk by chunk, never whole.
    """
    if not isinstance(truth, xr.Dataset):
        raise ValueError(f"truth must be an xarray.Dataset, got {type(truth).__name__}")
    missing = [v for v in ("q", "u") if v not in truth.data_vars]
    if missing or truth["q"].dims != ("time", "x"):
        raise ValueError(f"truth must hold q and u with dims ('time', 'x'); missing {missing}, "
                         f"q dims {truth['q'].dims if 'q' in truth else None}")
    data.require_units(truth, ["q", "u", "time", "x"])
    setup = setup_of(truth)
    factor = positive_int("factor", factor, minimum=2)
    if setup.n % factor or truth.sizes["x"] != setup.n:
        raise ValueError(f"factor must divide the fine cell count {truth.sizes['x']}, "
                         f"got {factor}")
    centres = (np.arange(setup.n) + 0.5) * setup.dx
    if not np.allclose(truth["x"].values, centres):
        raise ValueError("truth x must hold the cell centres (i + 1/2) * dx of its setup")
    names = list(_BUDGET_META)
    _explicit_filter(filter_width, setup.dx)  # validate before building the task graph

    def block(q, u, t):  # one time block: (n_t, n) fine -> tuple of (n_t, n // factor)
        # rebuilt per task from the small setup: big arrays captured here would be shipped
        # and kept with every task of a dask graph
        faces = (np.arange(setup.n) + 1.0) * setup.dx
        terms = budget_terms(q, u, Wind(setup)(faces, t), factor, setup.dx, setup.lam,
                             setup.alpha, filter_width)
        return tuple(terms[k] for k in names)

    fields = truth[["q", "u"]]
    if fields.chunks and len(fields.chunks.get("x", ())) > 1:
        fields = fields.chunk({"x": -1})  # the periodic stencils need whole rows
    outputs = xr.apply_ufunc(
        block, fields["q"], fields["u"], truth["time"],
        input_core_dims=[["x"], ["x"], []], output_core_dims=[["x_coarse"]] * len(names),
        dask="parallelized", output_dtypes=[float] * len(names),
        dask_gufunc_kwargs={"output_sizes": {"x_coarse": setup.n // factor}})
    x = data.coordinate("x", coarse_grain(truth["x"].values, factor))
    coarse = xr.Dataset(
        {k: out.rename(x_coarse="x").assign_attrs(units=_BUDGET_META[k][0],
                                                  long_name=_BUDGET_META[k][1])
         for k, out in zip(names, outputs, strict=True)},
        coords={"time": truth["time"], "x": x},
        attrs={**truth.attrs, "factor": int(factor), "filter_width": float(filter_width)})
    return coarse.transpose("time", "x")


def sgs_dataset(seed: int = 0, factor: int = 16, t_end: float = 300.0, **setup_kw) -> xr.Dataset:
    """Truth run plus budget in one call: the book's standard SGS training data.

    ``q`` (time, x) is the coarse tracer and ``sgs_tendency`` (time, x) the target [1/h].
    About one second on one core for the defaults (32 coarse cells, 301 hourly samples).
    """
    return sgs_budget(truth_run(TracerSetup(seed=seed, **setup_kw), t_end=t_end), factor)


def run_coarse(q0, truth: xr.Dataset, factor: int, t_end: float, closure=None,
               save_every: float = 1.0, dt: float | None = None) -> xr.Dataset:
    """Integrate the coarse model from ``q0`` for ``t_end`` hours.

    ``q0`` has shape ``(n // factor,)``, or ``(M, n // factor)`` for an ensemble of ``M``
    members advanced together in one vectorised call. ``closure(q, u_face) -> tendency``
    [1/h] (a :class:`nnparam.closure.Closure` or a plain callable; it receives states of the
    shape of ``q0`` and the face wind broadcast to it) is added to the resolved tendency;
    ``None`` runs the coarse model with no closure. The wind is the coarse face wind of the
    truth's setup, starting at the truth's t = 0. Returns ``q`` with dims ``(time, x)``, or
    ``(time, member, x)`` for an ensemble.
    """
    setup = setup_of(truth)
    wind = Wind(setup)
    coarse_n = setup.n // factor
    q0 = finite_array("q0", q0)
    if q0.ndim not in (1, 2) or q0.shape[-1] != coarse_n:
        raise ValueError(f"q0 must have shape ({coarse_n},) or (M, {coarse_n}), got {q0.shape}")
    coarse_dx = setup.dx * factor
    x_fine = (np.arange(setup.n) + 0.5) * setup.dx
    dt = dt or stable_dt(coarse_dx, setup.u_mean * (1 + setup.gust))

    def rhs(q, t):
        u_face = coarse_face_wind(wind(x_fine, t), factor)
        out = tendency(q, u_face, coarse_dx, setup.lam, setup.alpha)
        return out if closure is None else out + closure(q, np.broadcast_to(u_face, q.shape))

    times, qs = _integrate(q0, rhs, positive("t_end", t_end), positive("dt", dt),
                           positive("save_every", save_every))
    x = coarse_grain(x_fine, factor)
    attrs = {**truth.attrs, "factor": int(factor)}
    if q0.ndim == 1:
        return data.fields_to_dataset(times, x, attrs=attrs, q=(qs, "1", "coarse-model tracer"))
    return xr.Dataset({"q": (("time", "member", "x"), qs,
                             {"units": "1", "long_name": "coarse-model tracer"})},
                      coords={"time": data.coordinate("time", times),
                              "x": data.coordinate("x", x)}, attrs=attrs)


def fourier_field(x_left, x_right, modes, amplitudes, phases, length: float, mean: float = 0.0):
    """Exact cell averages over ``[x_left, x_right]`` of
    ``mean + sum_m a_m sin(2 pi m x / length + phi_m)``; also the point values at ``x_right``.

    Used as an analytic reference: returns ``(cell_average, value_at_right_edge)``.
    """
    xl, xr_ = finite_array("x_left", x_left), finite_array("x_right", x_right)
    k = 2 * np.pi * np.asarray(modes, dtype=float)[:, None] / positive("length", length)
    a = np.asarray(amplitudes, dtype=float)[:, None]
    p = np.asarray(phases, dtype=float)[:, None]
    avg = mean + np.sum(a * (np.cos(k * xl + p) - np.cos(k * xr_ + p)) / (k * (xr_ - xl)), 0)
    return avg, mean + np.sum(a * np.sin(k * xr_ + p), axis=0)


def truncation_error(n_cells: int, length: float = 2000.0, u_mean: float = 40.0,
                     face_value=None) -> float:
    """RMS error [1/h] of the coarse scheme's transport tendency for smooth analytic fields.

    The linear, fully resolved problem (no source, a smooth steady wind and tracer made of a
    few long waves) on ``n_cells`` cells, against the exact cell-average tendency
    ``-((u q)(right face) - (u q)(left face)) / dx``. Pure discretization error: it vanishes
    at the scheme's order as the grid is refined. ``face_value(q_cells) -> q_right_faces``
    replaces the reconstruction (default :func:`face_values`, third order), e.g. by
    :func:`centred_face_values`.
    """
    n = positive_int("n_cells", n_cells, minimum=4)
    dx = positive("length", length) / n
    left = np.arange(n) * dx
    right = left + dx
    q_avg, q_right = fourier_field(left, right, [1, 2, 3], [0.3, 0.2, 0.1], [0.0, 1.0, 2.0],
                                   length, mean=1.0)
    _, u_right = fourier_field(left, right, [1, 2], [0.3 * u_mean, 0.1 * u_mean], [1.0, 0.3],
                               length, mean=u_mean)
    exact = flux_divergence(u_right * q_right, dx)
    reconstruct = face_values if face_value is None else face_value
    if not callable(reconstruct):
        raise ValueError(f"face_value must be a callable q -> face values, got {face_value!r}")
    scheme = flux_divergence(u_right * reconstruct(q_avg), dx)
    return float(np.sqrt(np.mean((scheme - exact) ** 2)))


def closure_term_rms(n_fine: int, coarse_n: int = 32, length: float = 2000.0,
                     alpha: float = -0.1) -> float:
    """RMS [1/h] of the closure terms (eddy-flux divergence plus source correction) at a fixed
    filter width ``length / coarse_n``, computed from analytic multi-scale fields sampled on
    ``n_fine`` cells. Refining ``n_fine`` converges to the filter's value, not to zero: the
    closure term belongs to the filter, not to the numerics.
    """
    n_fine, coarse_n = positive_int("n_fine", n_fine), positive_int("coarse_n", coarse_n)
    if n_fine % coarse_n or (n_fine // coarse_n) % 2:
        raise ValueError(f"n_fine must be an even multiple of coarse_n={coarse_n}, got {n_fine}")
    dx = positive("length", length) / n_fine
    left = np.arange(n_fine) * dx
    modes = np.array([1, 2, 3, 9, 14, 22, 31, 40])
    amps = 0.3 * modes ** (-1.0 / 3.0)
    phases = np.linspace(0.0, 5.0, modes.size)
    q, _ = fourier_field(left, left + dx, modes, 0.15 * amps, phases, length, mean=1.0)

    def wind(x):  # a steady multi-scale wind [km/h]
        arg = 2 * np.pi * modes[:, None] * x / length + phases[::-1, None]
        return 40.0 * (1.0 + np.sum(amps[:, None] * np.sin(arg), axis=0))

    u, u_faces = wind(left + 0.5 * dx), wind(left + dx)
    terms = budget_terms(q, u, u_faces, n_fine // coarse_n, dx, 0.0, alpha)
    closure = terms["eddy_flux_divergence"] + terms["source_correction"]
    return float(np.sqrt(np.mean(closure**2)))
