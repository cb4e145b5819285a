"""Checks for lab 1, "Build a training set".

Each check tests the work itself: ``coarse_grain`` is called on fields the check makes
(several shapes, factors and dtypes); the three tendencies are compared with the budget the
check recomputes from the truth run; the split must cover the record in the asked
proportions; the linear baseline is compared with a least-squares fit the check makes on the
training block; the network's predictions are recomputed from the model and the scalers the
student hands in. A wrong answer gets the message of its most likely cause.
"""

from __future__ import annotations

import numpy as np

from .. import filters, metrics, nn, tracer
from .feedback import (
    LabCheckError,
    as_array,
    as_indices,
    as_mapping,
    as_ndarray,
    call,
    lab_check,
    passed,
    relative_error,
    require,
)

#: (shape, factor) of the fields coarse_grain is tried on: 1-D, 2-D, 3-D and a no-op factor
_CG_CASES = (((24,), 4), ((3, 24), 4), ((2, 3, 32), 8), ((5, 6), 1), ((2, 12), 12))
_SPLIT = {"train": 0.6, "validation": 0.2, "test": 0.2}


def _close(a, b, rtol=1e-6) -> bool:
    return a.shape == b.shape and relative_error(a, b) < rtol


@lab_check
def coarse_grain(func) -> bool:
    """``func(field, factor)`` must return block means along the last axis, as a numpy array
    of shape ``(..., n // factor)``, for any number of leading axes, without changing
    ``field``."""
    rng = np.random.default_rng(11)
    for shape, factor in _CG_CASES:
        for dtype in (float, np.float32):
            field = rng.normal(size=shape).astype(dtype)
            copy = field.copy()
            inputs = f"a field of shape {shape} ({np.dtype(dtype).name}) and factor {factor}"
            got = call("coarse_grain", func, field, factor, inputs=inputs)
            got = as_ndarray(f"coarse_grain(field, {factor})", got)
            require(np.array_equal(field, copy),
                    "coarse_grain changed the field it was given: work on a copy (reshape "
                    "returns a view; average it, do not assign into it)")
            want = filters.coarse_grain(field.astype(float), factor)
            n = shape[-1]
            if got.shape != want.shape:
                flat = (int(np.prod(shape)) // factor,)
                hint = ("you flattened the leading axes: reshape to (*field.shape[:-1], "
                        "n // factor, factor)" if got.shape == flat else
                        "average along the last (x) axis only")
                raise LabCheckError(f"for {inputs} expected shape {want.shape}, got "
                                    f"{got.shape}: {hint}")
            got = got.astype(float)
            if _close(got, want, 1e-5):
                continue
            blocks = field.astype(float).reshape(*shape[:-1], n // factor, factor)
            if _close(got, field[..., ::factor].astype(float), 1e-5):
                raise LabCheckError(f"you picked every {factor}th cell: a cell average is the "
                                    f"mean of all {factor} fine cells in the block")
            if _close(got, field[..., factor // 2::factor].astype(float), 1e-5):
                raise LabCheckError("you picked the centre cell of each block: a cell average "
                                    "is the mean of all the fine cells in the block")
            if _close(got, blocks.sum(axis=-1), 1e-5):
                raise LabCheckError(f"your values are {factor} times the block means: you "
                                    f"summed the cells of each block; divide by the factor "
                                    f"(or use .mean)")
            interleaved = field.astype(float).reshape(*shape[:-1], factor, n // factor)
            if _close(got, interleaved.mean(axis=-2), 1e-5):
                raise LabCheckError(f"you averaged cells {n // factor} apart: reshape to "
                                    f"(..., n // factor, factor) so that each row holds "
                                    f"{factor} CONSECUTIVE cells, then average the last axis")
            raise LabCheckError(f"for {inputs} the values are not the block means of "
                                f"consecutive cells (reshape to (..., n // factor, factor) "
                                f"and average over the last axis)")
    return passed("coarse_grain returns block means for 1-D to 3-D fields and any factor")


def _units_ratio(got: np.ndarray, want: np.ndarray) -> float | None:
    """The constant c with got = c * want, if there is one (a unit or factor slip)."""
    scale = float(np.vdot(want, want))
    if scale == 0:
        return None
    c = float(np.vdot(got, want)) / scale
    if c != 0 and relative_error(got, c * want) < 1e-6:
        return c
    return None


def _factor_hint(c: float) -> str:
    for value, text in ((1 / 3600, "per second: the model's time unit is the hour, keep "
                                   "tendencies in 1/h"),
                        (3600, "3600 times too large: keep tendencies in 1/h"),
                        (-1, "the wrong sign")):
        if np.isclose(c, value, rtol=1e-4):
            return text
    return f"{c:.4g} times the right values: look for a spare factor"


def _diagnose(name: str, got, want, variants: dict, prefix: str, otherwise: str):
    """Raise the message of the first typical slip that reproduces ``got``: a variant of
    ``variants`` (hint -> what that slip computes), else a constant factor (units, sign),
    else ``otherwise``."""
    for hint, variant in variants.items():
        if _close(got, variant):
            raise LabCheckError(f"`{name}` {prefix}: {hint}")
    c = _units_ratio(got, want)
    if c is not None:
        raise LabCheckError(f"`{name}` is {_factor_hint(c)}")
    raise LabCheckError(f"`{name}` differs from {otherwise}")


@lab_check
def sgs_tendency(true_tendency, resolved_tendency, sgs, truth, factor: int) -> bool:
    """The three tendencies of exercise 2, each a numpy array (time, n // factor) in 1/h,
    compared with the budget recomputed from ``truth``: the coarse-grained fine-grid tendency,
    the coarse model's tendency of the coarse state, and their difference."""
    setup = tracer.setup_of(truth)
    ref = tracer.sgs_budget(truth, factor)
    want = {k: ref[k].values for k in ("true_tendency", "resolved_tendency", "sgs_tendency")}
    shape = want["sgs_tendency"].shape
    fine_shape = truth["q"].shape
    given = {"true_tendency": true_tendency, "resolved_tendency": resolved_tendency,
             "sgs": sgs}
    arrays = {}
    for name, value in given.items():
        arr = as_ndarray(name, value)
        if arr.shape == fine_shape:
            raise LabCheckError(f"`{name}` has the fine-grid shape {fine_shape}: coarse-grain "
                                f"it to {shape} (time, coarse cells)")
        if arr.shape == shape[::-1]:
            raise LabCheckError(f"`{name}` has shape {arr.shape}: transposed. Keep time first, "
                                f"(time, x) = {shape}")
        arrays[name] = as_ndarray(name, arr, shape)

    # the fine-grid tendency and its variants
    q, u = truth["q"].values, truth["u"].values
    faces = (np.arange(setup.n) + 1.0) * setup.dx
    u_faces = tracer.Wind(setup)(faces, truth["time"].values)
    coarse_dx = setup.dx * factor
    got = arrays["true_tendency"]
    if not _close(got, want["true_tendency"]):
        fine = tracer.tendency(q, u_faces, setup.dx, setup.lam, setup.alpha)
        variants = {
            "you used the wind at the fine cell CENTRES; the truth's fluxes use the wind at "
            "the fine faces, `u_fine_faces`":
                filters.coarse_grain(tracer.tendency(q, u, setup.dx, setup.lam, setup.alpha),
                                     factor),
            "you left out the source terms: pass setup.lam and setup.alpha, as the truth "
            "does": filters.coarse_grain(tracer.tendency(q, u_faces, setup.dx, 0.0, 0.0),
                                         factor),
            "on the fine grid the spacing is setup.dx, not the coarse spacing":
                filters.coarse_grain(tracer.tendency(q, u_faces, coarse_dx, setup.lam,
                                                     setup.alpha), factor),
            "you picked every factor-th fine cell: coarse-grain (average) the fine tendency":
                fine[..., ::factor],
            "you computed the coarse model's tendency (of the coarse state), not the truth's "
            "tendency coarse-grained": want["resolved_tendency"],
        }
        _diagnose("true_tendency", got, want["true_tendency"], variants,
                  "is not the truth's tendency coarse-grained",
                  f"the coarse-grained fine tendency by "
                  f"{relative_error(got, want['true_tendency']):.1%} (rms, relative): use "
                  f"tracer.tendency(q_fine, u_fine_faces, setup.dx, setup.lam, setup.alpha) "
                  f"and then coarse_grain")

    # the coarse model's tendency
    q_bar = filters.coarse_grain(q, factor)
    u_bar = tracer.coarse_face_wind(u, factor)
    got = arrays["resolved_tendency"]
    if not _close(got, want["resolved_tendency"]):
        variants = {
            "the coarse model works on the coarse grid: use the coarse spacing coarse_dx":
                tracer.tendency(q_bar, u_bar, setup.dx, setup.lam, setup.alpha),
            "use the coarse model's face wind u_bar_face (tracer.coarse_face_wind), not block "
            "means of the fine face wind":
                tracer.tendency(q_bar, filters.coarse_grain(u_faces, factor), coarse_dx,
                                setup.lam, setup.alpha),
            "use the coarse model's face wind u_bar_face, not block means of the centre wind":
                tracer.tendency(q_bar, filters.coarse_grain(u, factor), coarse_dx,
                                setup.lam, setup.alpha),
            "you left out the source terms: the coarse model has them too (setup.lam, "
            "setup.alpha)": tracer.tendency(q_bar, u_bar, coarse_dx, 0.0, 0.0),
            "the coarse model sees the coarse-grained state q_bar, not a subsample":
                tracer.tendency(q[..., ::factor], u_bar, coarse_dx, setup.lam, setup.alpha),
            "that is the truth's tendency coarse-grained, not the coarse model's":
                want["true_tendency"],
        }
        _diagnose("resolved_tendency", got, want["resolved_tendency"], variants,
                  "is not the coarse model's tendency",
                  f"the coarse model's tendency by "
                  f"{relative_error(got, want['resolved_tendency']):.1%}: use "
                  f"tracer.tendency(q_bar, u_bar_face, coarse_dx, setup.lam, setup.alpha)")

    # the residual
    got = arrays["sgs"]
    target = want["sgs_tendency"]
    if not _close(got, target):
        if _close(got, -target):
            raise LabCheckError("the SGS tendency has the wrong sign: it is the coarse-grained "
                                "true tendency MINUS the coarse model's resolved tendency")
        if _close(got, want["true_tendency"]):
            raise LabCheckError("`sgs` is the true tendency itself: subtract the resolved "
                                "tendency (the closure supplies only what the coarse model "
                                "misses)")
        if _close(got, ref["eddy_flux_divergence"].values):
            raise LabCheckError("that is only the eddy-flux divergence; the residual also holds "
                                "the source correction and the coarse scheme's error")
        _diagnose("sgs", got, target, {}, "", f"true_tendency - resolved_tendency by "
                  f"{relative_error(got, target):.1%} (rms, relative)")
    scale = float(np.sqrt(np.mean(target**2)))
    return passed(f"the SGS tendency closes the budget (rms {scale:.2e} 1/h)")


@lab_check
def time_split(train, validation, test, n_time: int) -> bool:
    """Train, validation and test: consecutive blocks of integer time indices (or slices) that
    cover ``range(n_time)`` in the proportions 60/20/20 (one index of rounding allowed)."""
    n_time = int(n_time)
    blocks = {"train": train, "validation": validation, "test": test}
    arrays = {name: as_indices(name, idx, n_time) for name, idx in blocks.items()}
    tr, va, te = arrays["train"], arrays["validation"], arrays["test"]
    for name, arr in arrays.items():
        require(np.unique(arr).size == arr.size, f"`{name}` holds an index twice")
    if np.intersect1d(tr, te).size or np.intersect1d(va, te).size or np.intersect1d(tr, va).size:
        raise LabCheckError("the blocks overlap: a time index must belong to exactly one block")
    for name, arr in arrays.items():
        if np.any(np.diff(arr) != 1):
            raise LabCheckError(f"your split mixes times from different periods into `{name}` "
                                f"(it is not one contiguous block): hourly states are strongly "
                                f"autocorrelated, so a shuffled split leaks the test period "
                                f"into training")
    require(tr.max() < va.min() and va.max() < te.min(),
            "order the blocks in time: train first, then validation, then test")
    covered = tr.size + va.size + te.size
    require(covered == n_time,
            f"the blocks hold {covered} of the {n_time} indices: the exercise splits the whole "
            f"record, so every index 0..{n_time - 1} belongs to one block (check the ends: "
            f"np.arange(start, stop) stops before `stop`)")
    for name, arr in arrays.items():
        share = _SPLIT[name] * n_time
        require(abs(arr.size - share) <= 1,
                f"`{name}` holds {arr.size} of {n_time} times ({arr.size / n_time:.0%}); the "
                f"exercise asks for {_SPLIT[name]:.0%}, about {share:.0f}")
    return passed(f"time-contiguous blocks: train {tr.size} h, validation {va.size} h, "
                  f"test {te.size} h")


def _blocks(data) -> dict:
    data = as_mapping("data", data, ("train", "validation", "test"))
    out = {}
    for name in ("train", "validation", "test"):
        pair = data[name]
        require(isinstance(pair, tuple | list) and len(pair) == 2,
                f"`data[{name!r}]` should be the pair (x, y) of that block")
        x = as_ndarray(f"data[{name!r}][0]", pair[0], ndim=2)
        y = as_ndarray(f"data[{name!r}][1]", pair[1], ndim=2)
        require(x.shape[0] == y.shape[0], f"`data[{name!r}]`: x and y differ in length")
        out[name] = (x.astype(float), y.astype(float))
    return out


def _lstsq(x, y, intercept=True):
    design = np.column_stack([x, np.ones(len(x))]) if intercept else x
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    return lambda z: (np.column_stack([z, np.ones(len(z))]) if intercept else z) @ coef


def _predictions(name: str, y_pred, y_test) -> np.ndarray:
    if isinstance(y_pred, tuple):
        raise LabCheckError(f"`{name}` is a tuple: np.linalg.lstsq returns (coef, residuals, "
                            f"rank, sv); take the coefficients and multiply the test inputs "
                            f"by them")
    arr = as_array(name, y_pred)
    if arr.size != y_test.size:
        raise LabCheckError(f"{name}: expected {y_test.size} predictions (every coarse cell of "
                            f"every test hour), got {arr.size}: predict on the test block")
    return as_array(name, arr.reshape(y_test.shape), y_test.shape)


@lab_check
def linear_baseline(y_pred, data) -> float:
    """``y_pred``: predictions on the test block of ``y = x @ w + b`` fitted by least squares
    on the training block; ``data`` the dict of (x, y) blocks. Returns the test R^2."""
    blocks = _blocks(data)
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = (blocks[k] for k in
                                                ("train", "validation", "test"))
    got = _predictions("y_pred_linear", y_pred, y_te)
    want = _lstsq(x_tr, y_tr)(x_te)
    if relative_error(got, want) > 1e-6:
        r2 = metrics.r2_score(y_te, got)
        variants = {
            "you left out the intercept b: add a column of ones to the design matrix":
                _lstsq(x_tr, y_tr, intercept=False)(x_te),
            "you fitted on the TEST block: fit on the training block only, the test block "
            "must stay unseen": _lstsq(x_te, y_te)(x_te),
            "you fitted on train + validation: the exercise fits on the training block "
            "(validation is kept for early stopping of the network)":
                _lstsq(np.vstack([x_tr, x_va]), np.vstack([y_tr, y_va]))(x_te),
            "the predictions have the wrong sign": -want,
            "you predicted the validation block: predict on the test block":
                _lstsq(x_tr, y_tr)(x_va),
        }
        for hint, variant in variants.items():
            if variant.shape == got.shape and relative_error(got, variant) < 1e-6:
                raise LabCheckError(f"linear regression (test R^2 {r2:.3f}): {hint}")
        raise LabCheckError(f"your predictions differ from least squares with an intercept "
                            f"fitted on the training block by {relative_error(got, want):.1%} "
                            f"(test R^2 {r2:.3f}); fit y = x @ w + b with np.linalg.lstsq on "
                            f"x_train, y_train")
    r2 = metrics.r2_score(y_te, got)
    require(r2 > 0.5, f"linear regression: test R^2 = {r2:.3f}; the fit is right but the data "
                      f"are not: check the SGS tendency and the split")
    passed(f"linear regression: test R^2 = {r2:.3f}, RMSE = {metrics.rmse(y_te, got):.2e} 1/h")
    return r2


@lab_check
def mlp(y_pred, model, x_scaler, y_scaler, data, minimum_r2: float = 0.9) -> float:
    """The network of exercise 5: ``model`` (a torch module 7 -> 1), the two
    ``nn.Standardizer`` fitted on the training block, and ``y_pred``, its predictions on the
    test block in physical units (1/h). Returns the test R^2."""
    import torch

    blocks = _blocks(data)
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = (blocks[k] for k in
                                                ("train", "validation", "test"))
    require(isinstance(model, torch.nn.Module),
            f"`model` should be the trained torch network (nn.mlp(7, 1, ...)), got "
            f"{type(model).__name__}")
    for name, scaler, (x, xv, xt) in (("sx", x_scaler, (x_tr, x_va, x_te)),
                                      ("sy", y_scaler, (y_tr, y_va, y_te))):
        require(hasattr(scaler, "transform") and hasattr(scaler, "inverse"),
                f"`{name}` should be an nn.Standardizer, got {type(scaler).__name__}")
        mean = np.asarray(getattr(scaler, "mean", np.nan))
        if mean.shape == (x.shape[1],) and not np.allclose(mean, x.mean(axis=0)):
            for what, other in (("the test block", xt), ("the validation block", xv),
                                ("all the data", np.vstack([x, xv, xt])),
                                ("train + validation", np.vstack([x, xv]))):
                if np.allclose(mean, other.mean(axis=0)):
                    raise LabCheckError(f"`{name}` was fitted on {what}: fit the standardisation "
                                        f"on the training block only, or the test data leak "
                                        f"into the model")
            raise LabCheckError(f"`{name}` was not fitted on the training block: use "
                                f"nn.Standardizer(x_train) and nn.Standardizer(y_train)")
    got = _predictions("y_pred_mlp", y_pred, y_te)
    pred_std = call("nn.predict(model, sx.transform(x_test))", nn.predict, model,
                    x_scaler.transform(x_te))
    want = y_scaler.inverse(pred_std)
    if relative_error(got, want) > 1e-5:
        variants = {
            "your predictions are in standardised units: apply sy.inverse to the network's "
            "output": pred_std,
            "the network was given raw test inputs: standardise them with sx.transform first":
                y_scaler.inverse(nn.predict(model, x_te)),
            "the test inputs were standardised with their own statistics: use sx (fitted on "
            "train) for every block": y_scaler.inverse(
                nn.predict(model, nn.Standardizer(x_te).transform(x_te))),
            "you predicted the validation block: predict on the test block":
                y_scaler.inverse(nn.predict(model, x_scaler.transform(x_va))),
        }
        for hint, variant in variants.items():
            if variant.shape == got.shape and relative_error(got, variant) < 1e-5:
                raise LabCheckError(f"MLP: {hint}")
        raise LabCheckError(f"`y_pred_mlp` is not what `model`, `sx` and `sy` predict for the "
                            f"test block (they differ by {relative_error(got, want):.1%}): "
                            f"y_pred_mlp = sy.inverse(nn.predict(model, sx.transform(x_test)))")
    r2 = metrics.r2_score(y_te, got)
    r2_linear = metrics.r2_score(y_te, _lstsq(x_tr, y_tr)(x_te))
    require(r2 >= minimum_r2,
            f"MLP: test R^2 = {r2:.3f} is below {minimum_r2}: train longer (more epochs, a "
            f"larger patience) or check the learning rate; the linear baseline reaches "
            f"{r2_linear:.3f}")
    require(r2 > r2_linear, f"MLP: test R^2 = {r2:.3f} does not beat the linear baseline "
                            f"({r2_linear:.3f}); train longer or check early stopping")
    passed(f"MLP: test R^2 = {r2:.3f} (linear {r2_linear:.3f}), RMSE = "
           f"{metrics.rmse(y_te, got):.2e} 1/h")
    return r2


@lab_check
def test_predictions(y_pred, y_test, name: str, minimum_r2: float = 0.8,
                     better_than: float | None = None) -> float:
    """Score predictions on the test block; return R^2 (a plausibility check only: the lab
    uses :func:`linear_baseline` and :func:`mlp`, which verify how the predictions were made)."""
    y_test = as_array("y_test", y_test)
    arr = _predictions(name, y_pred, y_test)
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
