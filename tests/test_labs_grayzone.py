"""Lab 4 checks: typical wrong answers are rejected with a message naming the mistake, valid
alternatives are accepted."""

import numpy as np
import pytest
import torch

from nnparam import grayzone as gz
from nnparam import nn as nnp
from nnparam.labs import checks_grayzone as check
from nnparam.labs.feedback import LabCheckError

# --- exercise 1: the subgrid share ------------------------------------------------------------


def _share(p):
    resolved = np.mean(p.w_bar * p.phi_bar)
    subgrid = np.mean(p.subgrid_flux)
    return float(subgrid / (resolved + subgrid))


@pytest.mark.parametrize("func", [
    _share,
    lambda p: np.sum(p.subgrid_flux) / (np.sum(p.w_bar * p.phi_bar) + np.sum(p.subgrid_flux)),
    lambda p: np.array(_share(p)),
    lambda p: 1 - np.mean(p.w_bar * p.phi_bar) / (np.mean(p.w_bar * p.phi_bar)
                                                  + np.mean(p.subgrid_flux)),
], ids=["means", "sums", "0-d array", "one minus resolved"])
def test_share_accepts_valid_answers(func):
    assert check.subgrid_share(func)


SHARE_WRONG = {
    "resolved share": (lambda p: 1 - _share(p), "RESOLVED"),
    "product of means": (lambda p: np.mean(p.subgrid_flux) / (
        np.mean(p.w_bar) * np.mean(p.phi_bar) + np.mean(p.subgrid_flux)), "product of the"),
    "precomputed totals": (lambda p: p.subgrid / p.total, "cell fields"),
    "ratio to resolved": (lambda p: np.mean(p.subgrid_flux) / np.mean(p.w_bar * p.phi_bar),
                          "subgrid / resolved"),
    "per-cell ratio": (lambda p: np.mean(p.subgrid_flux / (p.w_bar * p.phi_bar
                                                          + p.subgrid_flux)), "cell-by-cell"),
    "percent": (lambda p: 100 * _share(p), "percentage"),
    "a value, not a function": (0.63, "no parentheses"),
    "forgot return": (lambda p: None, "return"),
    "array": (lambda p: p.subgrid_flux / (p.w_bar * p.phi_bar + p.subgrid_flux),
              "one number"),
}


@pytest.mark.parametrize("case", SHARE_WRONG, ids=str)
def test_share_rejects_typical_mistakes(case):
    func, message = SHARE_WRONG[case]
    with pytest.raises(LabCheckError, match=message):
        check.subgrid_share(func)


# --- exercise 2: the split ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def samples():
    return {
        "train": gz.samples([1.0, 5.0, 25.0], seeds=(0, 1)),
        "test": gz.samples([3.0], seeds=(10,)),
        "one seed": gz.samples([1.0, 5.0, 25.0], seeds=(0,)),
        "with 3 km": gz.samples([1.0, 3.0, 25.0], seeds=(0, 1)),
        "test seed 0": gz.samples([3.0], seeds=(0,)),
        "outside": gz.samples([5.0, 10.0, 25.0], seeds=(0, 1)),
        "two dx": gz.samples([1.0, 25.0], seeds=(0, 1)),
        "test 5 km": gz.samples([3.0, 5.0], seeds=(10,)),
    }


def test_split_accepts_a_leak_free_split(samples):
    assert check.split(samples["train"], samples["test"], 3.0)


@pytest.mark.parametrize("train, test, message", [
    ("with 3 km", "test", "in the training set"),
    ("train", "test seed 0", "both training and test"),
    ("outside", "test", "INSIDE"),
    ("two dx", "test", "at least 3"),
    ("train", "test 5 km", "only dx = 3"),
    ("one seed", "test", "two fields"),
], ids=["held-out dx in train", "same field", "extrapolation", "two resolutions",
        "test holds 5 km", "one training field"])
def test_split_rejects_leaks(samples, train, test, message):
    with pytest.raises(LabCheckError, match=message):
        check.split(samples[train], samples[test], 3.0)


def test_split_needs_the_sample_dicts(samples):
    with pytest.raises(LabCheckError, match="lacks the key"):
        check.split({"dx_km": samples["train"]["dx_km"]}, samples["test"], 3.0)
    with pytest.raises(LabCheckError, match="dict"):
        check.split(gz.features(samples["train"]), samples["test"], 3.0)


# --- exercise 3: the features ----------------------------------------------------------------

FEAT_VALID = {
    "engine": gz.features,
    "column_stack": lambda d: np.column_stack([np.arcsinh(d["w_bar"] / 0.05),
                                               np.arcsinh(d["phi_bar"] / 0.05),
                                               np.log(d["dx_km"] / 2.0)]),
    "stack axis 1": lambda d: np.stack([np.arcsinh(np.asarray(d["w_bar"]) / 0.05),
                                        np.arcsinh(np.asarray(d["phi_bar"]) / 0.05),
                                        gz.dx_feature(d["dx_km"])], axis=1).astype(np.float32),
}


