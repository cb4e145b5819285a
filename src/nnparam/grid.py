"""Periodic 1-D finite-volume grid: cell centres, faces, widths and the divergence of face fluxes.

Convention used throughout the book: cell ``i`` spans ``[faces[i-1], faces[i]]`` and
``face_flux[i]`` is the flux through its *right* face, shared with cell ``i+1`` (periodic).
A flux leaving one cell enters its neighbour, so the divergence of any face flux sums to zero
over the domain when weighted by the cell widths: conservation by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validate import finite_array, positive, positive_int


def _is_torch(x) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def _check_widths(cell_width, n: int):
    if _is_torch(cell_width):
        width = cell_width
    else:
        width = finite_array("cell_width", cell_width)
        if width.ndim not in (0, 1) or (width.ndim == 1 and width.shape[0] != n):
            raise ValueError(f"cell_width must be a scalar or an array of {n} cells, "
                             f"got shape {width.shape}")
    if bool((width <= 0).any()):
        raise ValueError("cell_width must be strictly positive")
    return width


def flux_divergence(face_flux, cell_width):
    """Tendency ``-(F[i] - F[i-1]) / cell_width[i]`` of each cell from its face fluxes.

    Parameters
    ----------
    face_flux : array (..., N), numpy or torch
        Flux through the right face of each cell (units: [q] * length / time).
    cell_width : float or array (N,)
        Cell widths (length), non-uniform allowed.

    Returns an array of the shape of ``face_flux`` in [q] / time. Works on torch tensors
    (differentiable) as well as numpy arrays, so a network can output fluxes directly.
    """
    if _is_torch(face_flux):
        import torch

        if face_flux.ndim < 1 or not torch.isfinite(face_flux).all():
            raise ValueError("face_flux must be a finite array of shape (..., N)")
        width = _check_widths(cell_width, face_flux.shape[-1])
        width = torch.as_tensor(width, dtype=face_flux.dtype)
        return -(face_flux - torch.roll(face_flux, 1, dims=-1)) / width
    flux = finite_array("face_flux", face_flux)
    if flux.ndim < 1:
        raise ValueError("face_flux must have shape (..., N) with N cells, got a scalar")
    width = _check_widths(cell_width, flux.shape[-1])
    return -(flux - np.roll(flux, 1, axis=-1)) / width


def periodic_stencil(q, width: int = 1) -> np.ndarray:
    """Neighbours ``q[i-width], ..., q[i], ..., q[i+width]`` of every cell on a periodic last axis.

    ``q`` (..., n) -> (..., n, 2 width + 1). Not validated: it sits in the inner loop of coupled
    runs, so callers check their inputs once.
    """
    n = q.shape[-1]
    return q[..., (np.arange(n)[:, None] + np.arange(-width, width + 1)[None, :]) % n]


@dataclass(frozen=True)
class Grid1D:
    """A periodic grid of ``n`` cells on ``[0, length)``.

    Attributes (all in the length unit of ``length``): ``widths`` (n,), ``faces`` (n,) right
    face positions, ``centers`` (n,), ``distances`` (n,) centre-to-centre distance across each
    right face.
    """

    widths: np.ndarray

    def __post_init__(self):
        w = finite_array("widths", self.widths, ndim=1)
        if w.size < 2 or np.any(w <= 0):
            raise ValueError("widths must hold at least 2 strictly positive cell widths")
        object.__setattr__(self, "widths", w)

    @classmethod
    def uniform(cls, n: int, length: float) -> Grid1D:
        """``n`` equal cells spanning ``length``."""
        n = positive_int("n", n, minimum=2)
        return cls(np.full(n, positive("length", length) / n))

    @classmethod
    def stretched(cls, n: int, length: float, amplitude: float = 0.5) -> Grid1D:
        """Smoothly non-uniform cells: widths vary as ``1 + amplitude*sin`` (|amplitude| < 1)."""
        n = positive_int("n", n, minimum=2)
        if not -1 < amplitude < 1:
            raise ValueError(f"amplitude must lie in (-1, 1), got {amplitude}")
        w = 1 + amplitude * np.sin(2 * np.pi * (np.arange(n) + 0.5) / n)
        return cls(w * positive("length", length) / w.sum())

    @property
    def n(self) -> int:
        return self.widths.size

    @property
    def length(self) -> float:
        return float(self.widths.sum())

    @property
    def faces(self) -> np.ndarray:
        return np.cumsum(self.widths)

    @property
    def centers(self) -> np.ndarray:
        return self.faces - 0.5 * self.widths

    @property
    def distances(self) -> np.ndarray:
        return 0.5 * (self.widths + np.roll(self.widths, -1))

    def divergence(self, face_flux):
        """:func:`flux_divergence` on this grid."""
        return flux_divergence(face_flux, self.widths)

    def face_gradient(self, q):
        """``(q[i+1] - q[i]) / distances[i]`` at each right face; ``q`` has shape (..., n)."""
        if _is_torch(q):
            import torch

            return (torch.roll(q, -1, dims=-1) - q) / torch.as_tensor(self.distances, dtype=q.dtype)
        q = finite_array("q", q)
        if q.shape[-1] != self.n:
            raise ValueError(f"q must have {self.n} cells on its last axis, got shape {q.shape}")
        return (np.roll(q, -1, axis=-1) - q) / self.distances

    def total(self, q) -> np.ndarray:
        """Domain integral ``sum_i widths[i] * q[..., i]`` (the conserved amount)."""
        return np.sum(finite_array("q", q) * self.widths, axis=-1)
