"""Numerical stability of a model coupled to a learned closure.

Linear analysis first: forward Euler on ``dq/dt = g(q) + f(q)``, linearised about a fixed point
with ``g' = -lam`` (physical damping, 1/s) and ``f' = k`` (slope of the closure, 1/s), multiplies a
small perturbation by ``A = 1 + h (k - lam)`` each step of length ``h`` (s). The step is stable
when ``|A| < 1``, i.e. ``lam - 2/h < k < lam``.

Then the nonlinear, many-variable version: Lipschitz constants. The Euler map
``G(x) = x + dt (F(x) + P(x))`` has ``Lip(G) <= 1 + dt (L_F + L_P)``; an MLP with 1-Lipschitz
activations has ``L_P <= prod_i ||W_i||_2``, estimated by power iteration and capped during
training by spectral normalisation.

Finally a small coupled toy (:class:`SteepClosureToy`): a periodic relaxation model on a
:class:`~nnparam.grid.Grid1D` whose unresolved process includes strong grid-scale mixing, so
the learned closure is steep exactly where the data carry little variance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from . import _xp
from ._validate import finite_array, positive, positive_int
from .closure import Closure
from .grid import Grid1D, periodic_stencil
from .nn import mlp, train

# ---------------------------------------------------------------------------------------------
# Linear analysis of forward Euler
# ---------------------------------------------------------------------------------------------


def _positive_array(name: str, value) -> np.ndarray:
    arr = finite_array(name, value)
    if np.any(arr <= 0):
        raise ValueError(f"{name} must be strictly positive, got {value!r}")
    return arr


def _scalar_or_array(arr):
    arr = np.asarray(arr, dtype=float)
    return float(arr) if arr.ndim == 0 else arr


def amplification_factor(h, k, lam):
    """Forward-Euler amplification ``1 + h (k - lam)`` of a perturbation per step.

    Parameters (broadcast against each other)
    ----------
    h : timestep (s), > 0.
    k : slope ``f'(q*)`` of the closure at the fixed point (1/s), any sign.
    lam : physical damping rate ``-g'(q*)`` (1/s), > 0.

    Returns a float or an array of the broadcast shape (dimensionless).
    """
    h = _positive_array("h", h)
    k = finite_array("k", k)
    lam = _positive_array("lam", lam)
    return _scalar_or_array(1.0 + h * (k - lam))


def backward_euler_amplification(h, k, lam):
    """Backward-Euler amplification ``1 / (1 - h (k - lam))`` of a perturbation per step.

    Arguments as in :func:`amplification_factor`. For every ``k < lam`` (a decaying
    continuous system) its magnitude is below 1 at *every* step ``h``: the implicit step has
    no lower, numerical edge, which is why stiff, fast physics is usually stepped
    implicitly. Only the upper edge ``k >= lam``, a property of the continuous system, stays.
    """
    h = _positive_array("h", h)
    k = finite_array("k", k)
    lam = _positive_array("lam", lam)
    return _scalar_or_array(1.0 / (1.0 - h * (k - lam)))


def stable_k_window(h, lam) -> tuple:
    """Open interval ``(lam - 2/h, lam)`` of closure slopes ``k`` (1/s) that Euler keeps stable."""
    h = _positive_array("h", h)
    lam = _positive_array("lam", lam)
    return _scalar_or_array(lam - 2.0 / h), _scalar_or_array(lam + 0.0 * h)


def max_stable_timestep(lam, k):
    """Largest stable forward-Euler step ``2 / (lam - k)`` (s); ``0.0`` when ``k >= lam``.

    For ``0 < k < lam`` the closure erodes the damping, the coupled system decays more slowly
    and ``h_max`` *grows* as ``k`` rises; at ``k = lam`` the continuous system stops decaying and
    no step is stable (``0.0``). A negative ``k`` (extra damping) shrinks ``h_max``.
    Broadcasts over ``lam`` (1/s, > 0) and ``k`` (1/s).
    """
    lam = _positive_array("lam", lam)
    k = finite_array("k", k)
    gap = lam - k
    with np.errstate(divide="ignore"):
        out = np.where(gap > 0, 2.0 / np.where(gap > 0, gap, 1.0), 0.0)
    return _scalar_or_array(out)


def euler_map_lipschitz_bound(dt, L_F, L_P) -> float:
    """Bound ``1 + dt (L_F + L_P)`` on the Lipschitz constant of ``x -> x + dt (F + P)(x)``.

    ``dt`` in s (> 0); ``L_F`` and ``L_P`` (1/s, >= 0) are Lipschitz constants of the resolved
    tendency and of the closure. The bound limits how fast two nearby states can separate per
    step; it exceeds 1, so it alone never proves decay (see :func:`damped_euler_lipschitz_bound`).
    """
    dt = positive("dt", dt)
    for name, val in (("L_F", L_F), ("L_P", L_P)):
        if not np.isfinite(float(val)) or float(val) < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {val!r}")
    return 1.0 + dt * (float(L_F) + float(L_P))


def damped_euler_lipschitz_bound(dt, lam, L_P) -> float:
    """Sharper bound ``|1 - dt lam| + dt L_P`` when the resolved tendency is ``-lam x``.

    When this is below 1 the coupled Euler map is a contraction: every two trajectories with the
    same forcing approach each other, so the run cannot blow up. ``dt`` (s), ``lam`` (1/s) > 0;
    ``L_P`` (1/s) >= 0.
    """
    dt, lam = positive("dt", dt), positive("lam", lam)
    if not np.isfinite(float(L_P)) or float(L_P) < 0:
        raise ValueError(f"L_P must be a finite number >= 0, got {L_P!r}")
    return abs(1.0 - dt * lam) + dt * float(L_P)


def max_contractive_lipschitz(h, lam) -> float:
    """Largest closure Lipschitz constant ``min(lam, 2/h - lam)`` (1/s) keeping Euler contractive.

    Equivalent to asking that every slope ``|k| <= L_P`` lies in :func:`stable_k_window`; it is
    ``0.0`` when ``h >= 2/lam`` (the resolved damping alone is already unstable).
    """
    h, lam = positive("h", h), positive("lam", lam)
    return max(0.0, min(lam, 2.0 / h - lam))


# ---------------------------------------------------------------------------------------------
# Spectral norms and Lipschitz bounds of MLPs
# ---------------------------------------------------------------------------------------------


def _weight_array(W) -> np.ndarray:
    if isinstance(W, torch.Tensor):
        W = W.detach().cpu().double().numpy()
    return finite_array("W", W, ndim=2)


def spectral_norm(W, n_iter: int = 100, seed: int = 0) -> float:
    """Largest singular value ``||W||_2`` of a 2-D matrix by power iteration on ``W^T W``.

    ``W`` is a numpy array or torch tensor of shape ``(n_out, n_in)``. Starts from a seeded
    random unit vector and returns ``||W v||`` after ``n_iter`` iterations; the estimate
    approaches ``||W||_2`` from below.
    """
    w = _weight_array(W)
    n_iter = positive_int("n_iter", n_iter)
    if not np.any(w):
        return 0.0
    v = np.random.default_rng(seed).standard_normal(w.shape[1])
    v /= np.linalg.norm(v)
    for _ in range(n_iter):
        v = w.T @ (w @ v)
        norm = np.linalg.norm(v)
        if norm == 0:  # the start vector was orthogonal to the row space
            return 0.0
        v /= norm
    return float(np.linalg.norm(w @ v))


class Scale(nn.Module):
    """Multiply by a fixed number ``factor`` (a buffer, not trained); Lipschitz ``|factor|``."""

    def __init__(self, factor: float):
        super().__init__()
        self.register_buffer("factor", torch.tensor(float(factor)))

    def forward(self, x):
        return x * self.factor


#: Lipschitz constants of activations (max |derivative|); GELU and SiLU slightly exceed 1.
ACTIVATION_LIPSCHITZ = {nn.Tanh: 1.0, nn.ReLU: 1.0, nn.Identity: 1.0, nn.Softplus: 1.0,
                        nn.Sigmoid: 0.25, nn.GELU: 1.1290, nn.SiLU: 1.0999}


def _layers(module: nn.Module):
    """Leaf layers in registration order, treating a (parametrised) ``nn.Linear`` as a leaf."""
    children = list(module.children())
    if isinstance(module, nn.Linear) or not children:
        yield module
        return
    for child in children:
        yield from _layers(child)


def linear_weights(model: nn.Module) -> list[torch.Tensor]:
    """The effective weight matrices of the linear layers of ``model``, in order.

    For a layer under ``torch.nn.utils.parametrizations.spectral_norm`` this is the normalised
    weight the layer actually applies.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    weights = [m.weight.detach() for m in _layers(model) if isinstance(m, nn.Linear)]
    if not weights:
        raise ValueError("model has no nn.Linear layer; a Lipschitz bound needs weight matrices")
    return weights


