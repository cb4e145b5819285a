"""The pyqg two-layer model through pyqg-jax: configurations, grid, PV inversion, filters.

The two-layer quasi-geostrophic (QG) model of pyqg (Abernathey et al. 2022) on a doubly
periodic ``L x L`` box is the test bed of the benchmark of Ross et al. (2023, JAMES,
doi:10.1029/2022MS003258). Its potential vorticity (PV) anomaly in layer ``i`` obeys
``dq_i/dt + J(psi_i, q_i) + U_i dq_i/dx + Q_{y,i} dpsi_i/dx = -delta_{i2} r_ek lap(psi_2)``,
``q_1 = lap(psi_1) + F1 (psi_2 - psi_1)``, ``q_2 = lap(psi_2) + F2 (psi_1 - psi_2)``, marched
with third-order Adams-Bashforth and an exponential spectral filter after every step.
pyqg-jax (Otness et al. 2023) is its JAX port; this module builds its models and holds what
the rest of :mod:`nnparam.apps.qg` shares: the benchmark's parameters, the grid, a numpy PV
inversion, seeded initial states, and the benchmark's filtering operators with the subgrid
PV forcing ``S_q``.

**Precision.** The benchmark runs in float64. Importing this module enables JAX's 64-bit mode
(``jax.config.update("jax_enable_x64", True)``) before any JAX array exists, and every model
is built with ``Precision.DOUBLE``. It also limits XLA to one CPU thread per process unless
``XLA_FLAGS`` is already set (the test runner already uses both cores, as
``OMP_NUM_THREADS=1`` does for torch); XLA reads the flag at its first computation.

Units: SI (m, s; PV in 1/s, ``S_q`` in 1/s^2); a model year is 360 days, as in pyqg.
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                      "intra_op_parallelism_threads=1")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pyqg_jax  # noqa: E402

from .._validate import finite_array, positive_int  # noqa: E402

YEAR = 360 * 86400.0  # s, the model year of pyqg and the benchmark (tmax = 10 * YEAR)

#: shared parameters of both configurations (pyqg's QGModel defaults, used by the benchmark)
COMMON = {"L": 1.0e6, "rd": 15000.0, "H1": 500.0, "U1": 0.025, "U2": 0.0,
          "filterfac": 23.6, "g": 9.81}

#: the benchmark's two configurations (Ross et al. 2023, Table 1; the data sets' attribute
#: ``pyqg_params`` in the benchmark repository): "eddy" is pyqg's default, "jet" has weaker
#: bottom drag, a thinner upper layer and a weaker beta, and forms strong zonal jets.
CONFIGS = {
    "eddy": {"rek": 5.787e-7, "delta": 0.25, "beta": 1.5e-11},
    "jet": {"rek": 7.0e-8, "delta": 0.1, "beta": 1.0e-11},
}

# ------------------------------------------------------------------------------------------
# arguments
# ------------------------------------------------------------------------------------------


def check_config(config: str) -> str:
    if config not in CONFIGS:
        raise ValueError(f"config must be one of {sorted(CONFIGS)}, got {config!r}")
    return config


def _check_nx(name: str, nx) -> int:
    nx = positive_int(name, nx, minimum=8)
    if nx % 2:
        raise ValueError(f"{name} must be even (a pseudo-spectral grid), got {nx}")
    return nx


def _steps(name: str, seconds: float, dt: float) -> int:
    """``seconds`` as a whole number of time steps ``dt`` (ValueError otherwise)."""
    n = seconds / dt
    if abs(n - round(n)) > 1e-6 * max(1.0, n):
        raise ValueError(f"{name} ({seconds:g} s) must be a whole number of time steps "
                         f"dt = {dt:g} s")
    return int(round(n))


# ------------------------------------------------------------------------------------------
# the model
# ------------------------------------------------------------------------------------------


def model(nx: int, config: str = "eddy") -> pyqg_jax.qg_model.QGModel:
    """The pyqg-jax two-layer model of ``config`` on an ``nx x nx`` grid, in float64."""
    return pyqg_jax.qg_model.QGModel(nx=_check_nx("nx", nx), **COMMON,
                                     **CONFIGS[check_config(config)],
                                     precision=pyqg_jax.state.Precision.DOUBLE)


def grid_coords(nx: int) -> dict:
    """Cell-centre coordinates ``x``, ``y`` (m) of an ``nx`` grid and the layer index."""
    centres = (np.arange(nx) + 0.5) * COMMON["L"] / nx
    return {"lev": ("lev", np.array([1, 2]), {"long_name": "layer (1 upper, 2 lower)",
                                              "units": "1"}),
            "y": ("y", centres, {"units": "m", "long_name": "meridional position"}),
            "x": ("x", centres, {"units": "m", "long_name": "zonal position"})}


def layer_parameters(config: str) -> dict:
    """``F1``, ``F2`` (1/m^2), ``U`` (m/s per layer), ``H`` (m per layer) of ``config``."""
    p = {**COMMON, **CONFIGS[check_config(config)]}
    f1 = p["rd"] ** -2 / (1 + p["delta"])
    return {"F1": f1, "F2": p["delta"] * f1, "U": np.array([p["U1"], p["U2"]]),
            "H": np.array([p["H1"], p["H1"] / p["delta"]])}


def wavenumbers(nx: int) -> tuple[np.ndarray, np.ndarray]:
    """Zonal ``k`` (rfft half plane) and meridional ``l`` wavenumbers (rad/m) of an ``nx``
    grid, each of shape (nx, nx // 2 + 1)."""
    d = COMMON["L"] / (2 * np.pi * nx)
    return np.meshgrid(np.fft.rfftfreq(nx, d), np.fft.fftfreq(nx, d))


def invert(q, config: str = "eddy") -> dict:
    """Streamfunction and velocities of PV ``q`` (..., 2, ny, nx) in 1/s, in numpy.

    Solves ``q_1 = lap(psi_1) + F1 (psi_2 - psi_1)``, ``q_2 = lap(psi_2) + F2 (psi_1 -
    psi_2)`` per wavenumber (the domain mean of ``psi`` is set to 0) and returns ``psi``
    (m^2/s), ``u = -dpsi/dy`` and ``v = dpsi/dx`` (m/s, anomalies: the background flow ``U_i``
    is not included) and the relative vorticity ``zeta = lap(psi)`` (1/s).
    """
    q = finite_array("q", q)
    if q.ndim < 3 or q.shape[-3] != 2 or q.shape[-1] != q.shape[-2]:
        raise ValueError(f"q must have shape (..., 2, n, n), got {q.shape}")
    nx = q.shape[-1]
    lp = layer_parameters(config)
    k, l = wavenumbers(nx)
    kappa2 = k ** 2 + l ** 2
    qh = np.fft.rfft2(q)
    det = kappa2 * (kappa2 + lp["F1"] + lp["F2"])
    det[0, 0] = 1.0
    ph1 = (-(kappa2 + lp["F2"]) * qh[..., 0, :, :] - lp["F1"] * qh[..., 1, :, :]) / det
    ph2 = (-lp["F2"] * qh[..., 0, :, :] - (kappa2 + lp["F1"]) * qh[..., 1, :, :]) / det
    ph = np.stack([ph1, ph2], axis=-3)
    ph[..., 0, 0] = 0.0

    def real(h):
        return np.fft.irfft2(h, s=(nx, nx))

    return {"psi": real(ph), "u": real(-1j * l * ph), "v": real(1j * k * ph),
            "zeta": real(-kappa2 * ph)}


def initial_q(nx: int, config: str = "eddy", seed: int = 0) -> np.ndarray:
    """A seeded random PV field (2, nx, nx) in 1/s to start a run from.

    Large scales only (|k| <= 8 dk) with rms 4e-6 1/s (upper) and 5e-7 1/s (lower), about half
    the equilibrated eddy amplitudes: a run skips the slow linear growth from pyqg's default
    initial state (amplitudes of 1e-7 to 1e-6 1/s), which takes most of its spin-up.
    """
    nx = _check_nx("nx", nx)
    check_config(config)
    rng = np.random.default_rng(positive_int("seed", seed, minimum=0))
    k, l = wavenumbers(nx)
    dk = 2 * np.pi / COMMON["L"]
    white = np.fft.rfft2(rng.standard_normal((2, nx, nx)))
    band = (np.hypot(k, l) <= 8.5 * dk) & (np.hypot(k, l) > 0)
    q = np.fft.irfft2(white * band, s=(nx, nx))
    return q / q.std(axis=(-2, -1), keepdims=True) * np.array([4e-6, 5e-7])[:, None, None]


def interpolate(q, nx: int) -> np.ndarray:
    """PV ``q`` (..., 2, n, n) on a finer ``nx`` grid by zero-padding its spectrum."""
    q = finite_array("q", q)
    n = q.shape[-1]
    nx = _check_nx("nx", nx)
    if nx < n:
        raise ValueError(f"nx ({nx}) must not be smaller than the grid of q ({n})")
    qh = np.fft.rfft2(q) * (nx / n) ** 2
    out = np.zeros(q.shape[:-2] + (nx, nx // 2 + 1), complex)
    half = n // 2
    out[..., :half, :half] = qh[..., :half, :half]
    out[..., nx - half:, :half] = qh[..., n - half:, :half]
    return np.fft.irfft2(out, s=(nx, nx))


# ------------------------------------------------------------------------------------------
# filtering, coarse-graining and the subgrid PV forcing
# ------------------------------------------------------------------------------------------

OPERATORS = ("op1", "op2")


def spectral_filter(nx: int, operator: str = "op1") -> np.ndarray:
    """The benchmark's filter on the rfft grid of an ``nx`` model, shape (nx, nx//2+1).

    ``"op1"``: the low-resolution model's own exponential filter (pyqg, after Arbic & Flierl
    2003): 1 for ``|k| dx <= 0.65 pi``, ``exp(-23.6 (|k| dx - 0.65 pi)^4)`` above.
    ``"op2"``: a Gaussian ``exp(-|k|^2 (2 dx)^2 / 24)`` (filter width twice the coarse grid
    spacing), the softer filter of the benchmark's operator 2.
    """
    nx = _check_nx("nx", nx)
    k, l = wavenumbers(nx)
    dx = COMMON["L"] / nx
    if operator == "op1":
        wvx = np.hypot(k * dx, l * dx)
        cphi = 0.65 * np.pi
        return np.where(wvx <= cphi, 1.0, np.exp(-COMMON["filterfac"] * (wvx - cphi) ** 4))
    if operator == "op2":
        return np.exp(-(k ** 2 + l ** 2) * (2 * dx) ** 2 / 24)
    raise ValueError(f"operator must be one of {OPERATORS}, got {operator!r}")


def coarsen(field, nx: int, operator: str = "op1") -> np.ndarray:
    """Filter and coarse-grain a periodic field (..., N, N) onto an ``nx`` grid (..., nx, nx).

    Spectral truncation to the ``nx`` grid's wavenumbers (``|k|, |l| < nx/2``; the coarse
    Nyquist column is kept and is filtered to ~1e-15), times :func:`spectral_filter`: the
    benchmark's coarse-graining operators 1 and 2 (Ross et al. 2023, sec. 2.3). ``N`` must be
    a multiple of ``nx``; units are kept.
    """
    f = finite_array("field", field)
    if f.ndim < 2 or f.shape[-1] != f.shape[-2]:
        raise ValueError(f"field must have shape (..., N, N), got {f.shape}")
    big = f.shape[-1]
    nx = _check_nx("nx", nx)
    if nx >= big or big % nx:
        raise ValueError(f"nx must be smaller than the field's grid ({big}) and divide it, "
                         f"got {nx}")
    fh = np.fft.rfft2(f)
    half = nx // 2
    trunc = np.concatenate([fh[..., :half, :half + 1], fh[..., big - half:, :half + 1]], axis=-2)
    return np.fft.irfft2(trunc * spectral_filter(nx, operator) / (big / nx) ** 2, s=(nx, nx))


@jax.jit
def _tendencies(base, q):
    template = base.create_initial_state(jax.random.key(0))
    return jax.vmap(lambda qi: base.get_updates(template.update(q=qi)).q)(q)


def tendency(q, config: str = "eddy") -> np.ndarray:
    """The model's PV tendency ``dq/dt`` (1/s^2) at states ``q`` (..., 2, n, n), closure-free.

    Advection by the total flow, the beta and background-shear terms and the bottom drag of
    pyqg-jax (``QGModel.get_updates``), without the spectral filter of the time step.
    """
    q = finite_array("q", q)
    if q.ndim < 3 or q.shape[-3] != 2 or q.shape[-1] != q.shape[-2]:
        raise ValueError(f"q must have shape (..., 2, n, n), got {q.shape}")
    flat = q.reshape((-1,) + q.shape[-3:])
    out = np.asarray(_tendencies(model(q.shape[-1], config), jnp.asarray(flat)))
    return out.reshape(q.shape)


def subgrid_forcing(q, config: str = "eddy", nx: int = 64, operator: str = "op1") -> dict:
    """Coarse PV and the subgrid PV forcing of high-resolution states ``q`` (..., 2, N, N).

    ``S_q = coarsen(dq/dt at high resolution) - (dq/dt of the nx model at coarsen(q))``
    (1/s^2): what must be added to the coarse model's tendency to match the filtered
    high-resolution one. The linear terms (beta, background shear, drag) commute with the
    spectral filter and cancel, so ``S_q = -[coarsen(div(u q)) - div(ubar qbar)]``, minus the
    benchmark's ``q_subgrid_forcing`` (which is written with the advection on the left) and
    equal to its total forcing ``q_forcing_total`` up to time-stepping. Returns
    ``{"q": qbar, "S_q": S_q}``, each (..., 2, nx, nx).
    """
    q = finite_array("q", q)
    q_bar = coarsen(q, nx, operator)
    s_q = coarsen(tendency(q, config), nx, operator) - tendency(q_bar, config)
    return {"q": q_bar, "S_q": s_q}
