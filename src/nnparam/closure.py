"""The one closure concept: a trained network as a parameterization ``P(state)``.

Every online run in the book (Lorenz-96, the tracer, the stability toy, the ocean eddies,
...) accepts either a plain callable or a :class:`Closure`. A closure holds

* the torch module and what it computes from: the names of its input fields, the periodic
  stencil width (or a custom feature function), and whether the network acts **per column**
  (the same small network in every cell, on that cell's local features) or on the **whole
  field** at once;
* the input and output standardisation (fitted on training data only);
* a fast float numpy twin of the network where the architecture allows (a ``Sequential`` of
  ``Linear`` layers and simple activations): calling torch costs ~100 us per call whatever
  the size, and an RK4 run calls the closure four times per step;
* the metadata that evaluation, export and interpretation need (units, output name, feature
  order, dtype, version: :meth:`Closure.metadata`).

Calling a closure on numpy fields (``closure(X)`` or ``closure(q, u_face)``) returns numpy,
for the integrators; :meth:`Closure.torch` evaluates the same map on torch tensors with
gradients, for training through a solver and for Jacobians. Fields may carry leading axes
(times, ensemble members): the closure acts on the last axis (cells) and keeps the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from ._validate import finite_array, positive_int

VERSION = 1  # version of the closure metadata (bump when its keys change meaning)

_NUMPY_ACTIVATIONS = {
    "Tanh": np.tanh,
    "ReLU": lambda z: np.maximum(z, 0.0),
    "SiLU": lambda z: z / (1.0 + np.exp(-z)),
    "Softplus": lambda z: np.logaddexp(0.0, z),
    "Identity": lambda z: z,
}


def is_torch_module(obj) -> bool:
    """True for any ``torch.nn.Module`` instance."""
    return isinstance(obj, nn.Module)


def numpy_twin(module: nn.Module) -> Callable | None:
    """A numpy function computing ``module`` in its own precision, or ``None``.

    Works for an ``nn.Sequential`` of ``Linear`` layers and the activations Tanh, ReLU, SiLU,
    Softplus (default arguments) and Identity; for any other architecture it returns
    ``None`` and callers fall back to torch. The weights are copied once: retraining the
    module afterwards needs a new twin.
    """
    if not isinstance(module, nn.Sequential) or len(module) == 0:
        return None
    params = list(module.parameters())
    if not params:
        return None
    dtype = np.float64 if params[0].dtype == torch.float64 else np.float32
    layers = []
    for layer in module:
        if isinstance(layer, nn.Linear):
            w = layer.weight.detach().cpu().numpy().T.astype(dtype)
            bias = (np.zeros(w.shape[1], dtype) if layer.bias is None
                    else layer.bias.detach().cpu().numpy().astype(dtype))
            layers.append((w, bias))
        elif type(layer).__name__ in _NUMPY_ACTIVATIONS and (
                not isinstance(layer, nn.Softplus) or (layer.beta == 1 and layer.threshold == 20)):
            layers.append(_NUMPY_ACTIVATIONS[type(layer).__name__])
        else:
            return None

    def forward(z: np.ndarray) -> np.ndarray:
        z = z.astype(dtype, copy=False)
        for layer in layers:
            z = z @ layer[0] + layer[1] if isinstance(layer, tuple) else layer(z)
        return z

    return forward


@lru_cache(maxsize=64)
def _stencil_index(n: int, width: int) -> np.ndarray:
    """Indices ``(i + offset) % n`` of shape ``(n, 2 width + 1)`` (read-only, shared)."""
    idx = (np.arange(n)[:, None] + np.arange(-width, width + 1)[None, :]) % n
    idx.flags.writeable = False
    return idx


@lru_cache(maxsize=64)
def _stencil_index_torch(n: int, width: int) -> torch.Tensor:
    return torch.tensor(_stencil_index(n, width))


def stencil_features(*fields, width: int = 0, xp=np):
    """Periodic stencils of each field, concatenated: ``(..., n)`` fields -> ``(..., n, F)``.

    For every cell ``i`` the features are ``[f[i-w], ..., f[i+w]]`` of the first field, then
    of the second, and so on (``F = len(fields) * (2 w + 1)``). ``xp`` is ``numpy`` or
    ``torch``: one source for both (an index gather, which keeps gradients in torch).
    """
    width = positive_int("width", width, minimum=0)
    if not fields:
        raise ValueError("stencil_features needs at least one field")
    idx = (_stencil_index if xp is np else _stencil_index_torch)(fields[0].shape[-1], width)
    parts = [f[..., idx] for f in fields]
    if len(parts) == 1:
        return parts[0]
    return torch.cat(parts, -1) if xp is torch else np.concatenate(parts, axis=-1)


def _as_vector(name: str, value, size: int | None) -> np.ndarray:
    arr = np.atleast_1d(finite_array(name, value)).astype(float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a number or a 1-D array, got shape {arr.shape}")
    if size is not None and arr.size not in (1, size):
        raise ValueError(f"{name} must hold 1 or {size} values, got {arr.size}")
    return arr


class Closure:
    """A trained torch network wrapped as a parameterization for online runs.

    Parameters
    ----------
    module : the trained ``torch.nn.Module``. Per column (``per_column=True``), it maps
        ``(n, F)`` standardised features to ``(n, n_out)``; on the whole field, it maps the
        concatenated fields ``(batch, n_fields * n)`` to ``(batch, n)`` in physical units
        (such a module does its own scaling).
    inputs : names of the input fields, in the order the closure is called with them.
    stencil_width : half width ``w`` of the periodic stencil taken of each field.
    features : optional ``features(*fields, xp) -> (..., n, F)`` replacing the stencils (for
        example face gradients); ``feature_names`` then describes its columns.
    x_mean, x_std : standardisation of the features (scalars or ``F`` values), from training
        data: ``z = (features - x_mean) / x_std``.
    y_mean, y_std : the network's output ``o`` maps to ``o * y_std + y_mean``.
    output, output_units, input_units : names and units for metadata and export.
    numpy_forward : optional fast numpy function standing in for the module (per column it
        maps standardised ``(n, F)`` to ``(n, n_out)``; on the whole field the concatenated
        fields to the output); by default :func:`numpy_twin` of the module (rebuilt whenever
        the weights change, so training after wrapping is safe), else torch.
    name, description : free text for reports.
    """

    def __init__(self, module: nn.Module, *, inputs: Sequence[str] = ("x",),
                 stencil_width: int = 0, features: Callable | None = None,
                 feature_names: Sequence[str] | None = None, x_mean=0.0, x_std=1.0,
                 y_mean=0.0, y_std=1.0, per_column: bool = True, output: str = "tendency",
                 output_units: str = "", input_units: Sequence[str] | None = None,
                 numpy_forward: Callable | None = None, name: str = "",
                 description: str = ""):
        if not is_torch_module(module):
            raise ValueError(f"module must be a torch.nn.Module, got {type(module).__name__}")
        if not list(module.parameters()):
            raise ValueError("module has no parameters: pass the trained network")
        self.module = module
        self.inputs = tuple(str(i) for i in inputs)
        if not self.inputs:
            raise ValueError("inputs must name at least one field")
        self.stencil_width = positive_int("stencil_width", stencil_width, minimum=0)
        self.per_column = bool(per_column)
        self._features = features
        n_feat = len(self.inputs) * (2 * self.stencil_width + 1) if features is None else None
        if feature_names is None and features is None:
            feature_names = [f"{f}[i{o:+d}]" if o else f"{f}[i]" for f in self.inputs
                             for o in range(-self.stencil_width, self.stencil_width + 1)]
        self.feature_names = None if feature_names is None else tuple(feature_names)
        if n_feat is None and self.feature_names is not None:
            n_feat = len(self.feature_names)
        self.x_mean = _as_vector("x_mean", x_mean, n_feat)
        self.x_std = _as_vector("x_std", x_std, n_feat)
        if np.any(self.x_std <= 0):
            raise ValueError("x_std must be strictly positive")
        self.y_mean = _as_vector("y_mean", y_mean, None)
        self.y_std = _as_vector("y_std", y_std, None)
        if np.any(self.y_std <= 0):
            raise ValueError("y_std must be strictly positive")
        self.output, self.output_units = str(output), str(output_units)
        units = ["" for _ in self.inputs] if input_units is None else list(input_units)
        if len(units) != len(self.inputs):
            raise ValueError(f"input_units must give one unit per input {self.inputs}")
        self.input_units = tuple(str(u) for u in units)
        self.name, self.description = str(name), str(description)
        self._params = list(module.parameters())  # a list: cheap to scan on every call
        self.dtype = self._params[0].dtype
        self._given_forward = numpy_forward
        self._twin, self._twin_version = None, None

    # ---------------------------------------------------------------------------------
    @classmethod
    def from_scalers(cls, module: nn.Module, x_scaler=None, y_scaler=None, **kw) -> Closure:
        """A per-column closure standardised by :class:`nnparam.nn.Standardizer` objects."""
        if x_scaler is not None:
            kw.update(x_mean=x_scaler.mean, x_std=x_scaler.std)
        if y_scaler is not None:
            kw.update(y_mean=y_scaler.mean, y_std=y_scaler.std)
        return cls(module, **kw)

    @property
    def width(self) -> int:
        """Alias of :attr:`stencil_width` (the name older code used)."""
        return self.stencil_width

    @property
    def has_numpy_twin(self) -> bool:
        return self._numpy_forward() is not None

    def _weights_version(self) -> int:
        # in-place updates (optimizer steps, load_state_dict) bump a tensor's version counter
        return sum(p._version for p in self._params)

    def _numpy_forward(self) -> Callable | None:
        """The numpy twin, rebuilt when the module's weights changed since it was made."""
        if self._given_forward is not None:
            return self._given_forward
        version = self._weights_version()
        if self._twin_version != version:
            self._twin, self._twin_version = numpy_twin(self.module), version
        return self._twin

    # ---------------------------------------------------------------------------------
    def _check_fields(self, fields, xp):
        """Broadcast the fields to one shape (a wind ``(n,)`` beside states ``(M, n)`` is
        fine) and return them with that shape."""
        if len(fields) != len(self.inputs):
            raise ValueError(f"closure {self.name or ''} takes the fields {self.inputs}, "
                             f"got {len(fields)} arrays")
        try:
            fields = (np.broadcast_arrays(*fields) if xp is np
                      else torch.broadcast_tensors(*fields))
        except (ValueError, RuntimeError) as err:
            shapes = {n: tuple(f.shape) for n, f in zip(self.inputs, fields, strict=True)}
            raise ValueError(f"the fields {shapes} do not broadcast to one shape "
                             "(cells on the last axis)") from err
        shape = tuple(fields[0].shape)
        if len(shape) < 1:
            raise ValueError("fields must have the cells on their last axis")
        return list(fields), shape

    def features(self, *fields, xp=np):
        """The network's (unstandardised) input features ``(..., n, F)`` of the fields."""
        if self._features is not None:
            return self._features(*fields, xp=xp)
        return stencil_features(*fields, width=self.stencil_width, xp=xp)

    def __call__(self, *fields) -> np.ndarray:
        """Evaluate on numpy fields ``(..., n)``: ``(..., n)`` (or ``(..., n, n_out)``)."""
        arrays, shape = self._check_fields([np.asarray(f, dtype=float) for f in fields], np)
        if not self.per_column:
            flat = np.concatenate([a.reshape(-1, shape[-1]) for a in arrays], axis=-1)
            out = self._run_numpy(flat)
            return np.asarray(out, dtype=float).reshape(shape[:-1] + out.shape[1:])
        feats = self.features(*arrays, xp=np)
        z = (feats.reshape(-1, feats.shape[-1]) - self.x_mean) / self.x_std
        out = np.asarray(self._run_numpy(z), dtype=float) * self.y_std + self.y_mean
        if out.shape[-1] == 1:
            return out[:, 0].reshape(feats.shape[:-1])
        return out.reshape(feats.shape[:-1] + (out.shape[-1],))

    def _run_numpy(self, z: np.ndarray) -> np.ndarray:
        forward = self._numpy_forward()
        if forward is not None:
            return forward(z)
        with torch.no_grad():
            return self.module(torch.as_tensor(z, dtype=self.dtype)).numpy()

    def torch(self, *fields: torch.Tensor) -> torch.Tensor:
        """The same map on torch tensors, differentiable in the fields and the weights."""
        tensors, shape = self._check_fields([torch.as_tensor(f, dtype=self.dtype)
                                             for f in fields], torch)
        if not self.per_column:
            flat = torch.cat([t.reshape(-1, shape[-1]) for t in tensors], dim=-1)
            out = self.module(flat)
            return out.reshape(shape[:-1] + tuple(out.shape[1:]))
        feats = self.features(*tensors, xp=torch)
        x_mean = torch.as_tensor(self.x_mean, dtype=self.dtype)
        x_std = torch.as_tensor(self.x_std, dtype=self.dtype)
        z = (feats.reshape(-1, feats.shape[-1]) - x_mean) / x_std
        out = self.module(z) * torch.as_tensor(self.y_std, dtype=self.dtype) \
            + torch.as_tensor(self.y_mean, dtype=self.dtype)
        if out.shape[-1] == 1:
            return out[:, 0].reshape(feats.shape[:-1])
        return out.reshape(tuple(feats.shape[:-1]) + (out.shape[-1],))

    # ---------------------------------------------------------------------------------
    def metadata(self) -> dict:
        """What export, evaluation and interpretation need to know, as plain JSON types."""
        return {
            "version": VERSION,
            "name": self.name,
            "description": self.description,
            "inputs": list(self.inputs),
            "input_units": list(self.input_units),
            "output": self.output,
            "output_units": self.output_units,
            "per_column": self.per_column,
            "stencil_width": self.stencil_width,
            "custom_features": self._features is not None,
            "feature_names": None if self.feature_names is None else list(self.feature_names),
            "x_mean": self.x_mean.tolist(),
            "x_std": self.x_std.tolist(),
            "y_mean": self.y_mean.tolist(),
            "y_std": self.y_std.tolist(),
            "dtype": str(self.dtype).replace("torch.", ""),
        }

    def __repr__(self) -> str:
        kind = "per column" if self.per_column else "whole field"
        return (f"Closure({self.name or type(self.module).__name__}: {self.inputs} -> "
                f"{self.output} [{self.output_units}], {kind}, stencil width "
                f"{self.stencil_width}, numpy twin {'yes' if self.has_numpy_twin else 'no'})")


def as_closure(closure, **kw):
    """Normalise what an online run was given: ``None`` stays ``None``, a :class:`Closure` or
    a plain callable is returned as is, a bare torch module is wrapped with ``kw``."""
    if closure is None or isinstance(closure, Closure):
        return closure
    if is_torch_module(closure):
        return Closure(closure, **kw)
    if not callable(closure):
        raise ValueError(f"closure must be a Closure, a callable or a torch module, got "
                         f"{type(closure).__name__}")
    return closure
