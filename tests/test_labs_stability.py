"""Lab 3 checks: typical wrong answers are rejected with a message naming the mistake, valid
alternatives are accepted."""

import math

import numpy as np
import pytest
import torch

from nnparam import stability
from nnparam.labs import checks_stability as check
from nnparam.labs.feedback import LabCheckError
from nnparam.metrics import time_blocks
from nnparam.nn import mlp

# --- exercise 1: h_max ----------------------------------------------------------------------


@pytest.mark.parametrize("func", [
    stability.max_stable_timestep,
    lambda lam, k: 2.0 / (lam - k) if k < lam else 0.0,
    lambda lam, k: np.where(k < lam, 2 / np.where(k < lam, lam - k, 1.0), 0.0),
    lambda lam, k: 0 if k >= lam else 2 / (lam - k),
    lambda lam, k: max(0.0, 2 / (lam - k)) if k != lam else 0.0,
], ids=["engine", "if-else", "np.where", "int zero", "max"])
def test_h_max_accepts_valid_answers(func):
    assert check.max_stable_timestep(func)


H_WRONG = {
    "sign": (lambda lam, k: 2 / (k - lam), "wrong sign"),
    "no factor 2": (lambda lam, k: 1 / (lam - k) if k < lam else 0.0, "half the largest"),
    "ignores k": (lambda lam, k: 2 / lam, "expected h_max"),
    "lam + k": (lambda lam, k: 2 / (lam + k) if k < lam else 0.0, "expected h_max"),
    "hours": (lambda lam, k: 2 / (lam - k) / 3600 if k < lam else 0.0, "seconds"),
    "no special case": (lambda lam, k: 2 / (lam - k), "divided by zero|k >= lam"),
    "k > lam only": (lambda lam, k: 0.0 if k > lam else 2 / (lam - k), "divided by zero"),
    "inf when unstable": (lambda lam, k: 2 / (lam - k) if k < lam else math.inf, "inf"),
    "None when unstable": (lambda lam, k: 2 / (lam - k) if k < lam else None, "return"),
    "list": (lambda lam, k: [2 / (lam - k)] if k < lam else [0.0], "one number"),
    "abs": (lambda lam, k: 2 / abs(lam - k) if k != lam else 0.0, "no positive step"),
}


@pytest.mark.parametrize("case", H_WRONG, ids=str)
def test_h_max_rejects_typical_mistakes(case):
    func, message = H_WRONG[case]
    with pytest.raises(LabCheckError, match=message):
        check.max_stable_timestep(func)


# --- exercise 2: power iteration -------------------------------------------------------------

def _power(w, n_iter=200):
    w = np.asarray(w, dtype=float)
    v = np.random.default_rng(0).standard_normal(w.shape[1])
    v /= np.linalg.norm(v)
    for _ in range(n_iter):
        v = w.T @ (w @ v)
        v /= np.linalg.norm(v)
    return float(np.linalg.norm(w @ v))


def _rayleigh(w, n_iter=300):
    w = np.asarray(w, dtype=float)
    v = np.ones(w.shape[1]) / np.sqrt(w.shape[1])
    for _ in range(n_iter):
        v = w.T @ (w @ v)
        v /= np.linalg.norm(v)
    return float(np.sqrt(v @ (w.T @ (w @ v))))


def _left(w, n_iter=300):
    w = np.asarray(w, dtype=float)
    u = np.random.default_rng(1).standard_normal(w.shape[0])
    for _ in range(n_iter):
        u = w @ (w.T @ u)
        u /= np.linalg.norm(u)
    return float(np.linalg.norm(w.T @ u))


def _torch(w, n_iter=300):
    t = torch.as_tensor(w, dtype=torch.float64)
    v = torch.ones(t.shape[1], dtype=torch.float64)
    for _ in range(n_iter):
        v = t.T @ (t @ v)
        v = v / torch.linalg.vector_norm(v)
    return torch.linalg.vector_norm(t @ v)


@pytest.mark.parametrize("func", [_power, _rayleigh, _left, _torch, stability.spectral_norm],
                         ids=["power", "rayleigh", "left vectors", "torch", "engine"])
def test_spectral_norm_accepts_valid_answers(func):
    assert check.spectral_norm(func)


def _no_norm(w, n_iter=200):
    w = np.asarray(w, dtype=float)
    v = np.random.default_rng(0).standard_normal(w.shape[1])
    for _ in range(n_iter):
        v = w.T @ (w @ v)
    return float(np.linalg.norm(w @ v))


def _normalised_at_end(w, n_iter=200):
    return _no_norm(w, n_iter) / 1e300


