"""Checks of the lab "Know when your closure does not know" (uncertainty quantification).

The decomposition and the pinball loss are called on ensembles and data the check makes
(several sizes, a single member, a single sample); the sampled variance is compared with the
mixture of the members' Gaussians; the ensemble's split and flag are recomputed from the
trained ensemble itself; the quantile exercise is verified from the split and the quantile
model. Each check raises :class:`~nnparam.labs.feedback.LabCheckError` with a message naming
the typical mistake (divisor ``M - 1``, swapped components, pinball sides swapped, ...) and
prints a success line otherwise.
"""

from __future__ import annotations

import numpy as np

from .. import uq
from .feedback import (
    LabCheckError,
    as_array,
    as_indices,
    as_ndarray,
    as_scalar,
    call,
    lab_check,
    passed,
    require,
)

# a fixed, hand-checkable ensemble: M = 4 members at N = 3 inputs
_MU = np.array([[0.0, 1.0, -2.0], [2.0, 1.0, 0.0], [4.0, 1.0, 2.0], [-2.0, 1.0, 4.0]])
_VAR = np.array([[1.0, 0.5, 2.0], [3.0, 0.5, 2.0], [1.0, 1.5, 2.0], [3.0, 1.5, 2.0]])


def _pair(name: str, out, n: int) -> tuple:
    if not (isinstance(out, tuple | list) and len(out) == 2):
        raise LabCheckError(f"`{name}` should return a pair (aleatoric, epistemic), got "
                            f"{type(out).__name__}")
    arrays = []
    for part, value in zip(("aleatoric", "epistemic"), out, strict=True):
        arr = as_array(part, value)
        require(arr.shape == (n,),
                f"`{part}` should have one value per input, shape ({n},), got {arr.shape}: "
                f"average over the members, axis 0")
        arrays.append(arr)
    return tuple(arrays)


def _ensembles():
    rng = np.random.default_rng(21)
    cases = [(_MU, _VAR)]
    for m, n in ((2, 5), (7, 50), (3, 1)):
        cases.append((rng.normal(0.0, 2.0, (m, n)), rng.uniform(0.1, 3.0, (m, n))))
    return cases


@lab_check
def decompose(func) -> bool:
    """``func(mu, var) -> (aleatoric, epistemic)`` for ``(M, N)`` arrays: the mean of the
    member variances and the (population) variance of the member means, each ``(N,)``."""
    for mu, var in _ensembles():
        m, n = mu.shape
        inputs = f"an ensemble of M = {m} members at N = {n} inputs"
        out = call("my_decompose", func, mu.copy(), var.copy(), inputs=inputs)
        ale, epi = _pair("my_decompose", out, n)
        ale_ok, epi_ok = var.mean(axis=0), mu.var(axis=0)
        if np.allclose(ale, ale_ok) and np.allclose(epi, epi_ok):
            continue
        if np.allclose(ale, epi_ok) and np.allclose(epi, ale_ok):
            raise LabCheckError("aleatoric and epistemic are swapped: the aleatoric part is the "
                                "mean of the member variances, the epistemic part the spread of "
                                "the member means")
        if not np.allclose(ale, ale_ok):
            if np.allclose(ale, ale_ok + epi_ok):
                raise LabCheckError("`aleatoric` is the total variance: it is the mean over the "
                                    "members of their variances only")
            if np.allclose(ale, var.mean(axis=1).mean() * np.ones(n)) or np.allclose(
                    ale, np.resize(var.mean(axis=1), n)):
                raise LabCheckError("aleatoric is averaged over the wrong axis: the members "
                                    "are axis 0, the inputs axis 1")
            raise LabCheckError(f"for {inputs} aleatoric is wrong: it is the mean over the "
                                f"members (axis 0) of the variances")
        if m > 1 and np.allclose(epi, mu.var(axis=0, ddof=1)):
            raise LabCheckError(f"epistemic uses the sample variance with divisor M - 1 = "
                                f"{m - 1}: the variance of the equally weighted mixture needs "
                                f"the population formula, divisor M = {m} (np.var with ddof=0)")
        if np.allclose(epi, mu.std(axis=0)):
            raise LabCheckError("epistemic is a standard deviation: return the variance of the "
                                "member means (square it)")
        raise LabCheckError(f"for {inputs} epistemic is wrong: it is the population variance "
                            f"over the members (axis 0) of the means")
    return passed("aleatoric + epistemic is the variance of the mixture, for any M and N")


