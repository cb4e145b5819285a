"""Opening the box: what a learned closure responds to, and what it does to the coupled model.

Three questions a modelling centre asks of a closure ``P`` before trusting it:

* **How does it respond?** The Jacobian ``dP_i/dx_j`` (:func:`jacobian`), by automatic
  differentiation for a :class:`~nnparam.closure.Closure` (``closure.torch``) and by central
  differences for any other callable. For a stencil closure it is banded (locality), and its
  diagonal is the sign of the feedback (:func:`band_profile`).
* **What does the coupled model do with it?** The linear response of the coupled tendency
  ``host(x) + P(x)`` at given states (:func:`coupled_jacobian`, :func:`linear_response`), and
  the factor by which one explicit time step multiplies each eigen-direction
  (:func:`step_amplification`: the many-variable version of the stability chapter's
  ``1 + h (k - lam)``).
* **Which inputs carry the prediction?** Gradient x input and integrated gradients
  (Sundararajan et al. 2017) of the per-column network (:func:`gradient_x_input`,
  :func:`integrated_gradients`), and permutation importance that shuffles whole
  time-contiguous blocks (:func:`permutation_importance`).

The two attributions are a dozen lines each and are tested against closed forms (linear
models, products, completeness), so they are written here rather than taken from a large
attribution library. Equation discovery (sparse regression over a library of candidate terms,
with pysindy) lives in :mod:`nnparam.discovery` and is re-exported here.

Shapes: a state ``x`` is ``(n,)`` or a batch ``(M, n)`` of independent states (cells on the
last axis); per-column features are ``(N, F)``. Units are those of the closure: a Jacobian
entry is (output units) / (input units).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ._validate import finite_array, positive, positive_int
from .closure import Closure
from .discovery import (  # noqa: F401  (re-exported: one entry point for the chapter)
    SparseModel,
    TermLibrary,
    fit_sparse,
    sparsest_within,
    threshold_path,
)
from .evaluation import r2_score

__all__ = [
    "jacobian", "band_profile", "coupled_jacobian", "linear_response", "step_amplification",
    "feature_function", "predict_features", "gradient_x_input", "integrated_gradients",
    "Importance", "permutation_importance", "SparseModel", "TermLibrary", "fit_sparse",
    "threshold_path", "sparsest_within",
]


# ---------------------------------------------------------------------------------------------
# Jacobians
# ---------------------------------------------------------------------------------------------
def _state(name: str, x) -> tuple[np.ndarray, bool]:
    arr = finite_array(name, x)
    if arr.ndim not in (1, 2) or arr.shape[-1] < 1:
        raise ValueError(f"{name} must have shape (n,) or (M, n), got {arr.shape}")
    return (arr[None] if arr.ndim == 1 else arr), arr.ndim == 1


def _fixed_fields(others, batch):
    return [np.broadcast_to(finite_array(f"fields[{i}]", f), batch.shape)
            for i, f in enumerate(others)]


def jacobian(func, x, *others, wrt: int = 0, eps: float = 1e-4) -> np.ndarray:
    """Jacobian ``J[..., i, j] = d func(x)_i / d x_j`` of a closure at the states ``x``.

    Parameters
    ----------
    func : a :class:`~nnparam.closure.Closure` (differentiated exactly by torch autograd), or
        any callable mapping fields ``(M, n)`` to ``(M, n)`` (central differences with step
        ``eps`` times ``max(1, |x_j|)``; exact for quadratic functions up to round-off).
    x : the field to differentiate with respect to, ``(n,)`` or ``(M, n)``.
    others : further input fields of ``func`` held fixed (broadcast to ``x``); ``wrt`` is the
        position of ``x`` among all of them (``func(*fields)`` with ``fields[wrt] = x``).

    Returns ``(n, n)`` for one state, ``(M, n, n)`` for a batch; the members of a batch must
    not interact (true of every closure: leading axes are independent samples).
    """
    batch, single = _state("x", x)
    fixed = _fixed_fields(others, batch)
    n_fields = 1 + len(fixed)
    wrt = positive_int("wrt", wrt, minimum=0)
    if wrt >= n_fields:
        raise ValueError(f"wrt must index one of the {n_fields} fields, got {wrt}")
    eps = positive("eps", eps)

    def fields_with(value):
        out = list(fixed)
        out.insert(wrt, value)
        return out

    M, n = batch.shape
    if isinstance(func, Closure):
        xt = torch.tensor(batch, dtype=func.dtype, requires_grad=True)
        tensors = fields_with(xt)
        tensors = [t if t is xt else torch.as_tensor(t, dtype=func.dtype) for t in tensors]
        out = func.torch(*tensors)
        if tuple(out.shape) != (M, n):
            raise ValueError(f"func must return one value per cell, shape {(M, n)}, got "
                             f"{tuple(out.shape)}")
        rows = []
        for i in range(n):  # one backward pass per output cell, for all members at once
            (grad,) = torch.autograd.grad(out[:, i].sum(), xt, retain_graph=i < n - 1)
            rows.append(grad.detach().numpy().astype(float))
        jac = np.stack(rows, axis=1)  # (M, i, j)
    else:
        if not callable(func):
            raise ValueError(f"func must be a Closure or a callable, got {type(func).__name__}")
        step = eps * np.maximum(1.0, np.abs(batch))  # (M, n)
        jac = np.empty((M, n, n))
        for j in range(n):
            dx = np.zeros_like(batch)
            dx[:, j] = step[:, j]
            up = np.asarray(func(*fields_with(batch + dx)), dtype=float)
            down = np.asarray(func(*fields_with(batch - dx)), dtype=float)
            if up.shape != (M, n):
                raise ValueError(f"func must return one value per cell, shape {(M, n)}, got "
                                 f"{up.shape}")
            jac[:, :, j] = (up - down) / (2 * step[:, j:j + 1])
    return jac[0] if single else jac


def band_profile(jac, width: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Mean Jacobian along the periodic diagonals of a stencil closure.

    ``jac`` is ``(n, n)`` or ``(M, n, n)``. Returns ``(offsets, mean, outside)``: the offsets
    ``-width..width``, the mean of ``J[i, i + o]`` over cells and members for each offset
    ``o`` (so ``mean[width]`` is the diagonal, the local feedback), and the largest
    ``|J[i, j]|`` outside the band, which is zero for a closure of stencil half width
    ``width`` (locality).
    """
    jac = finite_array("jac", jac)
    if jac.ndim == 2:
        jac = jac[None]
    if jac.ndim != 3 or jac.shape[1] != jac.shape[2]:
        raise ValueError(f"jac must have shape (n, n) or (M, n, n), got {jac.shape}")
    n = jac.shape[-1]
    width = positive_int("width", width, minimum=0)
    if 2 * width + 1 > n:
        raise ValueError(f"width={width} needs 2 width + 1 <= n = {n} cells")
    offsets = np.arange(-width, width + 1)
    rows = np.arange(n)
    mean = np.array([jac[:, rows, (rows + o) % n].mean() for o in offsets])
    mask = np.ones((n, n), bool)
    for o in offsets:
        mask[rows, (rows + o) % n] = False
    outside = float(np.abs(jac[:, mask]).max()) if mask.any() else 0.0
    return offsets, mean, outside