SN_WRONG = {
    "svd": (lambda w: np.linalg.svd(w, compute_uv=False)[0], "power iteration"),
    "norm ord 2": (lambda w: np.linalg.norm(w, 2), "power iteration"),
    "eigvals": (lambda w: float(np.sqrt(np.linalg.eigvalsh(w.T @ w).max())), "power iteration"),
    "torch matrix_norm": (lambda w: torch.linalg.matrix_norm(torch.as_tensor(w), ord=2),
                          "power iteration"),
    "frobenius": (lambda w: np.linalg.norm(w), "Frobenius"),
    "sigma squared": (lambda w: float(np.linalg.norm(w.T @ (w @ _vec(w)))), "square"),
    "never normalised": (_no_norm, "(?i)normalise"),
    "normalised only at the end": (_normalised_at_end, "(?i)normalise"),
    "three iterations": (lambda w: _power(w, 3), "iterate long enough"),
    "returns the vector": (lambda w: w @ _vec(w), "one number"),
    "W v iteration": (lambda w: _square_iteration(w), "rectangular"),
    "wrong start length": (lambda w: _wrong_start(w), "rectangular"),
    "max entry": (lambda w: float(np.abs(w).max()), "largest singular value"),
}


def _vec(w):
    v = np.random.default_rng(0).standard_normal(w.shape[1])
    for _ in range(300):
        v = w.T @ (w @ v)
        v /= np.linalg.norm(v)
    return v


def _square_iteration(w):
    v = np.ones(w.shape[1])
    for _ in range(100):
        v = w @ v
        v /= np.linalg.norm(v)
    return float(np.linalg.norm(w @ v))


def _wrong_start(w):
    v = np.ones(w.shape[0])
    for _ in range(100):
        v = w.T @ (w @ v)
        v /= np.linalg.norm(v)
    return float(np.linalg.norm(w @ v))


@pytest.mark.parametrize("case", SN_WRONG, ids=str)
def test_spectral_norm_rejects_typical_mistakes(case):
    func, message = SN_WRONG[case]
    with pytest.raises(LabCheckError, match=message):
        check.spectral_norm(func)


def test_forbidden_solvers_are_restored_after_the_check():
    with pytest.raises(LabCheckError):
        check.spectral_norm(lambda w: np.linalg.svd(w, compute_uv=False)[0])
    assert np.isclose(np.linalg.svd(np.eye(2) * 3, compute_uv=False)[0], 3.0)
    assert np.isclose(np.linalg.norm(np.eye(2) * 3, 2), 3.0)


# --- exercise 3: the Lipschitz bound ----------------------------------------------------------

LIP_VALID = {
    "product": lambda m: float(np.prod([_power(w.numpy()) for w in stability.linear_weights(m)])),
    "transposed": lambda m: float(np.prod([_power(w.numpy().T)
                                           for w in stability.linear_weights(m)])),
    "layers directly": lambda m: math.prod(_power(layer.weight.detach().numpy())
                                           for layer in m if isinstance(layer, torch.nn.Linear)),
    "engine": stability.mlp_lipschitz_bound,
}


@pytest.mark.parametrize("case", LIP_VALID, ids=str)
def test_lipschitz_accepts_valid_answers(case):
    assert check.lipschitz_bound(LIP_VALID[case])


def _norms(m, func=_power):
    return [func(w.numpy()) for w in stability.linear_weights(m)]


LIP_WRONG = {
    "frobenius": (lambda m: float(np.prod(_norms(m, np.linalg.norm))), "Frobenius"),
    "skips output layer": (lambda m: float(np.prod(_norms(m)[:-1])), "without linear layer"),
    "sum": (lambda m: float(np.sum(_norms(m))), "PRODUCT"),
    "max": (lambda m: float(np.max(_norms(m))), "PRODUCT"),
    "first layer only": (lambda m: _norms(m)[0], "PRODUCT|without"),
    "squared": (lambda m: float(np.prod(np.square(_norms(m)))), "PRODUCT"),
    "with biases": (lambda m: float(np.prod([_power(p.detach().numpy()) for p in m.parameters()])),
                    "biases"),
    "list": (lambda m: _norms(m), "one number"),
}


@pytest.mark.parametrize("case", LIP_WRONG, ids=str)
def test_lipschitz_rejects_typical_mistakes(case):
    func, message = LIP_WRONG[case]
    with pytest.raises(LabCheckError, match=message):
        check.lipschitz_bound(func)


# --- exercises 4 and 5: the normalised closure and the coupled run ----------------------------

H = 9000.0


