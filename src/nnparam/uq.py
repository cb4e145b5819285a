"""Uncertainty of a learned closure: heteroscedastic nets, deep ensembles and quantile regression.

Two kinds of uncertainty, two tools:

* **aleatoric**: the spread of the subgrid tendency ``y`` that no function of the resolved state
  ``x`` can remove. A *heteroscedastic* network predicts a mean ``mu(x)`` and a variance
  ``var(x) > 0`` and is trained with the Gaussian negative log-likelihood; a *quantile*
  network predicts several conditional quantiles and is trained with the pinball loss.
* **epistemic**: what the network does not know because it saw too few or no samples near
  ``x``. A *deep ensemble* of ``M`` members (Lakshminarayanan et al. 2017: each trained on
  the full training set from its own random initialisation; ``bootstrap=False``) disagrees
  where the data are thin; training each member on a bootstrap resample instead
  (``bootstrap=True``) gives a *bagged* ensemble.

With ``mu`` and ``var`` of shape ``(M, N)`` (member, sample) the law of total variance splits the
variance of the equally weighted Gaussian mixture into ``mean_m var`` (aleatoric) plus the
population variance ``mean_m (mu - mean_m mu)**2`` (epistemic); see :func:`decompose`.
Units: ``mu`` and quantiles carry the units of ``y``, variances the units of ``y`` squared.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ._validate import finite_array, positive, positive_int
from .nn import Standardizer, mlp, train

__all__ = [
    "HeteroscedasticMLP", "Ensemble", "QuantileMLP", "QuantileModel",
    "gaussian_nll", "gaussian_nll_loss", "decompose", "sample_mixture", "ood_flag",
    "pinball_loss", "pinball_loss_torch", "coverage", "train_ensemble", "fit_quantiles",
    "cubic_toy", "conformal_margin", "mixture_cdf",
]

_LOG_2PI = math.log(2.0 * math.pi)


# --------------------------------------------------------------------------- input checks
def _features(name: str, x) -> np.ndarray:
    """Inputs as a 2-D ``(n_samples, n_features)`` float array (1-D means one feature)."""
    arr = finite_array(name, x)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D (n_samples, n_features), got {arr.shape}")
    return arr


def _target(name: str, y, n: int | None = None) -> np.ndarray:
    arr = finite_array(name, y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (n_samples,), got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} must have {n} samples (one per row of x), got {arr.shape[0]}")
    return arr


def _scaled(scale: Standardizer, x) -> np.ndarray:
    """Standardise new inputs with the training statistics, checking the feature count."""
    arr = _features("x", x)
    if arr.shape[1] != scale.mean.size:
        raise ValueError(f"x must have {scale.mean.size} features (as in training), "
                         f"got {arr.shape[1]}")
    return scale.transform(arr)


def _taus(taus) -> np.ndarray:
    arr = np.atleast_1d(finite_array("tau", taus))
    if arr.ndim != 1:
        raise ValueError(f"tau must be a number or a 1-D sequence, got shape {arr.shape}")
    if np.any(arr <= 0) or np.any(arr >= 1):
        raise ValueError(f"tau must lie strictly between 0 and 1, got {arr.tolist()}")
    return arr


def _members(mu, var) -> tuple[np.ndarray, np.ndarray]:
    mu = finite_array("mu", mu, ndim=2)
    var = finite_array("var", var, ndim=2)
    if var.shape != mu.shape:
        raise ValueError(f"var must have the shape of mu {mu.shape} (members, samples), "
                         f"got {var.shape}")
    if mu.shape[0] < 2:
        raise ValueError(f"mu must hold M >= 2 ensemble members along axis 0, got M={mu.shape[0]}")
    if np.any(var < 0):
        raise ValueError("var must be non-negative (variances), got a negative value")
    return mu, var


# --------------------------------------------------------------------------- Gaussian NLL
def gaussian_nll(y, mu, var) -> float:
    """Mean Gaussian negative log-likelihood ``0.5*(log(2 pi var) + (y - mu)**2 / var)``.

    ``y``, ``mu`` and ``var`` are arrays of one shape (``var`` strictly positive, in units of
    ``y`` squared). The constant ``0.5 log(2 pi)`` is included, so the value is the mean of
    ``-log p(y)`` in nats per sample for densities in units of ``1/y``.
    """
    y = finite_array("y", y)
    mu = finite_array("mu", mu)
    var = finite_array("var", var)
    if mu.shape != y.shape:
        raise ValueError(f"mu must have the shape of y {y.shape}, got {mu.shape}")
    if var.shape != y.shape:
        raise ValueError(f"var must have the shape of y {y.shape}, got {var.shape}")
    if np.any(var <= 0):
        raise ValueError("var must be strictly positive to evaluate a likelihood")
    return float(np.mean(0.5 * (_LOG_2PI + np.log(var) + (y - mu) ** 2 / var)))


def gaussian_nll_loss(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Torch twin of :func:`gaussian_nll` for training: ``output`` is ``[mu | var]`` per row.

    ``output`` has shape ``(n, 2 k)`` as returned by :class:`HeteroscedasticMLP` and ``y`` has
    shape ``(n, k)``. Use as ``nnparam.nn.train(model, x, y, loss_fn=gaussian_nll_loss)``.
    """
    k = y.shape[-1]
    if output.shape[-1] != 2 * k:
        raise ValueError(f"output must have 2*{k} columns [mu | var], got {output.shape[-1]}")
    mu, var = output[..., :k], output[..., k:]
    return 0.5 * (_LOG_2PI + torch.log(var) + (y - mu) ** 2 / var).mean()


