"""Checks for the lab "Learn from observations" (``solutions/lab12_learn_from_observations``).

The lab learns a Lorenz-96 closure without the truth: it calibrates the slope ``a`` of
``P(X) = a X`` to two climate statistics by ensemble Kalman inversion, runs an ensemble
Kalman filter on the one-scale model against sparse noisy observations, and trains a
network on the filter's increments. The checks recompute each answer from the lab's data
(:func:`nature`, :func:`observations`) and recognise the typical mistakes: an ensemble too
small for EKI, a noise covariance that ignores the internal variability of a finite run, a
filter without inflation, the analysis (or an undivided increment) used as the target.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .. import assimilate as da
from .. import l96
from ..evaluation import hellinger
from .feedback import LabCheckError, as_array, passed, require

#: the lab's setting (MTU for times)
PARAMS = {"sample_dt": 0.05, "dt": 0.005, "run_mtu": 20.0, "adjust_mtu": 2.0,
          "min_members": 10, "obs_idx": (0, 1, 2, 4, 5, 6), "obs_std": 0.5,
          "steps_per_cycle": 5, "settle": 200, "clim_mtu": 50.0, "clim_members": 5,
          "bins": 40, "range": (-15.0, 25.0)}

_CACHE: dict = {}


def nature() -> np.ndarray:
    """The climate record: ``X`` (time, k) of 1000 MTU of the two-scale truth every 0.05."""
    if "nature" not in _CACHE:
        ds = da.nature_run(3000.0, PARAMS["sample_dt"])  # the chapter's cached run
        _CACHE["nature"] = ds["X"].values[: ds.sizes["time"] // 3]
    return _CACHE["nature"]


def climate_stats(x) -> np.ndarray:
    """The two calibrated statistics of a record ``x`` (time, ..., k): mean and std of X."""
    x = np.asarray(x, dtype=float)
    return np.array([x.mean(), x.std()])


def forward(theta) -> np.ndarray:
    """EKI's forward map for ``P(X) = a X``: slopes ``(members, 1)`` -> statistics
    ``(members, 2)`` of one-scale runs of 20 MTU (after 2 MTU of adjustment), one member
    per slope, each from its own state of the nature run."""
    theta = np.asarray(theta, dtype=float)
    if theta.ndim != 2 or theta.shape[1] != 1:
        raise ValueError(f"theta must have shape (members, 1), got {theta.shape}")
    p = PARAMS
    X = nature()
    starts = X[np.random.default_rng(0).integers(0, X.shape[0], theta.shape[0])]
    slope = theta[:, :1]
    run = l96.simulate_one_scale(lambda x: slope * x, dt=p["dt"],
                                 n_steps=int(round((p["run_mtu"] + p["adjust_mtu"]) / p["dt"])),
                                 save_every=int(round(p["sample_dt"] / p["dt"])), X0=starts,
                                 seed=1)
    x = run["X"].values[int(round(p["adjust_mtu"] / p["sample_dt"])):]
    return np.stack([climate_stats(x[:, m]) for m in range(x.shape[1])])


def _reference_statistics():
    if "stats" not in _CACHE:
        X = nature()
        n = int(round(PARAMS["run_mtu"] / PARAMS["sample_dt"]))
        segments = np.stack([climate_stats(X[i * n:(i + 1) * n]) for i in range(X.shape[0] // n)])
        _CACHE["stats"] = climate_stats(X), np.cov(segments.T), segments.shape[0]
    return _CACHE["stats"]


def _reference_slope() -> float:
    if "slope" not in _CACHE:
        y, gamma, _ = _reference_statistics()
        prior = np.random.default_rng(1).normal(-0.5, 0.3, (20, 1))
        _CACHE["slope"] = float(da.eki(forward, prior, y, gamma, n_iter=5, vectorized=True,
                                       seed=0).mean())
    return _CACHE["slope"]


def statistics(y_obs, gamma) -> bool:
    """Check the observed statistics ``y_obs`` (2,) and their noise covariance ``gamma``."""
    y = as_array("y_obs", y_obs, shape=(2,))
    g = as_array("gamma", gamma)
    require(g.shape == (2, 2), f"`gamma` should be the 2 x 2 covariance of (mean, std), got "
            f"shape {g.shape}. np.cov(segment_stats.T) of an (n_segments, 2) array gives it.")
    ref_y, ref_g, n_seg = _reference_statistics()
    require(np.allclose(y, ref_y, rtol=1e-6),
            f"`y_obs` = {np.round(y, 3)}, expected the mean and std of all of X, "
            f"{np.round(ref_y, 3)}. Pool over time and k (climate_stats(X)).")
    ratio = np.diag(g) / np.diag(ref_g)
    if np.allclose(ratio, 1 / n_seg, rtol=0.2):
        raise LabCheckError(
            f"`gamma` is {n_seg} times too small: that is the uncertainty of the statistics of "
            "the whole record, but the forward map runs only 20 MTU. Gamma must hold the "
            "spread of the statistics between 20-MTU segments (the internal variability a "
            "single forward run shows), or EKI chases sampling noise.")
    require(np.all(np.abs(np.log(ratio)) < np.log(1.5)),
            f"`gamma` has variances {np.diag(g)}, expected about {np.round(np.diag(ref_g), 5)}: "
            "use non-overlapping segments of 20 MTU (400 samples) of X, the run length of "
            "forward, and np.cov of their statistics.")
    return passed(f"statistics: mean {y[0]:.3f} +- {np.sqrt(g[0, 0]):.3f}, std {y[1]:.3f} +- "
                  f"{np.sqrt(g[1, 1]):.3f} (internal variability of a 20-MTU run)")


def calibration(prior, final) -> bool:
    """Check the EKI prior ensemble ``(members, 1)`` and the final ensemble it led to."""
    pr = as_array("prior", prior)
    fi = as_array("final", final)
    require(pr.ndim == 2 and pr.shape[1] == 1,
            f"`prior` should have shape (members, 1): one slope per member, got {pr.shape}")
    m_min = PARAMS["min_members"]
    require(pr.shape[0] >= m_min,
            f"`prior` has only {pr.shape[0]} members. EKI estimates its update from the "
            f"ensemble's covariances, which {pr.shape[0]} members give with "
            f"{pr.shape[0] - 1} degrees of freedom: the ensemble collapses before it finds "
            f"the fit. Use at least {m_min} members (20 is safer).")
    require(fi.shape == pr.shape, f"`final` should have the prior's shape {pr.shape}, got "
            f"{fi.shape}: pass the ensemble da.eki returns")
    require(pr.std() > 0.05, "`prior` has almost no spread: EKI can only move within the span "
            "of its members, so draw them from a distribution wide enough to contain the "
            "answer (e.g. normal around -0.5 with std 0.3).")
    require(fi.std() < 0.5 * pr.std(), f"`final` still has a spread of {fi.std():.3f} (prior "
            f"{pr.std():.3f}): run more iterations (n_iter = 5 is enough here).")
    ref = _reference_slope()
    a = float(fi.mean())
    require(abs(a - ref) < 0.03,
            f"the calibrated slope is {a:.3f}, the reference calibration gives {ref:.3f}. Check "
            "that you passed y_obs and gamma from exercise 1, vectorized=True with this "
            "forward, and a prior wide enough to contain the answer.")
    return passed(f"calibrated P(X) = a X with a = {a:.3f} (ensemble std {fi.std():.4f})")


def observations():
    """The assimilated data: ``(obs, obs_idx, obs_std, X_truth)`` over 50 MTU of a second
    nature run, every ``steps_per_cycle * dt`` = 0.025 MTU."""
    if "obs" not in _CACHE:
        p = PARAMS
        cycle = p["steps_per_cycle"] * p["dt"]
        X = da.nature_run(50.0, cycle, seed=2)["X"].values
        idx = np.array(p["obs_idx"])
        _CACHE["obs"] = da.observe(X, idx, p["obs_std"], seed=3), idx, p["obs_std"], X
    return _CACHE["obs"]


def _filter_dataset(name: str, ds) -> xr.Dataset:
    if not isinstance(ds, xr.Dataset) or not {"forecast", "analysis", "increment"} <= set(ds):
        raise LabCheckError(f"`{name}` should be the Dataset returned by da.run_enkf (with "
                            f"forecast, analysis and increment), got {type(ds).__name__}")
    obs, _, _, X = observations()
    require(ds.sizes.get("cycle") == obs.shape[0],
            f"`{name}` has {ds.sizes.get('cycle')} cycles, the observations {obs.shape[0]}: "
            "assimilate all of `obs`.")
    return ds


def filter_run(ds) -> bool:
    """Check the cycled EnKF of exercise 2 against the hidden truth."""
    ds = _filter_dataset("ds", ds)
    obs, idx, std, X = observations()
    p = PARAMS
    require(np.isclose(ds.attrs.get("cycle_length", np.nan), p["steps_per_cycle"] * p["dt"]),
            f"the cycle length is {ds.attrs.get('cycle_length')} MTU, but the observations "
            f"come every {p['steps_per_cycle'] * p['dt']} MTU: use steps_per_cycle="
            f"{p['steps_per_cycle']} with dt={p['dt']}.")
    require(list(ds.attrs.get("obs_idx", [])) == list(idx),
            "the filter observed other components than the data: pass obs_idx")
    settle = p["settle"]
    err = np.sqrt(np.mean((ds["analysis"].values[settle:] - X[settle:]) ** 2, axis=0))
    inflation = float(ds.attrs.get("inflation", np.nan))
    if inflation <= 1.0 + 1e-9:
        raise LabCheckError(
            f"the filter ran without inflation and its analysis error is {err.mean():.2f} "
            f"(observation error {std}). A small ensemble of a model this wrong "
            "underestimates its spread, trusts its forecast and stops listening to the "
            "observations: inflate the forecast anomalies (inflation of about 1.2).")
    require(ds.attrs.get("n_members", 0) >= 10,
            f"{ds.attrs.get('n_members')} members are too few for a stable filter: use 20")
    require(err[idx].mean() < std,
            f"the analysis error of the observed components is {err[idx].mean():.2f}, above "
            f"the observation error {std}: the filter is not tracking the truth. Check the "
            "inflation (about 1.2) and the localisation radius (about 2).")
    return passed(f"EnKF: analysis error {err[idx].mean():.2f} on observed components, "
                  f"{np.delete(err, idx).mean():.2f} on unobserved ones (inflation "
                  f"{inflation}, {ds.attrs['n_members']} members)")


def increment_targets(inputs, targets, ds) -> bool:
    """Check the training pairs (forecast state, increment / cycle length) built from ``ds``."""
    ds = _filter_dataset("ds", ds)
    settle = PARAMS["settle"]
    cycle = float(ds.attrs["cycle_length"])
    expected_shape = (ds.sizes["cycle"] - settle, ds.sizes["k"])
    x = as_array("inputs", inputs)
    y = as_array("targets", targets)
    fc, an, inc = (ds[v].values for v in ("forecast", "analysis", "increment"))
    if x.shape == fc.shape or y.shape == fc.shape:
        raise LabCheckError(f"`inputs`/`targets` have all {fc.shape[0]} cycles: drop the first "
                            f"{settle} cycles, while the filter is still forgetting its start.")
    require(x.shape == expected_shape and y.shape == expected_shape,
            f"`inputs` and `targets` should both have shape (cycles - {settle}, k) = "
            f"{expected_shape}, got {x.shape} and {y.shape}")
    keep = slice(settle, None)
    if np.allclose(x, an[keep]):
        raise LabCheckError("`inputs` are the analysis: the increment corrects the forecast, so "
                            "pair each increment with the forecast state it corrected "
                            "(ds['forecast']).")
    require(np.allclose(x, fc[keep]), "`inputs` should be ds['forecast'] after the settling "
            "cycles")
    for wrong, message in (
            (an[keep], "`targets` are the analysis itself, not the increment. The model error "
                       "is what the analysis changed: analysis minus forecast "
                       "(ds['increment']), divided by the cycle length."),
            (an[keep] / cycle, "`targets` are the analysis divided by the cycle length: use "
                               "the increment (analysis minus forecast), not the analysis."),
            (inc[keep], f"`targets` are the increments themselves: divide by the cycle length "
                        f"({cycle} MTU) to get a tendency in 1/MTU, the units of the closure."),
            (-inc[keep] / cycle, "`targets` have the wrong sign: the increment is analysis "
                                 "minus forecast, the tendency the model lacked.")):
        if np.allclose(y, wrong):
            raise LabCheckError(message)
    require(np.allclose(y, inc[keep] / cycle),
            "`targets` should be ds['increment'] / ds.attrs['cycle_length'] after the "
            "settling cycles")
    return passed(f"{y.size} training pairs; mean target {y.mean():+.2f} per MTU")


def climate(run, h) -> bool:
    """Check the coupled climate run of exercise 4 and its Hellinger distance ``h``."""
    p = PARAMS
    if not isinstance(run, xr.Dataset) or "X" not in run or "closure" not in run:
        raise LabCheckError("`run` should be the Dataset returned by l96.simulate_one_scale")
    require(run["X"].dims == ("time", "member", "k"),
            f"`run` has dims {run['X'].dims}: start an ensemble (X0 of shape (members, K)) "
            f"of at least {p['clim_members']} members from the provided states")
    require(run.sizes["member"] >= p["clim_members"],
            f"only {run.sizes['member']} members: use at least {p['clim_members']}")
    t_end = float(run["time"][-1])
    require(t_end >= p["clim_mtu"] + p["adjust_mtu"] - 1e-9,
            f"the run ends at {t_end:.1f} MTU: run {p['clim_mtu'] + p['adjust_mtu']:.0f} MTU "
            "(2 to adjust, 50 to keep); check dt and n_steps")
    require(np.isnan(run.attrs.get("blew_up_at", np.nan)), "the coupled run blew up")
    require(float(np.abs(run["closure"]).mean()) > 1e-6,
            "`run` was made without a closure: pass your closure to simulate_one_scale")
    try:
        reported = float(h)
    except (TypeError, ValueError):
        raise LabCheckError(f"`h` should be a number (the Hellinger distance), got "
                            f"{type(h).__name__}") from None
    x = run["X"].sel(time=slice(p["adjust_mtu"], None)).values
    ref = hellinger(nature(), x, bins=p["bins"], range=p["range"])
    full = hellinger(nature(), run["X"].values, bins=p["bins"], range=p["range"])
    if not np.isclose(reported, ref, rtol=1e-6) and np.isclose(reported, full, rtol=1e-6):
        raise LabCheckError(f"`h` = {reported:.4f} includes the first {p['adjust_mtu']} MTU of "
                            f"adjustment; drop them (the climate gives {ref:.4f})")
    require(np.isclose(reported, ref, rtol=1e-6),
            f"`h` = {reported:.4f}, but the run's climate after {p['adjust_mtu']} MTU gives "
            f"{ref:.4f} against nature() with bins={p['bins']}, range={p['range']}")
    return passed(f"climate of the increment-learned closure: Hellinger {ref:.4f} to nature")
