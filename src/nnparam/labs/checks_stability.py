"""Checks of lab 03, "Tame a steep closure": each names the typical mistake it catches."""

from __future__ import annotations

import numpy as np
import torch

from .. import stability
from ..nn import mlp
from .feedback import LabCheckError, as_array, passed, require

LAM = 1 / 7200  # 1/s


def max_stable_timestep(fn) -> bool:
    """``fn(lam, k)`` must return ``2/(lam - k)`` for ``k < lam`` and ``0.0`` otherwise."""
    cases = [(LAM, 0.7 * LAM), (LAM, -LAM), (LAM, 0.0), (1 / 3600, 0.5 / 3600), (LAM, -6 * LAM)]
    for lam, k in cases:
        expected = 2 / (lam - k)
        got = float(as_array("h_max", fn(lam, k), shape=()))
        if np.isclose(got, -expected, rtol=1e-6):
            raise LabCheckError(
                f"for lam = {lam:.3g} 1/s and k = {k:.3g} 1/s you returned {got:.4g} s, the right "
                "size with the wrong sign: the sign of k - lam is flipped. Stability needs "
                "|1 + h (k - lam)| < 1 and k - lam < 0, so h_max = 2 / (lam - k).")
        require(np.isclose(got, expected, rtol=1e-6),
                f"for lam = {lam:.3g} 1/s and k = {k:.3g} 1/s expected h_max = {expected:.4g} s, "
                f"got {got:.4g} s. Solve |1 + h (k - lam)| = 1 for h.")
    for k in (LAM, 2 * LAM):
        got = float(as_array("h_max", fn(LAM, k), shape=()))
        require(got == 0.0,
                f"for k = {k / LAM:.0f} lam you returned {got:.4g} s, but when k >= lam the "
                "coupled system does not decay at all and no positive step is stable: return 0.0.")
    return passed("h_max = 2/(lam - k) for k < lam, and 0.0 once the closure cancels the damping")


def _random_matrices():
    rng = np.random.default_rng(42)
    return [rng.standard_normal(shape) for shape in ((6, 4), (3, 9), (16, 16), (1, 5))]


def spectral_norm(fn) -> bool:
    """``fn(W)`` must return the largest singular value of ``W`` (power iteration)."""
    for w in _random_matrices():
        sigma = np.linalg.svd(w, compute_uv=False)[0]
        got = float(as_array("spectral norm", fn(w), shape=()))
        if np.isclose(got, np.linalg.norm(w), rtol=1e-4) and not np.isclose(sigma, got):
            raise LabCheckError(
                f"for a {w.shape} matrix you returned {got:.4f}, its Frobenius norm "
                f"sqrt(sum W_ij^2); the spectral norm (largest singular value) is {sigma:.4f}. "
                "Frobenius over-estimates how much W stretches a vector: iterate "
                "v <- W^T W v / |W^T W v| and return |W v|.")
        if np.isclose(got, sigma**2, rtol=1e-3):
            raise LabCheckError(
                f"you returned {got:.4f} = sigma^2 for sigma = {sigma:.4f}: |W^T W v| is the "
                "square of the spectral norm; return |W v| with v normalised.")
        require(np.isclose(got, sigma, rtol=1e-4),
                f"for a {w.shape} matrix expected the largest singular value {sigma:.5f}, got "
                f"{got:.5f}. Did you normalise v every iteration and iterate long enough?")
    return passed("power iteration gives the largest singular value")


def _test_mlp():
    model = mlp(3, 2, hidden=(8, 6), activation="tanh", seed=7)
    with torch.no_grad():
        for layer, factor in zip(model[::2], (3.0, 0.5, 2.0), strict=True):
            layer.weight.mul_(factor)
    return model


def lipschitz_bound(fn) -> bool:
    """``fn(model)`` must return the product of the spectral norms of all linear layers."""
    model = _test_mlp()
    weights = [w.numpy().astype(float) for w in stability.linear_weights(model)]
    sig = [np.linalg.svd(w, compute_uv=False)[0] for w in weights]
    expected = float(np.prod(sig))
    got = float(as_array("bound", fn(model), shape=()))
    if np.isclose(got, expected, rtol=1e-4):
        return passed(f"L_P <= prod ||W_i||_2 = {got:.4f} for a 3-layer test network")
    for i in range(len(sig)):
        if np.isclose(got, expected / sig[i], rtol=1e-4):
            raise LabCheckError(
                f"your bound {got:.4f} equals the product without linear layer {i} "
                f"(||W_{i}||_2 = {sig[i]:.3f}): the bound ignores a layer. Every linear layer, "
                "including the output layer, multiplies the Lipschitz constant.")
    frob = float(np.prod([np.linalg.norm(w) for w in weights]))
    if np.isclose(got, frob, rtol=1e-4):
        raise LabCheckError(
            f"your bound {got:.4f} is the product of Frobenius norms; use spectral norms "
            f"(largest singular values), which give the tighter {expected:.4f}.")
    raise LabCheckError(f"expected the product of spectral norms {expected:.4f}, got {got:.4f}.")


def normalised_closure(closure, h: float, lam: float) -> bool:
    """The spectrally normalised closure must keep the coupled Euler map contractive."""
    require(isinstance(closure, stability.StencilClosure),
            f"expected a StencilClosure from fit_stencil_closure, got {type(closure).__name__}")
    cap = stability.max_contractive_lipschitz(h, lam)
    bound = closure.lipschitz_bound()
    require(bound < cap,
            f"the closure's Lipschitz bound is {bound / lam:.2f} lam, but contraction at "
            f"h = {h:.0f} s needs L_P < min(lam, 2/h - lam) = {cap / lam:.2f} lam. Pass a "
            "smaller `target` to fit_stencil_closure.")
    contraction = stability.damped_euler_lipschitz_bound(h, lam, bound)
    return passed(f"L_P <= {bound / lam:.2f} lam, so |1 - h lam| + h L_P = {contraction:.3f} < 1")


def online_run(run: dict, truth_max: float) -> bool:
    """The coupled run must finish without blow-up and stay within twice the truth's range."""
    require(isinstance(run, dict) and "q" in run,
            "expected the dict returned by SteepClosureToy.run")
    q = np.asarray(run["q"], dtype=float)
    require(not run["blew_up"] and np.all(np.isfinite(q)),
            f"the coupled run blew up at step {run['blowup_step']}: is the closure you passed "
            "the spectrally normalised one?")
    peak = float(np.abs(q).max())
    require(peak < 2 * truth_max,
            f"the run stays finite but reaches |q| = {peak:.2f}, more than twice the truth's "
            f"{truth_max:.2f}: it drifts.")
    return passed(f"online run bounded: max |q| = {peak:.2f} (truth {truth_max:.2f})")
