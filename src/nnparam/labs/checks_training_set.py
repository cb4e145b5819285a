"""Checks for lab 1, "Build a training set": each accepts the solution and names a typical
mistake when it sees one."""

from __future__ import annotations

import numpy as np

from .. import filters, metrics, tracer
from .feedback import LabCheckError, as_array, passed, require


def coarse_grain(func) -> bool:
    """``func(field, factor)`` must return block means along the last axis."""
    rng = np.random.default_rng(1)
    field = rng.normal(size=(3, 24))
    try:
        got = func(field, 4)
    except NotImplementedError:
        raise
    except Exception as err:  # the student's code failed: say where
        raise LabCheckError(f"coarse_grain(field, 4) raised {type(err).__name__}: {err}") from err
    got = as_array("coarse_grain(field, 4)", got)
    want = filters.coarse_grain(field, 4)
    if got.shape == (3, 6) and np.allclose(got, field[:, ::4]):
        raise LabCheckError("you picked every 4th cell: a cell average is the mean of all "
                            "4 fine cells in the block")
    if got.shape != want.shape:
        raise LabCheckError(f"for a field of shape (3, 24) and factor 4 expected shape "
                            f"{want.shape}, got {got.shape}: average along the last (x) axis")
    require(np.allclose(got, want), "the values are not block means of consecutive cells "
                                    "(reshape to (..., n // factor, factor) and average)")
    return passed("coarse_grain returns block means")


def sgs_tendency(sgs, truth, factor: int) -> bool:
    """The SGS tendency must be the coarse budget residual: true minus resolved."""
    ref = tracer.sgs_budget(truth, factor)
    want = ref["sgs_tendency"].values
    fine_shape = truth["q"].shape
    arr = np.asarray(sgs, dtype=float)
    if arr.shape == fine_shape:
        raise LabCheckError(f"sgs has the fine-grid shape {fine_shape}: coarse-grain the true "
                            f"tendency (and the state) to {want.shape} first")
    arr = as_array("sgs", sgs, want.shape)
    scale = np.sqrt(np.mean(want**2))
    if np.sqrt(np.mean((arr + want) ** 2)) < 1e-6 * scale:
        raise LabCheckError("the SGS tendency has the wrong sign: it is the coarse-grained true "
                            "tendency MINUS the coarse model's resolved tendency")
    if np.sqrt(np.mean((arr - ref["eddy_flux_divergence"].values) ** 2)) < 1e-6 * scale:
        raise LabCheckError("that is only the eddy-flux divergence; the residual also holds the "
                            "source correction and the coarse scheme's error")
    err = np.sqrt(np.mean((arr - want) ** 2)) / scale
    require(err < 1e-6, f"sgs differs from the budget residual by {err:.1%} (rms, relative): "
                        f"did you use the coarse grid spacing and the coarse face wind?")
    return passed(f"the SGS tendency closes the budget (rms {scale:.2e} 1/h)")


def time_split(train, validation, test, n_time: int) -> bool:
    """Train, validation and test must be consecutive, disjoint blocks of time indices."""
    blocks = {"train": train, "validation": validation, "test": test}
    arrays = {}
    for name, idx in blocks.items():
        arr = np.asarray(idx)
        if arr.dtype == bool:
            arr = np.flatnonzero(arr)
        require(arr.ndim == 1 and arr.size > 0, f"`{name}` should be a non-empty 1-D array of "
                                                f"time indices")
        arrays[name] = arr.astype(int)
    require(all(a.min() >= 0 and a.max() < n_time for a in arrays.values()),
            f"indices must lie in 0..{n_time - 1}")
    tr, va, te = arrays["train"], arrays["validation"], arrays["test"]
    if np.intersect1d(tr, te).size or np.intersect1d(va, te).size or np.intersect1d(tr, va).size:
        raise LabCheckError("the blocks overlap: a time index must belong to exactly one block")
    for name, arr in arrays.items():
        if np.any(np.diff(np.sort(arr)) != 1):
            raise LabCheckError(f"your split mixes times from different periods into `{name}` "
                                f"(it is not one contiguous block): hourly states are strongly "
                                f"autocorrelated, so a shuffled split leaks the test period "
                                f"into training")
    require(tr.max() < va.min() and va.max() < te.min(),
            "order the blocks in time: train first, then validation, then test")
    require(tr.size >= 0.5 * n_time, "use at least half of the record for training")
    return passed(f"time-contiguous blocks: train {tr.size} h, validation {va.size} h, "
                  f"test {te.size} h")


def test_predictions(y_pred, y_test, name: str, minimum_r2: float = 0.8,
                     better_than: float | None = None) -> float:
    """Score predictions on the test block; return R^2."""
    y_test = np.asarray(y_test, dtype=float)
    arr = np.asarray(y_pred, dtype=float)
    if arr.size != y_test.size:
        raise LabCheckError(f"{name}: expected {y_test.size} predictions (every coarse cell of "
                            f"every test hour), got {arr.size}: predict on the test block")
    arr = as_array(name, arr.reshape(y_test.shape), y_test.shape)
    r2 = metrics.r2_score(y_test, arr)
    if r2 < 0 and metrics.r2_score(y_test, -arr) > minimum_r2:
        raise LabCheckError(f"{name}: predictions have the wrong sign (R^2 {r2:.2f})")
    require(r2 >= minimum_r2, f"{name}: test R^2 = {r2:.3f} is below {minimum_r2}; check the "
                              f"features, the standardisation and that you fitted on train")
    if better_than is not None:
        require(r2 > better_than, f"{name}: test R^2 = {r2:.3f} does not beat the baseline "
                                  f"({better_than:.3f}); train longer or check early stopping")
    passed(f"{name}: test R^2 = {r2:.3f}, RMSE = {metrics.rmse(y_test, arr):.2e} 1/h")
    return r2
