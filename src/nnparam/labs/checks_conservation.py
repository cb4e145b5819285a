"""Checks for lab 2, "Choose the output".

The operators are called on tensors the check makes (several shapes, float64 and float32,
with gradients) and compared with the engine's, values and gradients; the domain budgets are
recomputed from the trained heads on the same random inputs; each coupled run is verified
(start state, start time, length, step) and a stretch of it is replayed with the head's
closure, so a run without the closure or with another head's is recognised.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import conservation as cons
from .. import nn as nnp
from ..grid import flux_divergence as _reference_divergence
from .feedback import (LabCheckError, as_mapping, as_scalar, as_tensor, call, lab_check, passed,
                       require)

_WIDTHS = np.array([1.0, 3.0, 1.0, 3.0, 2.0, 0.5])
_DIST = 0.5 * (_WIDTHS + np.roll(_WIDTHS, -1))
#: shapes the operators are tried on: one state, a batch, a batch of batches
_SHAPES = ((6,), (2, 6), (2, 3, 6))
_RUN = {"n_steps": 2000, "dt": 0.375}


def _tensors(rng, shape, dtype, grad=True, low=None, high=None):
    arr = rng.normal(size=shape) if low is None else rng.uniform(low, high, size=shape)
    return torch.tensor(arr, dtype=dtype, requires_grad=grad)


def _values(name: str, out, like: torch.Tensor) -> np.ndarray:
    """The student's output as float64 numpy, after checking type, shape, dtype and graph."""
    out = as_tensor(name, out, shape=tuple(like.shape), dtype=like.dtype)
    if like.requires_grad and not out.requires_grad:
        raise LabCheckError(f"`{name}` is cut off from the gradient (a .detach(), .numpy(), "
                            f"float() or torch.tensor(...) inside?): the network could not "
                            f"learn through it. Use torch operations on the tensors you get")
    return out.detach().double().numpy()


def _grad_of(func, inputs, weights):
    for x in inputs:
        x.grad = None
    out = func(*inputs)
    (out * weights).sum().backward()
    return [None if x.grad is None else x.grad.detach().double().numpy() for x in inputs]


def _tol(dtype) -> dict:
    return {"rtol": 1e-4, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-9,
                                                                         "atol": 1e-12}


