"""Hidden checks of lab 2 (run by the grader only)."""

import numpy as np
import torch

from nnparam.grid import flux_divergence
from nnparam.labs.feedback import as_tensor, call, passed, require


def exercise_1(divergence):
    """Another grid and batch than the visible check's."""
    rng = np.random.default_rng(77)
    widths = rng.uniform(0.2, 5.0, 9)
    flux = torch.tensor(rng.normal(size=(4, 3, 9)), requires_grad=True)
    out = as_tensor("divergence", call("divergence", divergence, flux,
                                       torch.as_tensor(widths)), shape=(4, 3, 9))
    want = flux_divergence(flux.detach().numpy(), widths)
    require(np.allclose(out.detach().numpy(), want),
            "divergence is wrong on a grid of 9 cells of random widths")
    passed("divergence on a new grid")


def exercise_2(kappa_from_raw, down_gradient_flux):
    """The operators on shapes the visible check does not try."""
    rng = np.random.default_rng(78)
    raw = torch.tensor(rng.normal(0, 5, size=(3, 4, 5)))
    kappa = as_tensor("kappa_from_raw", call("kappa_from_raw", kappa_from_raw, raw),
                      shape=(3, 4, 5))
    require(bool((kappa >= 0).all()), "kappa_from_raw gives a negative value")
    q = torch.tensor(rng.normal(size=(3, 4, 5)))
    d = torch.as_tensor(rng.uniform(0.5, 2, 5))
    flux = call("down_gradient_flux", down_gradient_flux, kappa, q, d)
    want = -kappa * (torch.roll(q, -1, dims=-1) - q) / d
    require(torch.allclose(flux, want), "down_gradient_flux is wrong for 3-D inputs")
    passed("operators on 3-D inputs")