@lab_check
def mixture_sampling(sampled_variance, mu, var) -> bool:
    """``sampled_variance``: the variance, per input, of samples drawn from the equally
    weighted mixture of the members' Gaussians ``N(mu[m], var[m])``; it must agree with
    ``mean(var) + var(mu)`` within 2 %."""
    mu = as_array("mu5", mu)
    var = as_array("var5", var, mu.shape)
    s = as_array("sampled_variance", sampled_variance)
    require(s.shape == (mu.shape[1],),
            f"`sampled_variance` should hold one variance per input, shape ({mu.shape[1]},), "
            f"got {s.shape}: take the variance over the draws (axis 0)")
    total = var.mean(axis=0) + mu.var(axis=0)
    if np.allclose(s, total, rtol=1e-12):
        raise LabCheckError("`sampled_variance` is exactly aleatoric + epistemic: the exercise "
                            "asks you to check the formula independently, by drawing samples "
                            "from the mixture")
    ratio = s / total
    if np.all(np.abs(ratio - 1) < 0.02):
        return passed(f"sampling agrees with the decomposition (ratios {np.round(ratio, 3)})")
    variants = {
        "your samples hold only the aleatoric part: pick a member at random for EACH draw "
        "(not one Gaussian with the mean variance)": var.mean(axis=0),
        "your samples hold only the spread of the means: add each member's own Gaussian "
        "noise, sqrt(var) * standard normal": mu.var(axis=0),
        "you used the variance as the standard deviation: scale the standard normal by "
        "sqrt(var)": (var**2).mean(axis=0) + mu.var(axis=0),
        "you drew from one member only: pick the member at random for each draw":
            var[0],
    }
    for hint, variant in variants.items():
        if np.all(np.abs(s / variant - 1) < 0.02):
            raise LabCheckError(f"sampled / (aleatoric + epistemic) = {np.round(ratio, 3)}: "
                                f"{hint}")
    raise LabCheckError(f"sampled / (aleatoric + epistemic) = {np.round(ratio, 3)}: should be 1 "
                        f"within 2 %. Draw a member at random for every sample, then a "
                        f"Gaussian value with that member's mean and standard deviation (the "
                        f"square root of its variance)")


@lab_check
def mixture_check(sampled_variance, aleatoric, epistemic) -> bool:
    """The variance of samples drawn from the mixture agrees with ``aleatoric + epistemic``
    (kept for old notebooks; the lab uses :func:`mixture_sampling`)."""
    s = as_array("sampled_variance", sampled_variance)
    a = as_array("aleatoric", aleatoric, s.shape)
    e = as_array("epistemic", epistemic, s.shape)
    require(np.all(a > 0) and np.all(e >= 0), "variances must be non-negative")
    ratio = s / (a + e)
    require(np.all(np.abs(ratio - 1) < 0.02),
            f"sampled / (aleatoric + epistemic) = {np.round(ratio, 3)}: should be 1 within 2 %")
    return passed(f"sampling agrees with the decomposition (ratios {np.round(ratio, 3)})")


def _rho(u, tau):
    return np.maximum(tau * u, (tau - 1) * u)


