"""Checks for the lab "Offline is not online" (``solutions/lab07_offline_is_not_online``).

The lab's truth is one run of the two-scale Lorenz-96 system at F = 18 (:func:`make_truth`,
from :mod:`nnparam.cache`, kept in memory once read). Every check validates the type and
shape of what it is handed, then tests the work itself: it calls the student's functions on
inputs it makes (a dataset with other parameters, another record length, a known closure),
and verifies the coupled run it is given (start state, members, time step, length, the
closure in use). A wrong answer gets a :class:`LabCheckError` naming the most likely mistake;
nothing else leaves a check (an unexpected error becomes a message, not a traceback).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .. import evaluation as ev
from .. import l96
from .feedback import LabCheckError, as_array, call, lab_check, passed, require

#: the lab's setting: truth run (steps of 0.001 MTU), coarse model and climate statistics
PARAMS = {"F": 18.0, "seed": 7, "spinup_mtu": 2.0, "n_mtu": 60.0, "sample_dt": 0.01,
          "model_dt": 0.01, "n_steps": 1200, "members": 10, "clim_spinup": 2.0,
          "min_gap": 10, "bins": 40, "range": (-15.0, 25.0), "block": 100}

_CACHE: dict = {}


def make_truth() -> xr.Dataset:
    """The lab's two-scale truth (``X``, ``Y``, ``coupling``): 60 MTU at F = 18, every 0.01 MTU.

    A 2-MTU spin-up from a seeded random state is discarded. The run comes from
    :func:`nnparam.l96.truth_run` (computed once, then read from the cache) and is kept in
    memory, so every check sees the same object.
    """
    if "truth" not in _CACHE:
        p = PARAMS
        _CACHE["truth"] = l96.truth_run(F=p["F"], c=10.0, n_mtu=p["n_mtu"],
                                        sample_dt=p["sample_dt"], spinup_mtu=p["spinup_mtu"],
                                        seed=p["seed"], keep_Y=True)
    return _CACHE["truth"]


def make_climate_record() -> np.ndarray:
    """400 MTU of independent truth ``X`` (every 0.01 MTU) for the noise floor of the lab."""
    if "climate" not in _CACHE:
        p = PARAMS
        _CACHE["climate"] = l96.truth_run(F=p["F"], c=10.0, n_mtu=400.0,
                                          sample_dt=p["sample_dt"], seed=p["seed"] + 1).X.values
    return _CACHE["climate"]


def _truth_arrays():
    truth = make_truth()
    return truth.X.values, truth.coupling.values


def _hellinger(a, b) -> float:
    return ev.hellinger(a, b, bins=PARAMS["bins"], range=PARAMS["range"])


# --------------------------------------------------------------------------------------------
# exercise 1: the subgrid target
# --------------------------------------------------------------------------------------------
@lab_check
def coupling_target(coupling_term, target) -> bool:
    """Check ``coupling_term(ds)``: ``-(h c / b) sum_j Y_{j,k}`` for any dataset's parameters,
    computed from ``Y`` (not copied from ``ds.coupling``), and the lab's ``target``."""
    truth = make_truth()
    X, U = _truth_arrays()
    arr = as_array("target", target)
    if arr.shape == U.shape[::-1]:
        raise LabCheckError(f"`target` has shape {arr.shape}: transposed. Keep time first, "
                            f"shape (time, k) = {U.shape}, like truth.X.")
    require(arr.shape == U.shape, f"`target` should have shape (time, k) = {U.shape}, got "
            f"{arr.shape}. Sum Y over the fast index j (the last axis), not over k or time.")
    require(not np.allclose(arr, -U, rtol=1e-8, atol=1e-8),
            "`target` has the wrong sign: the coupling in dX_k/dt is -(h c / b) sum_j Y_{j,k}. "
            "The fast variables push back against X_k, so U_k is anti-correlated with X_k.")
    J = truth.sizes["j"]
    require(not np.allclose(arr * J, U, rtol=1e-8, atol=1e-8),
            f"`target` is {J} times too small: you averaged Y over j. The coupling is a sum "
            "over the J fast variables of the sector.")
    require(np.allclose(arr, U, rtol=1e-10, atol=1e-10),
            "`target` does not match -(h c / b) * sum_j Y[time, k, j]. Read h, b, c from "
            "ds.attrs and sum over the last axis of ds.Y.")
    # the same function on a dataset with other parameters and without the coupling variable
    other = truth.isel(time=slice(0, 50)).drop_vars("coupling")
    other.attrs.update(h=2.0, b=5.0, c=8.0)  # h c / b = 3.2, unlike any other combination
    expected = -(2.0 * 8.0 / 5.0) * other.Y.values.sum(axis=-1)
    try:
        value = coupling_term(other)
    except (KeyError, AttributeError) as err:
        if "coupling" in str(err):
            raise LabCheckError("coupling_term reads ds.coupling: compute the term from ds.Y "
                                "and ds.attrs (the check hands it a dataset without "
                                "`coupling`).") from None
        raise LabCheckError(f"coupling_term raised {type(err).__name__}: {err}") from None
    except NotImplementedError:
        raise
    except Exception as err:
        raise LabCheckError(f"calling coupling_term raised {type(err).__name__}: {err}"
                            ) from None
    value = as_array("coupling_term(ds) on a dataset with h=2, b=5, c=8", value,
                     shape=expected.shape)
    if not np.allclose(value, expected, rtol=1e-10, atol=1e-10):
        ratio = float(np.median(value / expected))
        hint = ("the prefactor h c / b is missing (with the lab's h=1, b=c=10 it is 1, so "
                "only other parameters show it)" if np.isclose(ratio, 1 / 3.2) else
                f"the result is {ratio:.3g} times the expected one: the prefactor is h c / b, "
                "read from ds.attrs")
        raise LabCheckError(f"coupling_term is right for the lab's truth but not for h=2, b=5, "
                            f"c=8: {hint}.")
    return passed(f"coupling term: mean {arr.mean():.2f}, std {arr.std():.2f}, correlation "
                  f"with X_k {np.corrcoef(arr.ravel(), X.ravel())[0, 1]:.2f}; right for "
                  "other h, b, c too")


