"""Each check of lab 03 accepts the right answer and rejects typical mistakes with its message."""

import numpy as np
import pytest

from nnparam import stability
from nnparam.labs import checks_stability as check
from nnparam.labs.feedback import LabCheckError


def test_max_stable_timestep_check():
    assert check.max_stable_timestep(stability.max_stable_timestep)
    with pytest.raises(LabCheckError, match="sign of k - lam"):
        check.max_stable_timestep(lambda lam, k: 2 / (k - lam))
    with pytest.raises(LabCheckError, match="no positive step is stable"):
        check.max_stable_timestep(lambda lam, k: 2 / max(abs(lam - k), 1e-30))
    with pytest.raises(LabCheckError, match="Solve"):
        check.max_stable_timestep(lambda lam, k: 1 / (lam - k) if k < lam else 0.0)


def test_spectral_norm_check():
    assert check.spectral_norm(stability.spectral_norm)
    with pytest.raises(LabCheckError, match="Frobenius"):
        check.spectral_norm(np.linalg.norm)
    with pytest.raises(LabCheckError, match="square"):
        check.spectral_norm(lambda w: np.linalg.svd(w, compute_uv=False)[0] ** 2)
    with pytest.raises(LabCheckError, match="largest singular value"):
        check.spectral_norm(lambda w: np.abs(w).max())


def test_lipschitz_bound_check():
    assert check.lipschitz_bound(stability.mlp_lipschitz_bound)

    def skip_last(model):
        return np.prod([stability.spectral_norm(w) for w in stability.linear_weights(model)[:-1]])

    def frobenius(model):
        return np.prod([np.linalg.norm(w.numpy()) for w in stability.linear_weights(model)])

    with pytest.raises(LabCheckError, match="ignores a layer"):
        check.lipschitz_bound(skip_last)
    with pytest.raises(LabCheckError, match="Frobenius"):
        check.lipschitz_bound(frobenius)


def test_closure_and_online_checks():
    from nnparam.nn import mlp

    lam, h = 1 / 7200, 9000.0
    steep = stability.StencilClosure(mlp(3, 1, seed=0), x_scale=1.0, y_scale=1e-3)
    with pytest.raises(LabCheckError, match="smaller `target`"):
        check.normalised_closure(steep, h, lam)
    with pytest.raises(LabCheckError, match="StencilClosure"):
        check.normalised_closure(lambda q: q, h, lam)
    net = stability.spectral_normalized_mlp(3, 1, target=0.5, seed=0)
    stability.freeze_spectral_norm(net)
    gentle = stability.StencilClosure(net, x_scale=1.0, y_scale=lam / np.sqrt(3))
    assert check.normalised_closure(gentle, h, lam)
    good = {"q": np.ones((3, 4)), "blew_up": False, "blowup_step": None}
    assert check.online_run(good, truth_max=1.0)
    with pytest.raises(LabCheckError, match="blew up at step 2"):
        check.online_run({"q": np.ones((3, 4)) * 30, "blew_up": True, "blowup_step": 2}, 1.0)
    with pytest.raises(LabCheckError, match="drifts"):
        check.online_run({"q": np.ones((3, 4)) * 5, "blew_up": False, "blowup_step": None}, 1.0)