def mlp_lipschitz_bound(model: nn.Module, n_iter: int = 100) -> float:
    """Upper bound ``prod_i ||W_i||_2`` on the Lipschitz constant (2-norm) of a sequential MLP.

    Valid for a chain of linear layers and activations applied in registration order (as built by
    :func:`nnparam.nn.mlp`). 1-Lipschitz activations (tanh, ReLU) contribute 1; GELU, SiLU,
    sigmoid and :class:`Scale` contribute their own constants. Any other layer type raises
    ``ValueError``, since its Lipschitz constant is unknown here.
    """
    linear_weights(model)  # validates the model and that it has a linear layer
    bound = 1.0
    for layer in _layers(model):
        if isinstance(layer, nn.Linear):
            bound *= spectral_norm(layer.weight, n_iter=n_iter)
        elif isinstance(layer, Scale):
            bound *= abs(float(layer.factor))
        elif type(layer) in ACTIVATION_LIPSCHITZ:
            bound *= ACTIVATION_LIPSCHITZ[type(layer)]
        else:
            raise ValueError(f"model contains a {type(layer).__name__} layer whose Lipschitz "
                             "constant is unknown; use linear layers and listed activations")
    return float(bound)


def spectral_normalized_mlp(n_in: int, n_out: int, target: float, hidden=(32, 32),
                            activation: str = "tanh", seed: int = 0) -> nn.Sequential:
    """An :func:`nnparam.nn.mlp` whose Lipschitz constant stays at most ``target``.

    Every linear layer is wrapped in ``torch.nn.utils.parametrizations.spectral_norm`` (its weight
    divided by a running power-iteration estimate of its largest singular value), and the output
    is multiplied by ``target``. Train it with :func:`nnparam.nn.train` as usual, then call
    :func:`freeze_spectral_norm` before using it. ``target`` is in output units per input unit.
    """
    target = positive("target", target)
    if activation not in ("tanh", "relu"):
        raise ValueError(f"activation must be 'tanh' or 'relu' (1-Lipschitz), got {activation!r}")
    net = mlp(n_in, n_out, hidden=hidden, activation=activation, seed=seed)
    layers = [torch.nn.utils.parametrizations.spectral_norm(m) if isinstance(m, nn.Linear) else m
              for m in net]
    return nn.Sequential(*layers, Scale(target))