# --------------------------------------------------------------------------------------------
# exercise 2: a time-contiguous split
# --------------------------------------------------------------------------------------------
def _indices(name: str, value, n_time: int) -> np.ndarray:
    if isinstance(value, slice):
        idx = np.arange(n_time)[value]
        require(idx.size > 0, f"`{name}` selects no time of a record of {n_time} samples: "
                              "compute the blocks from n_time")
        return idx
    if isinstance(value, range):
        value = np.asarray(value)
    arr = np.asarray(value) if isinstance(value, list | tuple | np.ndarray) else None
    require(arr is not None, f"`{name}` should be a slice or a 1-D array of integer time "
                             f"indices, got {type(value).__name__}")
    if arr.dtype == bool:
        require(arr.shape == (n_time,), f"`{name}` as a boolean mask must have {n_time} "
                                        "entries")
        return np.flatnonzero(arr)
    require(arr.ndim == 1 and arr.size > 0 and np.issubdtype(arr.dtype, np.integer),
            f"`{name}` should be a slice or a 1-D array of integer time indices "
            "(np.arange(n_time)[block] turns a slice into one)")
    require(arr.min() >= 0 and arr.max() < n_time,
            f"`{name}` holds indices outside 0..{n_time - 1}")
    return arr


def _check_blocks(blocks, n_time: int) -> list[np.ndarray]:
    require(isinstance(blocks, tuple | list) and len(blocks) == 3,
            "split_in_time should return three blocks (train, validation, test), got "
            f"{type(blocks).__name__}" + (f" of {len(blocks)}" if hasattr(blocks, "__len__")
                                          else ""))
    names = ("train", "validation", "test")
    idx = [_indices(n, b, n_time) for n, b in zip(names, blocks, strict=True)]
    for name, block in zip(names, idx, strict=True):
        require(np.all(np.diff(np.sort(block)) == 1),
                f"`{name}` is not one contiguous block of times: it looks shuffled. "
                "Consecutive states 0.01 MTU apart are near copies, so a shuffled split puts a "
                "twin of every test sample in the training set and inflates R^2. Use "
                "time_blocks.")
    for i in range(2):
        (na, a), (nb, b) = (names[i], idx[i]), (names[i + 1], idx[i + 1])
        require(a.max() < b.min(), f"`{na}` should come before `{nb}` in time (train, then "
                                   "validation, then test, with the test block last)")
        gap = int(b.min() - a.max() - 1)
        require(gap >= PARAMS["min_gap"],
                f"only {gap} samples separate `{na}` from `{nb}`; leave a gap of at least "
                f"{PARAMS['min_gap']} samples (0.1 MTU) between blocks so that they "
                "decorrelate (time_blocks(..., gap=...)).")
    train, _, test = idx
    require(test.max() == n_time - 1, f"`test` should be the last block of the record (it "
                                      f"ends at index {test.max()}, the record at "
                                      f"{n_time - 1})")
    require(0.15 * n_time <= test.size <= 0.25 * n_time,
            f"`test` holds {test.size} of {n_time} samples: the exercise asks for about 20 %")
    require(train.size >= 0.5 * n_time, f"`train` holds {train.size} of {n_time} samples: "
            "use about 60 % of the record for training")
    return idx


