"""Checks of lab 09, "Train through the model": each names the typical mistake it catches.

The checks call the student's functions on inputs they make themselves (a small float64
closure, random states and targets) and compare with the engine
(:mod:`nnparam.aposteriori`) and with the usual wrong answers: a state detached between
steps, truth compared at the wrong times, a window longer than the predictability time.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import stability
from ..closure import Closure
from ..nn import mlp
from .feedback import LabCheckError, as_array, passed, require

H = 9000.0  # the lab's host time step (s)


def _probe_closure(seed: int = 3) -> stability.StencilClosure:
    net = mlp(3, 1, hidden=(8,), activation="tanh", seed=seed, dtype=torch.float64)
    return stability.StencilClosure(net, x_scale=0.5, y_scale=1e-5)


def _reference(toy, closure, q0, t0, targets, h, variant="right"):
    """The unrolled loss and its mistakes: "detached", "before_step" (compares the state
    before the step with the target after it), "late_forcing" (forcing of the step's end),
    "sum" (sum instead of mean)."""
    x, loss = q0, 0.0
    window = targets.shape[1]
    for k in range(window):
        before = x
        t_force = t0 + (k + 1) * h if variant == "late_forcing" else t0 + k * h
        x = toy.euler_step(x, t_force, h, closure.torch(x))
        compared = before if variant == "before_step" else x
        err = (compared - targets[:, k]) ** 2
        loss = loss + (err.sum() if variant == "sum" else err.mean())
        if variant == "detached":
            x = x.detach()
    return loss if variant == "sum" else loss / window


def _value_and_grad(loss, closure):
    params = list(closure.module.parameters())
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    flat = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]
    return float(loss.detach()), torch.cat([g.reshape(-1) for g in flat]).numpy()


def unrolled_loss(fn, toy: stability.SteepClosureToy, h: float = H) -> bool:
    """``fn(closure, q_start, t_start, targets)`` must return the mean squared error of the
    coupled trajectory against ``targets[:, k]`` (the truth after ``k + 1`` steps), averaged
    over steps, windows and cells, differentiable through every step."""
    rng = np.random.default_rng(11)
    closure = _probe_closure()
    q0 = torch.tensor(rng.standard_normal((3, toy.n)))
    t0 = np.array([0.0, 5.0, 17.0]) * h
    targets = torch.tensor(rng.standard_normal((3, 4, toy.n)) * 0.5)
    try:
        got = fn(closure, q0.clone(), t0.copy(), targets.clone())
    except Exception as err:  # the student's code: report, never a raw traceback
        raise LabCheckError(f"your unrolled_loss raised {type(err).__name__}: {err}") from err
    if not torch.is_tensor(got) or got.ndim != 0:
        raise LabCheckError(f"unrolled_loss should return a scalar torch tensor, got "
                            f"{type(got).__name__}{getattr(got, 'shape', '')}")
    if got.grad_fn is None:
        raise LabCheckError(
            "the loss is not connected to the closure's weights (no gradient). Step the model "
            "with closure.torch(x) (the differentiable map), not closure(x) (numpy).")
    value, grad = _value_and_grad(got, closure)
    ref_value, ref_grad = _value_and_grad(_reference(toy, closure, q0, t0, targets, h),
                                          closure)
    if np.isclose(value, ref_value, rtol=1e-8):
        det_value, det_grad = _value_and_grad(
            _reference(toy, closure, q0, t0, targets, h, "detached"), closure)
        if np.allclose(grad, det_grad, rtol=1e-6, atol=1e-12) and not np.allclose(
                grad, ref_grad, rtol=1e-6, atol=1e-12):
            raise LabCheckError(
                "the loss value is right but its gradient is that of a state detached between "
                "steps (x.detach(), .numpy() or torch.tensor(x) inside the loop): the gradient "
                "then ignores how the closure's error at one step changes the later states, "
                "which is the point of unrolled training.")
        require(np.allclose(grad, ref_grad, rtol=1e-6, atol=1e-12),
                "the loss value is right but its gradient is not: is every step computed "
                "with torch operations on the previous step's state?")
        return passed(f"unrolled loss {value:.4g} and its gradient match the engine's "
                      f"(4 steps, 3 windows)")
    for variant, message in (
            ("before_step", "you compare the state *before* each step with the target after "
             "it: targets[:, k] is the truth after k + 1 steps, so compare it with the state "
             "returned by step k + 1."),
            ("late_forcing", "the forcing is taken at the end of each step: the Euler step "
             "from x_k uses F(t_start + k h), so pass t_start + k * h to euler_step."),
            ("sum", "you sum the squared errors; average them over cells, windows and steps "
             "(torch.mean per step, then divide by the number of steps).")):
        v = float(_reference(toy, closure, q0, t0, targets, h, variant).detach())
        if np.isclose(value, v, rtol=1e-8):
            raise LabCheckError(f"wrong times or normalisation: {message}")
    raise LabCheckError(f"expected the unrolled loss {ref_value:.6g}, got {value:.6g}. Step "
                        "with toy.euler_step(x, t_start + k * h, h, closure.torch(x)) and "
                        "compare the new state with targets[:, k].")


def trained_closure(closure, offline, losses, run: dict, truth, no_closure_rmse: float) -> bool:
    """The closure trained through the model: a Closure whose weights moved from the
    offline ones, a falling training loss, and a bounded online run that beats the coarse
    model without closure (``run`` from ``SteepClosureToy.run`` over the test block)."""
    require(isinstance(closure, Closure), f"expected the trained Closure, got "
                                          f"{type(closure).__name__}")
    require(closure is not offline, "train a copy (copy.deepcopy(offline)), not the offline "
                                    "closure itself, so that the two can be compared")
    moved = max(float((a - b).detach().abs().max()) for a, b in
                zip(closure.module.parameters(), offline.module.parameters(), strict=True))
    require(moved > 0, "the weights did not change: did the optimiser get "
                       "closure.module.parameters() and did you call opt.step()?")
    loss = as_array("losses", losses)
    require(loss.ndim == 1 and loss.size >= 20, "losses should be the list of training "
                                                "losses, one per iteration (at least 20)")
    require(loss[-10:].mean() < 0.1 * loss[:10].mean(),
            f"the unrolled loss fell only from {loss[:10].mean():.3g} to "
            f"{loss[-10:].mean():.3g}: check the learning rate and the gradient clipping")
    require(isinstance(run, dict) and "q" in run, "run should be the dict of toy.run")
    if run["blew_up"]:
        raise LabCheckError(
            f"the coupled run blew up at step {run['blowup_step']}. A window of a few steps "
            "cannot see an instability that grows over tens of steps: use a longer window "
            "(16 steps), and check that the state is not detached between steps.")
    states = as_array("run['q']", run["q"])
    ref = as_array("truth", truth)[: states.shape[0]]
    require(ref.shape == states.shape, "truth should be the test block of the truth run")
    rmse = float(np.sqrt(np.mean((states - ref) ** 2)))
    require(rmse < no_closure_rmse,
            f"the run stays bounded but its RMSE {rmse:.3g} is not below the coarse model "
            f"without closure ({no_closure_rmse:.3g}): it drifts. Train longer windows.")
    return passed(f"bounded online run with RMSE {rmse:.3g} < {no_closure_rmse:.3g} "
                  "(no closure), without any Lipschitz cap")


def online_rmse(fn, toy: stability.SteepClosureToy, q, t, test: slice, h: float = H) -> bool:
    """``fn(closure) -> (run, rmse)``: the coupled run over the test block from its first
    state, and the RMSE against the truth at the same times."""
    closure = _probe_closure(seed=5)
    try:
        run, got = fn(closure)
    except Exception as err:
        raise LabCheckError(f"your online_rmse raised {type(err).__name__}: {err}") from err
    require(isinstance(run, dict) and "t" in run and "q" in run,
            "return the dict of toy.run as the first value")
    times = as_array("run['t']", run["t"])
    require(times.size >= 2 and np.isclose(times[1] - times[0], h),
            f"the run should step at h = {h:.0f} s, got {times[1] - times[0]:.0f} s")
    if times[0] < t[test.start] - 1e-6:
        raise LabCheckError(
            f"the run starts at t = {times[0]:.0f} s, before the test block "
            f"({t[test.start]:.0f} s): evaluate online on held-out time, never over the "
            "training period.")
    require(np.isclose(times[0], t[test.start]),
            "start the run at the first state of the test block, q[test.start], at "
            "t[test.start]")
    n = test.stop - test.start
    require(times.size == n, f"run the whole test block: {n - 1} steps, got "
                             f"{times.size - 1}")
    states = as_array("run['q']", run["q"])
    truth = q[test.start:test.stop]
    right = float(np.sqrt(np.mean((states - truth) ** 2)))
    value = float(as_array("rmse", got, shape=()))
    shifted = float(np.sqrt(np.mean((states[1:] - truth[:-1]) ** 2)))
    if np.isclose(value, shifted, rtol=1e-6) and not np.isclose(value, right, rtol=1e-6):
        raise LabCheckError(
            "the RMSE compares each state with the truth one step earlier: run['q'][k] is the "
            "state at t[test.start] + k h, so compare it with q[test.start + k].")
    require(np.isclose(value, right, rtol=1e-6),
            f"expected the RMSE {right:.5g} of the run against the truth at the same times, "
            f"got {value:.5g}")
    return passed("online run over the held-out test block, compared at matching times")


def longest_window(fn) -> bool:
    """``fn(lam1, dt)``: the number of steps of length ``dt`` in one predictability time
    ``1 / lam1`` (rounded down, at least 1)."""
    for lam1, dt in ((1.6, 0.01), (0.9, 0.005), (2.3, 0.02), (0.4, 0.1)):
        expected = max(1, int(np.floor(1.0 / (lam1 * dt))))
        try:
            got = fn(lam1, dt)
        except Exception as err:
            raise LabCheckError(f"your longest_window raised {type(err).__name__}: "
                                f"{err}") from err
        value = float(as_array("window", got, shape=()))
        if np.isclose(value, 1.0 / lam1):
            raise LabCheckError("you returned the predictability time 1/lam1 in model time "
                                "units; the window is a number of steps: divide by dt.")
        if value * dt > 1.0 / lam1 + 1e-12:
            raise LabCheckError(
                f"for lam1 = {lam1} and dt = {dt} your window of {value:g} steps spans "
                f"{value * dt:.3g} time units, longer than the predictability time "
                f"{1 / lam1:.3g}: round down (the gradient grows like exp(lam1 T)).")
        require(float(value).is_integer() and value == expected,
                f"for lam1 = {lam1} and dt = {dt} expected {expected} steps, got {value:g}")
    return passed("the window fits in one predictability time")


def window_choice(window, lam1: float, dt: float) -> bool:
    """A training window (steps) for a chaotic model: at least 2 steps and no longer than
    the predictability time ``1 / lam1``."""
    value = float(as_array("window", window, shape=()))
    require(value.is_integer() and value >= 2, f"window should be a whole number of steps "
                                               f">= 2, got {window!r}")
    if value * dt > 1.0 / lam1:
        raise LabCheckError(
            f"a window of {int(value)} steps spans {value * dt:.3g} MTU, longer than the "
            f"predictability time 1/lambda_1 = {1 / lam1:.3g} MTU: the gradient would grow "
            f"like exp(lambda_1 T) = {np.exp(lam1 * value * dt):.3g} and carry the chaos, "
            "not the closure's error.")
    return passed(f"window of {int(value)} steps ({value * dt:.3g} MTU) within the "
                  f"predictability time {1 / lam1:.3g} MTU")