def freeze_spectral_norm(model: nn.Module, n_iter: int = 500) -> nn.Module:
    """Run ``n_iter`` extra power iterations of every spectral-norm layer, then ``model.eval()``.

    In evaluation mode the normalised weights stay fixed, so the network is a deterministic
    function whose bound :func:`mlp_lipschitz_bound` matches its target to about 1e-6.
    """
    n_iter = positive_int("n_iter", n_iter)
    first = linear_weights(model)[0]
    model.train()
    with torch.no_grad():
        dummy = torch.zeros(1, first.shape[1], dtype=first.dtype)
        for _ in range(n_iter):
            model(dummy)
    return model.eval()


# ---------------------------------------------------------------------------------------------
# A coupled toy with a steep closure
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SteepClosureToy:
    """Periodic relaxation model ``dq/dt = -lam q + F(x, t) + S(q)`` on a :class:`Grid1D`.

    The host model knows the damping ``lam`` (1/s) and the forcing ``F`` (sum of travelling
    sine waves, [q]/s). The unresolved process ``S`` is what a closure must learn:

    ``S(q)_i = gain * lam * q0 * tanh(q_i / q0) + kappa * (q_{i+1} - 2 q_i + q_{i-1}) / dx^2``

    a gentle local feedback (slope ``gain * lam`` at ``q = 0``) plus subgrid mixing of diffusivity
    ``kappa`` (m^2/s). The mixing damps the grid-scale (2 dx) mode at rate ``4 kappa / dx^2``,
    which makes the closure steep there although that mode holds little variance.
    """

    n: int = 32
    length: float = 3.2e6  # m
    lam: float = 1.0 / 7200.0  # 1/s
    gain: float = 0.3
    q0: float = 1.0
    kappa: float = 1.5 / 7200.0 * 1e10  # m^2/s, i.e. 4 kappa/dx^2 = 6 lam at dx = 100 km
    amplitude: float = 1.5e-4  # [q]/s, forcing amplitude of the gravest wave
    n_waves: int = 16
    spectrum: float = 2.0  # forcing amplitude of wave m falls off as m**-spectrum
    seed: int = 0

    def __post_init__(self):
        positive_int("n", self.n, minimum=3)
        for name in ("length", "lam", "q0", "kappa", "amplitude"):
            positive(name, getattr(self, name))
        finite_array("gain", self.gain, ndim=0)
        positive_int("n_waves", self.n_waves)

    @property
    def grid(self) -> Grid1D:
        return Grid1D.uniform(self.n, self.length)

    def _waves(self):
        cached = self.__dict__.get("_wave_cache")
        if cached is not None:
            return cached
        rng = np.random.default_rng(self.seed)
        m = np.arange(1, self.n_waves + 1)
        amp = self.amplitude * m**-float(self.spectrum)
        phase = rng.uniform(0, 2 * np.pi, m.size)
        omega = rng.uniform(0.1, 0.4, m.size) * self.lam * rng.choice([-1, 1], m.size)
        x = 2 * np.pi * m[:, None] * self.grid.centers[None, :] / self.length
        object.__setattr__(self, "_wave_cache", (amp, x + phase[:, None], omega))
        return self._wave_cache

    def forcing(self, t: float) -> np.ndarray:
        """Forcing ``F(x, t)`` ([q]/s) on the cell centres at time ``t`` (s).

        A torch tensor ``t`` gives a tensor of its dtype (the differentiable model); an array
        ``t`` of shape (...) gives (..., n), one time per ensemble member."""
        amp, arg0, omega = (_xp.like(a, t) for a in self._waves())
        t = t[..., None, None] if getattr(t, "ndim", 0) else t
        return amp @ (torch.sin if _xp.is_torch(t) else np.sin)(arg0 - omega[:, None] * t)

    def subgrid_tendency(self, q) -> np.ndarray:
        """The exact unresolved tendency ``S(q)`` ([q]/s) for states ``q`` of shape (..., n).

        numpy (validated) or torch (differentiable, unvalidated)."""
        q = q if _xp.is_torch(q) else finite_array("q", q)
        grid = self.grid
        mixing = grid.divergence(-self.kappa * grid.face_gradient(q))  # flux form, conservative
        return self.gain * self.lam * self.q0 * _xp.tanh(q / self.q0) + mixing

    def euler_step(self, q, t: float, h: float, closure_tendency):
        """One forward-Euler step ``q + h (-lam q + F(t) + P)`` of the host model coupled to a
        closure whose tendency at ``q`` is ``closure_tendency`` ([q]/s).

        The one definition of the coupled step: :meth:`run` (numpy) and the differentiable
        model of :mod:`nnparam.aposteriori` (torch ``q``, then ``F`` is a tensor) both call it.
        """
        return q + h * (-self.lam * q + self.forcing(_xp.like(t, q)) + closure_tendency)

    def truth(self, n_snap: int, h: float, substeps: int = 12):
        """Fine-step reference run: ``n_snap`` snapshots every ``h`` s, Euler at ``h / substeps``.

        Returns ``(t, q, s)``: times (n_snap,) s, states (n_snap, n) and the exact subgrid
        tendency ``S(q)`` (n_snap, n) [q]/s, the training target of a closure.
        """
        n_snap, h = positive_int("n_snap", n_snap), positive("h", h)
        dt = h / positive_int("substeps", substeps)
        q = np.zeros(self.n)
        t = np.arange(n_snap) * h
        out = np.empty((n_snap, self.n))
        for i in range(n_snap):
            out[i] = q
            for j in range(substeps):
                tj = t[i] + j * dt
                q = q + dt * (-self.lam * q + self.forcing(tj) + self.subgrid_tendency(q))
        return t, out, self.subgrid_tendency(out)

    def run(self, closure, q_start, t_start: float, h: float, n_steps: int,
            blowup: float = 20.0) -> dict:
        """Couple ``closure`` (callable ``q (n,) -> tendency (n,)``); step forward Euler at ``h``.

        Stops early once ``max|q|`` exceeds ``blowup`` or turns non-finite. Returns
        ``{"q": (n_done + 1, n) states, "t": times, "blew_up": bool, "blowup_step": int | None}``.
        """
        q = finite_array("q_start", q_start, ndim=1).copy()
        h, n_steps = positive("h", h), positive_int("n_steps", n_steps)
        return _trajectory(lambda q, t: self.euler_step(q, t, h, np.asarray(closure(q))),
                           q, t_start, h, n_steps, blowup)


