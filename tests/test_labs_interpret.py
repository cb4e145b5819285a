"""The checks of lab 11 accept the worked solution (and valid alternatives) and reject the
typical mistakes with a message that names them."""

import numpy as np
import pytest

from nnparam import evaluation as ev
from nnparam import interpret as ip
from nnparam import l96
from nnparam.labs import checks_interpret as check
from nnparam.labs.feedback import LabCheckError

NAMES = ["X[k-1]", "X[k]", "X[k+1]"]
LIBRARY = ip.TermLibrary.polynomial(NAMES, 4)


@pytest.fixture(scope="module")
def lab():
    truth = check.make_truth()
    X, U = truth.X.values, truth.coupling.values
    train_b, val_b, test_b = check.blocks()
    return dict(X=X, U=U, train=train_b, val=val_b, test=test_b, net=check.make_network())


def host(x, F):
    return l96.advection(x) - x + F


def discover(features, target, threshold):
    return ip.fit_sparse(LIBRARY, features, target, threshold)


def fit_equation(X, U, train_b):
    return discover(l96.stencil(X[train_b], 1)[::5], U[train_b][::5], 0.2)


def forecast_errors(closure, X, starts):
    run = l96.simulate_one_scale(closure, F=18.0, dt=0.01, n_steps=50, save_every=50,
                                 X0=X[starts])
    return np.sqrt(np.mean((run.X.values[-1] - X[starts + 50]) ** 2, axis=-1))


def test_truth_blocks_and_network(lab):
    assert check.make_truth() is check.make_truth() and check.make_network() is lab["net"]
    assert lab["X"].shape == (4001, 8) and lab["test"].stop == 4001
    assert ev.r2_score(lab["U"][lab["test"]], lab["net"](lab["X"][lab["test"]])) > 0.87


def test_jacobian_accepts_autograd_and_differences(capsys):
    assert check.jacobian(lambda c, s: ip.jacobian(c, s))
    assert check.jacobian(lambda c, s: ip.jacobian(lambda x: c(x), s, eps=1e-3))
    assert "[ok]" in capsys.readouterr().out


def test_jacobian_rejects_typical_mistakes():
    with pytest.raises(LabCheckError, match="transposed"):
        check.jacobian(lambda c, s: np.swapaxes(ip.jacobian(c, s), -1, -2))
    with pytest.raises(LabCheckError, match="wrong sign"):
        check.jacobian(lambda c, s: -ip.jacobian(c, s))
    with pytest.raises(LabCheckError, match="shape"):
        check.jacobian(lambda c, s: ip.jacobian(c, s[0]))
    with pytest.raises(LabCheckError, match="differs"):
        check.jacobian(lambda c, s: 2 * ip.jacobian(c, s))
    with pytest.raises(LabCheckError, match="raised ZeroDivisionError"):
        check.jacobian(lambda c, s: 1 / 0)
    with pytest.raises(LabCheckError, match="None"):
        check.jacobian(lambda c, s: None)


def test_feedback(lab):
    jac = ip.jacobian(lab["net"], lab["X"][lab["test"]][::25])
    diag = jac[:, np.arange(8), np.arange(8)].mean()
    assert check.feedback(diag)
    with pytest.raises(LabCheckError, match="sign convention"):
        check.feedback(-diag)
    with pytest.raises(LabCheckError, match="diagonal"):
        check.feedback(jac.mean())


def test_coupled_eigenvalues(lab):
    def right(c, s, F):
        return np.linalg.eigvals(ip.jacobian(lambda x: host(x, F), s) + ip.jacobian(c, s))

    assert check.coupled_eigenvalues(right)
    assert check.coupled_eigenvalues(lambda c, s, F: ip.linear_response(
        lambda x: host(x, F), c, s))  # a valid alternative: the engine, sorted otherwise
    with pytest.raises(LabCheckError, match="subtracted the closure"):
        check.coupled_eigenvalues(lambda c, s, F: np.linalg.eigvals(
            ip.jacobian(lambda x: host(x, F), s) - ip.jacobian(c, s)))
    with pytest.raises(LabCheckError, match="resolved model alone"):
        check.coupled_eigenvalues(lambda c, s, F: np.linalg.eigvals(
            ip.jacobian(lambda x: host(x, F), s)))
    with pytest.raises(LabCheckError, match="-X_k term"):
        check.coupled_eigenvalues(lambda c, s, F: np.linalg.eigvals(
            ip.jacobian(lambda x: l96.advection(x) + F, s) + ip.jacobian(c, s)))
    with pytest.raises(LabCheckError, match="shape"):
        check.coupled_eigenvalues(lambda c, s, F: right(c, s, F)[0])