@lab_check
def pinball(func) -> bool:
    """``func(y, q, tau) -> float``: the mean over samples of max(tau u, (tau - 1) u) with
    ``u = y - q``, for 1-D arrays ``y``, ``q`` and a level ``tau`` in (0, 1)."""
    rng = np.random.default_rng(22)
    cases = [(np.array([1.0, 2.0, 3.0, 7.0]), np.full(4, 2.0), 0.9)]
    for n, tau in ((50, 0.1), (1, 0.5), (200, 0.73)):
        cases.append((rng.normal(size=n), rng.normal(size=n), tau))
    for y, q, tau in cases:
        inputs = f"{y.size} samples at tau = {tau}"
        u = y - q
        right = float(np.mean(_rho(u, tau)))
        got = as_scalar("my_pinball(y, q, tau)",
                        call("my_pinball", func, y.copy(), q.copy(), tau, inputs=inputs))
        if np.isclose(got, right):
            continue
        if np.isclose(got, float(np.mean(_rho(u, 1 - tau)))):
            raise LabCheckError("the sides of the pinball loss are swapped: with u = y - q, an "
                                "under-prediction (u > 0) costs tau * u and an over-prediction "
                                "(u < 0) costs (tau - 1) * u; yours gives the 1 - tau quantile")
        if np.isclose(got, float(np.mean(_rho(-u, tau)))):
            raise LabCheckError("u is the wrong way round: u = y - q (observation minus "
                                "quantile)")
        if y.size > 1 and np.isclose(got, right * y.size):
            raise LabCheckError("the loss is a sum over samples: take the mean")
        if np.isclose(got, float(np.mean(np.abs(u)))) or np.isclose(
                got, 0.5 * np.mean(np.abs(u))):
            raise LabCheckError("this is an absolute error: the pinball loss weights the two "
                                "sides by tau and 1 - tau")
        if np.isclose(got, float(np.mean(np.minimum(tau * u, (tau - 1) * u)))):
            raise LabCheckError("take the maximum of tau * u and (tau - 1) * u, not the "
                                "minimum")
        raise LabCheckError(f"pinball loss {got:.4f} for {inputs}, expected {right:.4f}: mean "
                            f"of max(tau * u, (tau - 1) * u)")
    return passed("pinball loss: both sides weighted correctly, for any tau")


def _ensemble(ens, members: int, n_train: int):
    require(isinstance(ens, uq.Ensemble),
            f"`ens` should be the uq.Ensemble returned by uq.train_ensemble, got "
            f"{type(ens).__name__}")
    require(ens.size == members, f"the ensemble has {ens.size} members; the exercise asks for "
                                 f"{members}")
    require(ens.counts.shape[1] == n_train,
            f"the ensemble was trained on {ens.counts.shape[1]} samples, not on the "
            f"{n_train} points of the toy")


@lab_check
def toy_uncertainty(ens, x_grid, aleatoric, epistemic, x_train) -> bool:
    """On the cubic toy: ``aleatoric`` and ``epistemic`` are the split of ``ens`` on
    ``x_grid``; the epistemic part grows beyond the data and the aleatoric part does not."""
    xg = as_array("x_grid", x_grid)
    require(xg.ndim == 1, f"`x_grid` should be 1-D, got shape {xg.shape}")
    xt = as_array("x_toy", x_train)
    _ensemble(ens, 5, xt.size)
    a = as_array("aleatoric", aleatoric, xg.shape)
    e = as_array("epistemic", epistemic, xg.shape)
    mu, var = ens.predict(xg)
    ale_ok, epi_ok = var.mean(axis=0), mu.var(axis=0)
    if not (np.allclose(a, ale_ok, rtol=1e-5) and np.allclose(e, epi_ok, rtol=1e-5,
                                                              atol=1e-12)):
        if np.allclose(a, epi_ok, rtol=1e-5) and np.allclose(e, ale_ok, rtol=1e-5):
            raise LabCheckError("aleatoric and epistemic are swapped: unpack my_decompose as "
                                "(aleatoric, epistemic)")
        raise LabCheckError("`aleatoric` and `epistemic` are not the split of the ensemble "
                            "`ens` on `x_grid`: my_decompose(*ens.predict(x_grid))")
    lo, hi = xt.min(), xt.max()
    inside = (xg >= lo) & (xg <= hi)
    outside = (xg < lo - 1) | (xg > hi + 1)
    require(inside.any() and outside.any(),
            f"`x_grid` should cover the data [{lo:.1f}, {hi:.1f}] and reach at least one unit "
            f"beyond it on some side")
    require(np.all(a > 0) and np.all(e >= 0), "variances must be non-negative")
    e_ratio = e[outside].mean() / e[inside].mean()
    a_ratio = a[outside].mean() / a[inside].mean()
    require(e_ratio > 10, f"epistemic grows only x{e_ratio:.1f} beyond the data: train the "
                          f"members on bootstrap resamples (bootstrap=True) from different "
                          f"seeds, with the suggested settings")
    require(a_ratio < 2, f"aleatoric grows x{a_ratio:.1f} beyond the data: use the suggested "
                         f"weight decay and warm-up")
    require(np.sqrt(a[inside].mean()) < 6,
            "the aleatoric standard deviation inside the data is far above the true 3: "
            "give the members a warm-up of the mean and enough epochs")
    return passed(f"epistemic x{e_ratio:.0f} beyond the data, aleatoric x{a_ratio:.2f}")


