"""Checks for the lab "What did it learn?" (``solutions/lab11_what_did_it_learn``).

The lab opens the Lorenz-96 stencil closure of the chapter "Opening the box": its Jacobian,
the eigenvalues of the coupled tendency, a sparse equation for the coupling term and an online
comparison of the two. Every check recomputes the answer itself (with :mod:`nnparam.interpret`)
on inputs it makes, and recognises the typical mistakes: a transposed Jacobian or one of the
wrong sign, a coupled tendency that subtracts the closure (the ``dX/dt = ... - P(X)``
convention of other texts), a library thresholded in raw units, an equation fitted with the
test block, forecasts verified over the training period.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .. import evaluation as ev
from .. import interpret as ip
from .. import l96
from ..closure import Closure
from ..metrics import time_blocks
from ..nn import Standardizer, mlp, train
from .feedback import LabCheckError, as_array, passed, require

#: the lab's setting: truth at F = 18 (steps of 0.001 MTU, saved every 0.01 MTU), blocks,
#: coarse model and the sparse-regression threshold
PARAMS = {"F": 18.0, "seed": 11, "spinup_steps": 2_000, "n_steps": 40_000, "save_every": 10,
          "fractions": (0.6, 0.2, 0.2), "gap": 50, "model_dt": 0.01, "threshold": 0.2,
          "lead": 50, "min_starts": 50}
NAMES = ("X[k-1]", "X[k]", "X[k+1]")

_CACHE: dict = {}


def make_truth():
    """The lab's two-scale truth (an ``xarray.Dataset`` of :func:`nnparam.l96.simulate`):
    2 MTU of spin-up dropped, then 40 MTU every 0.01 MTU. Made once per session."""
    if "truth" not in _CACHE:
        p = PARAMS
        spin = l96.simulate(F=p["F"], n_steps=p["spinup_steps"], seed=p["seed"])
        _CACHE["truth"] = l96.simulate(F=p["F"], n_steps=p["n_steps"],
                                       save_every=p["save_every"], X0=spin.X[-1].values,
                                       Y0=spin.Y[-1].values)
    return _CACHE["truth"]


def blocks() -> tuple[slice, slice, slice]:
    """Training, validation and test blocks of the truth's time axis (in that order)."""
    n = make_truth().sizes["time"]
    return time_blocks(n, PARAMS["fractions"], gap=PARAMS["gap"])


def make_network() -> Closure:
    """The lab's stencil network ``P(X_{k-1}, X_k, X_{k+1})``, trained on the training block
    (validation block for early stopping), as in the chapter. Made once per session."""
    if "network" not in _CACHE:
        truth = make_truth()
        X, U = truth.X.values, truth.coupling.values
        train_b, val_b, _ = blocks()
        feats = l96.stencil(X, 1)
        x_tr, y_tr = feats[train_b][::10].reshape(-1, 3), U[train_b][::10].reshape(-1, 1)
        x_va, y_va = feats[val_b][::10].reshape(-1, 3), U[val_b][::10].reshape(-1, 1)
        sx, sy = Standardizer(x_tr), Standardizer(y_tr)
        net = mlp(3, 1, hidden=(16, 16), activation="tanh", seed=0)
        train(net, sx.transform(x_tr), sy.transform(y_tr), epochs=300, lr=2e-2,
              validation=(sx.transform(x_va), sy.transform(y_va)), patience=40, seed=0)
        _CACHE["network"] = l96.neural_closure(net, 1, sx, sy)
    return _CACHE["network"]


def _host(x, F=PARAMS["F"]):
    return l96.advection(x) - x + F


def _asymmetric_closure() -> Closure:
    """A linear stencil closure with unequal neighbour weights: its Jacobian is not symmetric,
    so a transposed answer cannot pass."""
    layer = nn.Linear(3, 1).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.6, -1.0, -0.2]], dtype=torch.float64))
        layer.bias.fill_(0.1)
    return Closure(nn.Sequential(layer), inputs=("X",), stencil_width=1)


def _fresh_states(n: int, seed: int) -> np.ndarray:
    X = make_truth().X.values
    _, _, test_b = blocks()
    rng = np.random.default_rng(seed)
    idx = rng.integers(test_b.start, test_b.stop, size=n)
    return X[idx] + 0.1 * rng.standard_normal((n, X.shape[1]))