class HeteroscedasticMLP(nn.Module):
    """An MLP whose output rows are ``[mu | var]``: a mean and a strictly positive variance.

    The variance head is ``softplus(raw) + min_var``: smooth, positive, and floored so that
    the likelihood cannot reward a collapse of the variance onto single training points.
    Both live in the (standardised) units the network is trained in.
    """

    def __init__(self, n_in: int, n_out: int = 1, hidden: Sequence[int] = (32, 32),
                 activation: str = "tanh", seed: int = 0, min_var: float = 1e-4):
        super().__init__()
        self.n_out = positive_int("n_out", n_out)
        self.min_var = positive("min_var", min_var)
        self.body = mlp(n_in, 2 * self.n_out, hidden=hidden, activation=activation, seed=seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raw = self.body(x)
        mu, raw_var = raw[..., :self.n_out], raw[..., self.n_out:]
        var = nn.functional.softplus(raw_var) + self.min_var
        return torch.cat([mu, var], dim=-1)


# --------------------------------------------------------------------------- ensembles
class _StackedHeteroscedastic(nn.Module):
    """``M`` heteroscedastic MLPs of one architecture evaluated together (batched matmuls).

    Built from ``M`` :class:`HeteroscedasticMLP` members, whose weights it stacks along a new
    leading axis, so member ``m`` keeps its own seeded initialisation. ``forward(x)`` with ``x``
    of shape ``(N, n_in)`` returns ``(M, N, 2)``: ``[mu, var]`` of every member at every input.
    Training the stack on the sum of the members' losses gives each member exactly the
    gradients (and Adam steps) it would get alone, at a fraction of the per-step overhead.
    """

    def __init__(self, members: list[HeteroscedasticMLP]):
        super().__init__()
        linears = [[mod for mod in m.body if isinstance(mod, nn.Linear)] for m in members]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([lin[k].weight.detach().T for lin in linears]))
            for k in range(len(linears[0])))
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([lin[k].bias.detach()[None, :] for lin in linears]))
            for k in range(len(linears[0])))
        self.activation = next(mod for mod in members[0].body if not isinstance(mod, nn.Linear)) \
            if len(linears[0]) > 1 else nn.Identity()
        self.min_var = members[0].min_var

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.expand(len(self.weights[0]), *x.shape)
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b, h, w)
            if k < last:
                h = self.activation(h)
        var = nn.functional.softplus(h[..., 1:2]) + self.min_var
        return torch.cat([h[..., 0:1], var], dim=-1)

    def member(self, m: int, template: HeteroscedasticMLP) -> HeteroscedasticMLP:
        """Copy the weights of member ``m`` into ``template`` (same architecture) and return it."""
        linears = [mod for mod in template.body if isinstance(mod, nn.Linear)]
        with torch.no_grad():
            for lin, w, b in zip(linears, self.weights, self.biases, strict=True):
                lin.weight.copy_(w[m].T)
                lin.bias.copy_(b[m, 0])
        return template.eval()


