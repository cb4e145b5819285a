"""The checks of lab 7 accept the worked solution and reject the typical mistakes."""

import numpy as np
import pytest

from nnparam import l96
from nnparam.labs import checks_l96 as check
from nnparam.labs.feedback import LabCheckError
from nnparam.metrics import r2_score, time_blocks


@pytest.fixture(scope="module")
def lab():
    truth = check.make_truth()
    X, U = truth.X.values, truth.coupling.values
    train_b, val_b, test_b = time_blocks(X.shape[0], (0.6, 0.2, 0.2), gap=50)
    linear = l96.fit_polynomial(X[train_b], U[train_b], 1)
    X0 = truth.attrs["F"] + 0.01 * np.random.default_rng(0).standard_normal((4, 8))
    run = l96.simulate_one_scale(linear, dt=0.01, n_steps=600, X0=X0, seed=1)
    return dict(truth=truth, X=X, U=U, train=train_b, test=test_b, linear=linear, X0=X0,
                run=run)


def test_truth_is_cached_and_spun_up(lab):
    assert check.make_truth() is lab["truth"]
    assert lab["X"].shape == (6001, 8)
    assert abs(lab["X"].mean() - 3.7) < 0.5  # on the attractor, not near the random start


def test_coupling_target(lab, capsys):
    a = lab["truth"].attrs
    target = -(a["h"] * a["c"] / a["b"]) * lab["truth"].Y.values.sum(axis=-1)
    assert check.coupling_target(target)
    assert "[ok]" in capsys.readouterr().out
    with pytest.raises(LabCheckError, match="wrong sign"):
        check.coupling_target(-target)
    with pytest.raises(LabCheckError, match="averaged"):
        check.coupling_target(target / a["J"])
    with pytest.raises(LabCheckError, match="transposed"):
        check.coupling_target(target.T)
    with pytest.raises(LabCheckError, match="fast index j"):
        check.coupling_target(lab["truth"].Y.values.sum(axis=1))
    with pytest.raises(LabCheckError, match="None"):
        check.coupling_target(None)


def test_split(lab):
    n = lab["X"].shape[0]
    assert check.split(lab["train"], lab["test"])
    perm = np.random.default_rng(0).permutation(n)
    with pytest.raises(LabCheckError, match="shuffled"):
        check.split(perm[: int(0.8 * n)], perm[int(0.8 * n):])
    with pytest.raises(LabCheckError, match="share"):
        check.split(slice(0, 5000), slice(4000, n))
    with pytest.raises(LabCheckError, match="gap"):
        check.split(slice(0, 4800), slice(4800, n))
    with pytest.raises(LabCheckError, match="10 %"):
        check.split(slice(0, 5800), slice(5900, n))
    mask = np.zeros(n, bool)
    mask[-1200:] = True
    assert check.split(np.arange(4000), mask)


def test_offline_score(lab):
    X, U, test_b = lab["X"], lab["U"], lab["test"]
    cubic = l96.fit_polynomial(X[lab["train"]], U[lab["train"]], 3)
    r2 = r2_score(U[test_b], cubic(X[test_b]))
    assert check.offline_score(cubic, r2, test_b)
    with pytest.raises(LabCheckError, match="training data"):
        check.offline_score(cubic, r2 + 0.05, test_b)
    with pytest.raises(LabCheckError, match="wrong sign"):
        check.offline_score(lambda x: -cubic(x), -r2, test_b)
    with pytest.raises(LabCheckError, match="straight line"):
        check.offline_score(lambda x: 0.5 * cubic(x), r2_score(U[test_b], 0.5 * cubic(X[test_b])),
                            test_b)
    with pytest.raises(LabCheckError, match="shape"):
        check.offline_score(lambda x: x[:, :2], r2, test_b)


def test_climatology(lab):
    run = lab["run"]
    x_clim = run["X"].sel(time=slice(2.0, None))
    assert check.climatology(x_clim)
    with pytest.raises(LabCheckError, match="spin-up"):
        check.climatology(run["X"])
    with pytest.raises(LabCheckError, match="DataArray"):
        check.climatology(x_clim.values)
    # a closure added with the wrong sign: unstable or far from the truth's climate
    wrong = l96.simulate_one_scale(lambda x: -lab["linear"](x), dt=0.01, n_steps=600,
                                   X0=lab["X0"], seed=1)
    with pytest.raises(LabCheckError, match="blew up|sign"):
        check.climatology(wrong["X"].sel(time=slice(2.0, None)))
    # no closure at all: bounded but with the wrong climate
    none = l96.simulate_one_scale(None, dt=0.01, n_steps=600, X0=lab["X0"], seed=1)
    with pytest.raises(LabCheckError, match="Hellinger"):
        check.climatology(none["X"].sel(time=slice(2.0, None)))


def test_report(lab):
    x_clim = lab["run"]["X"].sel(time=slice(2.0, None))
    h = l96.hellinger(lab["X"], x_clim.values, bins=40, range=(-15, 25))
    assert check.report({"r2": 0.8, "hellinger": h}, x_clim)
    with pytest.raises(LabCheckError, match="Hellinger"):
        check.report({"r2": 0.8, "hellinger": l96.hellinger(lab["X"], x_clim.values)}, x_clim)
    with pytest.raises(LabCheckError, match="keys"):
        check.report({"R2": 0.8}, x_clim)
    with pytest.raises(LabCheckError, match="r2"):
        check.report({"r2": 1.5, "hellinger": h}, x_clim)