def _trajectory(step, q, t_start: float, h: float, n_steps: int, blowup: float) -> dict:
    """``n_steps`` of ``q <- step(q, t)`` from ``t_start``, stopped once ``max|q|`` exceeds
    ``blowup`` or turns non-finite: the result dict of :meth:`SteepClosureToy.run`."""
    states, blew = [q.copy()], None
    for i in range(n_steps):
        with np.errstate(all="ignore"):
            q = step(q, t_start + i * h)
        states.append(q.copy())
        if not np.all(np.isfinite(q)) or np.max(np.abs(q)) > blowup:
            blew = i + 1
            break
    states = np.array(states)
    return {"q": states, "t": t_start + h * np.arange(len(states)), "blew_up": blew is not None,
            "blowup_step": blew}


def mixing_matrix(toy: SteepClosureToy) -> np.ndarray:
    """The toy's subgrid mixing ``kappa d2q/dx2`` (flux form) as an (n, n) matrix [1/s]."""
    if not isinstance(toy, SteepClosureToy):
        raise ValueError(f"toy must be a SteepClosureToy, got {type(toy).__name__}")
    grid = toy.grid
    eye = np.eye(toy.n)
    return grid.divergence(-toy.kappa * grid.face_gradient(eye)).T


def run_implicit_mixing(toy: SteepClosureToy, q_start, t_start: float, h: float,
                        n_steps: int, blowup: float = 20.0) -> dict:
    """Step the toy with the *exact* unresolved process, its stiff mixing treated implicitly.

    Forward Euler for the damping, the forcing and the gentle local feedback; backward
    Euler for the mixing (an implicit-explicit, IMEX, Euler step):
    ``(I - h M) q_{n+1} = q_n + h (-lam q_n + F(t_n) + gain lam q0 tanh(q_n / q0))`` with
    ``M`` = :func:`mixing_matrix`. The implicit solve removes the numerical edge of the
    stable window for the mixing, so the grid-scale damping is kept *and* the step ``h`` (s)
    is stable. Returns the dict of :meth:`SteepClosureToy.run`.
    """
    q = finite_array("q_start", q_start, ndim=1).copy()
    if q.shape != (toy.n,):
        raise ValueError(f"q_start must have shape ({toy.n},), got {q.shape}")
    h, n_steps = positive("h", h), positive_int("n_steps", n_steps)
    solve = np.linalg.inv(np.eye(toy.n) - h * mixing_matrix(toy))

    def step(q, t):
        local = toy.gain * toy.lam * toy.q0 * np.tanh(q / toy.q0)
        return solve @ (q + h * (-toy.lam * q + toy.forcing(t) + local))

    return _trajectory(step, q, t_start, h, n_steps, blowup)