def _call(name: str, func, *args):
    require(callable(func), f"`{name}` should be a function")
    try:
        return func(*args)
    except NotImplementedError:
        raise
    except Exception as err:  # a student's bug: say where, keep the traceback out
        raise LabCheckError(f"`{name}` raised {type(err).__name__}: {err}") from None


# ---------------------------------------------------------------------------------------------
# exercise 1: the Jacobian
# ---------------------------------------------------------------------------------------------
def jacobian(closure_jacobian) -> bool:
    """Check ``closure_jacobian(closure, states) -> (M, K, K)`` with ``J[m, i, j] = dP_i/dX_j``
    on the lab network and on a linear closure with a known, asymmetric Jacobian."""
    states = _fresh_states(6, seed=1)
    for closure, label in ((_asymmetric_closure(), "a linear test closure"),
                           (make_network(), "the lab network")):
        got = as_array("closure_jacobian(closure, states)",
                       _call("closure_jacobian", closure_jacobian, closure, states))
        ref = ip.jacobian(closure, states)
        require(got.shape == ref.shape,
                f"for {states.shape[0]} states of K = {states.shape[1]} cells the Jacobian "
                f"should have shape {ref.shape} (state, output cell i, input cell j), got "
                f"{got.shape}")
        tol = 2e-2 * np.abs(ref).max()
        if np.abs(got - ref).max() < tol:
            continue
        require(np.abs(got - np.swapaxes(ref, -1, -2)).max() >= tol,
                f"on {label} your Jacobian is transposed: J[m, i, j] must be dP_i / dX_j, "
                "output cell i along the rows, input cell j along the columns.")
        require(np.abs(got + ref).max() >= tol,
                f"on {label} your Jacobian has the wrong sign: differentiate the closure P "
                "itself (the coupling term, which damps X), not -P.")
        raise LabCheckError(f"on {label} your Jacobian differs from dP_i/dX_j by up to "
                            f"{np.abs(got - ref).max():.3g}. Use interpret.jacobian (autograd) "
                            "or central differences with a small step on each X_j in turn.")
    return passed("Jacobian dP_i/dX_j: right shape, orientation and sign on two closures")


def feedback(mean_diagonal) -> bool:
    """Check the mean diagonal ``dP_k/dX_k`` of the network over test-block states."""
    X = make_truth().X.values
    _, _, test_b = blocks()
    ref = ip.band_profile(ip.jacobian(make_network(), X[test_b][::25]), 1)[1][1]
    value = float(as_array("mean_diagonal", mean_diagonal).squeeze())
    require(np.size(mean_diagonal) == 1, "`mean_diagonal` should be one number")
    require(value < 0, f"your mean diagonal is {value:+.3f}: positive would mean the coupling "
            "amplifies X. The coupling U_k = -(h c / b) sum_j Y_jk damps X_k; check the sign "
            "convention (dX/dt = ... + F + P(X), so P is U itself).")
    require(abs(value - ref) < 0.05,
            f"your mean diagonal {value:.3f} differs from {ref:.3f}, the mean of dP_k/dX_k "
            "over every 25th state of the test block. Average the diagonal of the Jacobian "
            "(J[:, k, k]) over states and cells, not the whole matrix.")
    return passed(f"mean local feedback dP_k/dX_k = {value:.3f} (negative: damping)")


# ---------------------------------------------------------------------------------------------
# exercise 2: the coupled model's eigenvalues
# ---------------------------------------------------------------------------------------------
def coupled_eigenvalues(eigenvalues_of) -> bool:
    """Check ``eigenvalues_of(closure, states, F) -> (M, K)`` complex eigenvalues of the
    Jacobian of ``-X_{k-1}(X_{k-2} - X_{k+1}) - X_k + F + P(X)_k``."""
    states = _fresh_states(5, seed=2)
    closure, F = make_network(), PARAMS["F"]
    got = np.asarray(_call("eigenvalues_of", eigenvalues_of, closure, states, F))
    require(got.shape == states.shape, f"return one eigenvalue per cell and state, shape "
            f"{states.shape}, got {got.shape}")
    require(np.all(np.isfinite(got)), "your eigenvalues contain NaN or inf")
    ref = ip.linear_response(_host, closure, states)

    def same(a, b):
        key = np.sort_complex
        return np.abs(np.stack([key(r) for r in a]) - np.stack([key(r) for r in b])).max()

    if same(got, ref) < 1e-2:
        return passed(f"coupled eigenvalues: mean real part {got.real.mean():.3f} per MTU "
                      f"(resolved model alone: -1)")
    minus = np.linalg.eigvals(ip.coupled_jacobian(_host, None, states)
                              - ip.jacobian(closure, states))
    require(same(got, minus) > 1e-2,
            "you subtracted the closure: in this book dX/dt = ... + F + P(X), where P is the "
            "coupling itself (negative feedback). Texts that write dX/dt = ... - P(X) define P "
            "with the opposite sign; do not mix the two conventions.")
    alone = ip.linear_response(_host, None, states)
    require(same(got, alone) > 1e-2, "these are the eigenvalues of the resolved model alone: "
            "add the closure's Jacobian to the host's.")
    require(abs(got.real.mean() - ref.real.mean()) < 0.05,
            f"the mean real part of your eigenvalues is {got.real.mean():.3f}, it should be "
            f"{ref.real.mean():.3f}: the trace of the host Jacobian is -K (the -X_k damping) "
            "plus the closure's diagonal. Did you drop the -X_k term?")
    raise LabCheckError("your eigenvalues differ from those of J_host + J_P at the same "
                        "states. Build the K x K Jacobian of the whole tendency and use "
                        "np.linalg.eigvals on it.")


