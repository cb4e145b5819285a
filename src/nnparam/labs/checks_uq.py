"""Checks of the lab "Know when your closure does not know" (uncertainty quantification).

Each check raises :class:`~nnparam.labs.feedback.LabCheckError` with a message naming the
typical mistake (divisor ``M - 1``, swapped components, pinball sides swapped, ...) and prints
a success line otherwise.
"""

from __future__ import annotations

import numpy as np

from .. import uq
from .feedback import LabCheckError, as_array, passed, require

# a fixed, hand-checkable ensemble: M = 4 members at N = 3 inputs
_MU = np.array([[0.0, 1.0, -2.0], [2.0, 1.0, 0.0], [4.0, 1.0, 2.0], [-2.0, 1.0, 4.0]])
_VAR = np.array([[1.0, 0.5, 2.0], [3.0, 0.5, 2.0], [1.0, 1.5, 2.0], [3.0, 1.5, 2.0]])


def _call(name: str, func, *args):
    if not callable(func):
        raise LabCheckError(f"pass your function `{name}` itself (no parentheses), "
                            f"got {type(func).__name__}")
    try:
        return func(*args)
    except NotImplementedError:
        raise
    except Exception as err:  # the student's code failed: say where
        raise LabCheckError(f"`{name}` raised {type(err).__name__}: {err}") from err


def decompose(func) -> bool:
    """``func(mu, var) -> (aleatoric, epistemic)`` for ``(M, N)`` arrays: total variance."""
    out = _call("decompose", func, _MU.copy(), _VAR.copy())
    require(isinstance(out, tuple | list) and len(out) == 2,
            "`decompose` should return a pair (aleatoric, epistemic)")
    ale = as_array("aleatoric", out[0])
    epi = as_array("epistemic", out[1])
    m, n = _MU.shape
    for name, arr in (("aleatoric", ale), ("epistemic", epi)):
        require(arr.shape == (n,),
                f"`{name}` should have one value per input, shape ({n},), got {arr.shape}: "
                f"average over the members, axis 0")
    ale_ok, epi_ok = _VAR.mean(axis=0), _MU.var(axis=0)
    if np.allclose(ale, epi_ok) and np.allclose(epi, ale_ok):
        raise LabCheckError("aleatoric and epistemic are swapped: the aleatoric part is the "
                            "mean of the member variances, the epistemic part the spread of "
                            "the member means")
    require(np.allclose(ale, ale_ok),
            "aleatoric is wrong: it is the mean over the members (axis 0) of the variances")
    if np.allclose(epi, _MU.var(axis=0, ddof=1)):
        raise LabCheckError(f"epistemic uses the sample variance with divisor M - 1 = {m - 1}: "
                            f"the variance of the equally weighted mixture needs the population "
                            f"formula, divisor M = {m} (np.var with ddof=0)")
    if np.allclose(epi, _MU.std(axis=0)):
        raise LabCheckError("epistemic is a standard deviation: return the variance of the "
                            "member means (square it)")
    require(np.allclose(epi, epi_ok),
            "epistemic is wrong: it is the population variance over the members (axis 0) of "
            "the means")
    return passed("aleatoric + epistemic is the variance of the mixture")


def mixture_check(sampled_variance, aleatoric, epistemic) -> bool:
    """The variance of samples drawn from the mixture agrees with ``aleatoric + epistemic``."""
    s = as_array("sampled_variance", sampled_variance)
    a = as_array("aleatoric", aleatoric, s.shape)
    e = as_array("epistemic", epistemic, s.shape)
    require(np.all(a > 0) and np.all(e >= 0), "variances must be non-negative")
    ratio = s / (a + e)
    require(np.all(np.abs(ratio - 1) < 0.02),
            f"sampled / (aleatoric + epistemic) = {np.round(ratio, 3)}: should be 1 within 2 %. "
            f"Draw a member at random for every sample, then a Gaussian value with that "
            f"member's mean and standard deviation (the square root of its variance)")
    return passed(f"sampling agrees with the decomposition (ratios {np.round(ratio, 3)})")


def pinball(func) -> bool:
    """``func(y, q, tau) -> float``: mean pinball loss, ``tau`` per unit under-prediction."""
    y = np.array([1.0, 2.0, 3.0, 7.0])
    q = np.full(4, 2.0)
    tau = 0.9
    u = y - q
    right = float(np.mean(np.maximum(tau * u, (tau - 1) * u)))
    swapped = float(np.mean(np.maximum((1 - tau) * u, -tau * u)))
    got = _call("pinball", func, y, q, tau)
    try:
        got = float(got)
    except (TypeError, ValueError) as err:
        raise LabCheckError(f"`pinball` should return one number, got {type(got).__name__}") \
            from err
    if np.isclose(got, swapped):
        raise LabCheckError("the sides of the pinball loss are swapped: with u = y - q, an "
                            "under-prediction (u > 0) costs tau * u and an over-prediction "
                            "(u < 0) costs (tau - 1) * u; yours gives the 1 - tau quantile")
    if np.isclose(got, right * y.size):
        raise LabCheckError("the loss is a sum over samples: take the mean")
    if np.isclose(got, float(np.mean(np.abs(u)))) or np.isclose(got, 0.5 * np.mean(np.abs(u))):
        raise LabCheckError("this is an absolute error: the pinball loss weights the two sides "
                            "by tau and 1 - tau")
    require(np.isclose(got, right), f"pinball loss {got:.4f} for the test case, expected "
                                    f"{right:.4f}: mean of max(tau * u, (tau - 1) * u)")
    return passed("pinball loss: both sides weighted correctly")


