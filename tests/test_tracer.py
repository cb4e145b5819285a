import numpy as np
import pytest

from nnparam import filters, metrics, tracer


@pytest.fixture(scope="module")
def short_truth():
    return tracer.truth_run(tracer.TracerSetup(n=256, max_mode=24), t_end=10.0, spinup=5.0)


def test_wind_is_positive_and_within_its_bound():
    setup = tracer.TracerSetup()
    u = tracer.Wind(setup)(np.linspace(0, setup.length, 997), np.linspace(0, 500, 50))
    assert u.shape == (50, 997)
    assert u.min() > 0 and u.max() <= setup.u_mean * (1 + setup.gust)


def test_uniform_wind_translates_the_tracer_exactly_once_around():
    setup = tracer.TracerSetup(n=256, gust=0.0, lam=0.0, alpha=0.0, max_mode=24)
    q0 = tracer.initial_state(setup)
    period = setup.length / setup.u_mean  # one domain crossing [h]

    def rhs(q, t):
        return tracer.tendency(q, setup.u_mean, setup.dx, 0.0, 0.0)

    dt = tracer.stable_dt(setup.dx, setup.u_mean)
    _, qs = tracer._integrate(q0, rhs, period, dt, period)
    assert np.abs(qs[-1] - q0).max() < 1e-3


def test_uniform_state_follows_the_logistic_solution():
    setup = tracer.TracerSetup(n=64, max_mode=8)
    r, capacity, q0 = -setup.lam, setup.lam / setup.alpha, 0.2

    def rhs(q, t):
        return tracer.tendency(q, setup.u_mean, setup.dx, setup.lam, setup.alpha)

    times, qs = tracer._integrate(np.full(64, q0), rhs, 40.0, 0.05, 10.0)
    exact = capacity / (1 + (capacity / q0 - 1) * np.exp(-r * times))
    np.testing.assert_allclose(qs[:, 0], exact, rtol=1e-6)


def test_pure_transport_conserves_the_total_to_round_off():
    truth = tracer.truth_run(tracer.TracerSetup(n=256, lam=0.0, alpha=0.0, max_mode=24),
                             t_end=20.0, spinup=0.0, save_every=5.0)
    total = truth["q"].sum("x").values
    np.testing.assert_allclose(total, total[0], rtol=1e-12)


def test_truth_run_is_deterministic_and_self_describing(short_truth):
    again = tracer.truth_run(tracer.TracerSetup(n=256, max_mode=24), t_end=10.0, spinup=5.0)
    np.testing.assert_array_equal(short_truth["q"].values, again["q"].values)
    assert short_truth["q"].dims == ("time", "x")
    assert short_truth["x"].attrs["units"] == "km" and short_truth["time"].attrs["units"] == "h"
    assert tracer.setup_of(short_truth) == tracer.TracerSetup(n=256, max_mode=24)


def test_budget_closes_and_its_parts_have_their_properties(short_truth):
    b = tracer.sgs_budget(short_truth, 8)
    np.testing.assert_allclose(b["true_tendency"], b["resolved_tendency"] + b["sgs_tendency"],
                               atol=1e-14)
    parts = b["eddy_flux_divergence"] + b["source_correction"] + b["remainder"]
    np.testing.assert_allclose(parts, b["sgs_tendency"], atol=1e-14)
    np.testing.assert_allclose(b["eddy_flux_divergence"].mean("x"), 0.0, atol=1e-14)
    q = short_truth["q"].values
    alpha = tracer.setup_of(short_truth).alpha
    expected = alpha * filters.coarse_grain((q - np.repeat(b["q"].values, 8, axis=-1)) ** 2, 8)
    np.testing.assert_allclose(b["source_correction"].values, expected, atol=1e-14)
    assert (b["source_correction"].values <= 0).all()  # alpha < 0