def stencil(q) -> np.ndarray:
    """Local inputs ``(q_{i-1}, q_i, q_{i+1})`` of every cell: shape (..., n, 3) from (..., n)."""
    q = finite_array("q", q)
    if q.ndim < 1 or q.shape[-1] < 3:
        raise ValueError(f"q must have at least 3 cells on its last axis, got shape {q.shape}")
    return periodic_stencil(q, 1)


class StencilClosure(Closure):
    """A network applied in every cell to its scaled stencil: ``P(q)_i = s_y * net(stencil_i/s_x)``.

    ``x_scale`` ([q]) and ``y_scale`` ([q]/s) are single numbers shared by all cells, so the
    closure's Lipschitz constant over the whole grid (2-norm) is at most
    ``sqrt(3) * y_scale / x_scale * Lip(net)`` (each value enters three stencils). It is a
    :class:`nnparam.closure.Closure` on the field ``q`` with stencil width 1.
    """

    def __init__(self, net: nn.Module, x_scale: float, y_scale: float):
        self.net = net
        self.x_scale = positive("x_scale", x_scale)
        self.y_scale = positive("y_scale", y_scale)
        super().__init__(net, inputs=("q",), stencil_width=1, x_std=self.x_scale,
                         y_std=self.y_scale, output="subgrid tendency", output_units="[q]/s",
                         input_units=("[q]",), name="stability-toy stencil closure")

    def lipschitz_bound(self) -> float:
        """Bound on the closure's Lipschitz constant over the grid (1/s)."""
        return float(np.sqrt(3.0) * self.y_scale / self.x_scale * mlp_lipschitz_bound(self.net))


