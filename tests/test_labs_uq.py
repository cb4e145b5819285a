"""Lab 6 checks: typical wrong answers are rejected with a message naming the mistake, valid
alternatives are accepted."""

import numpy as np
import pytest
import torch

from nnparam import uq
from nnparam.labs import checks_uq as check
from nnparam.labs.feedback import LabCheckError
from nnparam.metrics import time_blocks

# --- exercise 1: decompose ---------------------------------------------------------------------


@pytest.mark.parametrize("func", [
    uq.decompose,
    lambda mu, var: (var.mean(0), ((mu - mu.mean(0)) ** 2).mean(0)),
    lambda mu, var: (np.mean(var, axis=0), np.var(mu, axis=0)),
    lambda mu, var: [var.mean(0).tolist(), mu.var(0).tolist()],
    lambda mu, var: (torch.as_tensor(var).mean(0), torch.as_tensor(mu).var(0, unbiased=False)),
], ids=["engine", "by hand", "np functions", "lists", "torch"])
def test_decompose_accepts_valid_answers(func):
    assert check.decompose(func)


DEC_WRONG = {
    "ddof 1": (lambda mu, var: (var.mean(0), mu.var(0, ddof=1)), "divisor M - 1"),
    "swapped": (lambda mu, var: (mu.var(0), var.mean(0)), "swapped"),
    "std": (lambda mu, var: (var.mean(0), mu.std(0)), "standard deviation"),
    "wrong axis": (lambda mu, var: (var.mean(1), mu.var(1)), "shape|axis"),
    "total as aleatoric": (lambda mu, var: (var.mean(0) + mu.var(0), mu.var(0)),
                           "total variance"),
    "sum not mean": (lambda mu, var: (var.sum(0), mu.var(0)), "aleatoric is wrong"),
    "one array": (lambda mu, var: var.mean(0), "pair"),
    "none": (lambda mu, var: None, "return"),
    "hard-coded M": (lambda mu, var: (var.mean(0), ((mu - mu.mean(0)) ** 2).sum(0) / 4),
                     "epistemic is wrong"),
    "raises": (lambda mu, var: (var.mean(0), mu.var(0))[2], "raised IndexError"),
}


@pytest.mark.parametrize("case", DEC_WRONG, ids=str)
def test_decompose_rejects_typical_mistakes(case):
    func, message = DEC_WRONG[case]
    with pytest.raises(LabCheckError, match=message):
        check.decompose(func)


def test_decompose_needs_the_function():
    with pytest.raises(LabCheckError, match="no parentheses"):
        check.decompose(uq.decompose(np.zeros((2, 2)), np.ones((2, 2))))


# --- exercise 2: sampling the mixture ----------------------------------------------------------

@pytest.fixture(scope="module")
def five():
    rng = np.random.default_rng(42)
    return rng.normal(0.0, 2.0, size=(5, 3)), rng.uniform(0.2, 2.0, size=(5, 3))


def _draws(mu, var, scale=np.sqrt, member=None, n=200_000, seed=1):
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, 5, size=(n, 3)) if member is None else np.full((n, 3), member)
    cols = np.arange(3)
    return mu[pick, cols] + scale(var[pick, cols]) * rng.standard_normal((n, 3))


def test_mixture_accepts_samples(five):
    mu, var = five
    assert check.mixture_sampling(_draws(mu, var).var(axis=0), mu, var)
    assert check.mixture_sampling(uq.sample_mixture(mu, var, 200_000, seed=3).var(axis=0),
                                  mu, var)
    # one member per draw for all three inputs at once is a valid way to sample too
    rng = np.random.default_rng(5)
    pick = rng.integers(0, 5, 200_000)
    draws = mu[pick] + np.sqrt(var[pick]) * rng.standard_normal((200_000, 3))
    assert check.mixture_sampling(draws.var(axis=0), mu, var)


def test_mixture_rejects_typical_mistakes(five):
    mu, var = five
    rng = np.random.default_rng(7)
    cases = {
        "formula": (var.mean(0) + mu.var(0), "independently"),
        "variance as scale": (_draws(mu, var, scale=lambda v: v).var(0), "standard deviation"),
        "mean Gaussian": ((mu.mean(0) + np.sqrt(var.mean(0)) * rng.standard_normal((200_000, 3))
                           ).var(0), "aleatoric part"),
        "means only": (mu[rng.integers(0, 5, (200_000, 3)), np.arange(3)].var(0),
                       "spread of the means"),
        "one member": (_draws(mu, var, member=0).var(0), "one member"),
        "over inputs": (_draws(mu, var).var(axis=1)[:3], "1 within 2 %|variance"),
        "draws": (_draws(mu, var, n=1000), "one variance per input"),
    }
    for name, (value, message) in cases.items():
        with pytest.raises(LabCheckError, match=message):
            check.mixture_sampling(value, mu, var)
            pytest.fail(f"{name} was accepted")