def coupled_jacobian(host: Callable, closure, x, eps: float = 1e-4) -> np.ndarray:
    """Jacobian of the coupled tendency ``host(x) + closure(x)`` at the states ``x``.

    ``host`` is the resolved tendency, a numpy callable ``(M, n) -> (M, n)`` (differentiated
    by central differences: exact for the quadratic advection of Lorenz-96 or Burgers);
    ``closure`` is ``None`` (the host alone), a :class:`~nnparam.closure.Closure` or a
    callable (see :func:`jacobian`). Shapes as in :func:`jacobian`.
    """
    if not callable(host):
        raise ValueError(f"host must be a callable tendency, got {type(host).__name__}")
    jac = jacobian(host, x, eps=eps)
    if closure is not None:
        jac = jac + jacobian(closure, x, eps=eps)
    return jac


def linear_response(host: Callable, closure, x, eps: float = 1e-4) -> np.ndarray:
    """Eigenvalues of the coupled Jacobian at each state, largest real part first.

    The real part is the instantaneous growth (> 0) or decay (< 0) rate of a small
    perturbation along that eigenvector (units 1/time). Returns complex ``(n,)`` or ``(M, n)``.
    """
    jac = coupled_jacobian(host, closure, x, eps=eps)
    eig = np.linalg.eigvals(jac)
    order = np.argsort(-eig.real, axis=-1)
    return np.take_along_axis(eig, order, axis=-1)