@lab_check
def split(split_in_time, blocks) -> bool:
    """Check ``split_in_time(n_time)`` and the lab's ``blocks = (train, validation, test)``."""
    n_time = make_truth().sizes["time"]
    idx = _check_blocks(blocks, n_time)
    _check_blocks(call("split_in_time(1000)", split_in_time, 1000), 1000)
    gaps = [int(b.min() - a.max() - 1) for a, b in zip(idx, idx[1:], strict=False)]
    return passed(f"time-contiguous split: {idx[0].size} training, {idx[1].size} validation "
                  f"and {idx[2].size} test samples in order, gaps {gaps} samples; also right "
                  "for another record length")


# --------------------------------------------------------------------------------------------
# exercise 3: train and score offline
# --------------------------------------------------------------------------------------------
def _reference_cubic(train):
    X, U = _truth_arrays()
    return l96.fit_polynomial(X[train], U[train], 3)


@lab_check
def offline_score(offline_r2, P, r2, train, test) -> bool:
    """Check the closure ``P``, its reported test ``r2`` and the function ``offline_r2``:
    ``P`` maps ``X (..., K)`` to the coupling and beats the cubic polynomial on the test block.
    """
    X, U = _truth_arrays()
    tr, te = _indices("train", train, X.shape[0]), _indices("test", test, X.shape[0])
    require(callable(P), "`P` should be a closure, a function P(X) returning an array like X "
                         "(wrap a torch network with l96.neural_closure)")
    pred = as_array("P(X[test])", call("P(X[test])", P, X[te]), shape=U[te].shape)
    one = X[te[0]]
    single = as_array("P(one state)", call("P(one state)", P, one), shape=one.shape)
    require(np.allclose(single, pred[0], rtol=1e-4, atol=1e-4),
            "P of one state (shape (K,)) differs from the same state inside P(X[test]): the "
            "closure should act on each state alone, whatever the leading axes")
    value = ev.r2_score(U[te], pred)
    require(value > -0.5 or ev.r2_score(U[te], -pred) < 0.5,
            f"R^2 on the test block is {value:.2f}: your closure has the wrong sign. It "
            "should be negative where X_k is large, like the coupling term.")
    reported = np.asarray(r2) if r2 is not None else None
    require(reported is not None and reported.size == 1 and np.issubdtype(
        np.asarray(reported).dtype, np.number), f"`r2` should be one number, got "
                                               f"{type(r2).__name__}")
    reported = float(reported)
    # the student's offline_r2 on a closure the check knows
    cubic = _reference_cubic(tr)
    r2_cubic = ev.r2_score(U[te], cubic(X[te]))
    theirs = float(as_array("offline_r2(cubic, X, target, test)",
                            call("offline_r2(cubic, X, target, test)", offline_r2, cubic, X, U,
                                  test)).squeeze())
    if not np.isclose(theirs, r2_cubic, rtol=0, atol=1e-9):
        on_train = ev.r2_score(U[tr], cubic(X[tr]))
        hint = ("it looks computed on the training block" if np.isclose(theirs, on_train,
                                                                        atol=1e-6) else
                "the arguments are r2_score(true, predicted) on target[test] and "
                "P(X[test])")
        raise LabCheckError(f"offline_r2 gives {theirs:.4f} for a cubic polynomial whose R^2 on "
                            f"the test block is {r2_cubic:.4f}: {hint}.")
    require(abs(reported - value) < 1e-6,
            f"you report R^2 = {reported:.4f}, but your closure scores {value:.4f} on the test "
            "block: report offline_r2(P, X, target, test_b) for the closure you pass here.")
    require(value > r2_cubic,
            f"R^2 = {value:.3f} on the test block; the cubic polynomial fitted to the same "
            f"training block reaches {r2_cubic:.3f}, and the exercise asks you to beat it. A "
            "closure of X_k alone cannot do much better than the cubic: give the network the "
            "neighbours (l96.stencil(X, 1)) and check its training.")
    return passed(f"offline R^2 on the test block: {value:.3f} (cubic: {r2_cubic:.3f})")


