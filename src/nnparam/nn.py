"""Small torch networks and one reproducible, full-batch training loop for every chapter.

The toys in this book are small, so networks train full-batch on the CPU in seconds: no data
loaders, no mini-batch noise, and the same numbers on every run for a given seed.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ._validate import finite_array, positive, positive_int

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


def seed_everything(seed: int = 0) -> None:
    """Seed python, numpy and torch so that a notebook gives the same numbers on each run."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (legacy global state, for third-party code that uses it)
    torch.manual_seed(seed)


def mlp(n_in: int, n_out: int, hidden: Sequence[int] = (32, 32), activation: str = "tanh",
        seed: int = 0, dtype=torch.float32) -> nn.Sequential:
    """A fully connected network ``n_in -> hidden... -> n_out`` with seeded initial weights.

    ``tanh`` and ``relu`` are 1-Lipschitz; ``gelu`` (about 1.13) and ``silu`` (about 1.10) are
    not, which :func:`nnparam.stability.mlp_lipschitz_bound` accounts for.
    """
    n_in = positive_int("n_in", n_in)
    n_out = positive_int("n_out", n_out)
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    width = n_in
    for h in hidden:
        layers += [nn.Linear(width, positive_int("hidden", h)), ACTIVATIONS[activation]()]
        width = h
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers).to(dtype)


class Standardizer:
    """Shift and scale columns to zero mean and unit variance, fitted on training data only.

    ``x`` has shape ``(n_samples, n_features)``; the statistics are per feature.
    """

    def __init__(self, x):
        x = finite_array("x", x, ndim=2)
        self.mean = x.mean(axis=0)
        self.std = x.std(axis=0)
        self.std[self.std == 0] = 1.0

    def transform(self, x) -> np.ndarray:
        return (finite_array("x", x, ndim=2) - self.mean) / self.std

    def inverse(self, z) -> np.ndarray:
        return finite_array("z", z, ndim=2) * self.std + self.mean


def _tensor(name: str, x, dtype) -> torch.Tensor:
    arr = finite_array(name, x)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D (n_samples, n_features), got {arr.shape}")
    return torch.as_tensor(arr, dtype=dtype)


def train(model: nn.Module, x, y, *, epochs: int = 2000, lr: float = 1e-2,
          weight_decay: float = 0.0, validation: tuple | None = None, patience: int = 200,
          loss_fn: Callable | None = None, seed: int = 0, progress: bool = False) -> dict:
    """Train ``model`` full-batch with Adam; return the loss history.

    Parameters
    ----------
    x, y : arrays of shape ``(n_samples, n_in)`` and ``(n_samples, n_out)`` (1-D allowed).
    validation : optional ``(x_val, y_val)``; training stops after ``patience`` epochs without
        improvement and the best weights (lowest validation loss) are restored.
    loss_fn : ``loss_fn(model_output, y) -> scalar tensor``; mean squared error by default.
    progress : show a tqdm progress bar.

    Returns ``{"train": [...], "validation": [...], "best_epoch": int}``.
    """
    epochs = positive_int("epochs", epochs)
    positive("lr", lr)
    dtype = next(model.parameters()).dtype
    xt, yt = _tensor("x", x, dtype), _tensor("y", y, dtype)
    if xt.shape[0] != yt.shape[0]:
        raise ValueError(f"x and y must have the same number of samples, got "
                         f"{xt.shape[0]} and {yt.shape[0]}")
    if validation is not None:
        xv, yv = _tensor("validation[0]", validation[0], dtype), \
            _tensor("validation[1]", validation[1], dtype)
    loss_fn = loss_fn or nn.functional.mse_loss
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    history = {"train": [], "validation": [], "best_epoch": epochs - 1}
    best, best_state, waited = np.inf, None, 0
    for epoch in tqdm(range(epochs), disable=not progress, desc="training"):
        opt.zero_grad()
        loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()
        history["train"].append(loss.item())
        if validation is None:
            continue
        with torch.no_grad():
            vloss = float(loss_fn(model(xv), yv))
        history["validation"].append(vloss)
        if vloss < best:
            best, best_state, waited = vloss, copy.deepcopy(model.state_dict()), 0
            history["best_epoch"] = epoch
        else:
            waited += 1
            if waited >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return history


def predict(model: nn.Module, x) -> np.ndarray:
    """Evaluate ``model`` on ``x`` (shape ``(n_samples, n_in)`` or 1-D) without gradients."""
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        return model(_tensor("x", x, dtype)).numpy()


def save(model: nn.Module, path) -> Path:
    """Write the model's weights (``state_dict``) to ``path``."""
    path = Path(path)
    torch.save(model.state_dict(), path)
    return path


def load(model: nn.Module, path) -> nn.Module:
    """Load weights saved by :func:`save` into a model of the same architecture."""
    model.load_state_dict(torch.load(Path(path), weights_only=True))
    return model