@lab_check
def ood(flag, ens, x_grid, x_train) -> bool:
    """``flag``: a boolean array over ``x_grid``, true where the epistemic variance of ``ens``
    exceeds its largest epistemic variance at the training inputs ``x_train``."""
    if isinstance(flag, tuple):
        raise LabCheckError("`flag` is a tuple: uq.ood_flag returns (flag, threshold); keep the "
                            "flag")
    xg = as_array("x_grid", x_grid)
    xt = as_array("x_toy", x_train)
    f = as_ndarray("flag", flag, finite=False)
    require(f.shape == xg.shape, f"`flag` should have the shape of x_grid {xg.shape}, "
                                 f"got {f.shape}")
    require(f.dtype == bool, "`flag` should be a boolean array (epistemic > threshold)")
    _ensemble(ens, 5, xt.size)
    mu_g, var_g = ens.predict(xg)
    mu_t, var_t = ens.predict(xt)
    epi_g, epi_t = mu_g.var(axis=0), mu_t.var(axis=0)
    want = epi_g > epi_t.max()
    if np.array_equal(f, want):
        inside = (xg >= xt.min()) & (xg <= xt.max())
        outside = (xg < xt.min() - 1) | (xg > xt.max() + 1)
        require(f[outside].mean() > 0.9,
                f"only {f[outside].mean():.0%} of the inputs beyond the data are flagged: the "
                f"ensemble's epistemic part does not grow enough (exercise 3)")
        require(f[inside].mean() < 0.2,
                f"{f[inside].mean():.0%} of the inputs inside the data are flagged: the "
                f"ensemble disagrees inside its data (exercise 3)")
        return passed(f"{f[outside].mean():.0%} flagged beyond the data, "
                      f"{f[inside].mean():.0%} inside")
    variants = {
        "the flag is inverted: flag inputs whose epistemic variance is ABOVE the threshold":
            ~want,
        "the flag uses the aleatoric variance: the epistemic part says when the members "
        "disagree": var_g.mean(axis=0) > var_t.mean(axis=0).max(),
        "the threshold should be the LARGEST epistemic variance at the training inputs "
        "(quantile=1.0), not a lower quantile": epi_g > np.quantile(epi_t, 0.99),
        "the threshold comes from the training inputs x_toy, not from the grid":
            epi_g > epi_g[(xg >= xt.min()) & (xg <= xt.max())].max(),
        "the threshold is the largest epistemic variance at the training inputs, not their "
        "mean": epi_g > epi_t.mean(),
    }
    for hint, variant in variants.items():
        if np.array_equal(f, variant):
            raise LabCheckError(hint)
    n_diff = int(np.sum(f != want))
    raise LabCheckError(f"`flag` differs from epistemic > max(epistemic at x_toy) at {n_diff} "
                        f"of {f.size} grid points")


def _blocks(n_time: int, train, val, test, gap: int) -> tuple:
    out = []
    for name, block in (("train_b", train), ("val_b", val), ("test_b", test)):
        idx = as_indices(name, block, n_time)
        require(np.all(np.diff(idx) == 1),
                f"`{name}` is not one contiguous block of times: autocorrelated data must be "
                f"split in time (nnparam.metrics.time_blocks), never shuffled")
        out.append(idx)
    tr, va, te = out
    require(tr.max() < va.min() and va.max() < te.min(),
            "order the blocks in time: train, then validation, then test")
    for (a, b), names in (((tr, va), "train and validation"), ((va, te),
                                                                "validation and test")):
        g = int(b.min() - a.max() - 1)
        require(g >= gap, f"only {g} hours separate {names}: leave a gap of {gap} "
                          f"(time_blocks(..., gap={gap}))")
    return tr, va, te


def _outer_coverage(y, q, levels, advice: str = "") -> tuple[float, float]:
    """Require non-crossing quantiles ``q (n, levels)`` whose outer interval covers its
    nominal share of ``y`` within 5 points; return (coverage, nominal)."""
    require(np.all(np.diff(q, axis=1) >= 0), "quantiles cross: predict them with "
                                            "uq.fit_quantiles (non-crossing by construction)")
    nominal = levels[-1] - levels[0]
    cov = uq.coverage(y, q[:, 0], q[:, -1])
    require(abs(cov - nominal) < 0.05,
            f"the {levels[0]:.0%}-{levels[-1]:.0%} interval covers {cov:.1%} of the test "
            f"data, expected about {nominal:.0%}{advice}")
    return cov, nominal