def _divergence_reference(flux: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
    return -(flux - torch.roll(flux, 1, dims=-1)) / widths


@lab_check
def divergence(func) -> bool:
    """``func(face_flux, widths)``: the periodic divergence ``-(F[i] - F[i-1]) / widths[i]``
    of face fluxes (torch, (..., N)) on cells of widths (torch, (N,)), a tensor of the
    flux's shape and dtype, through which gradients flow."""
    rng = np.random.default_rng(3)
    for shape in _SHAPES:
        for dtype in (torch.float64, torch.float32):
            flux = _tensors(rng, shape, dtype)
            widths = torch.as_tensor(_WIDTHS, dtype=dtype)
            inputs = f"a face flux of shape {shape} ({str(dtype)[6:]}) with gradients"
            out = call("divergence", func, flux, widths, inputs=inputs)
            got = _values("divergence(face_flux, widths)", out, flux)
            f = flux.detach().double().numpy()
            want = _reference_divergence(f, _WIDTHS)
            tol = _tol(dtype)
            if np.allclose(got, want, **tol):
                continue
            if np.allclose(got, -want, **tol):
                raise LabCheckError("the sign is flipped: a flux out of the right face "
                                    "(F[i] > 0) must *lower* q[i], so T[i] = -(F[i] - F[i-1]) "
                                    "/ V[i]")
            if np.allclose(got[..., 1:], want[..., 1:], **tol):
                raise LabCheckError("the first cell is wrong: its left face is the right face "
                                    "of the LAST cell (periodic domain), so use torch.roll, not "
                                    "a zero or a copied boundary flux")
            if np.allclose(got, want * _WIDTHS / _WIDTHS.mean(), **tol) or np.allclose(
                    got, want * _WIDTHS, **tol) or np.allclose(got, want * _WIDTHS**2, **tol):
                raise LabCheckError("divide each cell's flux difference by ITS OWN width "
                                    "(volume), not by a mean, a constant, or multiply by it")
            if np.allclose(got, -_reference_divergence(np.roll(f, 1, axis=-1), _WIDTHS),
                           **tol) or np.allclose(
                    got, _reference_divergence(np.roll(f, -1, axis=-1), _WIDTHS), **tol) or \
                    np.allclose(np.abs(got), np.abs(np.roll(f, -1, axis=-1) - f) / _WIDTHS,
                                **tol):
                raise LabCheckError("the faces are shifted by one: face_flux[i] is the flux "
                                    "through the RIGHT face of cell i, shared with cell i + 1, "
                                    "so T[i] = -(F[i] - F[i-1]) / V[i]")
            if len(shape) > 1 and np.allclose(
                    got, -(f - np.roll(f, 1, axis=0)) / _WIDTHS, **tol):
                raise LabCheckError("you rolled along the first (batch) axis: the cells are "
                                    "the LAST axis, torch.roll(face_flux, 1, dims=-1)")
            raise LabCheckError(f"for {inputs} the divergence differs from "
                                f"-(F[i] - F[i-1]) / V[i]")
    # gradients flow as they should (the network learns through the divergence)
    flux = _tensors(rng, (2, 6), torch.float64)
    weights = torch.as_tensor(rng.normal(size=(2, 6)))
    widths = torch.as_tensor(_WIDTHS)
    got = _grad_of(lambda x: func(x, widths), [flux], weights)[0]
    want = _grad_of(lambda x: _divergence_reference(x, widths), [flux], weights)[0]
    require(got is not None and np.allclose(got, want),
            "the divergence has the right values but the wrong gradient: build it from torch "
            "operations on face_flux only")
    budget = np.abs(cons.relative_domain_budget(
        func(torch.as_tensor(rng.normal(size=(50, 6))), widths).detach().numpy(),
        _WIDTHS)).max()
    return passed(f"the divergence telescopes (relative domain budget {budget:.1e}) and "
                  f"passes gradients")


@lab_check
def kappa_parts(kappa_from_raw, down_gradient_flux) -> bool:
    """``kappa_from_raw(raw)``: a smooth, increasing map to kappa >= 0 with a positive slope
    everywhere; ``down_gradient_flux(kappa, q, distances)``: ``-kappa (q[i+1] - q[i]) / d[i]``.
    Both take and return torch tensors (shape and dtype of the input)."""
    _kappa_transform(kappa_from_raw)
    _flux(down_gradient_flux)
    return passed("kappa >= 0, smooth and increasing; the flux runs down the gradient")


def _kappa_transform(func) -> None:
    for dtype in (torch.float64, torch.float32):
        raw = torch.linspace(-40.0, 40.0, 161, dtype=dtype).reshape(7, 23).requires_grad_()
        out = call("kappa_from_raw", func, raw, inputs=f"raw outputs (7, 23), {str(dtype)[6:]}")
        kappa = _values("kappa_from_raw(raw)", out, raw).ravel()
        r = raw.detach().double().numpy().ravel()
        if np.any(kappa < 0):
            worst = int(np.argmin(kappa))
            raise LabCheckError(f"kappa_from_raw gave a negative kappa ({kappa[worst]:.2g} at "
                                f"raw = {r[worst]:g}): a negative diffusivity creates "
                                f"variance; map the raw output through softplus (or exp) so "
                                f"that kappa >= 0 for any weights")
    raw = torch.linspace(-10.0, 10.0, 201, dtype=torch.float64, requires_grad=True)
    kappa = call("kappa_from_raw", func, raw)
    slope = torch.autograd.grad(kappa.sum(), raw, allow_unused=True)[0]
    if slope is None:
        raise LabCheckError("kappa_from_raw passes no gradient to the raw output: build it from "
                            "torch operations on `raw`")
    slope = slope.numpy()
    r = raw.detach().numpy()
    if np.any(slope < 0):
        where = r[slope < 0]
        raise LabCheckError(f"kappa_from_raw decreases with raw for raw in "
                            f"[{where.min():g}, {where.max():g}] (abs(raw), raw**2 or "
                            f"softplus(-raw) do): kappa must INCREASE with the raw output, so "
                            f"that a larger output always means more mixing; softplus or exp "
                            f"do")
    if np.any(slope == 0):
        where = r[slope == 0]
        raise LabCheckError(f"kappa_from_raw is flat (zero gradient) for raw in "
                            f"[{where.min():g}, {where.max():g}], as ReLU or clamp are: a "
                            f"cell whose raw output falls there gets no gradient and never "
                            f"recovers. Use a smooth map with a positive slope everywhere "
                            f"(softplus, exp)")


def _flux(func) -> None:
    rng = np.random.default_rng(4)
    for shape in _SHAPES[:2]:
        for dtype in (torch.float64, torch.float32):
            q = _tensors(rng, shape, dtype)
            kap = _tensors(rng, shape, dtype, low=0.5, high=2.0)
            dist = torch.as_tensor(_DIST, dtype=dtype)
            inputs = f"kappa and q of shape {shape} ({str(dtype)[6:]}) with gradients"
            out = call("down_gradient_flux", func, kap, q, dist, inputs=inputs)
            got = _values("down_gradient_flux(kappa, q, distances)", out, q)
            k, x = kap.detach().double().numpy(), q.detach().double().numpy()
            want = cons.kappa_flux(k, x, 1.0, _DIST)
            tol = _tol(dtype)
            if np.allclose(got, want, **tol):
                continue
            up = np.roll(x, -1, axis=-1)
            variants = {
                "the flux runs up the gradient: F = -kappa (q[i+1] - q[i]) / d carries tracer "
                "from high to low values": -want,
                "you used the gradient across the LEFT face (q[i] - q[i-1]); face i is the "
                "right face, between cells i and i + 1":
                    -k * (x - np.roll(x, 1, axis=-1)) / _DIST,
                "divide the difference by the centre distance d of the face": -k * (up - x),
                "divide by the distance, do not multiply": -k * (up - x) * _DIST,
                "use the distance of the same face i, distances[i], not of the one before":
                    -k * (up - x) / np.roll(_DIST, 1),
                "that is a centred difference over two cells; the flux through face i uses "
                "q[i+1] - q[i]": -k * (up - np.roll(x, 1, axis=-1)) / _DIST,
            }
            if len(shape) > 1:
                variants["you rolled along the first (batch) axis: the cells are the LAST "
                         "axis, torch.roll(q, -1, dims=-1)"] = -k * (np.roll(x, -1, axis=0)
                                                                     - x) / _DIST
            for hint, variant in variants.items():
                if np.allclose(got, variant, **tol):
                    raise LabCheckError(hint)
            raise LabCheckError(f"for {inputs} the flux differs from "
                                f"-kappa (q[i+1] - q[i]) / d")
    q = _tensors(rng, (2, 6), torch.float64)
    kap = _tensors(rng, (2, 6), torch.float64, low=0.5, high=2.0)
    weights = torch.as_tensor(rng.normal(size=(2, 6)))
    dist = torch.as_tensor(_DIST)
    got = _grad_of(lambda a, b: func(a, b, dist), [kap, q], weights)
    want = _grad_of(lambda a, b: -a * (torch.roll(b, -1, dims=-1) - b) / dist, [kap, q],
                    weights)
    require(all(g is not None and np.allclose(g, w) for g, w in zip(got, want, strict=True)),
            "the flux has the right values but the wrong gradients: build it from torch "
            "operations on kappa and q")


def _heads(heads) -> dict:
    heads = as_mapping("heads", heads, cons.HEADS)
    for kind in cons.HEADS:
        require(isinstance(heads[kind], cons.ClosureHead),
                f"`heads[{kind!r}]` should be the trained cons.ClosureHead, got "
                f"{type(heads[kind]).__name__}")
    return heads


def _one_number(name: str, value) -> float:
    if isinstance(value, np.ndarray | list | tuple) and np.size(value) > 1:
        raise LabCheckError(f"`{name}` holds {np.size(value)} values: store one number per "
                            f"head, the largest over the samples (np.max)")
    return as_scalar(name, np.asarray(value).squeeze() if isinstance(value, np.ndarray |
                                                                     list) else value)


@lab_check
def conservation(budgets, heads, x_rand, widths) -> bool:
    """``budgets[kind]``: the largest ``|sum_i V_i T_i| / sum_i |V_i T_i|`` over the random
    inputs ``x_rand`` of each head; recomputed here from ``heads`` and compared."""
    heads = _heads(heads)
    budgets = as_mapping("budgets", budgets, cons.HEADS)
    x = np.asarray(x_rand, dtype=float)
    vol = np.asarray(widths, dtype=float)
    vals = {k: _one_number(f"budgets[{k!r}]", budgets[k]) for k in cons.HEADS}
    for kind, value in vals.items():
        vt = nnp.predict(heads[kind], x) * vol
        num, den = vt.sum(axis=-1), np.abs(vt).sum(axis=-1)
        rel = np.abs(num) / den
        ref = float(rel.max())
        if kind != "tendency":  # round-off: any estimate of it is fine if it stays round-off
            if value > 1e-12:
                raise LabCheckError(
                    f"the {kind} head gives a relative budget of {value:.1e}, but a flux-form "
                    f"head conserves to round-off ({ref:.1e} here): weight each tendency by "
                    f"its cell VOLUME (sum V_i T_i) and divide by sum |V_i T_i|")
            continue
        if np.isclose(value, ref, rtol=1e-6):
            continue
        raw = nnp.predict(heads[kind], x)
        variants = {
            "you took the MEAN over the samples; the exercise asks for the largest":
                rel.mean(),
            "the numerator needs the absolute value: |sum V T| / sum |V T|, then the largest":
                (num / den).max(),
            "that is an absolute budget |sum V T|; divide by sum |V T| to make it relative":
                np.abs(num).max(),
            "weight each tendency by its cell VOLUME V_i":
                (np.abs(raw.sum(axis=-1)) / np.abs(raw).sum(axis=-1)).max(),
            "sum over the cells (the last axis), not over the samples":
                (np.abs(vt.sum(axis=0)) / np.abs(vt).sum(axis=0)).max(),
            "that is a percentage: store the fraction": 100 * ref,
        }
        for hint, variant in variants.items():
            if np.isclose(value, variant, rtol=1e-6):
                raise LabCheckError(f"budgets['tendency'] = {value:.3g}: {hint} (expected "
                                    f"{ref:.3g})")
        if value > 1:
            raise LabCheckError(f"budgets['tendency'] = {value:.3g}, but a relative budget "
                                f"|sum V T| / sum |V T| cannot exceed 1")
        raise LabCheckError(f"budgets['tendency'] = {value:.3g}, but the tendency head's "
                            f"largest relative budget over x_rand is {ref:.3g}: predict on "
                            f"x_rand (not the training inputs) and take the largest of "
                            f"|sum V T| / sum |V T|")
    return passed(f"flux and kappa heads conserve to round-off; the tendency head misses by "
                  f"up to {vals['tendency']:.1e} of its gross tendency")


def _replay(model, run, closure, start: int, steps: int, dt: float):
    q = run["q"].values
    t = run["time"].values
    seg = model.run(q[start], steps, dt, closure=closure, save_every=steps, t0=float(t[start]))
    return seg["q"].values[-1]


@lab_check
def online(runs, drift, final_std, heads, model, q0, t0) -> bool:
    """Each ``runs[kind]``: the coupled run of that head from ``q0`` at ``t0``, 2000 steps of
    0.375 h; ``drift[kind]``: (total at the end - total at the start) / total at the start;
    ``final_std[kind]``: the standard deviation of ``q`` across the cells at the end."""
    import xarray as xr

    heads = _heads(heads)
    runs = as_mapping("runs", runs, cons.HEADS)
    drift = as_mapping("drift", drift, cons.HEADS)
    final_std = as_mapping("final_std", final_std, cons.HEADS)
    require(isinstance(model, cons.CoarseModel), "`model` should be the cons.CoarseModel")
    q0 = np.asarray(q0, dtype=float)
    t0 = float(t0)
    dt, n_steps = _RUN["dt"], _RUN["n_steps"]
    closures = {k: h.numpy_closure() for k, h in heads.items()}
    summary = {}
    for kind in cons.HEADS:
        run = runs[kind]
        require(isinstance(run, xr.Dataset) and {"q", "total"} <= set(run.data_vars),
                f"`runs[{kind!r}]` should be the Dataset returned by model.run(...), got "
                f"{type(run).__name__}")
        t = run["time"].values
        q = run["q"].values
        require(q.ndim == 2 and q.shape[1] == q0.size,
                f"`runs[{kind!r}]`: run one state of {q0.size} cells (q0), got q of shape "
                f"{q.shape}")
        require(abs(t[0] - t0) < 1e-9,
                f"`runs[{kind!r}]` starts at t = {t[0]:g} h: pass t0={t0:g} (the first test "
                f"time), the wind depends on time")
        require(np.allclose(q[0], q0), f"`runs[{kind!r}]` does not start from q0, the first "
                                       f"state of the test block")
        require(t.size > 1, f"`runs[{kind!r}]` holds only its initial state: save along the way "
                            f"(save_every)")
        step_h = t[1] - t[0]
        every = step_h / dt
        require(abs(every - round(every)) < 1e-6 and round(every) >= 1,
                f"`runs[{kind!r}]` saves every {step_h:g} h, not a whole number of steps of "
                f"{dt} h: use dt={dt}")
        require(abs((t[-1] - t[0]) - n_steps * dt) < 1e-6,
                f"`runs[{kind!r}]` covers {t[-1] - t[0]:g} h, not {n_steps} steps of {dt} h "
                f"= {n_steps * dt:g} h: check n_steps and dt")
        every = int(round(every))
        # replay the first saved stretch with each closure: which one made the run?
        got = q[1]
        mine = _replay(model, run, closures[kind], 0, every, dt)
        if not np.allclose(got, mine, rtol=1e-6, atol=1e-9):
            if np.allclose(got, _replay(model, run, None, 0, every, dt), rtol=1e-6, atol=1e-9):
                raise LabCheckError(f"`runs[{kind!r}]` was run without a closure: pass "
                                    f"closure=heads[{kind!r}].numpy_closure()")
            for other in cons.HEADS:
                if other != kind and np.allclose(
                        got, _replay(model, run, closures[other], 0, every, dt), rtol=1e-6,
                        atol=1e-9):
                    raise LabCheckError(f"`runs[{kind!r}]` was made with the {other!r} head's "
                                        f"closure: couple each head with its own")
            raise LabCheckError(f"`runs[{kind!r}]` is not the coupled run of the {kind} head "
                                f"with dt = {dt} h (a replay of its first {every} steps "
                                f"differs): use model.run(q0, {n_steps}, {dt}, "
                                f"closure=heads[{kind!r}].numpy_closure(), save_every=..., "
                                f"t0=t0)")
        total = run["total"].values
        want = (total[-1] - total[0]) / total[0]
        value = as_scalar(f"drift[{kind!r}]", drift[kind])
        if not np.isclose(value, want, rtol=1e-6, atol=1e-13):
            variants = {
                "relative to the total at the END; divide by the initial total":
                    (total[-1] - total[0]) / total[-1],
                "that is a percentage: store the fraction": 100 * want,
                "that is the absolute change of the total: divide by its initial value":
                    total[-1] - total[0],
                "the sign is flipped: end minus start": -want,
                "that is the ratio of the totals: subtract 1": total[-1] / total[0],
                "divide by the initial total sum V_i q_i (run['total'][0]), not by sum q_i":
                    (total[-1] - total[0]) / q[0].sum(),
            }
            for hint, variant in variants.items():
                if np.isclose(value, variant, rtol=1e-6, atol=1e-13):
                    raise LabCheckError(f"drift[{kind!r}] = {value:.3g}: {hint} (expected "
                                        f"{want:.3g})")
            raise LabCheckError(f"drift[{kind!r}] = {value:.3g}, but the run's total changes by "
                                f"{want:.3g} of its initial value: (total[-1] - total[0]) / "
                                f"total[0] from run['total']")
        std = as_scalar(f"final_std[{kind!r}]", final_std[kind])
        want_std = float(q[-1].std())
        if not np.isclose(std, want_std, rtol=1e-6):
            hint = ""
            if np.isclose(std, float(q[:, 0].std()), rtol=1e-6) or np.isclose(
                    std, float(q.std(axis=0).mean()), rtol=1e-6):
                hint = ": that is a spread over time; take the spread across the cells"
            elif np.isclose(std, float(q[0].std()), rtol=1e-6):
                hint = ": that is at the start; take the last saved state"
            elif np.isclose(std, float(q.std()), rtol=1e-6):
                hint = ": that is over the whole run; take the last saved state"
            raise LabCheckError(f"final_std[{kind!r}] = {std:.4g}, but the std of q across the "
                                f"cells at the end of the run is {want_std:.4g}{hint}")
        summary[kind] = value
    require(max(abs(summary["flux"]), abs(summary["kappa"])) < 1e-11,
            "a conservative head should keep the total to round-off: check how the runs were "
            "made")
    return passed(f"online: total drift {summary['tendency']:.1e} (tendency) vs "
                  f"{max(abs(summary['flux']), abs(summary['kappa'])):.1e} (flux, kappa)")


@lab_check
def online_drift(drift) -> bool:
    """A plausibility check of ``drift[kind]`` alone (kept for old notebooks; the lab uses
    :func:`online`, which verifies the runs)."""
    drift = as_mapping("drift", drift, cons.HEADS)
    vals = {k: abs(as_scalar(f"drift[{k!r}]", drift[k])) for k in cons.HEADS}
    require(max(vals["flux"], vals["kappa"]) < 1e-11,
            "a conservative head should keep the total to round-off: use the total "
            "sum V_i q_i (ds['total']) relative to its initial value")
    require(vals["tendency"] > 1e-6, "the tendency head's total should drift: did you run it "
                                     "with its own closure?")
    return passed(f"online: total drift {vals['tendency']:.1e} (tendency) vs "
                  f"{max(vals['flux'], vals['kappa']):.1e} (flux, kappa)")
