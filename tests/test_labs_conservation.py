"""Lab 2 checks accept the worked answers and reject typical mistakes."""

import numpy as np
import pytest
import torch

from nnparam.labs import checks_conservation as check
from nnparam.labs.feedback import LabCheckError


def good_divergence(flux, widths):
    return -(flux - torch.roll(flux, 1, dims=-1)) / widths


def test_divergence_check():
    assert check.divergence(good_divergence)
    with pytest.raises(LabCheckError, match="sign"):
        check.divergence(lambda f, w: (f - torch.roll(f, 1, dims=-1)) / w)

    def no_wrap(f, w):  # the first cell sees a zero flux through its left face
        left = torch.cat([torch.zeros_like(f[..., :1]), f[..., :-1]], dim=-1)
        return -(f - left) / w

    with pytest.raises(LabCheckError, match="periodic"):
        check.divergence(no_wrap)
    with pytest.raises(LabCheckError, match="OWN width"):
        check.divergence(lambda f, w: -(f - torch.roll(f, 1, dims=-1)) / w.mean())
    with pytest.raises(LabCheckError, match="RIGHT face"):
        check.divergence(lambda f, w: -(torch.roll(f, -1, dims=-1) - f) / w)
    with pytest.raises(LabCheckError, match="torch"):
        check.divergence(lambda f, w: -(np.roll(f.numpy(), 1, -1) - f.numpy()) / w.numpy())
    with pytest.raises(LabCheckError, match="return"):
        check.divergence(lambda f, w: None)


def good_flux(kappa, q, dist):
    return -kappa * (torch.roll(q, -1, dims=-1) - q) / dist


def test_kappa_check():
    softplus = torch.nn.functional.softplus
    assert check.kappa_parts(softplus, good_flux)
    assert check.kappa_parts(torch.exp, good_flux)
    with pytest.raises(LabCheckError, match="negative kappa"):
        check.kappa_parts(lambda r: r, good_flux)
    with pytest.raises(LabCheckError, match="up the gradient"):
        check.kappa_parts(softplus, lambda k, q, d: -good_flux(k, q, d))
    with pytest.raises(LabCheckError, match="LEFT face"):
        check.kappa_parts(softplus, lambda k, q, d: -k * (q - torch.roll(q, 1, dims=-1)) / d)
    with pytest.raises(LabCheckError, match="distance"):
        check.kappa_parts(softplus, lambda k, q, d: -k * (torch.roll(q, -1, dims=-1) - q))


def test_conservation_check():
    assert check.conservation({"tendency": 0.3, "flux": 1e-16, "kappa": 2e-16})
    with pytest.raises(LabCheckError, match="VOLUME"):
        check.conservation({"tendency": 0.3, "flux": 0.05, "kappa": 2e-16})
    with pytest.raises(LabCheckError, match="suspiciously"):
        check.conservation({"tendency": 0.0, "flux": 0.0, "kappa": 0.0})
    with pytest.raises(LabCheckError, match="keys"):
        check.conservation({"flux": 0.0})


def test_drift_check():
    assert check.online_drift({"tendency": 0.5, "flux": -7e-14, "kappa": 7e-14})
    with pytest.raises(LabCheckError, match="round-off"):
        check.online_drift({"tendency": 0.5, "flux": 1e-3, "kappa": 7e-14})
    with pytest.raises(LabCheckError, match="drift"):
        check.online_drift({"tendency": 0.0, "flux": 0.0, "kappa": 0.0})