@lab_check
def quantiles(qmodel, train_b, val_b, test_b, features, target, q_test, y_test,
              taus=(0.1, 0.5, 0.9)) -> bool:
    """Exercise 4: a time-contiguous split with gaps of 5 hours, a ``uq.QuantileModel`` of the
    levels ``taus`` fitted on training data only, ``q_test`` its predictions on the whole test
    block and ``y_test`` the matching targets; the outer interval covers its nominal share."""
    x = as_array("features", features)
    y = as_array("target", target)
    require(x.ndim == 3 and y.shape == x.shape[:2],
            f"`features` should be (time, x, inputs) and `target` (time, x), got {x.shape} "
            f"and {y.shape}")
    n_time = x.shape[0]
    tr, _, te = _blocks(n_time, train_b, val_b, test_b, gap=5)
    require(isinstance(qmodel, uq.QuantileModel),
            f"`qmodel` should be the uq.QuantileModel from uq.fit_quantiles, got "
            f"{type(qmodel).__name__}")
    levels = as_array("taus", taus)
    model_levels = np.asarray(qmodel.taus, float)
    require(model_levels.shape == levels.shape and np.allclose(model_levels, levels),
            f"the quantile model has the levels {np.round(qmodel.taus, 3).tolist()}, the "
            f"exercise asks for {levels.tolist()}")
    fitted = np.asarray(qmodel.x_scale.mean)
    for what, block in (("the test block", te), ("all the data", np.arange(n_time))):
        if np.allclose(fitted, x[block].reshape(-1, x.shape[-1]).mean(axis=0)):
            raise LabCheckError(f"the quantile model was fitted on {what}: fit it on the "
                                f"training block only")
    x_te = x[te].reshape(-1, x.shape[-1])
    y_ok = y[te].ravel()
    yt = as_array("y_test", y_test)
    require(yt.size == y_ok.size,
            f"`y_test` holds {yt.size} values; the whole test block has {y_ok.size} samples "
            f"(every cell of every test hour, target[test_b].ravel())")
    require(np.allclose(yt.ravel(), y_ok), "`y_test` is not target[test_b].ravel(): keep the "
                                           "targets in the order of the inputs")
    q = as_array("q_test", q_test, (y_ok.size, levels.size))
    want = qmodel.predict(x_te)
    require(np.allclose(q, want, rtol=1e-5, atol=1e-9),
            "`q_test` is not what the quantile model predicts for the test block: "
            "qmodel.predict(features[test_b].reshape(-1, n_inputs))")
    cov, nominal = _outer_coverage(y_ok, q, levels, ": train longer or check the inputs")
    return passed(f"time-contiguous split with gaps; {levels[0]:.0%}-{levels[-1]:.0%} interval "
                  f"covers {cov:.1%} of the test block (nominal {nominal:.0%})")


@lab_check
def time_split(train, test, n_time) -> bool:
    """Training and test blocks are contiguous in time and do not overlap (kept for old
    notebooks; the lab uses :func:`quantiles`)."""
    n_time = int(n_time)
    tr, te = as_indices("train", train, n_time), as_indices("test", test, n_time)
    for name, idx in (("train", tr), ("test", te)):
        require(np.all(np.diff(idx) == 1),
                f"`{name}` is not one contiguous block of times: autocorrelated data must be "
                f"split in time (nnparam.metrics.time_blocks), never shuffled")
    require(np.intersect1d(tr, te).size == 0, "train and test blocks overlap")
    require(te.min() > tr.max(), "test the closure on a block that comes after the training "
                                 "block")
    return passed("time-contiguous split")


@lab_check
def coverage(y_test, q_test, taus) -> bool:
    """Non-crossing quantiles whose outer interval covers its nominal share of held-out data
    (kept for old notebooks; the lab uses :func:`quantiles`)."""
    y = as_array("y_test", y_test)
    levels = as_array("taus", taus)
    q = as_array("q_test", q_test, (y.size, levels.size))
    cov, nominal = _outer_coverage(y, q, levels)
    return passed(f"{levels[0]:.0%}-{levels[-1]:.0%} interval covers {cov:.1%} "
                  f"(nominal {nominal:.0%})")
