"""Array-namespace helpers: one source of the equations for numpy and torch.

The models' right-hand sides are written once against these few operations, so the numpy
integrators and the differentiable (torch) versions of :mod:`nnparam.aposteriori` evaluate
the same arithmetic in the same order (identical to round-off in float64). torch is imported
only when a tensor is actually passed.
"""

from __future__ import annotations

import numpy as np


def is_torch(x) -> bool:
    """True for a ``torch.Tensor`` (checked by module name: no torch import needed)."""
    return type(x).__module__.split(".")[0] == "torch"


def namespace(x):
    """The array module of ``x``: ``torch`` for a tensor, else ``numpy``."""
    if is_torch(x):
        import torch

        return torch
    return np


def roll(x, shift: int):
    """Periodic shift along the last axis: ``out[..., i] = x[..., i - shift]``."""
    if is_torch(x):
        import torch

        return torch.roll(x, shift, dims=-1)
    shift %= x.shape[-1]
    if shift == 0:
        return x.copy()
    # the values of np.roll, without its generic-axis overhead (this sits in inner loops)
    return np.concatenate([x[..., -shift:], x[..., :-shift]], axis=-1)


def pad_periodic(x, width: int = 1):
    """``x`` with ``width`` periodic ghost cells on each side of its last axis."""
    if is_torch(x):
        import torch

        return torch.cat([x[..., -width:], x, x[..., :width]], dim=-1)
    return np.concatenate([x[..., -width:], x, x[..., :width]], axis=-1)


def tanh(x):
    """Elementwise ``tanh`` in the namespace of ``x``."""
    if is_torch(x):
        import torch

        return torch.tanh(x)
    return np.tanh(x)


def like(value, ref):
    """``value`` (a number or numpy array) in the namespace and float dtype of ``ref``."""
    if is_torch(ref):
        import torch

        return torch.as_tensor(np.array(value) if isinstance(value, np.ndarray) else value,
                               dtype=ref.dtype)
    return value