_STABILITY_POLYNOMIALS = {  # R(z) of the explicit schemes for dy/dt = lam y, z = h lam
    "euler": (1.0, 1.0),
    "rk2": (1.0, 1.0, 1 / 2),
    "rk3": (1.0, 1.0, 1 / 2, 1 / 6),
    "rk4": (1.0, 1.0, 1 / 2, 1 / 6, 1 / 24),
}


def step_amplification(eigenvalues, dt: float, scheme: str = "rk4") -> np.ndarray:
    """``|R(dt lam)|``: growth of each eigen-direction over one explicit step of length ``dt``.

    ``R`` is the stability polynomial of the scheme (``euler``: ``1 + z``, the
    ``1 + h (k - lam)`` of the stability chapter; ``rk2``, ``rk3``; ``rk4``:
    ``1 + z + z^2/2 + z^3/6 + z^4/24``). A value above 1 for an eigenvalue with negative
    real part means the step itself is unstable (the numerical edge); below 1 for a positive
    real part means the scheme damps a physical growth.
    """
    lam = np.asarray(eigenvalues, dtype=complex)
    if not np.all(np.isfinite(lam)):
        raise ValueError("eigenvalues contain NaN or inf")
    dt = positive("dt", dt)
    if scheme not in _STABILITY_POLYNOMIALS:
        raise ValueError(f"scheme must be one of {sorted(_STABILITY_POLYNOMIALS)}, "
                         f"got {scheme!r}")
    z = dt * lam
    coeffs = _STABILITY_POLYNOMIALS[scheme]
    r = sum(c * z ** p for p, c in enumerate(coeffs))
    return np.abs(r)


# ---------------------------------------------------------------------------------------------
# attribution on per-column features
# ---------------------------------------------------------------------------------------------
def feature_function(closure: Closure) -> Callable:
    """The per-column map from raw features ``(N, F)`` to the output ``(N,)``, in torch.

    Standardisation and output scaling are those of the closure, so attributions come out in
    the closure's physical units (output units per input unit, times input units).
    """
    if not isinstance(closure, Closure) or not closure.per_column:
        raise ValueError("closure must be a per-column nnparam Closure")
    dtype = closure.dtype
    x_mean, x_std = (torch.as_tensor(v, dtype=dtype) for v in (closure.x_mean, closure.x_std))
    y_mean, y_std = (torch.as_tensor(v, dtype=dtype) for v in (closure.y_mean, closure.y_std))

    def f(feats: torch.Tensor) -> torch.Tensor:
        out = closure.module((feats - x_mean) / x_std) * y_std + y_mean
        if out.ndim == 2 and out.shape[1] != 1:
            raise ValueError(f"attribution needs a scalar output per column, got "
                             f"{out.shape[1]} outputs")
        return out.reshape(-1)

    f.n_features = len(closure.feature_names) if closure.feature_names else None
    f.dtype = dtype
    return f