def _weighted_nll(counts: torch.Tensor, mean_only: bool = False):
    """Loss of the stack: each member's Gaussian NLL weighted by its bootstrap counts.

    ``counts`` has shape ``(M, N)``: how many times sample ``i`` appears in member ``m``'s
    resampled training set. Weighting by counts equals training on the resampled copy.
    Validation data (scored without gradients) count every sample once.
    With ``mean_only`` the loss is the squared error of the means (the warm-up stage).
    """
    def loss_fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        mu, var = out[..., 0], out[..., 1]
        if mean_only:
            nll = 0.5 * (y[:, 0] - mu) ** 2
        else:
            nll = 0.5 * (_LOG_2PI + torch.log(var) + (y[:, 0] - mu) ** 2 / var)
        if not torch.is_grad_enabled():  # nnparam.nn.train scores validation without grad
            return nll.mean(dim=1).sum()
        return (counts * nll).sum(dim=1).div(counts.shape[1]).sum()

    return loss_fn


@dataclass
class Ensemble:
    """A bootstrap deep ensemble of heteroscedastic networks with its input/output scalings."""

    net: _StackedHeteroscedastic
    x_scale: Standardizer
    y_mean: float
    y_std: float
    counts: np.ndarray
    config: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Number of members ``M``."""
        return int(self.counts.shape[0])

    def member(self, m: int) -> HeteroscedasticMLP:
        """Member ``m`` as a stand-alone :class:`HeteroscedasticMLP` (standardised units)."""
        if isinstance(m, bool) or int(m) != m or not 0 <= int(m) < self.size:
            raise ValueError(f"m must be a member index in [0, {self.size}), got {m!r}")
        template = HeteroscedasticMLP(self.x_scale.mean.size, 1, **self.config)
        return self.net.member(int(m), template)

    def predict(self, x) -> tuple[np.ndarray, np.ndarray]:
        """Member means and variances, each of shape ``(M, N)``, in units of ``y`` (squared)."""
        z = torch.as_tensor(_scaled(self.x_scale, x), dtype=torch.float32)
        with torch.no_grad():
            out = self.net(z).numpy().astype(float)
        return out[..., 0] * self.y_std + self.y_mean, out[..., 1] * self.y_std**2


def train_ensemble(x, y, *, members: int = 5, hidden: Sequence[int] = (32, 32),
                   activation: str = "tanh", epochs: int = 1000, lr: float = 1e-2,
                   weight_decay: float = 0.0, bootstrap: bool = True, min_var: float = 1e-4,
                   warmup: int = 0, validation: tuple | None = None, patience: int = 200,
                   seed: int = 0) -> Ensemble:
    """Train ``members`` heteroscedastic MLPs on ``(x, y)`` with the Gaussian NLL.

    Member ``m`` starts from initial weights seeded with ``seed + m`` and, with
    ``bootstrap=True``, sees ``N`` samples drawn with replacement from the ``N`` training
    samples (generator seeded with ``seed + m``), implemented as per-sample counts. Inputs
    and target are standardised with the statistics of the full training set, shared by all
    members. ``x`` has shape ``(N,)`` or ``(N, n_features)``, ``y`` shape ``(N,)``.
    ``warmup > 0`` first fits the means alone by squared error for that many epochs, so the
    variance head does not absorb an early misfit of the mean (a common failure of the NLL).
    ``validation=(x_val, y_val)`` enables early stopping on the members' summed NLL over that
    (held-out, time-contiguous) block. Members are trained side by side in one batched network
    (:class:`_StackedHeteroscedastic`), which changes the speed, not the result.
    """
    members = positive_int("members", members, minimum=2)
    xa = _features("x", x)
    ya = _target("y", y, xa.shape[0])
    xs = Standardizer(xa)
    y_mean, y_std = float(ya.mean()), float(ya.std()) or 1.0
    zx, zy = xs.transform(xa), ((ya - y_mean) / y_std)[:, None]
    val = None
    if validation is not None:
        xv = _features("validation[0]", validation[0])
        yv = _target("validation[1]", validation[1], xv.shape[0])
        if xv.shape[1] != xa.shape[1]:
            raise ValueError(f"validation[0] must have {xa.shape[1]} features, got {xv.shape[1]}")
        val = (xs.transform(xv), ((yv - y_mean) / y_std)[:, None])
    n = xa.shape[0]
    counts = np.ones((members, n))
    if bootstrap:
        for m in range(members):
            idx = np.random.default_rng(seed + m).integers(0, n, size=n)
            counts[m] = np.bincount(idx, minlength=n)
    config = {"hidden": tuple(hidden), "activation": activation, "min_var": min_var}
    nets = [HeteroscedasticMLP(xa.shape[1], 1, seed=seed + m, **config) for m in range(members)]
    stack = _StackedHeteroscedastic(nets)
    count_t = torch.as_tensor(counts, dtype=torch.float32)
    if warmup:
        train(stack, zx, zy, epochs=positive_int("warmup", warmup), lr=lr,
              weight_decay=weight_decay, loss_fn=_weighted_nll(count_t, mean_only=True),
              seed=seed)
    train(stack, zx, zy, epochs=epochs, lr=lr, weight_decay=weight_decay, validation=val,
          patience=patience, loss_fn=_weighted_nll(count_t),
          seed=seed)
    return Ensemble(stack.eval(), xs, y_mean, y_std, counts, config)


def decompose(mu, var) -> tuple[np.ndarray, np.ndarray]:
    """Split the predictive variance of an ensemble into ``(aleatoric, epistemic)``.

    ``mu`` and ``var`` have shape ``(M, N)``: the mean and variance predicted by each of the
    ``M >= 2`` members at ``N`` inputs. The predictive distribution is the equally weighted
    mixture ``(1/M) sum_m N(mu_m, var_m)``; by the law of total variance its variance is

    * aleatoric ``= (1/M) sum_m var_m`` (the noise the members agree is there), plus
    * epistemic ``= (1/M) sum_m (mu_m - mu_bar)**2`` (the members' disagreement). This is the
      *population* variance (divisor ``M``, not ``M - 1``): it is the variance of the mixture,
      not an estimate of the variance of some larger population of networks.

    Both outputs have shape ``(N,)`` and the units of ``var``.
    """
    mu, var = _members(mu, var)
    return var.mean(axis=0), mu.var(axis=0)


def sample_mixture(mu, var, n_samples: int, seed: int = 0) -> np.ndarray:
    """Draw ``n_samples`` values at each input from the equally weighted Gaussian mixture.

    Returns an array ``(n_samples, N)``: each draw picks a member uniformly at random, then a
    Gaussian value with that member's mean and variance. An independent check of
    :func:`decompose`: ``samples.var(axis=0)`` tends to ``aleatoric + epistemic``.
    """
    mu, var = _members(mu, var)
    n_samples = positive_int("n_samples", n_samples)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, mu.shape[0], size=(n_samples, mu.shape[1]))
    cols = np.arange(mu.shape[1])
    return mu[pick, cols] + np.sqrt(var[pick, cols]) * rng.standard_normal(pick.shape)


def ood_flag(epistemic, reference, quantile: float = 0.99, factor: float = 1.0):
    """Flag inputs whose epistemic variance exceeds what the ensemble shows on familiar data.

    The threshold is ``factor`` times the ``quantile`` of ``reference``: the epistemic
    variance of the same ensemble on in-distribution inputs (its training or validation set).
    Returns ``(flag, threshold)`` with ``flag`` a boolean array of the shape of ``epistemic``.
    """
    ep = finite_array("epistemic", epistemic)
    ref = finite_array("reference", reference)
    if ref.size == 0:
        raise ValueError("reference must hold at least one epistemic variance")
    if np.any(ep < 0):
        raise ValueError("epistemic must be non-negative (a variance)")
    if np.any(ref < 0):
        raise ValueError("reference must be non-negative (a variance)")
    q = float(quantile)
    if not 0 < q <= 1:
        raise ValueError(f"quantile must lie in (0, 1], got {quantile!r}")
    threshold = positive("factor", factor) * float(np.quantile(ref, q))
    return ep > threshold, threshold


# --------------------------------------------------------------------------- quantiles
def pinball_loss(y, q, tau):
    """Pinball (quantile) loss ``mean(max(tau * u, (tau - 1) * u))`` with ``u = y - q``.

    Under-predictions (``y > q``) cost ``tau`` per unit, over-predictions ``1 - tau``; its
    minimiser over constants is the ``tau``-quantile of ``y``. With ``y`` of shape ``(N,)``
    and a scalar ``tau``, ``q`` has shape ``(N,)`` and a float is returned; with ``K`` levels
    ``tau`` (1-D), ``q`` has shape ``(N, K)`` and an array ``(K,)`` of losses is returned.
    Units: those of ``y``.
    """
    scalar = np.ndim(tau) == 0
    taus = _taus(tau)
    ya = _target("y", y)
    qa = finite_array("q", q)
    expected = ya.shape if scalar else (ya.shape[0], taus.size)
    if qa.shape != expected:
        raise ValueError(f"q must have shape {expected} for y of shape {ya.shape} and "
                         f"{taus.size} level(s) tau, got {qa.shape}")
    if scalar:
        u, levels = ya - qa, taus[0]
    else:
        u, levels = ya[:, None] - qa, taus
    loss = np.maximum(levels * u, (levels - 1.0) * u).mean(axis=0)
    return float(loss) if scalar else loss


def pinball_loss_torch(taus):
    """A training loss ``loss_fn(q, y)`` summing the mean pinball losses over ``K`` levels.

    ``q`` has shape ``(n, K)`` (one column per level of ``taus``), ``y`` shape ``(n, 1)``.
    """
    levels = torch.as_tensor(_taus(taus), dtype=torch.float32)

    def loss_fn(q: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        u = y - q
        t = levels.to(q.dtype)
        return torch.maximum(t * u, (t - 1.0) * u).mean(dim=0).sum()

    return loss_fn


class QuantileMLP(nn.Module):
    """An MLP that predicts ``K`` increasing quantiles: they cannot cross by construction.

    The network outputs an anchor (the quantile at the level closest to 0.5) and ``K - 1``
    raw increments; the other quantiles are the anchor plus (above) or minus (below)
    cumulative sums of ``softplus`` of the increments, so ``q[:, k+1] > q[:, k]`` always.
    """

    def __init__(self, n_in: int, taus, hidden: Sequence[int] = (32, 32),
                 activation: str = "tanh", seed: int = 0):
        super().__init__()
        levels = _taus(taus)
        if np.any(np.diff(levels) <= 0):
            raise ValueError(f"tau must be strictly increasing, got {levels.tolist()}")
        self.taus = levels
        self.anchor = int(np.argmin(np.abs(levels - 0.5)))
        self.body = mlp(n_in, levels.size, hidden=hidden, activation=activation, seed=seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raw = self.body(x)
        a = self.anchor
        centre = raw[..., a:a + 1]
        steps = nn.functional.softplus(raw)
        above = centre + torch.cumsum(steps[..., a + 1:], dim=-1)
        below = centre - torch.flip(torch.cumsum(torch.flip(steps[..., :a], [-1]), dim=-1), [-1])
        return torch.cat([below, centre, above], dim=-1)


@dataclass
class QuantileModel:
    """A trained :class:`QuantileMLP` with its scalings; ``predict`` returns ``(N, K)``."""

    model: QuantileMLP
    x_scale: Standardizer
    y_mean: float
    y_std: float

    @property
    def taus(self) -> np.ndarray:
        return self.model.taus

    def predict(self, x) -> np.ndarray:
        """Quantiles at the levels ``taus``, shape ``(N, K)``, in units of ``y``."""
        z = torch.as_tensor(_scaled(self.x_scale, x), dtype=torch.float32)
        with torch.no_grad():
            out = self.model(z).numpy().astype(float)
        return out * self.y_std + self.y_mean


def fit_quantiles(x, y, taus=(0.1, 0.5, 0.9), *, hidden: Sequence[int] = (32, 32),
                  activation: str = "tanh", epochs: int = 1000, lr: float = 1e-2,
                  validation: tuple | None = None, patience: int = 200,
                  seed: int = 0) -> QuantileModel:
    """Train a non-crossing :class:`QuantileMLP` with the summed pinball loss.

    ``x`` has shape ``(N,)`` or ``(N, n_features)``, ``y`` shape ``(N,)``, ``taus`` strictly
    increasing levels in (0, 1). Standardising ``y`` by a positive scale maps quantiles to
    quantiles, so the network is trained in standardised units and predicts in those of ``y``.
    """
    levels = _taus(taus)
    xa = _features("x", x)
    ya = _target("y", y, xa.shape[0])
    xs = Standardizer(xa)
    y_mean, y_std = float(ya.mean()), float(ya.std()) or 1.0
    val = None
    if validation is not None:
        xv = _features("validation[0]", validation[0])
        yv = _target("validation[1]", validation[1], xv.shape[0])
        val = (xs.transform(xv), ((yv - y_mean) / y_std)[:, None])
    model = QuantileMLP(xa.shape[1], levels, hidden=hidden, activation=activation, seed=seed)
    train(model, xs.transform(xa), ((ya - y_mean) / y_std)[:, None], epochs=epochs, lr=lr,
          validation=val, patience=patience, loss_fn=pinball_loss_torch(levels), seed=seed)
    return QuantileModel(model.eval(), xs, y_mean, y_std)


def mixture_cdf(mu, var, y) -> np.ndarray:
    """CDF of the equally weighted Gaussian mixture ``(1/M) sum_m N(mu_m, var_m)`` at ``y``.

    ``mu`` and ``var`` (M, N) as in :func:`decompose`, ``y`` (N,). Returns (N,) values in
    [0, 1]: the probability integral transform of ``y`` under the ensemble's predictive
    distribution (uniform for a calibrated ensemble).
    """
    mu, var = _members(mu, var)
    ya = _target("y", y, mu.shape[1])
    if np.any(var <= 0):
        raise ValueError("var must be strictly positive to evaluate a CDF")
    z = (ya[None, :] - mu) / np.sqrt(var)
    return np.mean(0.5 * (1.0 + torch.special.erf(torch.as_tensor(z / math.sqrt(2.0))).numpy()),
                   axis=0)


def conformal_margin(y_cal, lower_cal, upper_cal, level: float = 0.8) -> float:
    """Split-conformal widening of an interval, calibrated on held-out data (CQR).

    The conformity score of a calibration sample is ``max(lower - y, y - upper)`` (negative
    inside the interval); the margin is its ``ceil((n + 1) level) / n`` empirical quantile,
    so ``[lower - margin, upper + margin]`` covers a new sample with probability at least
    ``level`` when calibration and new samples are exchangeable (Romano et al. 2019). Hours
    of an autocorrelated record are not exchangeable: then the guarantee is approximate.
    All arrays (n,) in the units of ``y``; returns the margin (may be negative: shrink).
    """
    ya = _target("y_cal", y_cal)
    lo = _target("lower_cal", lower_cal, ya.shape[0])
    hi = _target("upper_cal", upper_cal, ya.shape[0])
    level = float(level)
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    n = ya.shape[0]
    rank = math.ceil((n + 1) * level)
    if rank > n:
        raise ValueError(f"y_cal holds {n} samples, too few for level {level}: need at "
                         f"least {math.ceil(level / (1 - level))}")
    scores = np.sort(np.maximum(lo - ya, ya - hi))
    return float(scores[rank - 1])


def coverage(y, lower, upper) -> float:
    """Fraction of samples with ``lower <= y <= upper`` (all of shape ``(N,)``)."""
    ya = _target("y", y)
    lo = _target("lower", lower, ya.shape[0])
    hi = _target("upper", upper, ya.shape[0])
    if np.any(lo > hi):
        raise ValueError("lower must not exceed upper (crossing quantiles)")
    return float(np.mean((ya >= lo) & (ya <= hi)))


# --------------------------------------------------------------------------- reference toy
def cubic_toy(n: int = 20, noise_std: float = 3.0, x_range=(-4.0, 4.0),
              seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The regression toy of Lakshminarayanan et al. (2017): ``y = x**3 + eps``.

    ``n`` inputs drawn uniformly on ``x_range`` (sorted) and ``eps ~ N(0, noise_std**2)``.
    Returns ``(x, y)``, each of shape ``(n,)``; the true aleatoric variance is ``noise_std**2``.
    """
    n = positive_int("n", n)
    noise_std = positive("noise_std", noise_std)
    bounds = finite_array("x_range", x_range, ndim=1)
    if bounds.shape != (2,) or not bounds[1] > bounds[0]:
        raise ValueError(f"x_range must be (low, high) with high > low, got {x_range!r}")
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(bounds[0], bounds[1], size=n))
    return x, x**3 + noise_std * rng.standard_normal(n)
