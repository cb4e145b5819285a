"""Skill and verification metrics: the one home of every score the book reports.

Plain functions over numpy arrays (xarray objects are accepted wherever ``np.asarray`` reads
them). Four groups:

* **offline skill** of a deterministic prediction: :func:`r2_score`, :func:`rmse`,
  :func:`correlation`, :func:`rmse_by_lead`;
* **distances between climates** (samples of two long runs): :func:`hellinger`,
  :func:`wasserstein`, :func:`spectral_rmse` of 1-D or isotropic spectra
  (:func:`isotropic_spectrum`), and the benchmark's :func:`similarity_score`;
* **probabilistic verification** of ensembles and predictive distributions:
  :func:`crps_ensemble`, :func:`crps_gaussian`, :func:`spread_skill`, :func:`rank_histogram`,
  :func:`pit_gaussian`, :func:`pit_ensemble`, :func:`pit`, :func:`exceedance_rates`,
  :func:`quantile_reliability`;
* **uncertainty of a verdict**: :func:`block_bootstrap` (moving-block bootstrap intervals for
  autocorrelated records), :func:`noise_floor` (the distance between independent truth
  segments at the sample sizes of a comparison), :func:`autocorrelation` and
  :func:`decorrelation_time`.

Every function validates its inputs and raises ``ValueError`` naming the argument.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from ._validate import finite_array, positive, positive_int

# --------------------------------------------------------------------------------------------
# offline skill
# --------------------------------------------------------------------------------------------


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    yt = finite_array("y_true", y_true)
    yp = finite_array("y_pred", y_pred)
    if yt.shape != yp.shape:
        raise ValueError(f"y_pred must have the shape of y_true {yt.shape}, got {yp.shape}")
    return yt, yp


def r2_score(y_true, y_pred) -> float:
    """Coefficient of determination ``1 - SSE/SST`` pooled over all elements.

    ``SST`` is taken about the *global* mean of ``y_true`` (one number for the whole array),
    the definition of the pyqg benchmark (Ross et al. 2023): 1 is perfect, 0 is no better than
    predicting the mean, negative is worse. Arrays of the same shape; any units.
    """
    yt, yp = _pair(y_true, y_pred)
    sst = np.sum((yt - yt.mean()) ** 2)
    if sst == 0:
        raise ValueError("y_true is constant; R^2 is undefined")
    return float(1.0 - np.sum((yt - yp) ** 2) / sst)


def rmse(y_true, y_pred) -> float:
    """Root-mean-square error over all elements, in the units of ``y_true``."""
    yt, yp = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((yt - yp) ** 2)))


def correlation(y_true, y_pred) -> float:
    """Pearson correlation of all elements pooled (dimensionless, in [-1, 1])."""
    yt, yp = _pair(y_true, y_pred)
    if yt.size < 2 or yt.std() == 0 or yp.std() == 0:
        raise ValueError("y_true and y_pred must each hold at least two distinct values")
    return float(np.corrcoef(yt.ravel(), yp.ravel())[0, 1])


def rmse_by_lead(forecast, observed, lead_axis: int = 0) -> np.ndarray:
    """RMSE of forecasts at each lead time, pooled over every other axis.

    ``forecast`` and ``observed`` share a shape, for example ``(lead, start, k)``; the result
    has one value per lead, in the units of the data.
    """
    fc, ob = finite_array("forecast", forecast), finite_array("observed", observed)
    if fc.shape != ob.shape:
        raise ValueError(f"observed must have the shape of forecast {fc.shape}, got {ob.shape}")
    axis = _axis("lead_axis", lead_axis, fc.ndim)
    sq = np.moveaxis((fc - ob) ** 2, axis, 0)
    return np.sqrt(sq.reshape(sq.shape[0], -1).mean(axis=1))


# --------------------------------------------------------------------------------------------
# distances between climates
# --------------------------------------------------------------------------------------------


def _samples(name: str, value) -> np.ndarray:
    arr = finite_array(name, value).ravel()
    if arr.size == 0:
        raise ValueError(f"{name} must hold at least one sample")
    return arr


def hellinger(a, b, bins: int = 40, range: tuple | None = None) -> float:  # noqa: A002
    """Hellinger distance between the histograms of samples ``a`` and ``b``.

    ``H = sqrt(1 - sum_i sqrt(p_i q_i))`` with the probabilities ``p``, ``q`` of ``bins``
    common bins spanning ``range`` (the pooled min and max by default): 0 for identical
    histograms, 1 for disjoint ones. Samples of any shape are pooled. The histogram estimate
    is biased upwards by sampling noise, more for short records: compare it with a
    :func:`noise_floor` at the same sample sizes.
    """
    a, b = _samples("a", a), _samples("b", b)
    bins = positive_int("bins", bins)
    if range is None:
        range = (min(a.min(), b.min()), max(a.max(), b.max()))
    p = np.histogram(a, bins=bins, range=range)[0] / a.size
    q = np.histogram(b, bins=bins, range=range)[0] / b.size
    return float(np.sqrt(max(0.0, 1.0 - np.sum(np.sqrt(p * q)))))


def wasserstein(a, b) -> float:
    """First Wasserstein (earth mover's) distance between the 1-D marginals of ``a`` and ``b``.

    The area between the two empirical CDFs, in the units of the data (scipy's
    ``wasserstein_distance``); samples of any shape are pooled. This is the distance the pyqg
    benchmark uses for the marginals of q, u, v, KE and enstrophy (Ross et al. 2023).
    """
    return float(stats.wasserstein_distance(_samples("a", a), _samples("b", b)))


def spectral_rmse(spectrum_a, spectrum_b, wavenumbers=None, k_range: tuple | None = None,
                  log: bool = False) -> float:
    """RMS difference between two spectra over the wavenumbers in ``k_range``.

    ``spectrum_a``/``spectrum_b``: 1-D spectra on common ``wavenumbers`` (any units; needed
    only with ``k_range = (k_min, k_max)``, inclusive). With ``log=True`` the difference of
    ``log10`` spectra is used (a relative error, natural for spectra spanning decades; the
    spectra must then be positive).
    """
    sa = finite_array("spectrum_a", spectrum_a, ndim=1)
    sb = finite_array("spectrum_b", spectrum_b, ndim=1)
    if sa.shape != sb.shape:
        raise ValueError(f"spectrum_b must have the shape of spectrum_a {sa.shape}, got {sb.shape}")
    keep = np.ones(sa.shape, bool)
    if k_range is not None:
        if wavenumbers is None:
            raise ValueError("k_range needs wavenumbers")
        k = finite_array("wavenumbers", wavenumbers, ndim=1)
        if k.shape != sa.shape:
            raise ValueError(f"wavenumbers must have the shape of the spectra {sa.shape}")
        keep = (k >= k_range[0]) & (k <= k_range[1])
        if not keep.any():
            raise ValueError(f"k_range {k_range} holds none of the wavenumbers")
    sa, sb = sa[keep], sb[keep]
    if log:
        if np.any(sa <= 0) or np.any(sb <= 0):
            raise ValueError("log=True needs strictly positive spectra")
        sa, sb = np.log10(sa), np.log10(sb)
    return float(np.sqrt(np.mean((sa - sb) ** 2)))


def isotropic_spectrum(field, dx: float, dy: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic power spectrum of periodic 2-D fields ``(..., ny, nx)`` on a uniform grid.

    The 2-D spectral density ``|f_hat|^2`` is summed over annuli of width ``dk = 2 pi / L_x``
    (``L_x = nx dx``), normalised so that ``sum(E) * dk`` equals the mean of ``field**2``
    over the grid (Parseval), and averaged over leading axes. Returns ``(k, E)``: radial
    wavenumbers (rad per unit of ``dx``) at the annulus centres ``dk, 2 dk, ...`` up to the
    Nyquist wavenumber of ``x``, and ``E(k)`` in [field]^2 x [dx]. The mean (k = 0) is left
    out.
    """
    f = finite_array("field", field)
    if f.ndim < 2:
        raise ValueError(f"field must have shape (..., ny, nx), got {f.shape}")
    ny, nx = f.shape[-2:]
    dx = positive("dx", dx)
    dy = dx if dy is None else positive("dy", dy)
    power = np.abs(np.fft.fft2(f)) ** 2 / (nx * ny) ** 2  # sum over modes = mean(f^2)
    power = power.reshape((-1, ny, nx)).mean(axis=0)
    kx = 2 * np.pi * np.fft.fftfreq(nx, dx)
    ky = 2 * np.pi * np.fft.fftfreq(ny, dy)
    kr = np.hypot(*np.meshgrid(kx, ky))
    dk = 2 * np.pi / (nx * dx)
    n_bins = nx // 2
    index = np.rint(kr / dk).astype(int)
    inside = (index >= 1) & (index <= n_bins)
    E = np.bincount(index[inside], weights=power[inside], minlength=n_bins + 1)[1:] / dk
    return dk * np.arange(1, n_bins + 1), E


def similarity_score(distance_param, distance_lowres):
    """The benchmark score ``1 - D(param, truth) / D(low-res, truth)`` (Ross et al. 2023).

    ``distance_param``: the distance between the parameterized low-resolution run and the
    truth; ``distance_lowres``: the same distance for the low-resolution run with no closure.
    1 is perfect, 0 no better than no closure, negative worse. Arrays broadcast elementwise
    (one score per metric); the distances must be non-negative and ``distance_lowres > 0``.
    """
    dp = finite_array("distance_param", distance_param)
    dl = finite_array("distance_lowres", distance_lowres)
    if np.any(dp < 0):
        raise ValueError("distance_param must be non-negative")
    if np.any(dl <= 0):
        raise ValueError("distance_lowres must be strictly positive (a baseline that already "
                         "matches the truth exactly leaves nothing to score)")
    score = 1.0 - dp / dl
    return float(score) if score.ndim == 0 else score


# --------------------------------------------------------------------------------------------
# probabilistic verification
# --------------------------------------------------------------------------------------------


def _axis(name: str, axis: int, ndim: int) -> int:
    if isinstance(axis, bool) or int(axis) != axis or not -ndim <= int(axis) < ndim:
        raise ValueError(f"{name} must be an axis of an array with {ndim} dimensions, "
                         f"got {axis!r}")
    return int(axis) % ndim


def _ensemble(ensemble, obs, member_axis: int, min_members: int = 1):
    """Members on the last axis, ``obs`` broadcast to the case shape; both validated."""
    ens = np.asarray(ensemble, dtype=float)
    if ens.ndim < 1:
        raise ValueError("ensemble must have a member axis")
    if not np.all(np.isfinite(ens)):
        bad = np.moveaxis(~np.isfinite(ens), _axis("member_axis", member_axis, ens.ndim), -1)
        members = np.flatnonzero(bad.reshape(-1, bad.shape[-1]).any(axis=0))
        raise ValueError(f"ensemble holds NaN or inf in member(s) {members.tolist()} "
                         f"along member_axis={member_axis}; drop or rerun them")
    ens = np.moveaxis(ens, _axis("member_axis", member_axis, ens.ndim), -1)
    if ens.shape[-1] < min_members:
        raise ValueError(f"ensemble needs at least {min_members} members along member_axis="
                         f"{member_axis}, got {ens.shape[-1]}")
    ob = finite_array("obs", obs)
    if ob.shape != ens.shape[:-1]:
        raise ValueError(f"obs must have the ensemble's shape without the member axis "
                         f"{ens.shape[:-1]}, got {ob.shape}")
    return ens, ob


def crps_ensemble(ensemble, obs, member_axis: int = 0, fair: bool = False):
    """Continuous ranked probability score of an ensemble forecast, per case.

    ``CRPS = E|X - y| - 1/2 E|X - X'|`` for the empirical distribution of the ``M`` members
    (Gneiting & Raftery 2007, eq. 21); with ``fair=True`` the second term is divided by
    ``M (M - 1)`` instead of ``M^2`` (Ferro 2014), which removes the penalty a finite
    ensemble pays relative to its parent distribution. In the units of ``obs``; lower is
    better, 0 for a perfect deterministic forecast. ``obs`` has the ensemble's shape without
    the member axis; the result has that shape (a float for a single case).
    """
    ens, ob = _ensemble(ensemble, obs, member_axis, min_members=2 if fair else 1)
    m = ens.shape[-1]
    skill = np.mean(np.abs(ens - ob[..., None]), axis=-1)
    # sum_{i,j} |x_i - x_j| = 2 sum_i (2 i - m - 1) x_(i) for the sorted members (i = 1..m)
    weights = 2.0 * np.arange(1, m + 1) - m - 1
    pair_sum = 2.0 * np.sum(np.sort(ens, axis=-1) * weights, axis=-1)
    spread = pair_sum / (2.0 * m * (m - 1) if fair else 2.0 * m * m)
    out = skill - spread
    return float(out) if out.ndim == 0 else out


def crps_gaussian(mu, sigma, obs):
    """CRPS of a Gaussian predictive distribution ``N(mu, sigma^2)`` at ``obs``, elementwise.

    Closed form (Gneiting et al. 2005): ``sigma (z (2 Phi(z) - 1) + 2 phi(z) - 1/sqrt(pi))``
    with ``z = (obs - mu) / sigma``; in the units of ``obs``; ``sigma > 0``.
    """
    mu, sigma, y = finite_array("mu", mu), finite_array("sigma", sigma), finite_array("obs", obs)
    if np.any(sigma <= 0):
        raise ValueError("sigma must be strictly positive")
    try:
        z = (y - mu) / sigma
    except ValueError as err:
        raise ValueError(f"mu {mu.shape}, sigma {sigma.shape} and obs {y.shape} must "
                         "broadcast together") from err
    out = sigma * (z * special.erf(z / np.sqrt(2.0)) + 2.0 * stats.norm.pdf(z)
                   - 1.0 / np.sqrt(np.pi))
    return float(out) if out.ndim == 0 else out


@dataclass(frozen=True)
class SpreadSkill:
    """Ensemble spread against the error of the ensemble mean (same units as the data).

    ``spread``: root of the mean (over cases) unbiased ensemble variance; ``rmse``: RMSE of
    the ensemble mean; ``ratio = rmse / (spread * sqrt((M + 1) / M))``. For a statistically
    consistent ensemble of ``M`` members the mean's squared error exceeds the ensemble
    variance by the factor ``(M + 1) / M`` (the mean of ``M`` draws is itself uncertain;
    Leutbecher & Palmer 2008; Fortin et al. 2014), so ``ratio`` is 1 for a reliable
    ensemble, above 1 for an under-dispersive one and below 1 for an over-dispersive one.
    """

    spread: float
    rmse: float
    ratio: float
    members: int


def spread_skill(ensemble, obs, member_axis: int = 0) -> SpreadSkill:
    """Spread and ensemble-mean RMSE of an ensemble over all cases; see :class:`SpreadSkill`."""
    ens, ob = _ensemble(ensemble, obs, member_axis, min_members=2)
    m = ens.shape[-1]
    spread = float(np.sqrt(np.mean(ens.var(axis=-1, ddof=1))))
    err = float(np.sqrt(np.mean((ens.mean(axis=-1) - ob) ** 2)))
    ratio = err / (spread * np.sqrt((m + 1) / m)) if spread > 0 else np.inf
    return SpreadSkill(spread=spread, rmse=err, ratio=float(ratio), members=m)


def rank_histogram(ensemble, obs, member_axis: int = 0, seed: int = 0) -> np.ndarray:
    """Counts of the rank of ``obs`` among the ``M`` members, an array of length ``M + 1``.

    Rank 0: the observation lies below every member; rank ``M``: above every member. Ties
    (members equal to the observation, e.g. a deterministic closure repeated) are split at
    random (seeded), so a reliable ensemble gives a flat histogram (Hamill 2001); a U shape
    means too little spread, a dome too much.
    """
    ens, ob = _ensemble(ensemble, obs, member_axis)
    m = ens.shape[-1]
    below = np.sum(ens < ob[..., None], axis=-1).ravel()
    ties = np.sum(ens == ob[..., None], axis=-1).ravel()
    rng = np.random.default_rng(seed)
    ranks = below + np.floor(rng.random(below.shape) * (ties + 1)).astype(int)
    return np.bincount(ranks, minlength=m + 1)


def pit_gaussian(mu, sigma, obs) -> np.ndarray:
    """Probability integral transform ``Phi((obs - mu) / sigma)`` of Gaussian predictions."""
    mu, sigma, y = finite_array("mu", mu), finite_array("sigma", sigma), finite_array("obs", obs)
    if np.any(sigma <= 0):
        raise ValueError("sigma must be strictly positive")
    return stats.norm.cdf((y - mu) / sigma)


def pit_ensemble(ensemble, obs, member_axis: int = 0, seed: int = 0) -> np.ndarray:
    """Randomised PIT values of ``obs`` under an ensemble: ``(rank + U) / (M + 1)``.

    ``rank`` as in :func:`rank_histogram` (ties split at random) and ``U ~ U(0, 1)``, so the
    values are uniform on [0, 1] for a reliable ensemble. Shape: the cases, flattened.
    """
    ens, ob = _ensemble(ensemble, obs, member_axis)
    m = ens.shape[-1]
    rng = np.random.default_rng(seed)
    below = np.sum(ens < ob[..., None], axis=-1).ravel()
    ties = np.sum(ens == ob[..., None], axis=-1).ravel()
    ranks = below + np.floor(rng.random(below.shape) * (ties + 1))
    return (ranks + rng.random(ranks.shape)) / (m + 1)


def pit(cdf_values, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of PIT values (the predictive CDF at each observation), as a density.

    Returns ``(edges, density)``: ``bins + 1`` edges on [0, 1] and the density in each bin
    (1 everywhere for a calibrated forecast; a U shape means over-confident, a dome
    under-confident, a slope a biased forecast; Gneiting, Balabdaoui & Raftery 2007).
    """
    u = finite_array("cdf_values", cdf_values).ravel()
    if u.size == 0:
        raise ValueError("cdf_values must hold at least one value")
    if np.any((u < 0) | (u > 1)):
        raise ValueError("cdf_values must lie in [0, 1] (values of a predictive CDF)")
    bins = positive_int("bins", bins)
    density, edges = np.histogram(u, bins=bins, range=(0.0, 1.0), density=True)
    return edges, density


def exceedance_rates(obs, lower, upper) -> tuple[float, float]:
    """Fractions of ``obs`` below ``lower`` and above ``upper`` (arrays broadcast together).

    For a central interval of nominal coverage ``1 - 2 a`` both rates should be ``a``; a
    skewed error can hit the nominal coverage with very unequal tails, which the coverage
    alone does not show.
    """
    y, lo, hi = finite_array("obs", obs), finite_array("lower", lower), finite_array("upper", upper)
    try:
        below, above = np.broadcast_arrays(y < lo, y > hi)
    except ValueError as err:
        raise ValueError(f"obs {y.shape}, lower {lo.shape} and upper {hi.shape} must "
                         "broadcast together") from err
    if np.any(lo > hi):
        raise ValueError("lower must not exceed upper")
    return float(below.mean()), float(above.mean())


def quantile_reliability(quantiles, obs, taus, quantile_axis: int = -1) -> np.ndarray:
    """Observed frequency of ``obs <= q_tau`` for each nominal level ``tau``.

    ``quantiles`` holds the predicted quantiles with levels on ``quantile_axis`` and ``obs``
    the rest of its shape. A reliable forecast gives frequencies equal to ``taus`` (the
    diagonal of a reliability diagram).
    """
    q = finite_array("quantiles", quantiles)
    t = finite_array("taus", taus, ndim=1)
    if np.any((t <= 0) | (t >= 1)):
        raise ValueError("taus must lie strictly between 0 and 1")
    q = np.moveaxis(q, _axis("quantile_axis", quantile_axis, q.ndim), -1)
    if q.shape[-1] != t.size:
        raise ValueError(f"quantiles has {q.shape[-1]} levels on quantile_axis, taus {t.size}")
    y = finite_array("obs", obs)
    if y.shape != q.shape[:-1]:
        raise ValueError(f"obs must have the quantiles' shape without the level axis "
                         f"{q.shape[:-1]}, got {y.shape}")
    return np.mean(y[..., None] <= q, axis=tuple(range(y.ndim)))


# --------------------------------------------------------------------------------------------
# uncertainty of a verdict
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """A statistic with a confidence interval: ``estimate`` and ``[low, high]`` at ``level``."""

    estimate: float
    low: float
    high: float
    level: float

    def contains(self, value: float) -> bool:
        return bool(self.low <= value <= self.high)

    def overlaps(self, other: Interval) -> bool:
        return bool(self.low <= other.high and other.low <= self.high)

    def __str__(self) -> str:
        return (f"{self.estimate:.3g} [{self.low:.3g}, {self.high:.3g}] "
                f"({100 * self.level:.0f} %)")


def _records(samples) -> list[np.ndarray]:
    if not samples:
        raise ValueError("block_bootstrap needs at least one sample")
    out = []
    for i, s in enumerate(samples):
        arr = finite_array(f"samples[{i}]", s)
        if arr.ndim < 1 or arr.shape[0] < 2:
            raise ValueError(f"samples[{i}] must have time on axis 0 with at least 2 "
                             f"entries, got shape {arr.shape}")
        out.append(arr)
    return out


def _level(level) -> float:
    level = float(level)
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    return level


def _block_indices(n: int, block: int, rng) -> np.ndarray:
    """Indices of one moving-block resample of a record of length ``n`` (Kunsch 1989)."""
    n_blocks = -(-n // block)
    starts = rng.integers(0, n - block + 1, size=n_blocks)
    return (starts[:, None] + np.arange(block)).ravel()[:n]


def block_bootstrap(statistic: Callable, *samples, block: int, n_boot: int = 500,
                    level: float = 0.9, seed: int = 0, paired: bool = False) -> Interval:
    """Moving-block bootstrap confidence interval of ``statistic(*samples)``.

    Each sample is a record with time on axis 0 (further axes, e.g. space or members, travel
    with their time index). A resample glues randomly chosen blocks of ``block`` consecutive
    times until the record's length is reached, which keeps the autocorrelation within a
    block (Kunsch 1989; Wilks 2011, sec. 5.3.5); choose ``block`` longer than the
    decorrelation time (:func:`decorrelation_time`). Records are resampled independently,
    or with the same time indices when ``paired=True`` (then they must share their length).
    Returns the statistic on the original records and the percentile interval at ``level``.

    The percentile interval inherits the bias of the statistic: for a histogram distance,
    which sampling noise inflates, compare intervals with a :func:`noise_floor`, not with 0.
    """
    if not callable(statistic):
        raise ValueError(f"statistic must be callable, got {type(statistic).__name__}")
    records = _records(samples)
    block = positive_int("block", block)
    n_boot = positive_int("n_boot", n_boot, minimum=10)
    level = _level(level)
    for i, r in enumerate(records):
        if block > r.shape[0]:
            raise ValueError(f"block ({block}) is longer than samples[{i}] "
                             f"({r.shape[0]} times)")
    if paired and len({r.shape[0] for r in records}) > 1:
        raise ValueError("paired=True needs samples of equal length on axis 0")
    rng = np.random.default_rng(seed)
    estimate = float(statistic(*records))
    draws = np.empty(n_boot)
    for b in range(n_boot):
        if paired:
            idx = _block_indices(records[0].shape[0], block, rng)
            draws[b] = statistic(*(r[idx] for r in records))
        else:
            draws[b] = statistic(*(r[_block_indices(r.shape[0], block, rng)] for r in records))
    low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return Interval(estimate, float(low), float(high), level)


def noise_floor(distance: Callable, truth, n_a: int, n_b: int, gap: int = 0,
                n_draws: int = 20, level: float = 0.9, seed: int = 0) -> Interval:
    """Distance between independent truth segments at the sample sizes of a comparison.

    A closure's climate (``n_b`` times) compared with a truth record (``n_a`` times) differs
    from it even for a perfect closure, because both are finite samples; how much depends on
    ``n_a`` and ``n_b`` (histogram distances fall steeply with record length). This draws
    ``n_draws`` pairs of disjoint segments of lengths ``n_a`` and ``n_b``, separated by
    ``gap`` times, from one long ``truth`` record (time on axis 0) and returns the mean of
    ``distance(segment_a, segment_b)`` with the ``level`` range of the draws: a comparison
    within this range is indistinguishable from sampling noise.
    """
    if not callable(distance):
        raise ValueError(f"distance must be callable, got {type(distance).__name__}")
    rec = finite_array("truth", truth)
    if rec.ndim < 1:
        raise ValueError("truth must have time on axis 0")
    n_a, n_b = positive_int("n_a", n_a), positive_int("n_b", n_b)
    gap = positive_int("gap", gap, minimum=0)
    n_draws = positive_int("n_draws", n_draws)
    level = _level(level)
    n = rec.shape[0]
    if n_a + n_b + gap > n:
        raise ValueError(f"truth ({n} times) is shorter than n_a + gap + n_b = "
                         f"{n_a + gap + n_b}: run a longer truth for the noise floor")
    rng = np.random.default_rng(seed)
    values = np.empty(n_draws)
    for d in range(n_draws):
        start = rng.integers(0, n - (n_a + n_b + gap) + 1)
        first, second = slice(start, start + n_a), slice(start + n_a + gap,
                                                         start + n_a + gap + n_b)
        if rng.random() < 0.5:  # either segment may come first in time
            first = slice(start, start + n_b)
            second = slice(start + n_b + gap, start + n_b + gap + n_a)
            values[d] = distance(rec[second], rec[first])
        else:
            values[d] = distance(rec[first], rec[second])
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return Interval(float(values.mean()), float(low), float(high), level)


def autocorrelation(x, max_lag: int) -> np.ndarray:
    """Autocorrelation of ``x`` (time on axis 0, further axes pooled) at lags ``0..max_lag``."""
    x = finite_array("x", x)
    if x.ndim < 1:
        raise ValueError("x must have time on its first axis")
    max_lag = positive_int("max_lag", max_lag, minimum=0)
    if max_lag >= x.shape[0]:
        raise ValueError(f"max_lag must be shorter than the series ({x.shape[0]}), "
                         f"got {max_lag}")
    anom = x - x.mean(axis=0)
    var = np.mean(anom * anom)
    if var == 0:
        raise ValueError("x is constant; its autocorrelation is undefined")
    n = x.shape[0]
    return np.array([np.mean(anom[lag:] * anom[:n - lag]) / var for lag in range(max_lag + 1)])


def decorrelation_time(x, dt: float = 1.0, max_lag: int | None = None) -> float:
    """First lag (in units of ``dt``) at which the autocorrelation of ``x`` drops below 1/e.

    A practical block length for :func:`block_bootstrap` is a few of these. Raises when the
    autocorrelation stays above 1/e up to ``max_lag`` (default: half the record).
    """
    x = finite_array("x", x)
    dt = positive("dt", dt)
    max_lag = x.shape[0] // 2 if max_lag is None else max_lag
    acf = autocorrelation(x, max_lag)
    below = np.flatnonzero(acf < np.exp(-1.0))
    if below.size == 0:
        raise ValueError(f"the autocorrelation stays above 1/e up to max_lag={max_lag}: "
                         "the record is too short to estimate a decorrelation time")
    return float(below[0] * dt)