# ---------------------------------------------------------------------------------------------
# exercises 3 and 4: equation discovery
# ---------------------------------------------------------------------------------------------
def _synthetic(n: int, seed: int):
    """Stencil-shaped inputs with the L96 range and a target with a small-coefficient cubic."""
    rng = np.random.default_rng(seed)
    feats = rng.uniform(-8.0, 16.0, size=(n, 3))
    x = feats[:, 1]
    return feats, -0.9 * x + 0.003 * x ** 3 + 0.2 * rng.standard_normal(n)


def discover(discover_fn) -> bool:
    """Check ``discover_fn(features (N, 3), target (N,), threshold) -> model`` with
    ``model(features) -> (N,)`` on fresh data whose law ``-0.9 X[k] + 0.003 X[k]^3`` has a
    cubic term of small coefficient but large contribution."""
    feats, y = _synthetic(3000, seed=3)
    test_f, test_y = _synthetic(1000, seed=4)
    model = _call("discover", discover_fn, feats, y, PARAMS["threshold"])
    require(callable(model), "`discover` should return the fitted model (a callable of the "
            "features), e.g. the SparseModel of interpret.fit_sparse")
    pred = as_array("model(features)", _call("model", model, test_f), shape=test_y.shape)
    rescaled = _call("discover", discover_fn, 0.1 * feats, y, PARAMS["threshold"])
    require(callable(rescaled), "`discover` should return the fitted model")
    pred_rescaled = as_array("model(features)", _call("model", rescaled, 0.1 * test_f),
                             shape=test_y.shape)
    require(np.abs(pred_rescaled - pred).max() < 1e-3 * np.abs(test_y).max(),
            "your library is not normalised: the same data in other units (X / 10) give "
            "another equation, because the threshold is applied to raw coefficients. In the "
            "lab's units X[k]^3 has a coefficient of 0.003, small only because X[k]^3 is "
            "large. Divide each library column and the target by their RMS before "
            "thresholding (interpret.fit_sparse(..., normalize=True)).")
    r2 = ev.r2_score(test_y, pred)
    require(r2 > 0.99, f"your model explains R^2 = {r2:.3f} of fresh data from "
            "-0.9 X[k] + 0.003 X[k]^3 + noise; a sparse fit of the degree-4 library of the "
            "three inputs reaches 0.99. Use interpret.TermLibrary.polynomial(names, 4).")
    n_terms = getattr(model, "n_terms", None)
    if n_terms is not None:
        require(n_terms <= 4, f"your model keeps {n_terms} terms for a law of two: apply the "
                "threshold (sequentially thresholded least squares), not a plain fit.")
    return passed(f"sparse discovery on fresh data: R^2 = {r2:.4f}"
                  + (f" with {n_terms} terms" if n_terms is not None else ""))


def _poisoned(U, test_b, seed=5):
    bad = U.copy()
    rng = np.random.default_rng(seed)
    bad[test_b] = -U[test_b] + 5.0 * rng.standard_normal(U[test_b].shape)
    return bad