@pytest.fixture(scope="module")
def lab():
    torch.set_num_threads(1)
    toy = stability.SteepClosureToy()
    t, q, s = toy.truth(240, H)
    blocks = time_blocks(len(t), (0.6, 0.2, 0.2))
    cap = stability.max_contractive_lipschitz(H, toy.lam)
    closure = stability.fit_stencil_closure(q, s, blocks, target=0.9 * cap, epochs=200)[0]
    unconstrained = stability.fit_stencil_closure(q, s, blocks)[0]
    return dict(toy=toy, t=t, q=q, s=s, blocks=blocks, test=blocks[2], cap=cap, closure=closure,
                unconstrained=unconstrained)


def test_normalised_closure_accepts_margins(lab):
    toy = lab["toy"]
    assert check.normalised_closure(lab["closure"], H, toy.lam, lab["q"], lab["s"], lab["test"])
    low = stability.fit_stencil_closure(lab["q"], lab["s"], lab["blocks"],
                                        target=0.5 * lab["cap"], epochs=200)[0]
    assert check.normalised_closure(low, H, toy.lam, lab["q"], lab["s"], lab["test"])


def test_normalised_closure_rejects_typical_mistakes(lab):
    toy, q, s, blocks, cap = lab["toy"], lab["q"], lab["s"], lab["blocks"], lab["cap"]
    cases = {
        "target = lam": (stability.fit_stencil_closure(q, s, blocks, target=toy.lam,
                                                       epochs=50)[0], "Pass a smaller"),
        "no margin": (stability.fit_stencil_closure(q, s, blocks, target=0.99 * cap,
                                                    epochs=50)[0], "margin"),
        "unconstrained": (lab["unconstrained"], "Pass a smaller"),
        "tiny target": (stability.fit_stencil_closure(q, s, blocks, target=0.01 * cap,
                                                      epochs=50)[0], "R\\^2"),
        "the tuple": (stability.fit_stencil_closure(q, s, blocks, target=0.9 * cap,
                                                    epochs=5), "tuple"),
        "None": (None, "None"),
        "a network": (mlp(3, 1), "StencilClosure"),
    }
    for name, (closure, message) in cases.items():
        with pytest.raises(LabCheckError, match=message):
            check.normalised_closure(closure, H, toy.lam, q, s, lab["test"])
            pytest.fail(f"{name} was accepted")


def _run(lab, closure=None, start=None, t_start=None, h=H, n=None):
    toy, q, t, test = lab["toy"], lab["q"], lab["t"], lab["test"]
    start = test.start if start is None else start
    return toy.run(lab["closure"] if closure is None else closure, q[start],
                   t[start] if t_start is None else t_start, h,
                   test.stop - test.start - 1 if n is None else n)


def test_online_run_accepts_the_coupled_run(lab):
    args = (lab["closure"], lab["toy"], lab["q"], lab["t"], lab["test"], H)
    assert check.online_run(_run(lab), *args)


def test_online_run_rejects_runs_that_were_not_asked_for(lab):
    toy, test = lab["toy"], lab["test"]
    args = (lab["closure"], toy, lab["q"], lab["t"], test, H)
    unconstrained = lab["unconstrained"]
    cases = {
        "one step": (_run(lab, n=1), "takes 1 steps"),
        "one step too many": (_run(lab, n=test.stop - test.start), "takes"),
        "start of record": (_run(lab, start=0), "q\\[0\\]"),
        "t_start = 0": (_run(lab, t_start=0.0), "forcing depends on time"),
        "no closure": (_run(lab, closure=lambda q: 0 * q), "without the closure"),
        "exact closure": (_run(lab, closure=toy.subgrid_tendency), "exact subgrid|blew up"),
        "a tenth of the step": (_run(lab, h=H / 10), "steps by"),
        "unconstrained": (_run(lab, closure=unconstrained), "not one forward-Euler step|blew"),
        "only q": (_run(lab)["q"], "dict"),
    }
    for name, (run, message) in cases.items():
        with pytest.raises(LabCheckError, match=message):
            check.online_run(run, *args)
            pytest.fail(f"{name} was accepted")
    # a student who passes the closure that actually blew up is told so
    blown = _run(lab, closure=unconstrained)
    with pytest.raises(LabCheckError, match="blew up"):
        check.online_run(blown, unconstrained, toy, lab["q"], lab["t"], test, H)


def test_written_answer_numbers(lab):
    """The model answer quotes h_max of the grid-scale mode, about 2150 s, below h = 9000 s."""
    toy = lab["toy"]
    dx = toy.length / toy.n
    k_grid = toy.gain * toy.lam - 4 * toy.kappa / dx**2
    h_grid = stability.max_stable_timestep(toy.lam, k_grid)
    assert 2100 < h_grid < 2200 and h_grid < H