def predict_features(closure: Closure, features) -> np.ndarray:
    """A per-column closure evaluated on raw features ``(..., F)``: shape ``(...)``.

    The numpy twin (or torch without gradients) of the closure's network with its
    standardisation, for predictions on features that did not come from fields, e.g. with
    one column permuted (:func:`permutation_importance`).
    """
    if not isinstance(closure, Closure) or not closure.per_column:
        raise ValueError("closure must be a per-column nnparam Closure")
    feats = finite_array("features", features)
    n_feat = (len(closure.feature_names) if closure.feature_names
              else closure.x_mean.size if closure.x_mean.size > 1 else None)
    if feats.ndim < 1 or (n_feat is not None and feats.shape[-1] != n_feat):
        raise ValueError(f"features must have {n_feat} columns on the last axis, got shape "
                         f"{feats.shape}")
    z = (feats.reshape(-1, feats.shape[-1]) - closure.x_mean) / closure.x_std
    out = np.asarray(closure._run_numpy(z), dtype=float) * closure.y_std + closure.y_mean
    if out.shape[-1] != 1:
        raise ValueError(f"predict_features needs one output per column, got {out.shape[-1]}")
    return out[:, 0].reshape(feats.shape[:-1])


def _as_feature_function(func):
    if isinstance(func, Closure):
        return feature_function(func)
    if not callable(func):
        raise ValueError(f"func must be a per-column Closure or a torch callable, got "
                         f"{type(func).__name__}")
    return func


def _features(name: str, x, n_features=None) -> np.ndarray:
    arr = finite_array(name, x)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N, F) with N >= 1, got {arr.shape}")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"{name} must have {n_features} feature columns, got {arr.shape[1]}")
    return arr


def _gradient(f, x: np.ndarray) -> np.ndarray:
    dtype = getattr(f, "dtype", torch.float64)
    xt = torch.tensor(x, dtype=dtype, requires_grad=True)
    out = f(xt)
    if out.shape != (x.shape[0],):
        raise ValueError(f"func must return one value per row, shape ({x.shape[0]},), got "
                         f"{tuple(out.shape)}")
    (grad,) = torch.autograd.grad(out.sum(), xt)
    return grad.detach().numpy().astype(float)


def _baseline(baseline, x: np.ndarray) -> np.ndarray:
    if baseline is None:
        return np.zeros_like(x)
    base = finite_array("baseline", baseline)
    try:
        return np.broadcast_to(base, x.shape).astype(float)
    except ValueError as err:
        raise ValueError(f"baseline must broadcast to the features {x.shape}, got "
                         f"{base.shape}") from err


def gradient_x_input(func, x, baseline=None) -> np.ndarray:
    """Gradient times input ``(x - x0) * df/dx (x)`` of each feature, shape ``(N, F)``.

    ``func`` is a per-column :class:`~nnparam.closure.Closure` or a torch callable
    ``(N, F) -> (N,)``; ``baseline`` ``x0`` defaults to 0 (the classic form). For a linear
    ``f = w . x + b`` it is ``w * (x - x0)``. It depends on where the origin of each input is:
    a shift of the inputs that leaves the closure unchanged changes the attribution.
    """
    f = _as_feature_function(func)
    x = _features("x", x, getattr(f, "n_features", None))
    return (x - _baseline(baseline, x)) * _gradient(f, x)


def integrated_gradients(func, x, baseline=None, n_steps: int = 16) -> np.ndarray:
    """Integrated gradients ``(x - x0) * int_0^1 df/dx (x0 + a (x - x0)) da``, ``(N, F)``.

    The integral along the straight path from the baseline ``x0`` (default 0) is evaluated
    by Gauss-Legendre quadrature with ``n_steps`` nodes (exact for polynomials of degree
    ``2 n_steps - 1`` in ``a``, so far fewer nodes than a Riemann sum are needed for smooth
    networks). Completeness: the rows sum to ``f(x) - f(x0)`` up to the quadrature error.
    """
    f = _as_feature_function(func)
    x = _features("x", x, getattr(f, "n_features", None))
    x0 = _baseline(baseline, x)
    n_steps = positive_int("n_steps", n_steps)
    nodes, weights = np.polynomial.legendre.leggauss(n_steps)
    alphas, weights = 0.5 * (nodes + 1.0), 0.5 * weights  # from [-1, 1] to [0, 1]
    path = x0[None] + alphas[:, None, None] * (x - x0)[None]  # (n_steps, N, F)
    grads = _gradient(f, path.reshape(-1, x.shape[1])).reshape(path.shape)
    return (x - x0) * np.tensordot(weights, grads, axes=1)