# --- the pinball loss ---------------------------------------------------------------------------

@pytest.mark.parametrize("func", [
    uq.pinball_loss,
    lambda y, q, t: float(np.mean(np.where(y >= q, t * (y - q), (t - 1) * (y - q)))),
    lambda y, q, t: np.mean((y - q) * (t - (y < q))),
], ids=["engine", "where", "indicator"])
def test_pinball_accepts_valid_answers(func):
    assert check.pinball(func)


PIN_WRONG = {
    "swapped sides": (lambda y, q, t: np.mean(np.maximum((1 - t) * (y - q), -t * (y - q))),
                      "swapped"),
    "u reversed": (lambda y, q, t: np.mean(np.maximum(t * (q - y), (t - 1) * (q - y))),
                   "wrong way round|swapped"),
    "sum": (lambda y, q, t: np.sum(np.maximum(t * (y - q), (t - 1) * (y - q))), "mean"),
    "absolute": (lambda y, q, t: np.mean(np.abs(y - q)), "absolute error"),
    "minimum": (lambda y, q, t: np.mean(np.minimum(t * (y - q), (t - 1) * (y - q))),
                "minimum"),
    "array": (lambda y, q, t: np.maximum(t * (y - q), (t - 1) * (y - q)), "one number"),
    "squared": (lambda y, q, t: np.mean((y - q) ** 2), "expected"),
}


@pytest.mark.parametrize("case", PIN_WRONG, ids=str)
def test_pinball_rejects_typical_mistakes(case):
    func, message = PIN_WRONG[case]
    with pytest.raises(LabCheckError, match=message):
        check.pinball(func)


# --- exercise 3 and the flag: a real ensemble on the cubic toy ---------------------------------

@pytest.fixture(scope="module")
def toy():
    torch.set_num_threads(1)
    x_toy, y_toy = uq.cubic_toy(20, seed=0)
    x_grid = np.linspace(-6, 6, 121)
    ens = uq.train_ensemble(x_toy, y_toy, members=5, hidden=(32, 32), activation="relu",
                            warmup=500, epochs=300, lr=1e-2, weight_decay=0.03, seed=0)
    three = uq.train_ensemble(x_toy, y_toy, members=3, hidden=(8,), epochs=50, seed=0)
    return dict(x_toy=x_toy, y_toy=y_toy, x_grid=x_grid, ens=ens, three=three)


def test_toy_uncertainty_accepts_the_split(toy):
    a, e = uq.decompose(*toy["ens"].predict(toy["x_grid"]))
    assert check.toy_uncertainty(toy["ens"], toy["x_grid"], a, e, toy["x_toy"])


def test_toy_uncertainty_rejects_typical_mistakes(toy):
    ens, xg, xt = toy["ens"], toy["x_grid"], toy["x_toy"]
    mu, var = ens.predict(xg)
    a, e = uq.decompose(mu, var)
    cases = {
        "swapped": ((ens, xg, e, a, xt), "swapped"),
        "ddof 1": ((ens, xg, a, mu.var(0, ddof=1), xt), "not the split"),
        "total as aleatoric": ((ens, xg, a + e, e, xt), "not the split"),
        "three members": ((toy["three"], xg, *uq.decompose(*toy["three"].predict(xg)), xt),
                          "5"),
        "grid inside the data": ((ens, np.linspace(-4, 4, 50),
                                  *uq.decompose(*ens.predict(np.linspace(-4, 4, 50))), xt),
                                 "beyond"),
        "not an ensemble": ((ens.net, xg, a, e, xt), "uq.Ensemble"),
        "short": ((ens, xg, a[:-1], e, xt), "shape"),
    }
    for name, (args, message) in cases.items():
        with pytest.raises(LabCheckError, match=message):
            check.toy_uncertainty(*args)
            pytest.fail(f"{name} was accepted")


def test_ood_accepts_valid_flags(toy):
    ens, xg, xt = toy["ens"], toy["x_grid"], toy["x_toy"]
    _, e = uq.decompose(*ens.predict(xg))
    _, e_train = uq.decompose(*ens.predict(xt))
    assert check.ood(e > e_train.max(), ens, xg, xt)
    assert check.ood(uq.ood_flag(e, e_train, quantile=1.0)[0], ens, xg, xt)