def equation(fit_equation) -> bool:
    """Check ``fit_equation(X, U, train_b) -> model`` on the lab truth: trained on the
    training block only (the check poisons the test block and refits), a local damping."""
    truth = make_truth()
    X, U = truth.X.values, truth.coupling.values
    train_b, _, test_b = blocks()
    model = _call("fit_equation", fit_equation, X, U, train_b)
    require(callable(model), "`fit_equation` should return the fitted model")
    feats = l96.stencil(X[test_b], 1)
    pred = as_array("model(stencils)", _call("model", model, feats), shape=U[test_b].shape)
    poisoned = _call("fit_equation", fit_equation, X, _poisoned(U, test_b), train_b)
    moved = np.abs(np.asarray(poisoned(feats)) - pred).max()
    require(moved < 1e-6 * np.abs(pred).max(),
            "your equation changes when the test block of U changes: it was fitted with data "
            "from the test block (a leak). Fit on X[train_b], U[train_b] only.")
    r2 = ev.r2_score(U[test_b], pred)
    require(r2 > 0.8, f"your equation scores R^2 = {r2:.3f} on the test block; the sparse "
            "local quartic reaches about 0.85. Use the stencil features l96.stencil(X, 1).")
    return passed(f"equation trained on the training block only: test R^2 = {r2:.3f}")


# ---------------------------------------------------------------------------------------------
# exercise 5: online comparison
# ---------------------------------------------------------------------------------------------
def forecasts(forecast_errors, starts) -> bool:
    """Check ``forecast_errors(closure, X, starts) -> (len(starts),)`` RMSE after 0.5 MTU and
    that the initial states ``starts`` come from the test block."""
    X = make_truth().X.values
    train_b, val_b, test_b = blocks()
    idx = np.asarray(starts)
    require(idx.ndim == 1 and np.issubdtype(idx.dtype, np.integer),
            "`starts` should be a 1-D array of integer time indices")
    require(idx.size >= PARAMS["min_starts"], f"use at least {PARAMS['min_starts']} initial "
            f"states, got {idx.size}: one forecast is no verdict")
    in_train = np.count_nonzero((idx >= train_b.start) & (idx < val_b.stop))
    require(in_train == 0, f"{in_train} of your initial states lie in the training or "
            "validation period: never verify online over the data a closure was fitted or "
            "selected on. Start every forecast in the test block.")
    require(idx.min() >= test_b.start and idx.max() + PARAMS["lead"] < test_b.stop,
            f"every forecast must start and end inside the test block {test_b.start}.."
            f"{test_b.stop - 1} (0.5 MTU = {PARAMS['lead']} samples)")
    network = make_network()
    got = as_array("forecast_errors(network, X, starts)",
                   _call("forecast_errors", forecast_errors, network, X, idx))
    require(got.shape == idx.shape, f"return one RMSE per start, shape {idx.shape}, got "
            f"{got.shape}")
    lead = PARAMS["lead"]
    run = l96.simulate_one_scale(network, F=PARAMS["F"], dt=PARAMS["model_dt"], n_steps=lead,
                                 save_every=lead, X0=X[idx])
    ref = np.sqrt(np.mean((run.X.values[-1] - X[idx + lead]) ** 2, axis=-1))
    require(np.abs(got - ref).max() < 1e-3 * max(1.0, ref.max()),
            "your errors differ from the RMSE over the K cells of a forecast of 50 steps of "
            "0.01 MTU (0.5 MTU) against X[start + 50]; did you compare with the initial state "
            "or average over starts?")
    return passed(f"{idx.size} forecasts from the test block, mean RMSE at 0.5 MTU "
                  f"{np.sqrt(np.mean(ref ** 2)):.3f}")


def comparison(gap, err_equation, err_network) -> bool:
    """Check the paired block-bootstrap interval ``gap`` of RMSE(equation) - RMSE(network)."""
    require(isinstance(gap, ev.Interval), "`gap` should be the Interval returned by "
            "evaluation.block_bootstrap(..., paired=True)")
    a = as_array("err_equation", err_equation)
    b = as_array("err_network", err_network, shape=a.shape)

    def rms_gap(x, y):
        return np.sqrt(np.mean(x ** 2)) - np.sqrt(np.mean(y ** 2))

    estimate = rms_gap(a, b)
    require(abs(gap.estimate - estimate) < 1e-9, f"the interval's estimate {gap.estimate:.4f} "
            f"is not RMSE(equation) - RMSE(network) = {estimate:.4f} of the errors given")
    require(gap.low <= estimate <= gap.high, "the estimate should lie inside its interval")
    require(gap.high - gap.low > 1e-4, "the interval has no width: resample blocks of starts")
    return passed(f"RMSE(equation) - RMSE(network) at 0.5 MTU = {gap}")