# ---------------------------------------------------------------------------------------------
# permutation importance on time blocks
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Importance:
    """Drop of a skill score when one input (or group) is permuted in time blocks.

    ``names`` label the inputs; ``base`` is the score on the intact data; ``drop`` (mean) and
    ``spread`` (standard deviation over repeats) of ``base - permuted score``, per input.
    """

    names: tuple
    base: float
    drop: np.ndarray
    spread: np.ndarray

    def as_dict(self) -> dict:
        return {n: float(d) for n, d in zip(self.names, self.drop, strict=True)}


def _block_permutation(n_time: int, block: int, rng) -> np.ndarray:
    """Time indices with whole blocks of ``block`` consecutive times in a random order."""
    starts = np.arange(0, n_time, block)
    order = rng.permutation(starts.size)
    return np.concatenate([np.arange(s, min(s + block, n_time)) for s in starts[order]])


def permutation_importance(predict: Callable, features, target, block: int,
                           n_repeats: int = 5, names: Sequence[str] | None = None,
                           groups: Sequence[Sequence[int]] | None = None,
                           score: Callable = r2_score, seed: int = 0) -> Importance:
    """Permutation importance with time-contiguous blocks (a held-out block, never training).

    ``features`` ``(T, ..., F)`` have time on axis 0 and the input columns on the last axis;
    ``predict(features) -> (T, ...)`` matches ``target``. For each input column (or each
    group of columns in ``groups``), the column's time series is cut into blocks of
    ``block`` consecutive times and the blocks are put in a random order (the same order for
    every other axis, e.g. every ``k`` of a ring), which breaks its link to the target but
    keeps its autocorrelation within a block. ``block=1`` is the ordinary (i.i.d.)
    permutation. The importance is the mean drop of ``score(target, prediction)`` over
    ``n_repeats`` permutations.

    Permuting one of two correlated inputs feeds the model combinations it never saw, so a
    large drop can mean "off the data manifold" rather than "informative" (see the chapter).
    """
    if not callable(predict) or not callable(score):
        raise ValueError("predict and score must be callables")
    feats = finite_array("features", features)
    y = finite_array("target", target)
    if feats.ndim < 2:
        raise ValueError(f"features must have shape (T, ..., F), got {feats.shape}")
    if y.shape != feats.shape[:-1]:
        raise ValueError(f"target must have the shape of features without the last axis, "
                         f"{feats.shape[:-1]}, got {y.shape}")
    n_time, n_feat = feats.shape[0], feats.shape[-1]
    block = positive_int("block", block)
    if block > n_time // 2:
        raise ValueError(f"block ({block}) must be at most half the record ({n_time} times) "
                         "so that at least two blocks can swap")
    n_repeats = positive_int("n_repeats", n_repeats)
    if groups is None:
        groups = [[j] for j in range(n_feat)]
    groups = [list(g) for g in groups]
    if not groups or any(not g or min(g) < 0 or max(g) >= n_feat for g in groups):
        raise ValueError(f"groups must be non-empty lists of column indices in 0..{n_feat - 1}")
    if names is None:
        names = [f"feature {g[0]}" if len(g) == 1 else f"features {g}" for g in groups]
    names = tuple(names)
    if len(names) != len(groups):
        raise ValueError(f"names must label the {len(groups)} inputs, got {len(names)}")
    base = float(score(y, np.asarray(predict(feats), dtype=float)))
    rng = np.random.default_rng(seed)
    drops = np.empty((len(groups), n_repeats))
    for r in range(n_repeats):
        for g, cols in enumerate(groups):
            perm = _block_permutation(n_time, block, rng)
            shuffled = feats.copy()
            shuffled[..., cols] = feats[perm][..., cols]
            drops[g, r] = base - float(score(y, np.asarray(predict(shuffled), dtype=float)))
    return Importance(names, base, drops.mean(axis=1), drops.std(axis=1))