# --------------------------------------------------------------------------------------------
# exercise 4: the coupled run
# --------------------------------------------------------------------------------------------
@lab_check
def coupled_run(run, x_clim, P, X0) -> bool:
    """Check the coupled run (from ``X0``, all members, dt = 0.01 MTU, 12 MTU, with ``P``) and
    ``x_clim``, the DataArray ``run["X"]`` from t = 2 MTU on."""
    p = PARAMS
    require(isinstance(run, xr.Dataset) and "X" in run and "closure" in run,
            f"`run` should be the Dataset that l96.simulate_one_scale returns, got "
            f"{type(run).__name__}")
    x0 = as_array("X0", X0, shape=(p["members"], 8))
    require("member" in run["X"].dims, "`run` has no member dimension: start it from the "
                                       f"whole cold start X0 ({p['members']} members), "
                                       "X0=X0")
    require(run.sizes["member"] == p["members"],
            f"`run` has {run.sizes['member']} members; start it from X0 ({p['members']} "
            "members)")
    first = run["X"].isel(time=0).values
    require(np.allclose(first, x0), "the run does not start from X0: pass X0=X0 to "
                                    "l96.simulate_one_scale")
    require(np.isclose(run.attrs.get("dt", np.nan), p["model_dt"]),
            f"the run uses dt = {run.attrs.get('dt')}: the exercise asks for dt=0.01 MTU")
    require(np.isclose(run.attrs.get("F", np.nan), p["F"]),
            f"the run uses F = {run.attrs.get('F')}: use the truth's F = {p['F']:g}")
    t_end = float(run.time.values[-1])
    require(np.isclose(t_end, p["n_steps"] * p["model_dt"]),
            f"the run ends at t = {t_end:.2f} MTU: the exercise asks for n_steps=1200 (12 MTU)")
    expected = as_array("P(X0)", call("P(X0)", P, x0), shape=x0.shape)
    used = run["closure"].isel(time=0).values
    if not np.allclose(used, expected, rtol=1e-5, atol=1e-5):
        hint = ("the closure enters with the wrong sign" if np.allclose(used, -expected,
                                                                        atol=1e-5) else
                "no closure was used" if np.allclose(used, 0) else
                "another closure or a noise term was used")
        raise LabCheckError(f"the run was not made with your closure P: {hint}. Pass "
                            "closure=P to l96.simulate_one_scale.")
    require(not np.isfinite(run["blow_up_time"].values).any(),
            "members of the run blew up (blow_up_time is finite): check the closure's sign "
            "and the time step")
    # x_clim: the run's X after the spin-up, every member
    require(isinstance(x_clim, xr.DataArray),
            "`x_clim` should be the DataArray run['X'] restricted in time, "
            + ("not the Dataset: take run['X'] first" if isinstance(x_clim, xr.Dataset) else
               f"got {type(x_clim).__name__}"))
    require("time" in x_clim.coords, "`x_clim` lost its time coordinate: keep run['X'] and "
                                     "restrict it with .sel(time=slice(2.0, None))")
    require("member" in x_clim.dims, "`x_clim` has no member dimension: keep every member "
                                     "(do not average over the ensemble; a mean is not a "
                                     "climate sample)")
    t0, t1 = float(x_clim.time.min()), float(x_clim.time.max())
    require(t0 >= p["clim_spinup"] - 1e-9,
            f"`x_clim` starts at t = {t0:.2f} MTU: it still contains the spin-up of the coupled "
            f"run, which started from a state the model has not adjusted to. Drop the first "
            f"{p['clim_spinup']:g} MTU.")
    require(t0 <= p["clim_spinup"] + 0.05 and np.isclose(t1, t_end),
            f"`x_clim` covers {t0:.2f} to {t1:.2f} MTU: keep everything after the "
            f"{p['clim_spinup']:g}-MTU spin-up, up to the end of the run")
    arr = as_array("x_clim", x_clim.values)
    X, _ = _truth_arrays()
    h = _hellinger(X, arr)
    require(h < 0.15, f"the Hellinger distance to the truth is {h:.2f} (a run without any "
                      "closure gives about 0.3): check what your closure does online")
    return passed(f"coupled run: {p['members']} members from X0, dt = 0.01, 12 MTU, with your "
                  f"closure; climate sample {arr.shape[0]} times after t = {t0:.1f} MTU, "
                  f"Hellinger distance {h:.3f}")


