"""A small fully convolutional network for the subgrid PV forcing of the pyqg benchmark.

The benchmark's FCNN (Ross et al. 2023, after Guillaumin & Zanna 2021) maps the coarse PV of
both layers to ``S_q`` with eight periodic ("circular") convolutions of 128 to 32 channels and
batch normalisation. :class:`FCNN` is the same idea at a size that trains on a CPU in seconds
and costs about twice the coarse model's own time step online: periodic convolutions (by
default 8 channels, a 5x5 then 3x3 kernels), ReLU, per-layer input and output scales fitted on
the training block, and the output's domain mean removed per layer (``S_q`` is the divergence
of an eddy flux, so its mean over the periodic domain vanishes; the benchmark removes the mean
over layers and space together).

:class:`QGClosure` wraps a trained network as a :class:`nnparam.closure.Closure` on whole
fields: ``closure(q)`` on numpy PV ``(..., 2, n, n)`` in 1/s returns ``S_q`` in 1/s^2, and
:meth:`QGClosure.jax_weights` hands the same weights to :func:`jax_forward`, so the online
model evaluates the network inside its compiled time loop instead of calling torch every step.
"""

from __future__ import annotations

import copy
import hashlib

import jax
import jax.numpy as jnp
import numpy as np
import torch
from torch import nn

from .._validate import finite_array, positive, positive_int
from ..closure import Closure
from . import qg_model  # noqa: F401 (enables float64 in JAX before any array exists)


class FCNN(nn.Module):
    """Periodic CNN ``q (batch, 2, n, n) [1/s] -> S_q (batch, 2, n, n) [1/s^2]``.

    ``widths``: channels of the hidden layers; ``kernels``: one odd kernel size per
    convolution (``len(widths) + 1``); ``q_scale``, ``s_scale``: per-layer scales (1/s and
    1/s^2, two values each), set by :func:`train_fcnn` from the training block.
    """

    def __init__(self, widths=(8, 8, 8), kernels=(5, 3, 3, 3), q_scale=(1.0, 1.0),
                 s_scale=(1.0, 1.0), seed: int = 0):
        super().__init__()
        widths = tuple(positive_int("widths", w) for w in widths)
        kernels = tuple(positive_int("kernels", k) for k in kernels)
        if len(kernels) != len(widths) + 1 or any(k % 2 == 0 for k in kernels):
            raise ValueError(f"kernels must hold len(widths) + 1 = {len(widths) + 1} odd sizes, "
                             f"got {kernels}")
        torch.manual_seed(seed)
        layers: list[nn.Module] = []
        channels = (2, *widths, 2)
        for i, k in enumerate(kernels):
            layers.append(nn.Conv2d(channels[i], channels[i + 1], k, padding=k // 2,
                                    padding_mode="circular"))
            if i < len(kernels) - 1:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)
        self.register_buffer("q_scale", torch.as_tensor(q_scale, dtype=torch.float32))
        self.register_buffer("s_scale", torch.as_tensor(s_scale, dtype=torch.float32))

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        out = self.net(q / self.q_scale[:, None, None])
        out = out - out.mean(dim=(-2, -1), keepdim=True)
        return out * self.s_scale[:, None, None]

    def architecture(self) -> str:
        parts = [f"conv{m.kernel_size[0]}x{m.kernel_size[1]} {m.in_channels}->{m.out_channels}"
                 for m in self.net if isinstance(m, nn.Conv2d)]
        return ", ReLU, ".join(parts) + " (periodic padding)"


def _fields(name: str, q) -> np.ndarray:
    arr = finite_array(name, q)
    if arr.ndim < 3 or arr.shape[-3] != 2 or arr.shape[-1] != arr.shape[-2]:
        raise ValueError(f"{name} must have shape (..., 2, n, n) (two layers on a square grid), "
                         f"got {arr.shape}")
    return arr