def test_true_tendency_is_the_time_derivative_of_the_coarse_truth():
    fine = tracer.truth_run(tracer.TracerSetup(n=256, max_mode=24), t_end=0.4, spinup=5.0,
                            save_every=0.02)
    b = tracer.sgs_budget(fine, 8)
    dqdt = np.gradient(b["q"].values, b["time"].values, axis=0)[1:-1]
    true = b["true_tendency"].values[1:-1]
    assert np.abs(dqdt - true).max() < 1e-3 * np.abs(true).max()


def test_coarse_scheme_converges_at_third_order():
    n = np.array([16, 32, 64, 128])
    err = [tracer.truncation_error(int(k)) for k in n]
    assert abs(metrics.convergence_order(1.0 / n, err) - 3.0) < 0.2


def test_closure_terms_converge_to_a_nonzero_limit():
    a, b = tracer.closure_term_rms(1024), tracer.closure_term_rms(2048)
    assert abs(a - b) / b < 0.01 and b > 1e-4


def test_coarse_model_runs_and_accepts_a_closure(short_truth):
    b = tracer.sgs_budget(short_truth, 8)
    q0 = b["q"].values[0]
    free = tracer.run_coarse(q0, short_truth, 8, t_end=5.0)
    damped = tracer.run_coarse(q0, short_truth, 8, t_end=5.0,
                               closure=lambda q, u: -0.5 * (q - q.mean()))
    assert free["q"].shape == (6, 32)
    assert damped["q"].values[-1].std() < free["q"].values[-1].std()
    truth_err = np.abs(free["q"].values[-1] - b["q"].values[5]).max()
    assert truth_err < 0.2  # the coarse model tracks the truth over a few hours


@pytest.mark.parametrize("kwargs, match", [
    ({"gust": 1.2}, "gust"), ({"n": 4}, "n"), ({"u_mean": -1.0}, "u_mean"),
    ({"n": 64, "max_mode": 40}, "max_mode"), ({"lam": np.nan}, "lam"),
])
def test_setup_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tracer.TracerSetup(**kwargs)


def test_run_bad_input(short_truth):
    with pytest.raises(ValueError, match="t_end"):
        tracer.truth_run(tracer.TracerSetup(n=256, max_mode=24), t_end=-1.0)
    with pytest.raises(ValueError, match="factor"):
        tracer.sgs_budget(short_truth, 3)
    with pytest.raises(ValueError, match="factor"):
        tracer.coarse_face_wind(np.ones((2, 30)), 3)
    with pytest.raises(ValueError, match="q0"):
        tracer.run_coarse(np.ones(5), short_truth, 8, t_end=1.0)
    with pytest.raises(ValueError, match="dt"):
        tracer.run_coarse(np.ones(32), short_truth, 8, t_end=1.0, dt=-0.1)
    with pytest.raises(ValueError, match="setup_"):
        tracer.setup_of(short_truth.drop_attrs())
    with pytest.raises(ValueError, match="u_faces"):
        tracer.budget_terms(np.ones(16), np.ones(16), np.full(16, np.inf), 4, 1.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="share one shape"):
        tracer.budget_terms(np.ones(16), np.ones(8), np.ones(16), 4, 1.0, 0.0, 0.0)


def test_run_coarse_ensemble_equals_members_run_one_by_one():
    truth = tracer.truth_run(tracer.TracerSetup(n=128, max_mode=12), t_end=4.0, spinup=0.0)
    q0 = np.stack([filters.coarse_grain(truth["q"].values[0], 8),
                   1.1 * filters.coarse_grain(truth["q"].values[0], 8)])

    def closure(q, u_face):
        assert q.shape == u_face.shape  # the wind arrives broadcast to the states
        return -0.01 * (q - q.mean(axis=-1, keepdims=True))

    ens = tracer.run_coarse(q0, truth, 8, 4.0, closure=closure)
    assert ens["q"].dims == ("time", "member", "x")
    for m in range(2):
        one = tracer.run_coarse(q0[m], truth, 8, 4.0, closure=closure)
        np.testing.assert_allclose(ens["q"].values[:, m], one["q"].values, rtol=1e-13)
