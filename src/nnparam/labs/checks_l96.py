"""Checks for the lab "Offline is not online" (``solutions/lab07_offline_is_not_online``).

The lab's truth is one run of the default two-scale Lorenz-96 system (:func:`make_truth`,
generated once per session and cached). Each check recomputes the student's answer from that
truth and, when it is wrong, recognises the typical mistakes: a coupling term with the wrong
sign or a mean instead of a sum, a shuffled or overlapping train/test split, an R^2 scored on
training data, a coupled closure with the wrong sign, a climatology that still contains the
spin-up of the coupled run.
"""

from __future__ import annotations

import numpy as np

from .. import l96
from ..metrics import r2_score
from .feedback import LabCheckError, as_array, passed, require

#: the lab's setting: truth run (steps of 0.001 MTU), coarse model and climate statistics
PARAMS = {"seed": 7, "spinup_steps": 2_000, "n_steps": 60_000, "save_every": 10,
          "model_dt": 0.01, "clim_spinup": 2.0, "min_gap": 10, "bins": 40,
          "range": (-15.0, 25.0)}

_CACHE: dict = {}


def make_truth():
    """The lab's two-scale truth (an ``xarray.Dataset`` of :func:`nnparam.l96.simulate`).

    A 2-MTU spin-up from a seeded random state is discarded; 60 MTU follow, saved every
    0.01 MTU. The run is made once and cached, so every check sees the same data.
    """
    if "truth" not in _CACHE:
        p = PARAMS
        spin = l96.simulate(n_steps=p["spinup_steps"], seed=p["seed"])
        _CACHE["truth"] = l96.simulate(n_steps=p["n_steps"], save_every=p["save_every"],
                                       X0=spin.X[-1].values, Y0=spin.Y[-1].values)
    return _CACHE["truth"]


def _truth_arrays():
    truth = make_truth()
    return truth.X.values, truth.coupling.values


def coupling_target(target) -> bool:
    """Check the subgrid target ``U(time, k) = -(h c / b) sum_j Y_{j,k}`` computed from ``Y``."""
    X, U = _truth_arrays()
    arr = as_array("target", target)
    if arr.shape == U.shape[::-1]:
        raise LabCheckError(f"`target` has shape {arr.shape}: transposed. Keep time first, "
                            f"shape (time, k) = {U.shape}, like truth.X.")
    require(arr.shape == U.shape, f"`target` should have shape (time, k) = {U.shape}, got "
            f"{arr.shape}. Sum Y over the fast index j (the last axis), not over k or time.")
    if np.allclose(arr, U, rtol=1e-10, atol=1e-10):
        return passed(f"coupling term: mean {arr.mean():.2f}, std {arr.std():.2f}, "
                      f"correlation with X_k {np.corrcoef(arr.ravel(), X.ravel())[0, 1]:.2f}")
    require(not np.allclose(arr, -U, rtol=1e-8, atol=1e-8),
            "`target` has the wrong sign: the coupling in dX_k/dt is -(h c / b) sum_j Y_{j,k}. "
            "The fast variables push back against X_k, so U_k is anti-correlated with X_k.")
    J = make_truth().sizes["j"]
    require(not np.allclose(arr * J, U, rtol=1e-8, atol=1e-8),
            f"`target` is {J} times too small: you averaged Y over j. The coupling is a sum "
            "over the J fast variables of the sector.")
    raise LabCheckError("`target` does not match -(h c / b) * sum_j Y[time, k, j]. Read h, b, "
                        "c from truth.attrs and sum over the last axis of truth.Y.")


def _indices(name: str, value, n_time: int) -> np.ndarray:
    if isinstance(value, slice):
        return np.arange(n_time)[value]
    arr = np.asarray(value)
    if arr.dtype == bool:
        require(arr.shape == (n_time,), f"`{name}` as a boolean mask must have {n_time} entries")
        return np.flatnonzero(arr)
    require(arr.ndim == 1 and arr.size > 0 and np.issubdtype(arr.dtype, np.integer),
            f"`{name}` should be a slice or a 1-D array of integer time indices")
    require(arr.min() >= 0 and arr.max() < n_time,
            f"`{name}` holds indices outside 0..{n_time - 1}")
    return arr