# --------------------------------------------------------------------------------------------
# exercise 5: both scores
# --------------------------------------------------------------------------------------------
def _scores(name: str, value) -> dict:
    require(isinstance(value, dict) and {"r2", "hellinger"} <= set(value),
            f"`{name}` should be a dict with the keys 'r2' and 'hellinger', got "
            f"{type(value).__name__}" + (f" with keys {sorted(value)}" if isinstance(value, dict)
                                        else ""))
    out = {}
    for key in ("r2", "hellinger"):
        v = value[key]
        require(v is not None and np.size(v) == 1, f"{name}['{key}'] should be one number, "
                                                   f"got {type(v).__name__}")
        out[key] = float(as_array(f"{name}['{key}']", v).squeeze())
    return out


@lab_check
def report(both_scores, scores, r2, x_clim) -> bool:
    """Check ``both_scores(r2, x_clim, X)`` on fresh inputs and the lab's ``scores``."""
    X, _ = _truth_arrays()
    p = PARAMS
    got = _scores("scores", scores)
    require(np.isclose(got["r2"], float(np.asarray(r2).squeeze()), atol=1e-12),
            "scores['r2'] should be your offline R^2 from exercise 3")
    # the function on a shifted climate the check makes: bins and range must be those asked
    shifted = x_clim + 1.5
    fresh = _scores("both_scores(0.5, x_clim + 1.5, X)",
                    call("both_scores(0.5, x_clim + 1.5, X)", both_scores, 0.5, shifted, X))
    want = _hellinger(X, shifted.values)
    if not np.isclose(fresh["hellinger"], want, rtol=0, atol=1e-9):
        default = ev.hellinger(X, shifted.values)
        hint = (f"it matches the default bins: pass bins={p['bins']} and range={p['range']}"
                if np.isclose(fresh["hellinger"], default, atol=1e-9) else
                "it is the squared distance (ev.hellinger returns H itself)"
                if np.isclose(fresh["hellinger"], want ** 2, atol=1e-9) else
                "compare the histogram of all of x_clim (every member) with that of the X "
                "you are given")
        raise LabCheckError(f"both_scores gives a Hellinger distance of "
                            f"{fresh['hellinger']:.4f} for a climate the check shifted by 1.5; "
                            f"expected {want:.4f}: {hint}.")
    require(np.isclose(fresh["r2"], 0.5), "both_scores should pass the given r2 through")
    h = _hellinger(X, np.asarray(x_clim.values, dtype=float))
    require(np.isclose(got["hellinger"], h, atol=1e-9),
            f"scores['hellinger'] = {got['hellinger']:.4f}, but your x_clim gives {h:.4f}")
    return passed(f"offline R^2 = {got['r2']:.3f}, online Hellinger = {h:.3f}")


# --------------------------------------------------------------------------------------------
# exercise 6: an interval for the distance
# --------------------------------------------------------------------------------------------
@lab_check
def interval(iv, x_clim) -> bool:
    """Check a 90 % block-bootstrap interval of the Hellinger distance of ``x_clim``."""
    p = PARAMS
    require(isinstance(iv, ev.Interval), f"`interval` should be the Interval that "
                                         f"ev.block_bootstrap returns, got {type(iv).__name__}")
    require(np.isclose(iv.level, 0.9), f"the interval's level is {iv.level:g}: ask for "
                                       "level=0.9")
    X, _ = _truth_arrays()
    sample = np.asarray(x_clim.values, dtype=float)
    h = _hellinger(X, sample)
    require(np.isclose(iv.estimate, h, atol=1e-9),
            f"the interval's estimate is {iv.estimate:.4f}, the distance of x_clim to X is "
            f"{h:.4f}: bootstrap hellinger(X, x_clim) with bins={p['bins']} and "
            f"range={p['range']}, time on axis 0 of both records")
    require(iv.low <= iv.high, "the interval's low end lies above its high end")
    ref = ev.block_bootstrap(_hellinger, X, sample, block=p["block"], n_boot=200, seed=0)
    width, ref_width = iv.high - iv.low, ref.high - ref.low
    require(width > 0.5 * ref_width,
            f"your interval is {width:.4f} wide, about {width / ref_width:.0%} of one with "
            f"blocks of 1 MTU ({ref_width:.4f}): the blocks are too short. Consecutive states "
            "are correlated for a fraction of an MTU, and resampling single states pretends "
            "there is more independent data than there is.")
    require(width < 3 * ref_width, f"your interval is {width:.4f} wide, {width / ref_width:.1f} "
                                   "times one with blocks of 1 MTU: use block=100")
    return passed(f"90 % interval of the Hellinger distance: {iv}")
