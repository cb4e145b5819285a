"""Checks of lab 03, "Tame a steep closure".

``h_max``, the power iteration and the Lipschitz bound are called on inputs the check makes
(random damping rates and slopes including ``k = lam``; matrices of known singular values;
networks of several depths), with SVDs and eigen-solvers forbidden while the power iteration
runs. The trained closure must keep a margin below the contraction limit and still fit the
data; the coupled run must start where it was asked to, take the asked steps with the asked
step, and be reproduced step by step by the host model with the closure.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import metrics, stability
from ..nn import mlp
from .feedback import (LabCheckError, as_array, as_mapping, as_scalar, call, call_without,
                       lab_check, passed, require)

LAM = 1 / 7200  # 1/s
#: the contraction margin the exercise asks for (about 10 %; anything above 5 % is accepted)
MARGIN = 0.95


def _torch_matrix_norm(A=None, ord=None, *args, **kwargs):  # noqa: A002 (torch's name)
    return ord in (2, -2, "nuc") and getattr(A, "ndim", 0) >= 2


_NO_SVD_MSG = ("the exercise asks for a power iteration (v <- W^T W v, normalised), not a "
               "library singular-value or eigenvalue solver")
FORBIDDEN = {name: _NO_SVD_MSG for name in (
    "numpy.linalg.svd", "numpy.linalg._linalg.svd", "numpy.linalg.svdvals",
    "numpy.linalg._linalg.svdvals", "numpy.linalg.eig", "numpy.linalg.eigh",
    "numpy.linalg.eigvals", "numpy.linalg.eigvalsh", "numpy.linalg._linalg.eig",
    "numpy.linalg._linalg.eigh", "numpy.linalg._linalg.eigvals",
    "numpy.linalg._linalg.eigvalsh", "scipy.linalg.svd", "scipy.linalg.svdvals",
    "scipy.linalg.eig", "scipy.linalg.eigh", "scipy.sparse.linalg.svds",
    "torch.linalg.svd", "torch.linalg.svdvals", "torch.svd", "torch.linalg.eig",
    "torch.linalg.eigh", "torch.linalg.eigvals", "torch.linalg.eigvalsh")}
FORBIDDEN.update({
    "torch.linalg.matrix_norm": (_NO_SVD_MSG, _torch_matrix_norm),
    "torch.linalg.norm": (_NO_SVD_MSG, _torch_matrix_norm),
})


@lab_check
def max_stable_timestep(fn) -> bool:
    """``fn(lam, k)`` must return ``2/(lam - k)`` (s) for ``k < lam`` and ``0.0`` for
    ``k >= lam``, including ``k == lam``, for any damping rate ``lam > 0``."""
    rng = np.random.default_rng(5)
    lams = [LAM, 1 / 3600, float(rng.uniform(1e-5, 1e-3)), float(rng.uniform(1e-5, 1e-3))]
    for lam in lams:
        for factor in (0.7, 0.0, -1.0, -6.0, float(rng.uniform(-3, 0.9))):
            k = factor * lam
            expected = 2 / (lam - k)
            inputs = f"lam = {lam:.3g} 1/s and k = {k:.3g} 1/s"
            got = as_scalar("h_max", call("h_max", fn, lam, k, inputs=inputs))
            if np.isclose(got, -expected, rtol=1e-6):
                raise LabCheckError(
                    f"for {inputs} you returned {got:.4g} s, the right size with the wrong "
                    f"sign: the sign of k - lam is flipped. Stability needs |1 + h (k - lam)| "
                    f"< 1 and k - lam < 0, so h_max = 2 / (lam - k).")
            if np.isclose(got, expected / 2, rtol=1e-6):
                raise LabCheckError(f"for {inputs} you returned {got:.4g} s, half the largest "
                                    f"stable step: solve |1 + h (k - lam)| = 1, which gives "
                                    f"h = 2 / (lam - k)")
            if np.isclose(got, expected / 3600, rtol=1e-6):
                raise LabCheckError(f"for {inputs} you returned {got:.4g}: h_max is in "
                                    f"seconds, like 1/lam, not in hours")
            require(np.isclose(got, expected, rtol=1e-6),
                    f"for {inputs} expected h_max = {expected:.4g} s, got {got:.4g} s. Solve "
                    f"|1 + h (k - lam)| = 1 for h.")
    for lam in lams[:2]:
        for factor in (1.0, 2.0, 1.0 + 1e-9):
            k = factor * lam
            inputs = f"k = {factor:g} lam (lam = {lam:.3g} 1/s)"
            try:
                out = fn(lam, k)
            except ZeroDivisionError:
                raise LabCheckError(
                    f"your function divided by zero for {inputs}: handle k >= lam first and "
                    f"return 0.0. At k = lam the amplification factor is 1 for every h: a "
                    f"perturbation never decays, so no step is stable.") from None
            except Exception:  # any other failure: let call() word it
                out = call("h_max", fn, lam, k, inputs=inputs)
            if out is not None and np.isinf(np.asarray(out, dtype=float)).any():
                raise LabCheckError(f"for {inputs} you returned inf: the exercise asks for 0.0 "
                                    f"when k >= lam (no step makes a perturbation decay)")
            got = as_scalar("h_max", out)
            require(got == 0.0,
                    f"for {inputs} you returned {got:.4g} s, but when k >= lam the coupled "
                    f"system does not decay at all and no positive step is stable: return 0.0.")
    return passed("h_max = 2/(lam - k) for k < lam, and 0.0 once the closure cancels the damping")


def _matrix(rng, shape, sigmas) -> np.ndarray:
    """A matrix of the given shape with the given singular values (largest first)."""
    m, n = shape
    u, _ = np.linalg.qr(rng.standard_normal((m, m)))
    v, _ = np.linalg.qr(rng.standard_normal((n, n)))
    s = np.zeros(shape)
    s[np.arange(len(sigmas)), np.arange(len(sigmas))] = sigmas
    return u @ s @ v.T


def _matrices():
    rng = np.random.default_rng(42)
    return [(_matrix(rng, (6, 4), [3.0, 1.5, 0.7, 0.1]), 3.0),
            (_matrix(rng, (3, 9), [0.8, 0.3, 0.1]), 0.8),
            (_matrix(rng, (16, 16), np.geomspace(12.0, 0.01, 16)), 12.0),
            (_matrix(rng, (1, 5), [2.5]), 2.5),
            (_matrix(rng, (7, 1), [0.4]), 0.4),
            (np.outer([1.0, 2.0, 2.0], [3.0, 4.0]), 15.0),  # rank one, sigma = 3 * 5
            (_matrix(rng, (5, 3), [40.0, 10.0, 1.0]).astype(np.float32), 40.0)]


@lab_check
def spectral_norm(fn) -> bool:
    """``fn(W)``: the largest singular value of the 2-D numpy array ``W`` (any shape, float32
    or float64) by power iteration, without an SVD or eigen-solver."""
    for w, sigma in _matrices():
        inputs = f"a {w.shape[0]}x{w.shape[1]} matrix ({w.dtype})"
        try:
            out = call_without("power_spectral_norm", fn, FORBIDDEN, w.copy(), inputs=inputs)
        except LabCheckError as err:
            text = str(err)
            if "matmul" in text or "shapes" in text or "aligned" in text:
                raise LabCheckError(text + ". W is rectangular (rows, columns): iterate "
                                    "v <- W.T @ (W @ v) with a start vector of length "
                                    "W.shape[1]") from None
            raise
        if isinstance(out, float | np.floating) and not np.isfinite(out):
            raise LabCheckError(f"for {inputs} your function returned {out}: the vector "
                                f"overflowed (or vanished). Normalise v to unit length in "
                                f"EVERY iteration, not only at the end")
        got = as_scalar("power_spectral_norm(W)", out)
        frob = float(np.linalg.norm(w))
        if np.isclose(got, frob, rtol=1e-4) and not np.isclose(sigma, frob, rtol=1e-4):
            raise LabCheckError(
                f"for {inputs} you returned {got:.4f}, its Frobenius norm sqrt(sum W_ij^2); "
                f"the spectral norm (largest singular value) is {sigma:.4f}. Frobenius "
                f"over-estimates how much W stretches a vector: iterate v <- W^T W v / "
                f"|W^T W v| and return |W v|.")
        if np.isclose(got, sigma**2, rtol=1e-3) and not np.isclose(sigma, 1.0, rtol=1e-2):
            raise LabCheckError(f"for {inputs} you returned {got:.4f} = sigma^2 for sigma = "
                                f"{sigma:.4f}: |W^T W v| is the square of the spectral norm; "
                                f"return |W v| with v normalised.")
        require(np.isclose(got, sigma, rtol=1e-4),
                f"for {inputs} expected the largest singular value {sigma:.5f}, got {got:.5g}. "
                f"Did you normalise v every iteration and iterate long enough?")
    return passed("power iteration gives the largest singular value for every shape")


def _test_mlps():
    models = []
    for seed, (n_in, n_out, hidden, act, scales) in enumerate((
            (3, 2, (8, 6), "tanh", (3.0, 0.5, 2.0)),
            (3, 1, (16, 16), "relu", (1.0, 1.0, 1.0)),
            (5, 1, (4,), "tanh", (0.2, 7.0)),
            (2, 3, (10, 10, 10), "relu", (1.5, 0.8, 1.2, 0.6)))):
        model = mlp(n_in, n_out, hidden=hidden, activation=act, seed=7 + seed)
        with torch.no_grad():
            for layer, factor in zip(model[::2], scales, strict=True):
                layer.weight.mul_(factor)
        models.append(model)
    return models


@lab_check
def lipschitz_bound(fn) -> bool:
    """``fn(model)``: the product of the spectral norms of all linear layers of an MLP."""
    for model in _test_mlps():
        weights = [w.numpy().astype(float) for w in stability.linear_weights(model)]
        sig = [stability.spectral_norm(w, n_iter=2000) for w in weights]
        expected = float(np.prod(sig))
        layers = " -> ".join(str(w.shape[1]) for w in weights) + f" -> {weights[-1].shape[0]}"
        inputs = f"a {layers} network"
        try:
            out = call("lipschitz_bound", fn, model, inputs=inputs)
        except LabCheckError as err:
            text = str(err)
            if "IndexError" in text or "dimension" in text or "ndim" in text:
                raise LabCheckError(text + ". model.parameters() also yields the biases "
                                    "(1-D): use st.linear_weights(model), the weight matrices "
                                    "only") from None
            raise
        got = as_scalar("lipschitz_bound(model)", out)
        if np.isclose(got, expected, rtol=1e-3):
            continue
        for i in range(len(sig)):
            if np.isclose(got, expected / sig[i], rtol=1e-3):
                raise LabCheckError(
                    f"for {inputs} your bound {got:.4f} equals the product without linear "
                    f"layer {i} (||W_{i}||_2 = {sig[i]:.3f}): the bound ignores a layer. Every "
                    f"linear layer, including the output layer, multiplies the Lipschitz "
                    f"constant.")
        frob = float(np.prod([np.linalg.norm(w) for w in weights]))
        if np.isclose(got, frob, rtol=1e-3):
            raise LabCheckError(f"your bound {got:.4f} is the product of Frobenius norms; use "
                                f"spectral norms (largest singular values), which give the "
                                f"tighter {expected:.4f}.")
        for what, value in (("sum", sum(sig)), ("largest", max(sig)), ("first layer's",
                                                                         sig[0]),
                            ("product of squared", float(np.prod(np.square(sig))))):
            if np.isclose(got, value, rtol=1e-3):
                raise LabCheckError(f"your bound {got:.4f} is the {what} spectral norm(s): the "
                                    f"Lipschitz constant of a chain of layers is bounded by "
                                    f"the PRODUCT of their spectral norms, {expected:.4f}")
        raise LabCheckError(f"for {inputs} expected the product of spectral norms "
                            f"{expected:.4f}, got {got:.4f}.")
    return passed("L_P <= prod ||W_i||_2 for networks of 1 to 3 hidden layers")


@lab_check
def normalised_closure(closure, h: float, lam: float, q=None, s=None, test=None) -> bool:
    """The spectrally normalised closure keeps the coupled Euler map contractive with a
    margin (its bound at most 95 % of ``min(lam, 2/h - lam)``) and still fits the subgrid
    tendency on the test block (R^2 > 0.5) when ``q``, ``s`` and ``test`` are given."""
    if closure is None:
        raise LabCheckError("`closure` is None: store the StencilClosure that "
                            "st.fit_stencil_closure(...) returns (its first element)")
    if isinstance(closure, tuple):
        raise LabCheckError("`closure` is a tuple: fit_stencil_closure returns (closure, "
                            "history); keep its first element")
    require(isinstance(closure, stability.StencilClosure),
            f"expected a StencilClosure from fit_stencil_closure, got {type(closure).__name__}")
    cap = stability.max_contractive_lipschitz(h, lam)
    bound = closure.lipschitz_bound()
    require(bound < cap,
            f"the closure's Lipschitz bound is {bound / lam:.2f} lam, but contraction at "
            f"h = {h:.0f} s needs L_P < min(lam, 2/h - lam) = {cap / lam:.2f} lam. Pass a "
            "smaller `target` to fit_stencil_closure.")
    require(bound <= MARGIN * cap,
            f"the closure's bound {bound / lam:.3f} lam sits within {1 - bound / cap:.1%} of "
            f"the contraction limit {cap / lam:.2f} lam: leave a margin of about 10 % "
            f"(target = 0.9 * st.max_contractive_lipschitz(h, lam)), since the bound is only "
            f"as good as the estimates behind it")
    message = ""
    if q is not None:
        q_arr, s_arr = as_array("q", q), as_array("s", s)
        blk = test if isinstance(test, slice) else slice(None)
        pred = as_array("closure(q[test])", call("closure", closure, q_arr[blk]),
                        s_arr[blk].shape)
        r2 = metrics.r2_score(s_arr[blk], pred)
        require(r2 > 0.5, f"the closure is stable but explains only R^2 = {r2:.2f} of the "
                          f"subgrid tendency on the test block: a target far below the limit "
                          f"throws the closure away; use about 0.9 of the limit")
        message = f", test R^2 = {r2:.3f}"
    contraction = stability.damped_euler_lipschitz_bound(h, lam, bound)
    return passed(f"L_P <= {bound / lam:.3f} lam ({bound / cap:.0%} of the limit), so "
                  f"|1 - h lam| + h L_P = {contraction:.4f} < 1{message}")


@lab_check
def online_run(run, closure, toy, q, t, test, h: float) -> bool:
    """``run``: the dict of ``toy.run(closure, q[test.start], t[test.start], h, n)`` with
    ``n = test.stop - test.start - 1``; verified state by state, then bounded."""
    run = as_mapping("run", run, ("q", "t", "blew_up"))
    q_run = as_array("run['q']", run["q"]) if not run["blew_up"] else np.asarray(run["q"],
                                                                                 float)
    t_run = as_array("run['t']", run["t"])
    q = as_array("q", q)
    t = as_array("t", t)
    require(isinstance(test, slice), "`test` should be the test block (a slice of times)")
    start, n_steps = test.start, test.stop - test.start - 1
    truth_max = float(np.abs(q).max())
    require(q_run.ndim == 2 and q_run.shape[1] == q.shape[1],
            f"`run['q']` should hold states of {q.shape[1]} cells, got shape {q_run.shape}")
    if not np.allclose(q_run[0], q[start]):
        hint = " (that is the first state of the record, q[0])" if np.allclose(
            q_run[0], q[0]) else ""
        raise LabCheckError(f"the run does not start from the truth at the first test "
                            f"snapshot, q[test.start]{hint}")
    if not np.isclose(t_run[0], t[start]):
        raise LabCheckError(f"the run starts at t = {t_run[0]:.0f} s, but the first test "
                            f"snapshot is at t = {t[start]:.0f} s: pass t[test.start] (the "
                            f"forcing depends on time)")
    if t_run.size > 1:
        step = t_run[1] - t_run[0]
        require(np.isclose(step, h), f"the run steps by {step:g} s, not by the host model's "
                                     f"h = {h:g} s")
    # the host model with the closure reproduces the run, step by step
    picks = sorted({0, min(5, len(q_run) - 2), len(q_run) // 2, len(q_run) - 2} - {-1})
    for i in (p for p in picks if 0 <= p < len(q_run) - 1 and np.all(np.isfinite(q_run[p]))):
        state, time = q_run[i], t_run[i]
        base = state + h * (-toy.lam * state + toy.forcing(time))
        mine = base + h * np.asarray(call("closure", closure, state))
        if np.allclose(q_run[i + 1], mine, rtol=1e-6, atol=1e-9):
            continue
        if np.allclose(q_run[i + 1], base, rtol=1e-6, atol=1e-9):
            raise LabCheckError("the run was made without the closure (or with one that "
                                "returns zeros): pass your spectrally normalised `closure` to "
                                "toy.run")
        if np.allclose(q_run[i + 1], base + h * toy.subgrid_tendency(state), rtol=1e-6,
                       atol=1e-9):
            raise LabCheckError("the run was made with the exact subgrid tendency, not with "
                                "your closure")
        raise LabCheckError(f"step {i + 1} of the run is not one forward-Euler step of the host "
                            f"model with `closure` at h = {h:g} s: pass the closure you "
                            f"normalised and the host model's step")
    if run["blew_up"]:
        raise LabCheckError(f"the coupled run blew up at step {run['blowup_step']}: is the "
                            f"closure you passed the spectrally normalised one?")
    require(len(q_run) - 1 == n_steps,
            f"the run takes {len(q_run) - 1} steps; the rest of the test block is "
            f"test.stop - test.start - 1 = {n_steps} steps")
    peak = float(np.abs(q_run).max())
    require(peak < 2 * truth_max,
            f"the run stays finite but reaches |q| = {peak:.2f}, more than twice the truth's "
            f"{truth_max:.2f}: it drifts.")
    return passed(f"online run of {n_steps} steps bounded: max |q| = {peak:.2f} (truth "
                  f"{truth_max:.2f})")
