"""Checks for lab 2, "Choose the output": each accepts the solution and names a typical
mistake (a flipped divergence, a wrap that is not periodic, a negative kappa) when it sees one."""

from __future__ import annotations

import numpy as np
import torch

from .. import conservation as cons
from ..grid import flux_divergence as _reference_divergence
from .feedback import LabCheckError, as_array, passed, require

_WIDTHS = np.array([1.0, 3.0, 1.0, 3.0, 2.0, 0.5])


def _call(name: str, func, *args):
    try:
        out = func(*args)
    except NotImplementedError:
        raise
    except Exception as err:  # the student's code failed: say where
        raise LabCheckError(f"{name} raised {type(err).__name__}: {err}") from err
    if out is None:
        raise LabCheckError(f"{name} returned None: did your function forget to `return`?")
    return out


def _numpy(name: str, value, shape) -> np.ndarray:
    if not isinstance(value, torch.Tensor):
        raise LabCheckError(f"{name} should return a torch tensor (use torch.roll, not np.roll, "
                            f"so that gradients reach the network), got {type(value).__name__}")
    return as_array(name, value.detach().numpy(), shape)


def divergence(func) -> bool:
    """``func(face_flux, widths)`` must return ``-(F[i] - F[i-1]) / widths[i]`` (periodic)."""
    rng = np.random.default_rng(3)
    flux = rng.normal(size=(2, _WIDTHS.size))
    got = _numpy("divergence(face_flux, widths)",
                 _call("divergence(face_flux, widths)", func, torch.as_tensor(flux),
                       torch.as_tensor(_WIDTHS)), flux.shape)
    want = _reference_divergence(flux, _WIDTHS)
    if np.allclose(got, -want):
        raise LabCheckError("the sign is flipped: a flux out of the right face (F[i] > 0) must "
                            "*lower* q[i], so T[i] = -(F[i] - F[i-1]) / V[i]")
    if np.allclose(got[..., 1:], want[..., 1:]) and not np.allclose(got[..., 0], want[..., 0]):
        raise LabCheckError("the first cell is wrong: its left face is the right face of the "
                            "LAST cell (periodic domain), so use torch.roll, not a zero or a "
                            "copied boundary flux")
    if np.allclose(got, want * _WIDTHS / _WIDTHS.mean()) or np.allclose(got, want * _WIDTHS):
        raise LabCheckError("divide each cell's flux difference by ITS OWN width (volume), "
                            "not by a mean or a constant spacing")
    if np.allclose(got, -_reference_divergence(np.roll(flux, 1, axis=-1), _WIDTHS)) or \
            np.allclose(got, _reference_divergence(np.roll(flux, -1, axis=-1), _WIDTHS)):
        raise LabCheckError("the faces are shifted by one: face_flux[i] is the flux through "
                            "the RIGHT face of cell i, shared with cell i + 1")
    require(np.allclose(got, want), "the divergence differs from -(F[i] - F[i-1]) / V[i]")
    budget = np.abs(cons.relative_domain_budget(got, _WIDTHS)).max()
    return passed(f"the divergence telescopes: relative domain budget {budget:.1e}")


def kappa_parts(kappa_from_raw, down_gradient_flux) -> bool:
    """``kappa_from_raw(raw) >= 0`` (smooth); ``down_gradient_flux(kappa, q, distances)`` must
    be ``-kappa * (q[i+1] - q[i]) / distances[i]``."""
    raw = torch.linspace(-30.0, 5.0, 12, dtype=torch.float64)
    kappa = _numpy("kappa_from_raw(raw)", _call("kappa_from_raw(raw)", kappa_from_raw, raw),
                   (12,))
    if np.any(kappa < 0):
        raise LabCheckError(f"kappa_from_raw gave a negative kappa ({kappa.min():.2g}): a "
                            f"negative diffusivity creates variance; map the raw output "
                            f"through softplus (or exp) so that kappa >= 0 for any weights")
    require(np.all(np.diff(kappa) >= 0) and kappa[-1] > kappa[0],
            "kappa_from_raw should increase with the raw output (softplus is a good choice)")
    require(np.all(kappa[-3:] > 0), "kappa_from_raw should be positive for positive raw values")
    rng = np.random.default_rng(4)
    q = rng.normal(size=(2, _WIDTHS.size))
    kap = rng.uniform(0.5, 2.0, size=q.shape)
    dist = 0.5 * (_WIDTHS + np.roll(_WIDTHS, -1))
    args = [torch.as_tensor(a) for a in (kap, q, dist)]
    flux = _numpy("down_gradient_flux(kappa, q, distances)",
                  _call("down_gradient_flux(kappa, q, distances)", down_gradient_flux, *args),
                  q.shape)
    want = cons.kappa_flux(kap, q, 1.0, dist)
    if np.allclose(flux, -want):
        raise LabCheckError("the flux runs up the gradient: F = -kappa (q[i+1] - q[i]) / d "
                            "carries tracer from high to low values")
    back = -kap * (q - np.roll(q, 1, axis=-1)) / dist
    if np.allclose(flux, back):
        raise LabCheckError("you used the gradient across the LEFT face (q[i] - q[i-1]); "
                            "face i is the right face, between cells i and i + 1")
    if np.allclose(flux, -kap * (np.roll(q, -1, axis=-1) - q)):
        raise LabCheckError("divide the difference by the centre distance d of the face")
    require(np.allclose(flux, want), "the flux differs from -kappa (q[i+1] - q[i]) / d")
    return passed("kappa >= 0 and the flux runs down the gradient")


def conservation(budgets: dict) -> bool:
    """``budgets[kind]``: the max |relative domain budget| of each head on random inputs."""
    require(isinstance(budgets, dict) and set(budgets) >= set(cons.HEADS),
            f"`budgets` should be a dict with the keys {cons.HEADS}")
    vals = {k: float(as_array(f"budgets[{k!r}]", budgets[k]).max()) for k in cons.HEADS}
    if vals["flux"] > 1e-12 or vals["kappa"] > 1e-12:
        raise LabCheckError(f"flux/kappa heads give relative budgets {vals['flux']:.1e} / "
                            f"{vals['kappa']:.1e}: weight each tendency by its cell VOLUME "
                            f"(sum V_i T_i), train in float64, and check your divergence")
    require(vals["tendency"] > 1e-6, "the tendency head conserves suspiciously well: did you "
                                     "weight by the volumes and take absolute values last?")
    return passed(f"flux and kappa heads conserve to round-off; the tendency head misses by "
                  f"{vals['tendency']:.1e}")


def online_drift(drift: dict) -> bool:
    """``drift[kind]``: relative change of the domain total at the end of a coupled run."""
    require(isinstance(drift, dict) and set(drift) >= set(cons.HEADS),
            f"`drift` should be a dict with the keys {cons.HEADS}")
    vals = {k: abs(float(drift[k])) for k in cons.HEADS}
    require(max(vals["flux"], vals["kappa"]) < 1e-11,
            "a conservative head should keep the total to round-off: use the total "
            "sum V_i q_i (ds['total']) relative to its initial value")
    require(vals["tendency"] > 1e-6, "the tendency head's total should drift: did you run it "
                                     "with its own closure?")
    return passed(f"online: total drift {vals['tendency']:.1e} (tendency) vs "
                  f"{max(vals['flux'], vals['kappa']):.1e} (flux, kappa)")