@pytest.mark.parametrize("case", FEAT_VALID, ids=str)
def test_features_accept_valid_answers(case):
    assert check.features(FEAT_VALID[case], 2.0)


def _cols(d, dx):
    return np.column_stack([np.arcsinh(d["w_bar"] / 0.05), np.arcsinh(d["phi_bar"] / 0.05), dx])


FEAT_WRONG = {
    "raw km": (lambda d: _cols(d, d["dx_km"]), "raw kilometres"),
    "log km": (lambda d: _cols(d, np.log(d["dx_km"])), "divide by the plume radius"),
    "no log": (lambda d: _cols(d, d["dx_km"] / 2.0), "logarithm"),
    "log10": (lambda d: _cols(d, np.log10(d["dx_km"] / 2.0)), "natural"),
    "swapped": (lambda d: np.column_stack([np.arcsinh(d["phi_bar"] / 0.05),
                                           np.arcsinh(d["w_bar"] / 0.05),
                                           gz.dx_feature(d["dx_km"])]), "swapped"),
    "no asinh": (lambda d: np.column_stack([d["w_bar"], d["phi_bar"],
                                            gz.dx_feature(d["dx_km"])]), "raw anomalies"),
    "no scale": (lambda d: np.column_stack([np.arcsinh(d["w_bar"]), np.arcsinh(d["phi_bar"]),
                                            gz.dx_feature(d["dx_km"])]), "0.05"),
    "transposed": (lambda d: gz.features(d).T, "one row per cell"),
    "no dx": (lambda d: gz.features(d, scale_aware=False), "expected shape"),
    "list": (lambda d: gz.features(d).tolist(), "numpy array"),
    "tensor": (lambda d: torch.as_tensor(gz.features(d)), "numpy array"),
}


@pytest.mark.parametrize("case", FEAT_WRONG, ids=str)
def test_features_reject_typical_mistakes(case):
    func, message = FEAT_WRONG[case]
    with pytest.raises(LabCheckError, match=message):
        check.features(func, 2.0)


# --- exercise 4: skill -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(samples):
    torch.set_num_threads(1)
    train = gz.samples([1.0, 2.0, 5.0, 10.0, 25.0, 50.0], seeds=(0, 1, 2))
    y = gz.encode_flux(train["flux"])[:, None]

    def fit(x, y):
        sx, sy = nnp.Standardizer(x), nnp.Standardizer(y)
        model = nnp.mlp(x.shape[1], 1, hidden=(16, 16), seed=0)
        nnp.train(model, sx.transform(x), sy.transform(y), epochs=300, lr=1e-2)
        return model, sx, sy

    x = gz.features(train)
    at25 = train["dx_km"] == 25.0
    return fit(x, y), fit(x[at25, :2], y[at25]), samples["test"]


def _predict(t, x):
    model, sx, sy = t
    return gz.decode_flux(sy.inverse(nnp.predict(model, sx.transform(x)))[:, 0])


def _r2(t, x, y):
    from nnparam.metrics import r2_score
    return r2_score(y, _predict(t, x))


def test_skill_accepts_the_scores(trained):
    aware, unaware, test = trained
    x = gz.features(test)
    r2a, r2u = _r2(aware, x, test["flux"]), _r2(unaware, x[:, :2], test["flux"])
    assert r2a > 0.5 and r2a > r2u
    assert check.skill(_predict, aware, unaware, test, r2a, r2u)

    def column(t, x):  # an (n, 1) column is fine
        return _predict(t, x)[:, None]

    assert check.skill(column, aware, unaware, test, r2a, r2u)


def test_skill_rejects_typical_mistakes(trained):
    from nnparam.metrics import r2_score

    aware, unaware, test = trained
    x = gz.features(test)
    r2a, r2u = _r2(aware, x, test["flux"]), _r2(unaware, x[:, :2], test["flux"])
    encoded = r2_score(gz.encode_flux(test["flux"]), gz.encode_flux(_predict(aware, x)))
    cases = {
        "not decoded": ((lambda t, x: t[2].inverse(nnp.predict(t[0], t[1].transform(x)))[:, 0]),
                        r2a, r2u, "decode it"),
        "no inverse": ((lambda t, x: gz.decode_flux(nnp.predict(t[0], t[1].transform(x))[:, 0])),
                       r2a, r2u, "sy.inverse"),
        "raw inputs": ((lambda t, x: gz.decode_flux(t[2].inverse(nnp.predict(t[0], x))[:, 0])),
                       r2a, r2u, "sx.transform"),
        "encoded score": (_predict, encoded, r2u, "ENCODED"),
        "swapped": (_predict, r2u, r2a, "swapped"),
        "made up": (_predict, 0.95, r2u, "but that closure scores"),
        "string": (_predict, "0.79", r2u, "string"),
    }
    for name, (func, a, u, message) in cases.items():
        with pytest.raises(LabCheckError, match=message):
            check.skill(func, aware, unaware, test, a, u)
            pytest.fail(f"{name} was accepted")
    with pytest.raises(LabCheckError, match="triple"):
        check.skill(_predict, aware[0], unaware, test, r2a, r2u)