def test_ood_rejects_typical_mistakes(toy):
    ens, xg, xt = toy["ens"], toy["x_grid"], toy["x_toy"]
    a, e = uq.decompose(*ens.predict(xg))
    a_train, e_train = uq.decompose(*ens.predict(xt))
    good = e > e_train.max()
    inside = (xg >= xt.min()) & (xg <= xt.max())
    cases = {
        "inverted": (~good, "inverted"),
        "aleatoric": (a > a_train.max(), "aleatoric"),
        "quantile 0.99": (uq.ood_flag(e, e_train)[0], "LARGEST|quantile"),
        "threshold from the grid": (e > e[inside].max(), "x_toy|LARGEST"),
        "mean threshold": (e > e_train.mean(), "not\ntheir|mean"),
        "tuple": (uq.ood_flag(e, e_train, quantile=1.0), "tuple"),
        "floats": (good.astype(float), "boolean"),
        "short": (good[:-1], "shape"),
    }
    for name, (flag, message) in cases.items():
        if name == "quantile 0.99" and np.array_equal(flag, good):
            continue  # no grid point between the two thresholds: not a mistake here
        with pytest.raises(LabCheckError, match=message):
            check.ood(flag, ens, xg, xt)
            pytest.fail(f"{name} was accepted")


# --- exercise 4: quantiles ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def quant():
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    n_time, n_x = 120, 8
    features = rng.normal(size=(n_time, n_x, 5))
    target = features[..., 1] + 0.5 * rng.normal(size=(n_time, n_x))
    tr, va, te = time_blocks(n_time, (0.6, 0.2, 0.2), gap=5)
    x_tr = features[tr].reshape(-1, 5)
    qmodel = uq.fit_quantiles(x_tr, target[tr].ravel(), (0.1, 0.5, 0.9), hidden=(16,),
                              epochs=400, seed=0)
    x_te = features[te].reshape(-1, 5)
    return dict(features=features, target=target, blocks=(tr, va, te), qmodel=qmodel,
                q_test=qmodel.predict(x_te), y_test=target[te].ravel())


def test_quantiles_accept_the_exercise(quant):
    tr, va, te = quant["blocks"]
    args = (quant["features"], quant["target"], quant["q_test"], quant["y_test"])
    assert check.quantiles(quant["qmodel"], tr, va, te, *args)
    n = quant["features"].shape[0]
    arrays = [np.arange(n)[b] for b in (tr, va, te)]
    assert check.quantiles(quant["qmodel"], *arrays, *args)


def test_quantiles_reject_typical_mistakes(quant):
    f, y, qm = quant["features"], quant["target"], quant["qmodel"]
    tr, va, te = quant["blocks"]
    n = f.shape[0]
    q_test, y_test = quant["q_test"], quant["y_test"]
    shuffled = np.random.default_rng(1).permutation(n)
    on_test = uq.fit_quantiles(f[te].reshape(-1, 5), y[te].ravel(), (0.1, 0.5, 0.9),
                               hidden=(4,), epochs=5)
    two_levels = uq.fit_quantiles(f[tr].reshape(-1, 5), y[tr].ravel(), (0.05, 0.95),
                                  hidden=(4,), epochs=5)
    no_gap = time_blocks(n, (0.6, 0.2, 0.2))
    cases = {
        "shuffled": ((qm, shuffled[:72], shuffled[72:96], shuffled[96:], f, y, q_test, y_test),
                     "contiguous"),
        "no gap": ((qm, *no_gap, f, y, q_test, y_test), "gap"),
        "test first": ((qm, te, va, tr, f, y, q_test, y_test), "order"),
        "fitted on test": ((on_test, tr, va, te, f, y, on_test.predict(
            f[te].reshape(-1, 5)), y_test), "fitted on the test block"),
        "other levels": ((two_levels, tr, va, te, f, y, q_test, y_test), "levels"),
        "predicted on train": ((qm, tr, va, te, f, y, qm.predict(f[tr].reshape(-1, 5))[
            :y_test.size], y_test), "not what the quantile model predicts"),
        "subsampled test": ((qm, tr, va, te, f, y, q_test[::6], y_test[::6]),
                            "whole test block"),
        "targets reordered": ((qm, tr, va, te, f, y, q_test, y[te].T.ravel()), "order"),
        "crossing": ((qm, tr, va, te, f, y, q_test[:, ::-1], y_test), "not what"),
        "not a model": ((qm.model, tr, va, te, f, y, q_test, y_test), "QuantileModel"),
    }
    for name, (args, message) in cases.items():
        with pytest.raises(LabCheckError, match=message):
            check.quantiles(*args)
            pytest.fail(f"{name} was accepted")