def train_fcnn(q, s_q, validation: tuple | None = None, *, widths=(8, 8, 8),
               kernels=(5, 3, 3, 3), epochs: int = 60, lr: float = 3e-3, batch_size: int = 8,
               seed: int = 0, reflect: bool = False) -> tuple[FCNN, dict]:
    """Train an :class:`FCNN` on coarse PV ``q`` and forcing ``s_q`` (time, 2, n, n).

    ``reflect=True`` adds to the training block its mirror image ``q(x, y) -> -q(x, -y)``,
    ``S_q(x, y) -> -S_q(x, -y)``: an exact symmetry of the two-layer model with a zonal
    background flow and beta (the Jacobian, the beta term, the background advection and the
    drag all change sign with ``q`` under the reflection), so the mirrored snapshots are valid
    training data.

    Mini-batch Adam on the mean squared error of the scaled forcing, ``batch_size`` snapshots
    per step, the order of the training snapshots drawn anew each epoch from a seeded
    generator (the split itself stays time-contiguous: pass the training block only). With
    ``validation=(q_val, s_val)`` the weights of the epoch with the lowest validation loss are
    kept. Returns the network (in eval mode) and ``{"train": [...], "validation": [...],
    "best_epoch": int}``.
    """
    q, s_q = _fields("q", q), _fields("s_q", s_q)
    if q.shape != s_q.shape or q.ndim != 4:
        raise ValueError(f"q and s_q must share one shape (time, 2, n, n), got {q.shape} and "
                         f"{s_q.shape}")
    epochs, batch_size = positive_int("epochs", epochs), positive_int("batch_size", batch_size)
    lr = positive("lr", lr)
    if reflect:
        q = np.concatenate([q, -q[..., ::-1, :]])
        s_q = np.concatenate([s_q, -s_q[..., ::-1, :]])
    q_scale = q.std(axis=(0, 2, 3))
    s_scale = s_q.std(axis=(0, 2, 3))
    if np.any(q_scale == 0) or np.any(s_scale == 0):
        raise ValueError("q and s_q must vary in both layers over the training block")
    net = FCNN(widths, kernels, q_scale, s_scale, seed=seed)
    scale = torch.as_tensor(s_scale, dtype=torch.float32)[:, None, None]
    x = torch.as_tensor(q, dtype=torch.float32)
    y = torch.as_tensor(s_q, dtype=torch.float32)
    if validation is not None:
        xv = torch.as_tensor(_fields("validation[0]", validation[0]), dtype=torch.float32)
        yv = torch.as_tensor(_fields("validation[1]", validation[1]), dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    history = {"train": [], "validation": [], "best_epoch": epochs - 1}
    best, best_state = np.inf, None
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(x.shape[0], generator=gen)
        total = 0.0
        for start in range(0, x.shape[0], batch_size):
            idx = order[start:start + batch_size]
            opt.zero_grad()
            loss = torch.mean(((net(x[idx]) - y[idx]) / scale) ** 2)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * idx.numel()
        history["train"].append(total / x.shape[0])
        if validation is not None:
            net.eval()
            with torch.no_grad():
                vloss = float(torch.mean(((net(xv) - yv) / scale) ** 2))
            history["validation"].append(vloss)
            if vloss < best:
                best, best_state = vloss, copy.deepcopy(net.state_dict())
                history["best_epoch"] = epoch
    if best_state is not None:
        net.load_state_dict(best_state)
    return net.eval(), history


def kernel_spectra(weight: np.ndarray, n: int) -> np.ndarray:
    """The rfft2 of a conv kernel (out, in, k, k) placed on a periodic ``n x n`` grid.

    A periodic cross-correlation (torch's ``Conv2d`` with circular padding) is a product in
    Fourier space: ``out_hat[o] = sum_i K_hat[o, i] in_hat[i]`` with ``K`` the kernel flipped
    and wrapped around the grid. Returns complex64 (out, in, n, n // 2 + 1).
    """
    out_c, in_c, k, _ = weight.shape
    if k > n:
        raise ValueError(f"the kernel ({k}) is larger than the grid ({n})")
    grid = np.zeros((out_c, in_c, n, n), np.float32)
    half = k // 2
    for dy in range(k):
        for dx in range(k):
            grid[:, :, (half - dy) % n, (half - dx) % n] = weight[:, :, dy, dx]
    return np.fft.rfft2(grid).astype(np.complex64)


def jax_forward(weights: dict, q):
    """:class:`FCNN` evaluated in JAX on one state ``q`` (2, n, n): ``S_q`` (2, n, n).

    ``weights`` as returned by :meth:`QGClosure.jax_weights`, whose ``method`` decides how
    each periodic convolution is computed: ``"direct"`` (``jax.lax.conv_general_dilated`` on
    the wrap-padded field; the kernels are stored real) or ``"fft"`` (a product in Fourier
    space, :func:`kernel_spectra`, stored complex; exact for circular padding and independent
    of the kernel size). On XLA's CPU backend
    direct convolutions of 8 channels with 3x3 kernels are fast while 16 channels or 5x5
    kernels between hidden layers are about ten times slower; there the FFT form wins. The
    network runs in float32 (its training precision) and its output is cast back to the
    dtype of ``q``.
    """
    z = (q / weights["q_scale"][:, None, None]).astype(jnp.float32)
    n = z.shape[-1]
    layers = weights["layers"]
    for i, (kernel, bias) in enumerate(layers):
        if jnp.iscomplexobj(kernel):  # "fft": the kernel is stored as its spectrum
            z = jnp.fft.irfft2(jnp.einsum("ikl,oikl->okl", jnp.fft.rfft2(z), kernel), s=(n, n))
        else:
            pad = kernel.shape[-1] // 2
            z = jnp.pad(z, ((0, 0), (pad, pad), (pad, pad)), mode="wrap")[None]
            z = jax.lax.conv_general_dilated(z, kernel, (1, 1), "VALID",
                                             dimension_numbers=("NCHW", "OIHW", "NCHW"))[0]
        z = z + bias[:, None, None]
        if i < len(layers) - 1:
            z = jax.nn.relu(z)
    out = z - jnp.mean(z, axis=(-2, -1), keepdims=True)
    return (out * weights["s_scale"][:, None, None]).astype(q.dtype)


class QGClosure(Closure):
    """A trained :class:`FCNN` as the closure ``S_q = P(q)`` of the coarse pyqg model.

    ``closure(q)``: numpy PV (..., 2, n, n) in 1/s -> ``S_q`` in 1/s^2 (float64);
    ``closure.torch(q)``: the same on tensors, differentiable; :meth:`jax_weights`: the
    weights as JAX arrays for :func:`jax_forward` (rebuilt whenever the weights change).
    ``config`` and ``nx`` record where the network was trained (metadata); ``method``
    (``"direct"`` or ``"fft"``) how :func:`jax_forward` computes the convolutions.
    """

    def __init__(self, net: FCNN, *, config: str = "eddy", nx: int = 64, name: str = "",
                 method: str = "direct"):
        if not isinstance(net, FCNN):
            raise ValueError(f"net must be an FCNN, got {type(net).__name__}")
        if method not in ("direct", "fft"):
            raise ValueError(f"method must be 'direct' or 'fft', got {method!r}")
        self.method = method
        super().__init__(net, inputs=("q",), per_column=False, output="S_q",
                         output_units="1/s^2", input_units=("1/s",),
                         name=name or f"FCNN trained on {config} at {nx}^2",
                         description=f"{net.architecture()}; input q (layer 1, 2), output the "
                                     "subgrid PV forcing S_q of both layers")
        self.config, self.nx = str(config), positive_int("nx", nx, minimum=8)
        self._jax, self._jax_version = None, None

    def __call__(self, q) -> np.ndarray:
        arr = _fields("q", q)
        flat = torch.from_numpy(np.array(arr.reshape((-1,) + arr.shape[-3:]), np.float32))
        with torch.no_grad():
            out = self.module(flat).double().numpy()
        return out.reshape(arr.shape)

    def torch(self, q: torch.Tensor) -> torch.Tensor:
        q = torch.as_tensor(q, dtype=torch.float32)
        return self.module(q.reshape((-1,) + tuple(q.shape[-3:]))).reshape(q.shape)

    def jax_weights(self, nx: int | None = None) -> dict:
        """The weights as JAX arrays for :func:`jax_forward` on an ``nx`` grid (default: the
        training grid): kernel spectra, biases and scales."""
        nx = self.nx if nx is None else positive_int("nx", nx, minimum=8)
        version = (self._weights_version(), nx, self.method)
        if self._jax_version != version:
            convs = [m for m in self.module.net if isinstance(m, nn.Conv2d)]
            if self.method == "fft":
                kernels = [jnp.asarray(kernel_spectra(m.weight.detach().numpy(), nx))
                           for m in convs]
            else:
                kernels = [jnp.asarray(m.weight.detach().numpy()) for m in convs]
            layers = [(k, jnp.asarray(m.bias.detach().numpy())) for k, m in
                      zip(kernels, convs, strict=True)]
            self._jax = {"layers": layers,
                         "q_scale": jnp.asarray(self.module.q_scale.numpy(), jnp.float64),
                         "s_scale": jnp.asarray(self.module.s_scale.numpy(), jnp.float64)}
            self._jax_version = version
        return self._jax

    def weights_hash(self) -> str:
        """A short hash of the weights and scales (a cache key for online runs)."""
        h = hashlib.sha256()
        for key, value in sorted(self.module.state_dict().items()):
            h.update(key.encode())
            h.update(value.detach().cpu().numpy().tobytes())
        return h.hexdigest()[:16]

    def metadata(self) -> dict:
        meta = super().metadata()
        meta.update({"layout": "(..., layer, y, x), layers (upper, lower)",
                     "architecture": self.module.architecture(), "trained_on": self.config,
                     "grid": self.nx, "weights_hash": self.weights_hash()})
        return meta
