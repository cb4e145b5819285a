"""Small experiments on what the universal approximation theorem does and does not promise.

Each function builds a target with a known answer, so a notebook can measure and assert:
the error of a one-hidden-layer network on a compact interval as its width grows, its error
outside that interval, the conditional mean it learns from a noisy target, the skill that
lagged inputs add when the target has memory, and that none of this makes a fitted tendency
conserve a budget or keep a coupled run stable.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from . import nn as nnp
from ._validate import finite_array, positive, positive_int
from .grid import Grid1D


def tendency(q) -> np.ndarray:
    """Toy scalar tendency ``f(q) = -q - 0.3 sin(4 q)`` (1/time): one stable equilibrium at 0.

    Its slope at the equilibrium is ``f'(0) = -2.2``; it is the target of the width and
    extrapolation experiments and the right-hand side of the coupled run ``dq/dt = f(q)``.
    """
    q = finite_array("q", q)
    return -q - 0.3 * np.sin(4.0 * q)


def _lbfgs(model: nn.Module, x, y, iterations: int) -> nn.Module:
    xt = torch.as_tensor(x[:, None], dtype=torch.float64)
    yt = torch.as_tensor(y[:, None], dtype=torch.float64)
    opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=iterations,
                            tolerance_grad=1e-12, tolerance_change=1e-15,
                            history_size=50, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(xt), yt)
        loss.backward()
        return loss

    opt.step(closure)
    return model


def _check_xy(x, y):
    x = finite_array("x", x, ndim=1)
    y = finite_array("y", y, ndim=1)
    if x.shape != y.shape:
        raise ValueError(f"y must have the shape of x {x.shape}, got {y.shape}")
    return x, y


def fit_shallow(x, y, width: int, *, iterations: int = 300, seed: int = 0) -> nn.Sequential:
    """Least-squares fit of a one-hidden-layer tanh network to samples ``y(x)`` (1-D arrays).

    A network this small (``3 * width + 1`` weights) is fitted full-batch with L-BFGS in
    float64, which reaches a (local) minimum of the mean squared error in a few hundred
    iterations: the error then reflects what the width can represent, not a short training.
    """
    x, y = _check_xy(x, y)
    iterations = positive_int("iterations", iterations)
    model = nnp.mlp(1, 1, hidden=(positive_int("width", width),), activation="tanh", seed=seed,
                    dtype=torch.float64)
    return _lbfgs(model, x, y, iterations)


def width_sweep(x, y, widths, *, iterations: int = 300, seed: int = 0) -> list[nn.Sequential]:
    """Fit one-hidden-layer networks of increasing ``widths`` to ``y(x)``, each grown from the last.

    Each wider network starts from the narrower solution plus new tanh units whose output
    weights are zero (so it starts with exactly the narrower network's error) and is then
    refitted with L-BFGS: its training error can only go down. The first is :func:`fit_shallow`.
    """
    x, y = _check_xy(x, y)
    widths = [positive_int("widths", w) for w in np.atleast_1d(widths)]
    if any(b <= a for a, b in zip(widths, widths[1:], strict=False)):
        raise ValueError(f"widths must increase strictly, got {widths}")
    rng = np.random.default_rng(seed)
    models = [fit_shallow(x, y, widths[0], iterations=iterations, seed=seed)]
    for width in widths[1:]:
        model = models[-1]
        for _ in range(width - model[0].out_features):
            w_in = rng.normal(0.0, 2.0)
            centre = rng.uniform(x.min(), x.max())
            model = add_hidden_unit(model, w_in, -w_in * centre, 0.0)
        models.append(_lbfgs(model, x, y, positive_int("iterations", iterations)))
    return models


def evaluate(model: nn.Module, x) -> np.ndarray:
    """Network output on 1-D inputs ``x``, as a 1-D array."""
    return nnp.predict(model, finite_array("x", x, ndim=1)[:, None])[:, 0]


# ---------------------------------------------------------------- (c) a stochastic target
def stochastic_samples(n: int, seed: int = 0) -> dict:
    """Noisy target with a known conditional mean and a skewed noise.

    ``x ~ U(-2, 2)``, ``y = m(x) + s(x) (e - 1)`` with ``m(x) = sin(2x)``,
    ``s(x) = 0.3 + 0.2 |x|`` and ``e ~ Exponential(1)``, so ``E[y|x] = m(x)`` while the
    conditional median is ``m(x) + s(x)(ln 2 - 1)``. Returns x, y, mean, median, noise_std.
    """
    n = positive_int("n", n, minimum=2)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2.0, 2.0, size=n)
    m = np.sin(2.0 * x)
    s = 0.3 + 0.2 * np.abs(x)
    y = m + s * (rng.exponential(1.0, size=n) - 1.0)
    return {"x": x, "y": y, "mean": m, "median": m + s * (np.log(2.0) - 1.0), "noise_std": s}


# ---------------------------------------------------------------- (d) a target with memory
def memory_series(n: int, memory: float = 0.8, seed: int = 0) -> dict:
    """Forcing ``x_t`` (white Gaussian) and a response that remembers it.

    ``y_t = memory * y_{t-1} + (1 - memory) * tanh(2 x_t)``: the response depends on the whole
    history of the forcing with an e-folding of ``-1/ln(memory)`` steps. Returns x, y (n,).
    """
    n = positive_int("n", n, minimum=2)
    if not 0.0 <= memory < 1.0:
        raise ValueError(f"memory must lie in [0, 1), got {memory}")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    y = np.empty(n)
    acc = 0.0
    for t in range(n):
        acc = memory * acc + (1.0 - memory) * np.tanh(2.0 * x[t])
        y[t] = acc
    return {"x": x, "y": y}


def memory_skill(memory: float, n_lags: int) -> float:
    """Best possible ``R^2`` for :func:`memory_series` from the inputs ``x_t .. x_{t-n_lags}``.

    ``y_t = (1 - a) sum_k a**k g(x_{t-k})`` with independent, identically distributed
    ``g(x_{t-k})``, so the conditional mean given the last ``L + 1`` inputs keeps the first
    ``L + 1`` terms and explains the variance fraction ``1 - a**(2 (L + 1))`` of the
    stationary response (``a = memory``, ``L = n_lags``). No predictor of those inputs, of
    any width or depth, can do better.
    """
    if not 0.0 <= memory < 1.0:
        raise ValueError(f"memory must lie in [0, 1), got {memory}")
    n_lags = positive_int("n_lags", n_lags, minimum=0)
    return 1.0 - memory ** (2 * (n_lags + 1))


def lagged(x, n_lags: int) -> np.ndarray:
    """Lagged inputs ``x_t, x_{t-1}, ..., x_{t-n_lags}`` for ``t >= n_lags``.

    Shape ``(n - n_lags, n_lags + 1)``.

    Row ``i`` belongs to time ``t = i + n_lags``; align targets with ``y[n_lags:]``.
    """
    x = finite_array("x", x, ndim=1)
    n_lags = positive_int("n_lags", n_lags, minimum=0)
    if n_lags >= x.size:
        raise ValueError(f"n_lags must be shorter than the series ({x.size}), got {n_lags}")
    return np.column_stack([x[n_lags - k: x.size - k] for k in range(n_lags + 1)])


# ---------------------------------------------------------------- (e) budgets and stability
def diffusion_states(n_states: int, n_cells: int = 16, seed: int = 0) -> np.ndarray:
    """Random smooth periodic states, 3 Fourier modes around 1: shape (n_states, n_cells)."""
    n_states = positive_int("n_states", n_states)
    n_cells = positive_int("n_cells", n_cells, minimum=4)
    rng = np.random.default_rng(seed)
    x = (np.arange(n_cells) + 0.5) / n_cells
    q = np.ones((n_states, n_cells))
    for k in (1, 2, 3):
        amp = rng.normal(0.0, 0.3 / k, size=(n_states, 1))
        phase = rng.uniform(0, 2 * np.pi, size=(n_states, 1))
        q += amp * np.cos(2 * np.pi * k * x + phase)
    return q


def diffusion_tendency(q, kappa: float = 0.01, length: float = 1.0) -> np.ndarray:
    """Conservative tendency ``-d/dx(-kappa dq/dx)`` on a periodic grid; rows of ``q`` are states.

    Written as a divergence of face fluxes (:mod:`nnparam.grid`), so every row sums to zero.
    """
    q = finite_array("q", q)
    if q.ndim not in (1, 2):
        raise ValueError(f"q must be (n_cells,) or (n_states, n_cells), got shape {q.shape}")
    grid = Grid1D.uniform(q.shape[-1], length)
    return grid.divergence(-positive("kappa", kappa) * grid.face_gradient(q))


def euler_run(rhs, q0, dt: float, n_steps: int) -> np.ndarray:
    """Forward-Euler trajectory ``q_{n+1} = q_n + dt * rhs(q_n)``; returns (n_steps + 1, ...)."""
    dt = positive("dt", dt)
    n_steps = positive_int("n_steps", n_steps)
    q = finite_array("q0", q0)
    out = [q]
    for _ in range(n_steps):
        q = q + dt * np.asarray(rhs(q))
        if not np.all(np.isfinite(q)):
            break
        out.append(q)
    return np.array(out)


def add_hidden_unit(model: nn.Sequential, in_weight: float, in_bias: float,
                    out_weight: float) -> nn.Sequential:
    """Copy of a one-hidden-layer network with one more tanh unit.

    The new unit adds ``out_weight * tanh(in_weight * x + in_bias)`` to the output: with a small
    ``out_weight`` and a large ``in_weight`` the fit barely changes anywhere, but its slope
    near ``x = -in_bias / in_weight`` changes by ``out_weight * in_weight``.
    """
    layers = list(model)
    if len(layers) != 3 or not isinstance(layers[0], nn.Linear) or not isinstance(layers[2],
                                                                                  nn.Linear):
        raise ValueError("model must be a one-hidden-layer network (Linear, activation, Linear)")
    first, act, last = layers
    if first.in_features != 1 or last.out_features != 1:
        raise ValueError("model must map 1 input to 1 output")
    width = first.out_features
    new_first = nn.Linear(1, width + 1).to(first.weight.dtype)
    new_last = nn.Linear(width + 1, 1).to(last.weight.dtype)
    with torch.no_grad():
        new_first.weight[:width] = first.weight
        new_first.bias[:width] = first.bias
        new_first.weight[width, 0] = float(in_weight)
        new_first.bias[width] = float(in_bias)
        new_last.weight[:, :width] = last.weight
        new_last.weight[0, width] = float(out_weight)
        new_last.bias[:] = last.bias
    return nn.Sequential(new_first, type(act)(), new_last)


def equilibrium(model: nn.Module, lo: float = -1.0, hi: float = 1.0, tol: float = 1e-7) -> float:
    """Root of a scalar network output ``f(q) = 0`` in ``[lo, hi]`` by bisection (sign change)."""
    if not hi > lo:
        raise ValueError(f"hi must exceed lo, got lo={lo}, hi={hi}")
    f_lo = float(evaluate(model, [lo])[0])
    f_hi = float(evaluate(model, [hi])[0])
    if f_lo * f_hi > 0:
        raise ValueError(f"the network has no sign change on [{lo}, {hi}]")
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        f_mid = float(evaluate(model, [mid])[0])
        if f_mid * f_lo > 0:
            lo, f_lo = mid, f_mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def slope(model: nn.Module, q: float, eps: float = 1e-4) -> float:
    """Centred finite-difference derivative of a scalar network at ``q``."""
    eps = positive("eps", eps)
    y = evaluate(model, [q - eps, q + eps])
    return float((y[1] - y[0]) / (2 * eps))
