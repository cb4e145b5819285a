"""Learning without a high-resolution truth: ensemble Kalman filtering and inversion.

Two tools for the one-scale Lorenz-96 model (any closure), both plain numpy, vectorised over
ensemble members and seeded:

* a **stochastic ensemble Kalman filter** (perturbed observations; Burgers, van Leeuwen &
  Evensen 1998; Houtekamer & Mitchell 1998) with multiplicative inflation of the forecast
  anomalies (Anderson & Anderson 1999) and Gaspari-Cohn localisation of the forecast
  covariance on the ring (Gaspari & Cohn 1999; Houtekamer & Mitchell 2001):
  :func:`enkf_analysis` for one update, :func:`run_enkf` for a cycled filter against
  observations of a subset of ``X``. Its **increments** (analysis minus forecast) are the
  model's error as the observations and the filter see it: a dataset to learn a closure
  from (Bonavita & Laloyaux 2020; Brajard et al. 2021; Farchi et al. 2021);
* **ensemble Kalman inversion** (:func:`eki`; Iglesias, Law & Stuart 2013) to calibrate a
  closure's parameters against observed statistics, derivative-free, as in CliMA's
  calibrate-emulate-sample (Cleary et al. 2021).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xarray as xr

from . import cache, l96
from ._validate import finite_array, positive, positive_int

# --------------------------------------------------------------------------------------------
# the "nature run": a two-scale truth we only observe
# --------------------------------------------------------------------------------------------


def nature_run(n_mtu: float = 1000.0, sample_dt: float = 0.05, F: float = 18.0,
               seed: int = 1, spinup_mtu: float = 2.0) -> xr.Dataset:
    """A long two-scale Lorenz-96 run (the atmosphere chapter's setting, ``K = 8``,
    ``J = 32``, ``h = 1``, ``b = c = 10``, RK4 at 0.001 MTU), cached on disk.

    Starts from a random state (``seed``), discards ``spinup_mtu`` MTU and keeps ``X``,
    ``coupling`` (and not ``Y``, to keep the cache small) every ``sample_dt`` MTU for
    ``n_mtu`` MTU. About one second of CPU per 1000 MTU.
    """
    n_mtu, sample_dt = positive("n_mtu", n_mtu), positive("sample_dt", sample_dt)
    dt = 0.001
    every = int(round(sample_dt / dt))
    if every < 1 or not np.isclose(every * dt, sample_dt):
        raise ValueError(f"sample_dt must be a multiple of {dt} MTU, got {sample_dt}")
    params = {"n_mtu": n_mtu, "sample_dt": sample_dt, "F": float(F), "seed": int(seed),
              "spinup_mtu": float(spinup_mtu)}

    def compute():
        spin = l96.simulate(F=F, dt=dt, n_steps=int(round(spinup_mtu / dt)) or 1, seed=seed)
        run = l96.simulate(F=F, dt=dt, n_steps=int(round(n_mtu / dt)), save_every=every,
                           X0=spin["X"].values[-1], Y0=spin["Y"].values[-1])
        return run[["X", "coupling"]]

    return cache.cached("l96-nature", params, compute)


def warm_cache() -> None:
    """The nature runs the "Learning without a truth" chapter and its lab read."""
    nature_run(3000.0, 0.05)
    nature_run(50.0, 0.025, seed=2)


# --------------------------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------------------------


def _members(name: str, ensemble, n_state: int | None = None) -> np.ndarray:
    ens = finite_array(name, ensemble, ndim=2)
    if ens.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 members (rows) to estimate a covariance, "
                         f"got {ens.shape[0]}")
    if n_state is not None and ens.shape[1] != n_state:
        raise ValueError(f"{name} must have shape (members, {n_state}), got {ens.shape}")
    return ens


def _covariance(name: str, cov, n: int) -> np.ndarray:
    c = finite_array(name, cov)
    if c.ndim == 0 or c.ndim == 1:
        c = np.diag(np.broadcast_to(c, (n,)).astype(float))
    if c.shape != (n, n):
        raise ValueError(f"{name} must be a scalar variance, {n} variances or a ({n}, {n}) "
                         f"covariance matrix, got shape {c.shape}")
    if not np.allclose(c, c.T, rtol=1e-10, atol=0.0):
        raise ValueError(f"{name} must be symmetric")
    try:
        np.linalg.cholesky(c)
    except np.linalg.LinAlgError as err:
        raise ValueError(f"{name} must be positive definite") from err
    return c


def observation_indices(obs_idx, n_state: int) -> np.ndarray:
    """Validate the observed components: distinct integers in ``[0, n_state)``, sorted."""
    idx = np.asarray(obs_idx)
    if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"obs_idx must be a non-empty 1-D array of integer state indices, "
                         f"got {obs_idx!r}")
    if idx.min() < 0 or idx.max() >= n_state or np.unique(idx).size != idx.size:
        raise ValueError(f"obs_idx must hold distinct indices in [0, {n_state}) (the state "
                         f"has {n_state} components), got {idx.tolist()}")
    return np.sort(idx)


# --------------------------------------------------------------------------------------------
# localisation
# --------------------------------------------------------------------------------------------


def gaspari_cohn(distance, radius: float) -> np.ndarray:
    """The Gaspari & Cohn (1999, eq. 4.10) fifth-order compactly supported correlation.

    ``radius`` is the half-width ``c``: the function is 1 at distance 0, about 0.21 at ``c``
    and exactly 0 beyond ``2 c``. Distances in the same units as ``radius``.
    """
    r = np.abs(finite_array("distance", distance)) / positive("radius", radius)
    out = np.zeros_like(r)
    near, far = r <= 1, (r > 1) & (r < 2)
    z = r[near]
    out[near] = -0.25 * z**5 + 0.5 * z**4 + 0.625 * z**3 - 5 / 3 * z**2 + 1
    z = r[far]
    out[far] = z**5 / 12 - 0.5 * z**4 + 0.625 * z**3 + 5 / 3 * z**2 - 5 * z + 4 - 2 / (3 * z)
    return out


def ring_localisation(n_state: int, radius: float) -> np.ndarray:
    """Gaspari-Cohn weights ``(n_state, n_state)`` for the cyclic distance on a ring."""
    n = positive_int("n_state", n_state, minimum=2)
    i = np.arange(n)
    d = np.abs(i[:, None] - i[None, :])
    return gaspari_cohn(np.minimum(d, n - d), radius)


# --------------------------------------------------------------------------------------------
# the ensemble Kalman filter
# --------------------------------------------------------------------------------------------


def enkf_analysis(ensemble, y, obs_idx, obs_var, rng=None, inflation: float = 1.0,
                  localisation=None, perturb: bool = True) -> np.ndarray:
    """One stochastic EnKF update of a forecast ensemble ``(M, n)`` with observations ``y``.

    The observation operator picks the components ``obs_idx`` of the state; ``obs_var`` is
    the observation-error variance (a scalar, one per observation, or a covariance matrix
    ``R``). The forecast anomalies are first multiplied by ``inflation >= 1`` (which widens
    the ensemble to make up for sampling and model error); the sample covariance ``P`` is
    then Schur-multiplied by ``localisation`` (an ``(n, n)`` matrix such as
    :func:`ring_localisation`; ``None`` for none). Each member ``i`` is updated with
    ``K (y + e_i - H x_i)``, ``K = P H^T (H P H^T + R)^-1``, where ``e_i ~ N(0, R)`` are
    perturbations re-centred to zero mean, so the analysis mean equals the Kalman update of
    the forecast mean exactly and the analysis spread is right in expectation. With
    ``perturb=False`` the members get the unperturbed innovation (the mean is the same; the
    spread collapses, which shows why the perturbations are needed). Returns ``(M, n)``.
    """
    ens = _members("ensemble", ensemble)
    n = ens.shape[1]
    idx = observation_indices(obs_idx, n)
    y = finite_array("y", y, ndim=1)
    if y.shape != idx.shape:
        raise ValueError(f"y must hold one value per observed index ({idx.size}), got {y.size}")
    R = _covariance("obs_var", obs_var, idx.size)
    inflation = positive("inflation", inflation)
    if inflation < 1:
        raise ValueError(f"inflation must be >= 1 (it widens the ensemble), got {inflation}")
    if localisation is not None:
        localisation = finite_array("localisation", localisation)
        if localisation.shape != (n, n):
            raise ValueError(f"localisation must have shape ({n}, {n}), "
                             f"got {localisation.shape}")
    rng = np.random.default_rng() if rng is None and perturb else rng
    return _analysis(ens, y, idx, R, rng, inflation, localisation, perturb)


def _analysis(ens, y, idx, R, rng, inflation, localisation, perturb):
    """The update of :func:`enkf_analysis` on validated inputs (the inner loop of a filter)."""
    m = ens.shape[0]
    mean = ens.mean(axis=0)
    anom = (ens - mean) * inflation
    ens = mean + anom
    P = anom.T @ anom / (m - 1)
    if localisation is not None:
        P = P * localisation
    # K = P H^T (H P H^T + R)^-1; H picks rows/columns idx, and S = H P H^T + R is symmetric
    gain = np.linalg.solve(P[np.ix_(idx, idx)] + R, P[idx]).T
    innovation = y - ens[:, idx]
    if perturb:
        e = rng.multivariate_normal(np.zeros(idx.size), R, size=m)
        innovation = innovation + (e - e.mean(axis=0))
    return ens + innovation @ gain.T


def observe(truth_X, obs_idx, obs_std: float, seed: int = 0) -> np.ndarray:
    """Noisy observations ``X[:, obs_idx] + N(0, obs_std^2)`` of a truth record ``(time, K)``."""
    X = finite_array("truth_X", truth_X, ndim=2)
    idx = observation_indices(obs_idx, X.shape[1])
    rng = np.random.default_rng(seed)
    return X[:, idx] + positive("obs_std", obs_std) * rng.standard_normal((X.shape[0], idx.size))


def run_enkf(observations, obs_idx, obs_std: float, closure=None, n_members: int = 20,
             K: int = 8, F: float = 18.0, dt: float = 0.005, steps_per_cycle: int = 10,
             inflation: float = 1.1, loc_radius: float | None = 2.0, X0=None,
             init_spread: float = 1.0, seed: int = 0) -> xr.Dataset:
    """Cycle the EnKF with the one-scale Lorenz-96 model against ``observations``.

    ``observations`` ``(n_cycles, n_obs)`` are taken every ``steps_per_cycle * dt`` MTU of
    the components ``obs_idx`` with error std ``obs_std``; cycle 0 is analysed first. The
    forecast model is the one-scale model (:func:`nnparam.l96.advance_one_scale`) with
    ``closure`` (``None`` for
    none) and forcing ``F``. The initial ensemble is ``X0`` (``(K,)``, default zeros) plus
    ``N(0, init_spread^2)`` noise. Localisation uses :func:`ring_localisation` with
    ``loc_radius`` (``None``: no localisation).

    Returns a Dataset over ``(cycle, k)``: ``forecast`` and ``analysis`` ensemble means,
    ``increment = analysis - forecast``, ``forecast_spread`` and ``analysis_spread`` (the
    root-mean ensemble variance over ``k``, per cycle), with ``time`` in MTU and the cycle
    length ``cycle_length`` in the attributes. The increment divided by the cycle length
    estimates the model's missing tendency as the filter sees it.
    """
    obs = finite_array("observations", observations, ndim=2)
    K = positive_int("K", K, minimum=4)
    idx = observation_indices(obs_idx, K)
    if obs.shape[1] != idx.size:
        raise ValueError(f"observations must have one column per observed index "
                         f"({idx.size}), got shape {obs.shape}")
    n_members = positive_int("n_members", n_members, minimum=2)
    steps = positive_int("steps_per_cycle", steps_per_cycle)
    dt = positive("dt", dt)
    R = np.eye(idx.size) * positive("obs_std", obs_std) ** 2
    inflation = positive("inflation", inflation)
    if inflation < 1:
        raise ValueError(f"inflation must be >= 1 (it widens the ensemble), got {inflation}")
    loc = None if loc_radius is None else ring_localisation(K, loc_radius)
    rng = np.random.default_rng(seed)
    x0 = np.zeros(K) if X0 is None else finite_array("X0", X0, ndim=1)
    if x0.shape != (K,):
        raise ValueError(f"X0 must have shape ({K},), got {x0.shape}")
    ens = x0 + positive("init_spread", init_spread) * rng.standard_normal((n_members, K))
    n_cycles = obs.shape[0]
    fc, an = np.empty((n_cycles, K)), np.empty((n_cycles, K))
    fs, as_ = np.empty(n_cycles), np.empty(n_cycles)
    for c in range(n_cycles):
        if c > 0:
            with np.errstate(over="ignore", invalid="ignore"):
                ens = l96.advance_one_scale(ens, closure, F=F, dt=dt, n_steps=steps)
            if not np.all(np.isfinite(ens)) or np.abs(ens).max() > 1e6:
                raise FloatingPointError(f"the forecast blew up in cycle {c}: increase the "
                                         "observations or reduce inflation")
        fc[c], fs[c] = ens.mean(axis=0), np.sqrt(ens.var(axis=0, ddof=1).mean())
        ens = _analysis(ens, obs[c], idx, R, rng, inflation, loc, True)
        an[c], as_[c] = ens.mean(axis=0), np.sqrt(ens.var(axis=0, ddof=1).mean())
    cycle_length = steps * dt
    units = {"units": l96.UNITS}
    return xr.Dataset(
        {"forecast": (("cycle", "k"), fc, {**units, "long_name": "forecast ensemble mean"}),
         "analysis": (("cycle", "k"), an, {**units, "long_name": "analysis ensemble mean"}),
         "increment": (("cycle", "k"), an - fc,
                       {**units, "long_name": "analysis increment (analysis - forecast)"}),
         "forecast_spread": ("cycle", fs, {**units, "long_name": "forecast ensemble spread"}),
         "analysis_spread": ("cycle", as_, {**units, "long_name": "analysis ensemble spread"})},
        coords={"cycle": np.arange(n_cycles),
                "time": ("cycle", cycle_length * np.arange(n_cycles),
                         {"units": l96.TIME_UNITS, "long_name": "analysis time"}),
                "k": np.arange(K)},
        attrs={"cycle_length": cycle_length, "n_members": n_members, "inflation": inflation,
               "loc_radius": np.nan if loc_radius is None else float(loc_radius),
               "obs_std": float(obs_std), "obs_idx": idx.tolist(), "F": float(F)})


# --------------------------------------------------------------------------------------------
# ensemble Kalman inversion
# --------------------------------------------------------------------------------------------


def eki(forward: Callable, prior, observations, noise_cov, n_iter: int, seed: int = 0,
        vectorized: bool = False, return_history: bool = False):
    """Ensemble Kalman inversion: calibrate parameters ``theta`` so that
    ``forward(theta) ~ observations`` (Iglesias, Law & Stuart 2013).

    ``prior``: an ensemble of parameter vectors, shape ``(members, n_params)``;
    ``forward``: maps one parameter vector ``(n_params,)`` to the predicted statistics
    ``(n_obs,)`` (with ``vectorized=True`` it maps the whole ensemble ``(members, n_params)``
    to ``(members, n_obs)`` in one call, e.g. one ensemble run of a model);
    ``observations``: ``(n_obs,)``; ``noise_cov``: their error covariance ``Gamma`` (a
    scalar, ``n_obs`` variances or a matrix; for climate statistics it must include the
    internal variability of a finite run). Each iteration moves every member by
    ``C_tG (C_GG + Gamma)^-1 (y + eta_j - G(theta_j))`` with ``eta_j ~ N(0, Gamma)``, from
    the ensemble's own covariances: no derivatives of ``forward`` are needed. For a linear
    ``forward`` and a Gaussian prior, one iteration with a large ensemble gives the exact
    posterior; ``n_iter`` iterations assimilate the data ``n_iter`` times (the posterior of
    ``Gamma / n_iter``), which is why EKI is used as an optimiser whose ensemble collapses
    onto the best fit. Returns the final ensemble ``(members, n_params)``, and with
    ``return_history=True`` also the list of ensembles and of forward outputs per iteration.
    """
    if not callable(forward):
        raise ValueError(f"forward must be callable, got {type(forward).__name__}")
    theta = _members("prior", prior).copy()
    m = theta.shape[0]
    y = finite_array("observations", observations, ndim=1)
    gamma = _covariance("noise_cov", noise_cov, y.size)
    n_iter = positive_int("n_iter", n_iter)
    rng = np.random.default_rng(seed)

    def run(th):
        g = forward(th) if vectorized else np.stack([np.asarray(forward(t), float) for t in th])
        g = np.asarray(g, dtype=float)
        if g.shape != (m, y.size):
            raise ValueError(f"forward must return {y.size} statistics per member "
                             f"(shape ({m}, {y.size}) for the ensemble), got {g.shape}")
        if not np.all(np.isfinite(g)):
            bad = np.flatnonzero(~np.isfinite(g).all(axis=1))
            raise ValueError(f"forward returned NaN or inf for members {bad.tolist()}: "
                             "narrow the prior or stabilise the model")
        return g

    history, outputs = [theta.copy()], []
    for _ in range(n_iter):
        g = run(theta)
        outputs.append(g)
        dt_, dg = theta - theta.mean(axis=0), g - g.mean(axis=0)
        c_tg, c_gg = dt_.T @ dg / (m - 1), dg.T @ dg / (m - 1)
        eta = rng.multivariate_normal(np.zeros(y.size), gamma, size=m)
        theta = theta + np.linalg.solve(c_gg + gamma, (y + eta - g).T).T @ c_tg.T
        history.append(theta.copy())
    return (theta, history, outputs) if return_history else theta
