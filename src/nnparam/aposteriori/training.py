"""Unrolled (a-posteriori, "solver-in-the-loop") training of a closure through a coarse model.

Offline (a-priori) training fits the closure's output to a target computed from the truth,
one instant at a time. A-posteriori training couples the closure to the coarse model, runs
the pair for ``window`` sampling intervals from a state of the coarse-grained truth, and
minimises the distance between that trajectory and the truth at the same times, by
backpropagating through every step of the model (Um et al. 2020; Kochkov et al. 2021;
Frezat et al. 2022; List et al. 2022). Brenowitz and Bretherton (2018) called the same idea
a multi-step loss. Three practical knobs, all here:

* **truncated windows**: each iteration draws a batch of short windows starting at random
  times of the training block, each started from the truth (truncated backpropagation
  through time), instead of one long trajectory;
* **gradient clipping** of the global norm (Pascanu et al. 2013), because the gradient of a
  chaotic model's trajectory grows like ``exp(lambda_1 T)`` with the window ``T``;
* **multi-step loss weights** ``w_k`` on the squared error after ``k`` steps.

The closure is an ordinary :class:`nnparam.closure.Closure`: its module is trained in place,
and afterwards the same object runs in every numpy integrator through its numpy twin.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch

from .._validate import finite_array, positive, positive_int
from ..closure import Closure
from .models import CoarseModel


def _check_model(model):
    if not isinstance(model, CoarseModel):
        raise ValueError(f"model must be an nnparam.aposteriori CoarseModel, got "
                         f"{type(model).__name__}")
    return model


def _check_closure(closure):
    if not isinstance(closure, Closure):
        raise ValueError(f"closure must be an nnparam.closure.Closure (wrap the network "
                         f"first), got {type(closure).__name__}")
    return closure


def _check_truth(model, truth, times, window):
    """Validate ``truth`` (n_time, ..., n), ``times`` (n_time,) and ``window``."""
    window = positive_int("window", window)
    arr = finite_array("truth", truth.detach().numpy() if torch.is_tensor(truth) else truth)
    if arr.ndim < 2 or arr.shape[-1] != model.n:
        raise ValueError(f"truth must have shape (n_time, ..., {model.n}) (time first, the "
                         f"model's {model.n} cells last), got {arr.shape}")
    if arr.shape[0] <= window:
        raise ValueError(f"truth must be longer than the window: {arr.shape[0]} times for "
                         f"window={window} steps; pass a longer truth or a shorter window")
    t = finite_array("times", times, ndim=1)
    if t.shape[0] != arr.shape[0]:
        raise ValueError(f"times must have one entry per truth state ({arr.shape[0]}), got "
                         f"{t.shape[0]}")
    step = np.diff(t)
    if not np.allclose(step, model.dt, rtol=1e-9, atol=0.0):
        raise ValueError(f"times must be spaced by the model's dt = {model.dt} "
                         f"{model.time_unit}, got spacings {step.min():.6g}..{step.max():.6g}")
    return torch.as_tensor(arr, dtype=torch.float64), t, window


def _check_weights(weights, window):
    if weights is None:
        return torch.full((window,), 1.0 / window, dtype=torch.float64)
    w = finite_array("weights", weights, ndim=1)
    if w.shape[0] != window or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"weights must hold {window} non-negative numbers (one per step of "
                         f"the window) with a positive sum, got {w.shape[0]} values")
    return torch.as_tensor(w / w.sum(), dtype=torch.float64)


def _check_starts(starts, n_time, window, name="starts"):
    s = np.asarray(starts)
    if s.ndim != 1 or s.size == 0 or not np.issubdtype(s.dtype, np.integer):
        raise ValueError(f"{name} must be a non-empty 1-D array of integer time indices")
    if s.min() < 0 or s.max() + window >= n_time:
        raise ValueError(f"{name} must lie in [0, {n_time - window - 1}] so that a window of "
                         f"{window} steps of truth follows each, got {s.min()}..{s.max()}")
    return s


def unrolled_loss(model, closure, truth, times, starts, window: int, weights=None):
    """The a-posteriori loss: ``sum_k w_k mean |x_k - truth[start + k]|^2``, ``k = 1..window``.

    Each window starts from the truth state ``truth[start]`` at ``times[start]`` and is
    advanced ``window`` steps of ``model`` with ``closure``; the state is *not* detached
    between steps, so the gradient flows through the whole trajectory. ``truth`` (n_time,
    ..., n) is sampled every ``model.dt``; ``weights`` (window,) default to equal weights
    (normalised to sum 1). Returns a differentiable scalar tensor (squared units of the
    state).
    """
    model = _check_model(model)
    truth, t, window = _check_truth(model, truth, times, window)
    s = _check_starts(starts, truth.shape[0], window)
    w = _check_weights(weights, window)
    return _loss(model, closure, truth, t, s, window, w)


def _loss(model, closure, truth, t, s, window, w):
    x = truth[s]
    t0 = t[s]
    loss = torch.zeros((), dtype=torch.float64)
    for k in range(1, window + 1):
        x = model.step(x, t0 + (k - 1) * model.dt, closure)
        loss = loss + w[k - 1] * torch.mean((x - truth[s + k]) ** 2)
    return loss


def _parameters(closure):
    params = [p for p in closure.module.parameters() if p.requires_grad]
    if not params:
        raise ValueError("closure.module has no trainable parameters")
    return params


def train_unrolled(closure, model, truth, times, window: int, *, train: slice | None = None,
                   validation: slice | None = None, n_iter: int = 200, batch: int = 32,
                   lr: float = 1e-3, clip: float | None = 1.0, weights=None,
                   eval_every: int = 10, seed: int = 0) -> dict:
    """Train ``closure`` (in place) by backpropagating through ``window`` steps of ``model``.

    Parameters
    ----------
    closure : a :class:`nnparam.closure.Closure`; its module's weights are optimised (Adam).
    model : a :class:`~nnparam.aposteriori.models.CoarseModel` (the coarse model to couple).
    truth, times : the coarse-grained truth (n_time, ..., n) sampled every ``model.dt``.
    window : number of model steps unrolled per training window (>= 1).
    train : time slice the windows are drawn from (default: all times); every window,
        including its ``window`` target states, lies inside it.
    validation : optional time slice; the unrolled loss on all its windows is evaluated every
        ``eval_every`` iterations and the best weights are restored at the end.
    n_iter, batch, lr : iterations, windows per iteration (drawn with ``seed``), learning rate.
    clip : maximum global gradient norm (``None``: no clipping).
    weights : optional multi-step loss weights, one per step of the window.

    Returns ``{"loss": [...], "grad_norm": [...] (before clipping), "validation": [...],
    "best_iteration": int, "seconds": float, "window": int}``.
    """
    closure, model = _check_closure(closure), _check_model(model)
    truth_t, t, window = _check_truth(model, truth, times, window)
    w = _check_weights(weights, window)
    n_iter, batch = positive_int("n_iter", n_iter), positive_int("batch", batch)
    eval_every = positive_int("eval_every", eval_every)
    lr = positive("lr", lr)
    clip = None if clip is None else positive("clip", clip)
    pool = _window_starts("train", train, truth_t.shape[0], window)
    val = None if validation is None else _window_starts("validation", validation,
                                                         truth_t.shape[0], window)
    params = _parameters(closure)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    opt = torch.optim.Adam(params, lr=lr)
    history = {"loss": [], "grad_norm": [], "validation": [], "best_iteration": n_iter - 1,
               "window": window}
    best, best_state = np.inf, None
    closure.module.train()
    start = time.perf_counter()
    for it in range(n_iter):
        s = rng.choice(pool, size=min(batch, pool.size), replace=False)
        opt.zero_grad()
        loss = _loss(model, closure, truth_t, t, s, window, w)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, clip if clip is not None else np.inf)
        opt.step()
        history["loss"].append(float(loss.detach()))
        history["grad_norm"].append(float(norm))
        if val is not None and (it % eval_every == 0 or it == n_iter - 1):
            with torch.no_grad():
                vloss = float(_loss(model, closure, truth_t, t, val, window, w))
            history["validation"].append(vloss)
            if vloss < best:
                best, best_state = vloss, copy.deepcopy(closure.module.state_dict())
                history["best_iteration"] = it
    if best_state is not None:
        closure.module.load_state_dict(best_state)
    closure.module.eval()
    history["seconds"] = time.perf_counter() - start
    return history


def _window_starts(name, block, n_time, window):
    """Every start index whose window (start .. start + window) lies inside ``block``."""
    block = slice(0, n_time) if block is None else block
    if not isinstance(block, slice):
        raise ValueError(f"{name} must be a slice of time indices, got {type(block).__name__}")
    lo, hi, _ = block.indices(n_time)
    starts = np.arange(lo, hi - window)
    if starts.size == 0:
        raise ValueError(f"{name} block [{lo}, {hi}) is too short for windows of {window} "
                         "steps: it needs at least window + 1 times")
    return starts


def loss_gradient(model, closure, truth, times, starts, window: int, weights=None) -> dict:
    """The unrolled loss, its gradient in the closure's weights (``gradient``, flattened,
    and its global norm ``grad_norm``), the wall time of the forward and backward pass
    (``seconds``) and the memory autograd kept for the backward pass (``memory_bytes``,
    unique storages of the saved tensors), at the current weights.

    The memory is what makes long windows expensive: it grows linearly with ``window``
    (every intermediate state of every stage is kept), unless steps are recomputed
    (gradient checkpointing, ``torch.utils.checkpoint``).
    """
    closure, model = _check_closure(closure), _check_model(model)
    truth_t, t, window = _check_truth(model, truth, times, window)
    s = _check_starts(starts, truth_t.shape[0], window)
    w = _check_weights(weights, window)
    params = _parameters(closure)
    storages = {}

    def pack(x):
        storages[(x.untyped_storage().data_ptr(), x.dtype)] = x.untyped_storage().nbytes()
        return x

    for p in params:
        p.grad = None
    start = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        loss = _loss(model, closure, truth_t, t, s, window, w)
    loss.backward()
    seconds = time.perf_counter() - start
    gradient = torch.cat([p.grad.detach().double().reshape(-1) for p in params]).numpy()
    for p in params:
        p.grad = None
    return {"loss": float(loss.detach()), "grad_norm": float(np.linalg.norm(gradient)),
            "gradient": gradient, "seconds": seconds,
            "memory_bytes": int(sum(storages.values()))}


def lyapunov_exponent(model, x0, n_steps: int, closure=None, t0: float = 0.0,
                      eps: float = 1e-8, spinup: int = 0, seed: int = 0) -> float:
    """Leading Lyapunov exponent (1 / time unit of the model) of ``model`` with ``closure``.

    Benettin's method on the numpy path of the same step: a twin started ``eps`` away from
    ``x0`` (n,) is advanced beside it and pulled back to distance ``eps`` after every step;
    the exponent is the mean log growth per unit time over ``n_steps`` steps (after
    ``spinup`` steps of the pair). ``1 / lambda_1`` is the predictability time: an error
    grows by a factor ``e`` in that time, and so does the gradient of an unrolled loss.
    """
    model = _check_model(model)
    x = finite_array("x0", x0, ndim=1)
    if x.shape[0] != model.n:
        raise ValueError(f"x0 must have the model's {model.n} cells, got {x.shape}")
    n_steps = positive_int("n_steps", n_steps)
    spinup = positive_int("spinup", spinup, minimum=0)
    eps = positive("eps", eps)
    d = np.random.default_rng(seed).standard_normal(model.n)
    y = x + eps * d / np.linalg.norm(d)
    total = 0.0
    for k in range(spinup + n_steps):
        tk = t0 + k * model.dt
        x, y = model.step(x, tk, closure), model.step(y, tk, closure)
        dist = np.linalg.norm(y - x)
        if not np.isfinite(dist) or dist == 0:
            raise FloatingPointError("the twin runs diverged or merged: change eps or dt")
        if k >= spinup:
            total += np.log(dist / eps)
        y = x + (eps / dist) * (y - x)
    return float(total / (n_steps * model.dt))