def split(train, test) -> bool:
    """Check a train/test split of the truth's time axis: disjoint, contiguous, with a gap."""
    n_time = make_truth().sizes["time"]
    tr, te = _indices("train", train, n_time), _indices("test", test, n_time)
    require(np.intersect1d(tr, te).size == 0,
            f"`train` and `test` share {np.intersect1d(tr, te).size} time indices: the test "
            "block must hold data the closure has never seen.")
    for name, idx in (("train", tr), ("test", te)):
        srt = np.sort(idx)
        require(np.all(np.diff(srt) == 1),
                f"`{name}` is not one contiguous block of times: it looks shuffled. Consecutive "
                "states 0.01 MTU apart are near copies, so a shuffled split puts a twin of "
                "every test sample in the training set and inflates R^2. Use time_blocks.")
    gap = min(abs(int(te.min()) - int(tr.max())), abs(int(tr.min()) - int(te.max()))) - 1
    require(gap >= PARAMS["min_gap"],
            f"only {gap} samples separate `train` from `test`; leave a gap of at least "
            f"{PARAMS['min_gap']} samples (0.1 MTU) so that the blocks decorrelate.")
    require(te.size >= 0.1 * n_time, f"`test` holds {te.size} samples: keep at least 10 % "
            "of the record for testing")
    return passed(f"time-contiguous split: {tr.size} training and {te.size} test samples, "
                  f"gap {gap} samples")


def offline_score(closure, r2, test) -> bool:
    """Check the closure's offline ``R^2`` on the test block (``test`` as in :func:`split`)."""
    X, U = _truth_arrays()
    te = _indices("test", test, X.shape[0])
    require(callable(closure), "`closure` should be a function P(X) returning an array like X")
    pred = as_array("closure(X[test])", closure(X[te]), shape=U[te].shape)
    value = r2_score(U[te], pred)
    reported = float(as_array("r2", r2).squeeze()) if np.size(r2) == 1 else None
    require(reported is not None, "`r2` should be one number")
    require(value > -0.5 or r2_score(U[te], -pred) < 0.5,
            f"R^2 on the test block is {value:.2f}: your closure has the wrong sign. It "
            "should be negative where X_k is large, like the coupling term.")
    require(abs(reported - value) < 0.01,
            f"you report R^2 = {reported:.3f}, but your closure scores {value:.3f} on the test "
            "block. " + ("A higher reported value usually means it was computed on training "
                         "data or on a shuffled split." if reported > value else
                         "Did you score another block or a subsample?"))
    require(value > 0.75, f"R^2 = {value:.3f} on the test block: even a straight line in X_k "
            "reaches about 0.79. Check the inputs of your closure and its training.")
    return passed(f"offline R^2 on the test block: {value:.3f}")


def climatology(x_clim) -> bool:
    """Check the coupled climatology: an ``xarray.DataArray`` of ``X`` with a ``time`` coordinate
    (MTU), spin-up removed, no blow-up, close to the truth's histogram."""
    if not hasattr(x_clim, "coords") or "time" not in getattr(x_clim, "coords", {}):
        raise LabCheckError("`x_clim` should be the DataArray run['X'] (with its time coordinate) "
                            "after removing the spin-up, e.g. run['X'].sel(time=slice(t0, None))")
    t0 = float(x_clim["time"].min())
    require(t0 >= PARAMS["clim_spinup"] - 1e-9,
            f"`x_clim` starts at t = {t0:.2f} MTU: it still contains the spin-up of the coupled "
            f"run, which started from a state the closure model has not adjusted to. Drop the "
            f"first {PARAMS['clim_spinup']} MTU before computing statistics.")
    arr = np.asarray(x_clim.values, dtype=float)
    require(np.all(np.isfinite(arr)), "`x_clim` contains NaN: the coupled run blew up. Check "
            "the sign of your closure and the time step.")
    X, _ = _truth_arrays()
    h = l96.hellinger(X, arr, bins=PARAMS["bins"], range=PARAMS["range"])
    require(h < 0.15,
            f"the Hellinger distance to the truth is {h:.2f} (a run without any closure gives "
            "about 0.3). Is the closure added with the right sign (dX/dt = ... + F + P(X))?")
    return passed(f"climatology: {arr.size} samples after t = {t0:.1f} MTU, Hellinger "
                  f"distance {h:.3f}")


def report(scores, x_clim) -> bool:
    """Check the final table ``scores = {"r2": ..., "hellinger": ...}`` against ``x_clim``."""
    require(isinstance(scores, dict) and {"r2", "hellinger"} <= set(scores),
            "`scores` should be a dict with the keys 'r2' and 'hellinger'")
    X, _ = _truth_arrays()
    h = l96.hellinger(X, np.asarray(x_clim.values, dtype=float), bins=PARAMS["bins"],
                      range=PARAMS["range"])
    reported = float(scores["hellinger"])
    require(abs(reported - h) < 1e-6,
            f"you report a Hellinger distance of {reported:.4f}, the climatology gives {h:.4f} "
            f"with bins={PARAMS['bins']} and range={PARAMS['range']} against the whole truth.")
    require(0 < float(scores["r2"]) <= 1, "scores['r2'] should be your offline R^2 in (0, 1]")
    return passed(f"offline R^2 = {float(scores['r2']):.3f}, online Hellinger = {h:.3f}")