def toy_uncertainty(x_grid, aleatoric, epistemic, x_train) -> bool:
    """On the cubic toy, epistemic grows beyond the data and aleatoric does not."""
    xg = as_array("x_grid", x_grid)
    require(xg.ndim == 1, f"`x_grid` should be 1-D, got shape {xg.shape}")
    a = as_array("aleatoric", aleatoric, xg.shape)
    e = as_array("epistemic", epistemic, xg.shape)
    xt = as_array("x_train", x_train)
    lo, hi = xt.min(), xt.max()
    inside = (xg >= lo) & (xg <= hi)
    outside = (xg < lo - 1) | (xg > hi + 1)
    require(inside.any() and outside.any(),
            f"`x_grid` should cover the data [{lo:.1f}, {hi:.1f}] and reach at least one unit "
            f"beyond it on some side")
    require(np.all(a > 0) and np.all(e >= 0), "variances must be non-negative")
    e_ratio = e[outside].mean() / e[inside].mean()
    a_ratio = a[outside].mean() / a[inside].mean()
    if a_ratio > 10 and e_ratio < 2:
        raise LabCheckError("aleatoric grows beyond the data and epistemic does not: did you "
                            "swap the two outputs of `decompose`?")
    require(e_ratio > 10, f"epistemic grows only x{e_ratio:.1f} beyond the data: train the "
                          f"members on bootstrap resamples from different seeds, and compute "
                          f"the variance of the member means over axis 0")
    require(a_ratio < 2, f"aleatoric grows x{a_ratio:.1f} beyond the data: is it the mean of "
                         f"the member variances (not the total)?")
    require(np.sqrt(a[inside].mean()) < 6,
            "the aleatoric standard deviation inside the data is far above the true 3: "
            "give the members a warm-up of the mean and enough epochs")
    return passed(f"epistemic x{e_ratio:.0f} beyond the data, aleatoric x{a_ratio:.2f}")


def ood(x_grid, flag, x_train) -> bool:
    """The flag is set beyond the data and (almost) never inside it."""
    xg = as_array("x_grid", x_grid)
    f = np.asarray(flag)
    require(f.shape == xg.shape, f"`flag` should have the shape of x_grid {xg.shape}, "
                                 f"got {f.shape}")
    require(f.dtype == bool, "`flag` should be a boolean array (epistemic > threshold)")
    xt = as_array("x_train", x_train)
    inside = (xg >= xt.min()) & (xg <= xt.max())
    outside = (xg < xt.min() - 1) | (xg > xt.max() + 1)
    if f[inside].mean() > 0.8 and f[outside].mean() < 0.2:
        raise LabCheckError("the flag is inverted: flag inputs whose epistemic variance is "
                            "ABOVE the threshold")
    require(f[outside].mean() > 0.9,
            f"only {f[outside].mean():.0%} of the inputs beyond the data are flagged: use the "
            f"epistemic variance (not the aleatoric) and a threshold from the training inputs")
    require(f[inside].mean() < 0.2,
            f"{f[inside].mean():.0%} of the inputs inside the data are flagged: the threshold "
            f"is too low (use the largest epistemic variance over the training inputs)")
    return passed(f"{f[outside].mean():.0%} flagged beyond the data, "
                  f"{f[inside].mean():.0%} inside")


def time_split(train, test, n_time) -> bool:
    """Training and test blocks are contiguous in time and do not overlap."""
    n_time = int(n_time)
    blocks = {}
    for name, block in (("train", train), ("test", test)):
        if isinstance(block, slice):
            idx = np.arange(n_time)[block]
        else:
            idx = np.sort(np.asarray(block, dtype=int).ravel())
        require(idx.size > 0, f"`{name}` is empty")
        require(np.all(np.diff(idx) == 1),
                f"`{name}` is not one contiguous block of times: autocorrelated data must be "
                f"split in time (nnparam.metrics.time_blocks), never shuffled")
        blocks[name] = idx
    require(np.intersect1d(blocks["train"], blocks["test"]).size == 0,
            "train and test blocks overlap")
    require(blocks["test"].min() > blocks["train"].max(),
            "test the closure on a block that comes after the training block")
    return passed("time-contiguous split")


def coverage(y_test, q_test, taus) -> bool:
    """Non-crossing quantiles whose outer interval covers its nominal share of held-out data."""
    y = as_array("y_test", y_test)
    levels = as_array("taus", taus)
    q = as_array("q_test", q_test, (y.size, levels.size))
    require(np.all(np.diff(q, axis=1) >= 0), "quantiles cross: predict them with "
                                            "uq.fit_quantiles (non-crossing by construction)")
    nominal = levels[-1] - levels[0]
    cov = uq.coverage(y, q[:, 0], q[:, -1])
    require(abs(cov - nominal) < 0.05,
            f"the {levels[0]:.0%}-{levels[-1]:.0%} interval covers {cov:.1%} of the test "
            f"data, expected about {nominal:.0%}: check the levels, the split, and that you "
            f"predict on x_test")
    return passed(f"{levels[0]:.0%}-{levels[-1]:.0%} interval covers {cov:.1%} "
                  f"(nominal {nominal:.0%})")