def fit_stencil_closure(q, s, blocks, target: float | None = None, hidden=(16, 16),
                        activation: str = "relu", epochs: int = 400, lr: float = 1e-2,
                        seed: int = 0) -> tuple[StencilClosure, dict]:
    """Train a :class:`StencilClosure` on states ``q`` and tendencies ``s`` (both (n_time, n)).

    ``blocks`` is ``(train, validation)`` (or longer) of time slices from
    :func:`nnparam.metrics.time_blocks`; scales come from the training block only. With
    ``target`` (1/s) every layer is spectrally normalised so that the closure's Lipschitz bound
    over the grid, :meth:`StencilClosure.lipschitz_bound`, equals ``target``; without it the
    network is unconstrained. Returns the closure and the training history.
    """
    q = finite_array("q", q, ndim=2)
    s = finite_array("s", s, ndim=2)
    if s.shape != q.shape:
        raise ValueError(f"s must have the shape of q {q.shape}, got {s.shape}")
    if len(blocks) < 2 or not all(isinstance(b, slice) for b in blocks[:2]):
        raise ValueError("blocks must hold (train, validation) time slices")
    train_block, val_block = blocks[0], blocks[1]
    x_scale, y_scale = float(q[train_block].std()), float(s[train_block].std())
    if x_scale == 0 or y_scale == 0:
        raise ValueError("q and s must vary over the training block")
    if target is None:
        net = mlp(3, 1, hidden=hidden, activation=activation, seed=seed)
    else:
        net_target = positive("target", target) * x_scale / (np.sqrt(3.0) * y_scale)
        net = spectral_normalized_mlp(3, 1, net_target, hidden=hidden, activation=activation,
                                      seed=seed)

    def pairs(block):
        return stencil(q[block]).reshape(-1, 3) / x_scale, s[block].reshape(-1, 1) / y_scale

    history = train(net, *pairs(train_block), epochs=epochs, lr=lr, validation=pairs(val_block),
                    patience=100, seed=seed)
    if target is not None:
        freeze_spectral_norm(net)
    net.eval()
    return StencilClosure(net, x_scale, y_scale), history