def test_discover_accepts_the_solution_and_an_own_normalisation():
    assert check.discover(discover)

    def by_std(features, target, threshold):  # a valid alternative: scale by the std
        theta = LIBRARY(features)
        scale = theta.std(axis=0)
        scale[0] = 1.0
        model = ip.fit_sparse(ip.TermLibrary.from_functions(
            NAMES, {n: (lambda f, i=i, s=s: LIBRARY(f)[:, i] / s)
                    for i, (n, s) in enumerate(zip(LIBRARY.names, scale, strict=True))}),
            features, target, threshold, normalize=False)
        return lambda f: model(f)

    with pytest.raises(LabCheckError, match="not normalised"):
        check.discover(lambda f, y, th: ip.fit_sparse(LIBRARY, f, y, th, normalize=False))
    assert check.discover(lambda f, y, th: ip.fit_sparse(LIBRARY, f, y, th))
    assert check.discover(by_std)


def test_discover_rejects_other_mistakes():
    linear = ip.TermLibrary.polynomial(NAMES, 1)
    with pytest.raises(LabCheckError, match="degree-4"):
        check.discover(lambda f, y, th: ip.fit_sparse(linear, f, y, th))
    with pytest.raises(LabCheckError, match="keeps 35 terms"):
        check.discover(lambda f, y, th: ip.fit_sparse(LIBRARY, f, y, 0.0))
    with pytest.raises(LabCheckError, match="return the fitted model"):
        check.discover(lambda f, y, th: None)


def test_equation(lab):
    assert check.equation(fit_equation)
    with pytest.raises(LabCheckError, match="leak"):
        check.equation(lambda X, U, tb: discover(l96.stencil(X, 1)[::5], U[::5], 0.2))
    with pytest.raises(LabCheckError, match="R\\^2"):
        check.equation(lambda X, U, tb: discover(
            l96.stencil(X[tb], 1)[::5][..., ::-1] * 0 + 1, U[tb][::5], 0.2))
    with pytest.raises(LabCheckError, match="shape"):
        check.equation(lambda X, U, tb: (lambda f: f[..., 0, 0]))


def test_forecasts(lab):
    test_b = lab["test"]
    starts = np.arange(test_b.start, test_b.stop - 50, 10)
    assert check.forecasts(forecast_errors, starts)
    assert check.forecasts(forecast_errors, starts[::-1][::1])  # any order of starts
    with pytest.raises(LabCheckError, match="training or validation period"):
        check.forecasts(forecast_errors, np.arange(0, 1000, 10))
    with pytest.raises(LabCheckError, match="at least 50"):
        check.forecasts(forecast_errors, starts[:10])
    with pytest.raises(LabCheckError, match="inside the test block"):
        check.forecasts(forecast_errors, np.arange(test_b.start, test_b.stop, 10))

    def against_start(closure, X, s):
        run = l96.simulate_one_scale(closure, F=18.0, dt=0.01, n_steps=50, save_every=50,
                                     X0=X[s])
        return np.sqrt(np.mean((run.X.values[-1] - X[s]) ** 2, axis=-1))

    with pytest.raises(LabCheckError, match="initial state"):
        check.forecasts(against_start, starts)
    with pytest.raises(LabCheckError, match="integer"):
        check.forecasts(forecast_errors, starts.astype(float))


def test_comparison(lab):
    test_b = lab["test"]
    starts = np.arange(test_b.start, test_b.stop - 50, 10)
    err_net = forecast_errors(lab["net"], lab["X"], starts)
    err_eq = forecast_errors(fit_equation(lab["X"], lab["U"], lab["train"]).on_stencil(1),
                             lab["X"], starts)

    def gap_of(a, b):
        return np.sqrt(np.mean(a ** 2)) - np.sqrt(np.mean(b ** 2))

    gap = ev.block_bootstrap(gap_of, err_eq, err_net, block=5, paired=True)
    assert check.comparison(gap, err_eq, err_net)
    assert gap.low > 0
    with pytest.raises(LabCheckError, match="not RMSE"):
        check.comparison(ev.block_bootstrap(gap_of, err_net, err_eq, block=5, paired=True),
                         err_eq, err_net)
    with pytest.raises(LabCheckError, match="Interval"):
        check.comparison(gap.estimate, err_eq, err_net)
