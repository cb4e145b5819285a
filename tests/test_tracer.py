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


def test_centred_reconstruction_is_second_order():
    n = np.array([32, 64, 128, 256])
    err = [tracer.truncation_error(int(k), face_value=tracer.centred_face_values) for k in n]
    assert abs(metrics.convergence_order(1.0 / n, err) - 2.0) < 0.1
    q = np.array([1.0, 3.0, 5.0, 7.0])
    np.testing.assert_allclose(tracer.centred_face_values(q), [2.0, 4.0, 6.0, 4.0])


def test_closure_terms_with_the_filter_on_the_grid_vanish_as_dx_squared():
    # the complement of the test above: filter width = grid spacing (implicit filtering)
    n_coarse = np.array([256, 512, 1024])
    rms = [tracer.closure_term_rms(8 * int(k), coarse_n=int(k)) for k in n_coarse]
    assert abs(metrics.convergence_order(1.0 / n_coarse[1:], rms[1:]) - 2.0) < 0.15


def test_explicit_filter_of_width_zero_is_the_grid_filter(short_truth):
    implicit = tracer.sgs_budget(short_truth, 8)
    zero = tracer.sgs_budget(short_truth, 8, filter_width=0.0)
    for name in implicit.data_vars:
        np.testing.assert_array_equal(zero[name].values, implicit[name].values)
    assert zero.attrs["filter_width"] == 0.0


def test_explicit_budget_closes_and_its_source_term_is_a_kernel_variance(short_truth):
    setup = tracer.setup_of(short_truth)
    width = 250.0
    b = tracer.sgs_budget(short_truth, 8, filter_width=width)
    parts = b["eddy_flux_divergence"] + b["source_correction"] + b["remainder"]
    np.testing.assert_allclose(parts, b["sgs_tendency"], atol=1e-14)
    np.testing.assert_allclose(b["true_tendency"], b["resolved_tendency"] + b["sgs_tendency"],
                               atol=1e-14)
    # independent route: a real-space periodic convolution with a sampled Gaussian kernel
    # (standard deviation width / sqrt(12)), then the block mean
    offsets = (np.arange(setup.n) - setup.n // 2) * setup.dx
    kernel = np.exp(-0.5 * (offsets / (width / np.sqrt(12))) ** 2)
    kernel /= kernel.sum()
    q = short_truth["q"].values

    def convolve(a):
        return np.stack([np.convolve(np.tile(row, 3), kernel[::-1], "same")[setup.n:2 * setup.n]
                         for row in a])

    qbar = filters.coarse_grain(convolve(q), 8)
    variance = filters.coarse_grain(convolve(q**2), 8) - qbar**2
    np.testing.assert_allclose(b["q"].values, qbar, atol=1e-9)
    np.testing.assert_allclose(b["source_correction"].values, setup.alpha * variance,
                               atol=1e-9)
    assert (variance > -1e-12).all() and (b["source_correction"].values <= 1e-12).all()


def test_explicit_true_tendency_is_the_time_derivative_of_the_filtered_truth():
    fine = tracer.truth_run(tracer.TracerSetup(n=256, max_mode=24), t_end=0.4, spinup=5.0,
                            save_every=0.02)
    b = tracer.sgs_budget(fine, 8, filter_width=125.0)
    dqdt = np.gradient(b["q"].values, b["time"].values, axis=0)[1:-1]
    true = b["true_tendency"].values[1:-1]
    assert np.abs(dqdt - true).max() < 1e-3 * np.abs(true).max()


def test_explicit_target_is_grid_independent_and_physical(short_truth):
    """At a fixed filter width the closure terms converge as the coarse grid is refined and
    the numerical remainder vanishes; with the grid filter it dominates the target."""
    closure, remainder, share = [], [], []
    for factor in (2, 4, 8):
        b = tracer.sgs_budget(short_truth, factor, filter_width=250.0)
        terms = (b["eddy_flux_divergence"] + b["source_correction"]).values
        closure.append(np.sqrt(np.mean(terms**2)))
        remainder.append(np.sqrt(np.mean(b["remainder"].values ** 2)))
        share.append(tracer.closure_share(b))
    assert np.ptp(closure) < 0.01 * closure[0]
    assert metrics.convergence_order(np.array([2.0, 4.0, 8.0]), remainder) > 2.0
    assert share[-1] > 0.7 > tracer.closure_share(tracer.sgs_budget(short_truth, 8)) + 0.6


def test_eddy_flux_is_galilean_invariant_and_the_remainder_is_not(short_truth):
    setup = tracer.setup_of(short_truth)
    q, u = short_truth["q"].values, short_truth["u"].values
    faces = (np.arange(setup.n) + 1.0) * setup.dx
    u_faces = tracer.Wind(setup)(faces, short_truth["time"].values)
    for width in (0.0, 125.0):
        base = tracer.budget_terms(q, u, u_faces, 8, setup.dx, setup.lam, setup.alpha, width)
        moved = tracer.budget_terms(q, u + 15.0, u_faces + 15.0, 8, setup.dx, setup.lam,
                                    setup.alpha, width)
        np.testing.assert_allclose(moved["eddy_flux"], base["eddy_flux"], atol=1e-11)
        change = np.abs(moved["remainder"] - base["remainder"]).max()
        assert change > 0.1 * np.abs(base["remainder"]).max()


def test_closure_share_bad_input_and_limits():
    sgs = np.array([[1.0, -1.0]])
    assert tracer.closure_share({"sgs_tendency": sgs, "remainder": 0 * sgs}) == 1.0
    assert tracer.closure_share({"sgs_tendency": sgs, "remainder": sgs}) == 0.0
    with pytest.raises(ValueError, match="remainder"):
        tracer.closure_share({"sgs_tendency": sgs})
    with pytest.raises(ValueError, match="zero"):
        tracer.closure_share({"sgs_tendency": 0 * sgs, "remainder": 0 * sgs})


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
    for bad in (-1.0, 1.0, np.nan):  # negative, narrower than a fine cell, not a number
        with pytest.raises(ValueError, match="filter_width"):
            tracer.sgs_budget(short_truth, 8, filter_width=bad)
    with pytest.raises(ValueError, match="face_value"):
        tracer.truncation_error(16, face_value="centred")
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
