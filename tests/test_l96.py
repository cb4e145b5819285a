"""Tests of nnparam.l96 against hand calculations, conservation identities and exact solutions."""

import numpy as np
import pytest
import torch

from nnparam import l96
from nnparam.nn import Standardizer, mlp


def hand_tendencies(X, Y, F, h, b, c):
    """The two-scale right-hand side written term by term with explicit modular indices."""
    K, J = Y.shape
    dX, dY = np.zeros(K), np.zeros((K, J))
    for k in range(K):
        dX[k] = (-X[(k - 1) % K] * (X[(k - 2) % K] - X[(k + 1) % K]) - X[k] + F
                 - h * c / b * sum(Y[k, j] for j in range(J)))
    N = K * J
    for k in range(K):
        for j in range(J):
            n = k * J + j  # position on the fast ring; neighbours may sit in other sectors

            def y(m):
                return Y[(m % N) // J, (m % N) % J]

            dY[k, j] = -c * b * y(n + 1) * (y(n + 2) - y(n - 1)) - c * Y[k, j] + h * c / b * X[k]
    return dX, dY


@pytest.fixture(scope="module")
def state():
    rng = np.random.default_rng(42)
    return 3 + 4 * rng.standard_normal(5), 0.3 * rng.standard_normal((5, 3))


def test_tendencies_match_hand_calculation(state):
    X, Y = state
    dX, dY = l96.tendencies(X, Y, F=18.0, h=1.0, b=10.0, c=10.0)
    hX, hY = hand_tendencies(X, Y, 18.0, 1.0, 10.0, 10.0)
    np.testing.assert_allclose(dX, hX, rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(dY, hY, rtol=1e-13, atol=1e-12)


def test_smallest_system_by_hand():
    # K=4, J=1: every fast variable's neighbours live in other sectors
    X = np.array([1.0, 2.0, 3.0, 4.0])
    Y = np.array([[1.0], [0.0], [0.0], [2.0]])
    dX, dY = l96.tendencies(X, Y, F=0.0, h=1.0, b=1.0, c=1.0)
    # dX_0 = -X_3 (X_2 - X_1) - X_0 - Y_0 = -4 (3 - 2) - 1 - 1
    assert dX[0] == -6.0
    # dY_3 = -Y_0 (Y_1 - Y_2) - Y_3 + X_3 = -1 (0 - 0) - 2 + 4
    assert dY[3, 0] == 2.0
    # dY_2 = -Y_3 (Y_0 - Y_1) - Y_2 + X_2 = -2 (1 - 0) - 0 + 3
    assert dY[2, 0] == 1.0


def test_advection_conserves_energy(state):
    X, _ = state
    assert abs(np.sum(X * l96.advection(X))) < 1e-12 * np.sum(X ** 2) ** 1.5


def test_energy_budget_coupling_cancels(state):
    # E = (sum X^2 + sum Y^2)/2: advection conserves it and the coupling only exchanges it,
    # so dE/dt = -sum X^2 + F sum X - c sum Y^2 for any h and b
    X, Y = state
    F, h, b, c = 18.0, 1.7, 10.0, 10.0
    dX, dY = l96.tendencies(X, Y, F, h, b, c)
    dE = np.sum(X * dX) + np.sum(Y * dY)
    expected = -np.sum(X ** 2) + F * np.sum(X) - c * np.sum(Y ** 2)
    assert dE == pytest.approx(expected, rel=1e-12)


def test_coupling_sign_and_factor(state):
    _, Y = state
    np.testing.assert_allclose(l96.coupling(Y, h=2.0, b=4.0, c=10.0), -5.0 * Y.sum(axis=1))


def test_compiled_matches_numpy_reference(state):
    X, Y = state
    kw = dict(K=5, J=3, dt=0.002, n_steps=300, save_every=7, X0=X, Y0=Y)
    fast, ref = l96.simulate(**kw), l96.simulate_reference(**kw)
    assert fast.sizes["time"] == 300 // 7 + 1
    np.testing.assert_allclose(fast.X.values, ref.X.values, rtol=0, atol=1e-10)
    np.testing.assert_allclose(fast.Y.values, ref.Y.values, rtol=0, atol=1e-10)
    np.testing.assert_allclose(fast.coupling.values, ref.coupling.values, rtol=0, atol=1e-10)


def test_default_system_compiled_matches_reference():
    kw = dict(n_steps=200, seed=3)
    fast, ref = l96.simulate(**kw), l96.simulate_reference(**kw)
    np.testing.assert_allclose(fast.Y.values, ref.Y.values, rtol=0, atol=1e-10)


def test_dataset_layout_and_metadata():
    ds = l96.simulate(K=6, J=4, n_steps=10, save_every=5, seed=1)
    assert ds.X.dims == ("time", "k") and ds.Y.dims == ("time", "k", "j")
    assert ds.coupling.dims == ("time", "k")
    np.testing.assert_allclose(ds.time.values, [0.0, 0.005, 0.01])
    for name in ("X", "Y", "coupling", "time"):
        assert "units" in ds[name].attrs and "long_name" in ds[name].attrs
    np.testing.assert_allclose(ds.coupling, -ds.Y.sum("j"))  # h c / b = 1 by default


def test_initial_state_included_and_no_randomness_given_both():
    X0, Y0 = np.linspace(-1, 1, 8), np.zeros((8, 32))
    a = l96.simulate(n_steps=5, X0=X0, Y0=Y0, seed=1)
    b = l96.simulate(n_steps=5, X0=X0, Y0=Y0, seed=2)
    np.testing.assert_array_equal(a.X.values[0], X0)
    np.testing.assert_array_equal(a.X.values, b.X.values)
    c = l96.simulate(n_steps=5, seed=1)
    d = l96.simulate(n_steps=5, seed=2)
    assert not np.array_equal(c.X.values[0], d.X.values[0])


def test_rk4_is_fourth_order():
    ref = l96.simulate(K=4, J=2, dt=0.00025, n_steps=400, X0=[1.0, 2, 3, 4], Y0=np.ones((4, 2)))
    errs = []
    for dt in (0.004, 0.002):
        run = l96.simulate(K=4, J=2, dt=dt, n_steps=round(0.1 / dt), X0=[1.0, 2, 3, 4],
                           Y0=np.ones((4, 2)))
        errs.append(np.abs(run.X.values[-1] - ref.X.values[-1]).max())
    assert 12 < errs[0] / errs[1] < 20


def test_one_scale_exact_solution():
    # uniform X: advection vanishes and dX/dt = F + (a - 1) X has an exponential solution
    a, F, x0, dt, n = -0.5, 18.0, 2.0, 0.01, 100
    run = l96.simulate_one_scale(lambda X: a * X, K=6, F=F, dt=dt, n_steps=n,
                                 X0=np.full(6, x0))
    lam = a - 1
    t = run.time.values
    exact = -F / lam + (x0 + F / lam) * np.exp(lam * t)
    np.testing.assert_allclose(run.X.values[:, 0], exact, rtol=1e-9)
    np.testing.assert_allclose(run.closure.values[:, 0], a * exact, rtol=1e-8)


def test_one_scale_ensemble_matches_single_runs():
    rng = np.random.default_rng(0)
    X0 = 3 + 3 * rng.standard_normal((3, 8))
    P = l96.Polynomial(np.array([-0.01, 0.02, -0.8, -0.7]))
    ens = l96.simulate_one_scale(P, dt=0.01, n_steps=50, X0=X0)
    assert ens.X.dims == ("time", "member", "k")
    single = l96.simulate_one_scale(P, dt=0.01, n_steps=50, X0=X0[1])
    np.testing.assert_allclose(ens.X.values[:, 1], single.X.values, rtol=1e-12)


def test_polynomial_fit_recovers_cubic():
    x = np.linspace(-10, 20, 200)
    coef = np.array([0.002, -0.03, -0.9, 0.5])
    P = l96.fit_polynomial(x, np.polyval(coef, x), 3)
    np.testing.assert_allclose(P.coef, coef, atol=1e-9)
    np.testing.assert_allclose(P(x.reshape(20, 10)), np.polyval(coef, x).reshape(20, 10))


def test_stencil():
    X = np.arange(5.0)
    s = l96.stencil(X, 1)
    np.testing.assert_array_equal(s[0], [4, 0, 1])
    np.testing.assert_array_equal(s[4], [3, 4, 0])
    assert l96.stencil(np.zeros((7, 3, 5)), 2).shape == (7, 3, 5, 5)


@pytest.mark.parametrize("activation", ["tanh", "relu", "silu", "gelu"])
def test_neural_closure_matches_torch(activation):
    model = mlp(3, 1, hidden=(8, 8), activation=activation, seed=1)
    rng = np.random.default_rng(0)
    X = 3 + 4 * rng.standard_normal((4, 8))
    feats = l96.stencil(X, 1).reshape(-1, 3)
    sx, sy = Standardizer(feats), Standardizer(rng.standard_normal((10, 1)) * 3 + 1)
    P = l96.neural_closure(model, 1, sx, sy)
    with torch.no_grad():
        z = model(torch.as_tensor(sx.transform(feats), dtype=torch.float32)).numpy()
    expected = (z[:, 0] * sy.std[0] + sy.mean[0]).reshape(X.shape)
    np.testing.assert_allclose(P(X), expected, rtol=1e-5, atol=1e-5)


def test_one_scale_accepts_torch_module():
    model = mlp(3, 1, hidden=(4,), seed=2)
    X0 = np.linspace(-2, 5, 8)
    a = l96.simulate_one_scale(model, dt=0.01, n_steps=20, X0=X0)
    b = l96.simulate_one_scale(l96.neural_closure(model, 1), dt=0.01, n_steps=20, X0=X0)
    np.testing.assert_allclose(a.X.values, b.X.values)


def test_ar1_noise_statistics():
    # no closure: the saved 'closure' variable is the AR(1) process itself
    noise = l96.AR1(phi=0.9, sigma=0.5)
    run = l96.simulate_one_scale(None, K=8, F=0.0, dt=0.01, n_steps=20000,
                                 X0=np.zeros((4, 8)), noise=noise, seed=5)
    e = run.closure.values
    assert e.std() == pytest.approx(0.5, rel=0.05)
    assert l96.autocorrelation(e, 3)[1] == pytest.approx(0.9, abs=0.02)
    fitted = l96.fit_ar1(e.reshape(e.shape[0], -1), sample_dt=0.01, model_dt=0.02)
    assert fitted.phi == pytest.approx(0.81, abs=0.03)
    assert fitted.sigma == pytest.approx(0.5, rel=0.05)


def test_hellinger_analytic():
    a = np.array([0.1, 0.2, 0.3, 0.4])
    assert l96.hellinger(a, a) == 0.0
    assert l96.hellinger([0.0, 0.1], [0.9, 1.0], bins=2, range=(0, 1)) == pytest.approx(1.0)
    # p = (1, 0), q = (1/2, 1/2): H^2 = 1 - sqrt(1/2)
    h = l96.hellinger([0.1, 0.2], [0.1, 0.9], bins=2, range=(0, 1))
    assert h == pytest.approx(np.sqrt(1 - np.sqrt(0.5)))


def test_autocorrelation_of_ar1():
    rng = np.random.default_rng(1)
    x = np.zeros((50000, 2))
    for t in range(1, x.shape[0]):
        x[t] = 0.8 * x[t - 1] + rng.standard_normal(2)
    acf = l96.autocorrelation(x, 3)
    np.testing.assert_allclose(acf, 0.8 ** np.arange(4), atol=0.02)
    assert acf[0] == 1.0


def test_forecast_rmse_zero_for_perfect_model():
    P = l96.Polynomial(np.array([-0.8, -0.7]))
    truth = l96.simulate_one_scale(P, dt=0.01, n_steps=400, save_every=2, seed=3).X.values
    err = l96.forecast_rmse(truth, np.array([10, 50, 90]), 20, sample_dt=0.02, closure=P,
                            model_dt=0.01)
    assert err.shape == (21,)
    assert err.max() < 1e-10
    wrong = l96.forecast_rmse(truth, np.array([10, 50, 90]), 20, sample_dt=0.02,
                              closure=None, model_dt=0.01)
    assert wrong[0] == 0 and wrong[-1] > 0.1


@pytest.mark.parametrize("kwargs, name", [
    (dict(K=3), "K"), (dict(J=0), "J"), (dict(dt=0.0), "dt"), (dict(dt=-1e-3), "dt"),
    (dict(X0=np.zeros(7)), "X0"), (dict(Y0=np.zeros((8, 31))), "Y0"),
    (dict(X0=np.zeros((8, 1))), "X0"), (dict(Y0=np.zeros(8)), "Y0"),
    (dict(b=0.0), "b"), (dict(c=-1.0), "c"), (dict(n_steps=-1), "n_steps"),
    (dict(save_every=0), "save_every"), (dict(X0=np.full(8, np.nan)), "X0"),
])
@pytest.mark.parametrize("func", [l96.simulate, l96.simulate_reference])
def test_simulate_bad_input(func, kwargs, name):
    with pytest.raises(ValueError, match=name):
        func(**{"n_steps": 1, **kwargs})


@pytest.mark.parametrize("kwargs, name", [
    (dict(K=2), "K"), (dict(dt=0), "dt"), (dict(X0=np.zeros(5)), "X0"),
    (dict(X0=np.zeros((2, 2, 8))), "X0"), (dict(noise=0.3), "noise"),
    (dict(closure="cubic"), "closure"), (dict(closure=lambda X: X[..., :2]), "closure"),
    (dict(closure=mlp(2, 1, hidden=(3,))), "closure"),
])
def test_one_scale_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        l96.simulate_one_scale(**{"n_steps": 2, **kwargs})


def test_helpers_bad_input():
    with pytest.raises(ValueError, match="phi"):
        l96.AR1(phi=1.0, sigma=1.0)
    with pytest.raises(ValueError, match="sigma"):
        l96.AR1(phi=0.5, sigma=-1.0)
    with pytest.raises(ValueError, match="residual"):
        l96.fit_ar1(np.zeros(10), 0.01, 0.01)
    with pytest.raises(ValueError, match="model_dt"):
        l96.fit_ar1(np.ones((10, 2)), 0.01, 0.0)
    with pytest.raises(ValueError, match="degree"):
        l96.fit_polynomial([1.0, 2.0], [1.0, 2.0], 3)
    with pytest.raises(ValueError, match="y"):
        l96.fit_polynomial([1.0, 2.0], [1.0], 1)
    with pytest.raises(ValueError, match="width"):
        l96.stencil(np.zeros(8), -1)
    with pytest.raises(ValueError, match="model"):
        l96.neural_closure(lambda x: x)
    with pytest.raises(ValueError, match="max_lag"):
        l96.autocorrelation(np.arange(5.0), 5)
    with pytest.raises(ValueError, match="a must hold at least one sample"):
        l96.hellinger([], [1.0])
    with pytest.raises(ValueError, match="Y"):
        l96.tendencies(np.zeros(8), np.zeros((7, 3)))
    truth = np.zeros((30, 8))
    with pytest.raises(ValueError, match="starts"):
        l96.forecast_rmse(truth, np.array([25]), 10, 0.01)
    with pytest.raises(ValueError, match="starts"):
        l96.forecast_rmse(truth, [0.5], 10, 0.01)
    with pytest.raises(ValueError, match="sample_dt"):
        l96.forecast_rmse(truth, np.array([0]), 10, 0.0075, model_dt=0.005)


def test_unstable_closure_is_flagged_not_raised():
    run = l96.simulate_one_scale(lambda X: 0.5 * X ** 2, dt=0.01, n_steps=500, save_every=10,
                                 X0=np.full(8, 5.0))
    assert 0 < run.attrs["blew_up_at"] < 5.0
    assert np.isnan(run.X.values[-1]).all() and np.isfinite(run.X.values[0]).all()
    stable = l96.simulate_one_scale(None, dt=0.01, n_steps=50, X0=np.full(8, 5.0))
    assert np.isnan(stable.attrs["blew_up_at"])


def test_jit_falls_back_when_no_cache_location(monkeypatch):
    # numba raises RuntimeError at decoration when no cache directory is writable
    calls = []

    def fake_njit(cache, fastmath):
        calls.append(cache)
        if cache:
            raise RuntimeError("cannot cache function: no locator available")
        return lambda func: func

    monkeypatch.setattr(l96, "njit", fake_njit)
    assert l96._jit(abs)(-2) == 2
    assert calls == [True, False]


# --------------------------------------------------------------------------------------------
# coarse-step target, cached truth runs, long records without Y
# --------------------------------------------------------------------------------------------
def test_coarse_step_target_is_exact_for_a_forward_euler_record():
    # a record made by forward Euler steps with a constant subgrid term c: the target is c
    rng = np.random.default_rng(0)
    F, dt, c = 20.0, 0.005, rng.normal(size=8)
    X = [3 + rng.normal(size=8)]
    for _ in range(50):
        X.append(X[-1] + dt * (l96.one_scale_tendency(X[-1], F, c)))
    U = l96.coarse_step_target(np.array(X), dt, F)
    assert U.shape == (50, 8)
    np.testing.assert_allclose(U, np.broadcast_to(c, U.shape), rtol=0, atol=1e-9)


def test_coarse_step_target_bad_input():
    with pytest.raises(ValueError, match="X"):
        l96.coarse_step_target(np.zeros(8), 0.005, 20.0)
    with pytest.raises(ValueError, match="X needs at least 2 times"):
        l96.coarse_step_target(np.zeros((1, 8)), 0.005, 20.0)
    with pytest.raises(ValueError, match="dt"):
        l96.coarse_step_target(np.zeros((3, 8)), 0.0, 20.0)


def test_simulate_without_fast_variables_keeps_the_coupling():
    full = l96.simulate(n_steps=300, save_every=10, seed=4)
    light = l96.simulate(n_steps=300, save_every=10, seed=4, keep_Y=False)
    assert "Y" not in light and "j" not in light.coords
    np.testing.assert_array_equal(light.X.values, full.X.values)
    np.testing.assert_allclose(light.coupling.values, full.coupling.values, rtol=1e-12)


def test_truth_run_is_spun_up_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("NNPARAM_CACHE", str(tmp_path))
    kw = dict(F=18.0, n_mtu=2.0, sample_dt=0.01, spinup_mtu=1.0, seed=3)
    first = l96.truth_run(**kw)
    assert first.sizes["time"] == 201 and first.time.values[0] == 0.0
    assert len(list(tmp_path.glob("l96-truth-*.nc"))) == 1
    again = l96.truth_run(**kw)
    np.testing.assert_array_equal(first.X.values, again.X.values)
    # the record continues the spin-up: its first state is the state after 1 MTU
    spin = l96.simulate(F=18.0, n_steps=1000, save_every=1000, seed=3)
    np.testing.assert_allclose(first.X.values[0], spin.X.values[-1], rtol=1e-12)
    with pytest.raises(ValueError, match="sample_dt"):
        l96.truth_run(F=18.0, n_mtu=1.0, sample_dt=0.0015, spinup_mtu=1.0)


# --------------------------------------------------------------------------------------------
# one-scale ensembles: the compiled path against the numpy reference
# --------------------------------------------------------------------------------------------
CUBIC = l96.Polynomial(np.array([0.00238, 0.01328, -1.30385, -0.33413]))


@pytest.fixture(scope="module")
def stencil_closure():
    rng = np.random.default_rng(0)
    X = 3 + 4 * rng.standard_normal((50, 8))
    feats = l96.stencil(X, 1).reshape(-1, 3)
    return l96.neural_closure(mlp(3, 1, hidden=(8, 8), seed=0), 1, Standardizer(feats),
                              Standardizer(rng.normal(size=(20, 1))))


@pytest.mark.parametrize("closure, noise", [
    (None, None), (CUBIC, None), (CUBIC, l96.AR1(0.98, 2.0)),
    (CUBIC, l96.StateDependentAR1(0.98, 1.5, 0.08)), (CUBIC, l96.MultiplicativeAR1(0.95, 0.4)),
])
def test_jax_path_matches_numpy_reference_for_polynomials(closure, noise):
    X0 = 3 + 4 * np.random.default_rng(1).standard_normal((3, 8))
    kw = dict(F=20.0, dt=0.005, n_steps=120, save_every=7, X0=X0, noise=noise, seed=2)
    ref = l96.simulate_one_scale(closure, backend="numpy", **kw)
    fast = l96.simulate_one_scale(closure, backend="jax", **kw)
    assert ref.attrs["backend"] == "numpy" and fast.attrs["backend"] == "jax"
    assert fast.X.shape == ref.X.shape == (120 // 7 + 1, 3, 8)
    np.testing.assert_allclose(fast.X.values, ref.X.values, rtol=0, atol=1e-10)
    np.testing.assert_allclose(fast.closure.values, ref.closure.values, rtol=0, atol=1e-10)


def test_jax_path_matches_numpy_reference_for_a_network(stencil_closure):
    X0 = 3 + 4 * np.random.default_rng(2).standard_normal((4, 8))
    kw = dict(F=20.0, dt=0.005, n_steps=100, save_every=10, X0=X0, seed=0,
              noise=l96.AR1(0.9, 1.0))
    ref = l96.simulate_one_scale(stencil_closure, backend="numpy", **kw)
    fast = l96.simulate_one_scale(stencil_closure, backend="jax", **kw)
    # the network runs in float32 in both paths; tanh implementations differ at 1e-7
    np.testing.assert_allclose(fast.X.values, ref.X.values, rtol=0, atol=1e-4)
    assert np.abs(fast.X.values - ref.X.values).max() > 0  # really two implementations


def test_auto_backend_compiles_only_long_runs(stencil_closure):
    X0 = np.random.default_rng(3).standard_normal((2, 8))
    short = l96.simulate_one_scale(stencil_closure, n_steps=10, X0=X0)
    assert short.attrs["backend"] == "numpy"
    plain = l96.simulate_one_scale(lambda x: CUBIC(x), n_steps=l96.FAST_PATH_MIN_STEPS, X0=X0,
                                   save_every=1000)
    assert plain.attrs["backend"] == "numpy"  # a plain callable cannot be compiled
    long = l96.simulate_one_scale(CUBIC, n_steps=l96.FAST_PATH_MIN_STEPS, X0=X0,
                                  save_every=1000)
    assert long.attrs["backend"] == "jax"
    # chaos amplifies round-off differences between the paths: compare the first 10 MTU
    np.testing.assert_allclose(long.X.values[:3], plain.X.values[:3], rtol=0, atol=1e-6)


@pytest.mark.parametrize("backend", ["numpy", "jax"])
def test_blow_up_is_per_member(backend):
    X0 = np.stack([np.full(8, 5.0), 0.1 * np.ones(8)])
    run = l96.simulate_one_scale(l96.Polynomial(np.array([0.5, 0.0, 0.0])), dt=0.01,
                                 n_steps=500, save_every=10, X0=X0, backend=backend)
    t = run.blow_up_time.values
    assert run.blow_up_time.dims == ("member",)
    assert 0 < t[0] < t[1] < 5.0 and run.attrs["blew_up_at"] == t[0]
    # each member holds NaN from its own blow-up on, and is finite before it
    times = run.time.values
    for m in range(2):
        assert np.isnan(run.X.values[times >= t[m], m]).all()
        assert np.isfinite(run.X.values[times < t[m], m]).all()


def test_blow_up_times_agree_between_backends():
    X0 = np.stack([np.full(8, 5.0), 0.1 * np.ones(8), np.linspace(-1, 1, 8)])
    P = l96.Polynomial(np.array([0.5, 0.0, 0.0]))
    kw = dict(dt=0.01, n_steps=600, save_every=5, X0=X0)
    a = l96.simulate_one_scale(P, backend="numpy", **kw).blow_up_time.values
    b = l96.simulate_one_scale(P, backend="jax", **kw).blow_up_time.values
    np.testing.assert_array_equal(a, b)


def test_one_scale_ensemble_bad_input(stencil_closure):
    with pytest.raises(ValueError, match=r"X0 holds NaN or inf in member\(s\) \[1\]"):
        l96.simulate_one_scale(None, n_steps=2, X0=np.stack([np.ones(8), np.full(8, np.nan)]))
    with pytest.raises(ValueError, match="X0 must be numeric"):
        l96.simulate_one_scale(None, n_steps=2, X0=[[1.0] * 8, [1.0] * 7])
    with pytest.raises(ValueError, match="backend"):
        l96.simulate_one_scale(None, n_steps=2, backend="gpu")
    with pytest.raises(ValueError, match="closure cannot run on the JAX backend"):
        l96.simulate_one_scale(lambda x: -x, n_steps=2, backend="jax")
    with pytest.raises(ValueError, match="noise"):
        l96.simulate_one_scale(None, n_steps=2, noise=(0.9, 1.0))


# --------------------------------------------------------------------------------------------
# stochastic schemes: fits recover known parameters
# --------------------------------------------------------------------------------------------
def _unit_ar1(phi, shape, seed):
    rng = np.random.default_rng(seed)
    eta = np.empty(shape)
    eta[0] = rng.standard_normal(shape[1:])
    for t in range(1, shape[0]):
        eta[t] = phi * eta[t - 1] + np.sqrt(1 - phi ** 2) * rng.standard_normal(shape[1:])
    return eta


def test_fit_state_dependent_ar1_recovers_its_parameters():
    eta = _unit_ar1(0.95, (40000, 4), seed=0)
    X = 8 * _unit_ar1(0.999, (40000, 4), seed=1) + 3  # a slowly varying state
    residual = (1.5 + 0.1 * np.abs(X)) * eta
    fit = l96.fit_state_dependent_ar1(residual, X, sample_dt=0.01, model_dt=0.01)
    assert fit.sigma0 == pytest.approx(1.5, rel=0.05)
    assert fit.sigma1 == pytest.approx(0.1, rel=0.08)
    assert fit.phi == pytest.approx(0.95, abs=0.005)
    assert isinstance(fit, l96.StateDependentAR1)


def test_fit_multiplicative_ar1_recovers_its_parameters():
    eta = _unit_ar1(0.9, (40000, 4), seed=2)
    P = 6 * np.sin(np.linspace(0, 40, 40000))[:, None] + np.zeros((1, 4)) + 4
    fit = l96.fit_multiplicative_ar1(0.4 * P * eta, P, sample_dt=0.01, model_dt=0.02)
    assert fit.sigma == pytest.approx(0.4, rel=0.03)
    assert fit.phi == pytest.approx(0.81, abs=0.01)  # 0.9 per sample -> 0.81 per model step


def test_stochastic_term_amplitudes_in_a_run():
    # no closure: the saved term is (sigma0 + sigma1 |X|) eta at the saved state, so dividing
    # by the amplitude gives back the unit AR(1) process eta
    noise = l96.StateDependentAR1(phi=0.9, sigma0=0.3, sigma1=5.0)
    run = l96.simulate_one_scale(None, F=0.0, dt=0.001, n_steps=20000, save_every=1,
                                 X0=np.zeros((2, 8)), noise=noise, seed=1, backend="numpy")
    eta = run.closure.values / (0.3 + 5.0 * np.abs(run.X.values))
    assert np.abs(run.X.values).max() > 0.05  # the state-dependent part is exercised
    assert eta.std() == pytest.approx(1.0, rel=0.05)
    assert l96.autocorrelation(eta, 1)[1] == pytest.approx(0.9, abs=0.02)
    mult = l96.simulate_one_scale(CUBIC, F=20.0, dt=0.005, n_steps=50, X0=np.ones(8),
                                  noise=l96.MultiplicativeAR1(0.9, 0.0), seed=0)
    det = l96.simulate_one_scale(CUBIC, F=20.0, dt=0.005, n_steps=50, X0=np.ones(8))
    np.testing.assert_array_equal(mult.X.values, det.X.values)  # sigma = 0: no noise


def test_noise_fit_bad_input():
    with pytest.raises(ValueError, match="X must have the residual's shape"):
        l96.fit_state_dependent_ar1(np.ones((10, 2)), np.ones((10, 3)), 0.01, 0.01)
    with pytest.raises(ValueError, match="P must have the residual's shape"):
        l96.fit_multiplicative_ar1(np.ones((10, 2)), np.ones((9, 2)), 0.01, 0.01)
    with pytest.raises(ValueError, match="fewer than 10 samples"):
        l96.fit_multiplicative_ar1(np.ones((10, 2)), np.ones((10, 2)), 0.01, 0.01)
    with pytest.raises(ValueError, match="residual is constant"):
        l96.fit_ar1(np.ones((10, 2)), 0.01, 0.01)
    with pytest.raises(ValueError, match="sigma1"):
        l96.StateDependentAR1(0.5, 1.0, -0.1)
    with pytest.raises(ValueError, match="phi"):
        l96.MultiplicativeAR1(1.2, 0.1)


# --------------------------------------------------------------------------------------------
# ensemble forecasts and climate samples
# --------------------------------------------------------------------------------------------
def test_forecast_ensemble_shapes_and_spread():
    truth = l96.simulate_one_scale(CUBIC, F=20.0, dt=0.005, n_steps=2000, save_every=10,
                                   seed=1).X.values
    starts = np.array([10, 60, 120])
    det, obs = l96.forecast_ensemble(truth, starts, 20, 0.05, members=4, closure=CUBIC,
                                     F=20.0)
    assert det.shape == (21, 3, 4, 8) and obs.shape == (21, 3, 8)
    np.testing.assert_array_equal(obs[5], truth[starts + 5])
    assert np.ptp(det, axis=2).max() == 0  # perfect model, perfect start: no spread
    np.testing.assert_allclose(det[:, :, 0], obs, atol=1e-9)
    noisy, _ = l96.forecast_ensemble(truth, starts, 20, 0.05, members=4, closure=CUBIC,
                                     noise=l96.AR1(0.98, 2.0), F=20.0, seed=3)
    assert np.ptp(noisy[-1], axis=1).min() > 0  # members differ
    np.testing.assert_array_equal(noisy[0, :, 0], truth[starts])


def test_forecast_ensemble_bad_input():
    truth = np.zeros((30, 8))
    with pytest.raises(ValueError, match="starts"):
        l96.forecast_ensemble(truth, np.array([25]), 10, 0.01)
    with pytest.raises(ValueError, match="members"):
        l96.forecast_ensemble(truth, np.array([0]), 10, 0.01, members=0)
    with pytest.raises(ValueError, match="truth_X"):
        l96.forecast_ensemble(np.zeros(30), np.array([0]), 10, 0.01)


def test_climate_sample():
    X0 = np.stack([np.full(8, 5.0), np.linspace(-1, 1, 8)])
    run = l96.simulate_one_scale(CUBIC, F=20.0, dt=0.01, n_steps=400, save_every=10, X0=X0)
    x = l96.climate_sample(run, spinup=1.0, every=2)
    assert x.shape == (16, 2, 8)
    np.testing.assert_array_equal(x[0], run.X.values[10])
    single = l96.simulate_one_scale(CUBIC, F=20.0, dt=0.01, n_steps=400, save_every=10,
                                    X0=X0[1])
    assert l96.climate_sample(single, spinup=1.0).shape == (31, 1, 8)
    blown = l96.simulate_one_scale(l96.Polynomial(np.array([0.5, 0.0, 0.0])), dt=0.01,
                                   n_steps=500, save_every=10, X0=np.stack([np.full(8, 5.0),
                                                                            np.zeros(8)]))
    with pytest.raises(ValueError, match=r"member\(s\) \[0, 1\]"):
        l96.climate_sample(blown, spinup=0.0)
    with pytest.raises(ValueError, match="spinup"):
        l96.climate_sample(run, spinup=10.0)
    with pytest.raises(ValueError, match="run must be a Dataset"):
        l96.climate_sample(run.X, spinup=1.0)


def test_fit_polynomial_matches_numpy_on_noisy_data():
    rng = np.random.default_rng(5)
    x = 4 * rng.standard_normal(5000) + 3
    y = np.polyval([0.0005, -0.01, -0.02, 1.5, 0.3], x) + rng.normal(size=x.size)
    np.testing.assert_allclose(l96.fit_polynomial(x, y, 4).coef, np.polyfit(x, y, 4),
                               rtol=1e-7, atol=1e-10)


def test_verdict_inputs_refuse_bad_ensembles():
    # issue 15, item 5: a block longer than the record, NaN members, mismatched shapes
    from nnparam import evaluation as ev

    run = l96.simulate_one_scale(CUBIC, F=20.0, dt=0.01, n_steps=300, save_every=10,
                                 X0=np.stack([np.full(8, 2.0), np.linspace(-1, 1, 8)]))
    sample = l96.climate_sample(run, spinup=0.5)
    with pytest.raises(ValueError, match="block"):
        ev.block_bootstrap(lambda a: a.mean(), sample, block=sample.shape[0] + 1)
    ensemble = np.stack([run.X.values[-1], run.X.values[-1] + 0.1])
    ensemble[1, 0, 3] = np.nan
    with pytest.raises(ValueError, match=r"member\(s\) \[1\]"):
        ev.crps_ensemble(ensemble, run.X.values[-1])
    with pytest.raises(ValueError, match="obs"):
        ev.spread_skill(np.ones((3, 2, 8)), np.ones((2, 7)))
    with pytest.raises(ValueError, match="X0 must have shape"):
        l96.simulate_one_scale(None, K=8, n_steps=2, X0=np.ones((3, 7)))
