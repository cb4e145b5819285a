"""Tests of the Michaelis-Menten toy: conservation, the QSSA limit, exact solutions, stability."""

import numpy as np
import pytest

from nnparam.apps import biology as bio

ENZ = bio.Enzyme(k1=1.0, k_minus1=1.0, k2=1.0)
S0 = 20.0


def _times(e0, n=201, slow_times=3.0):
    return np.linspace(0.0, slow_times * (S0 + ENZ.km) / ENZ.vmax(e0), n)


def _qssa_error(e0):
    r = bio.simulate_full(S0, e0, ENZ, _times(e0))
    s_red = bio.michaelis_menten_exact(S0, e0, ENZ, r["t"])
    return np.max(np.abs(s_red - r["s_total"])) / S0


def test_constants():
    assert ENZ.km == pytest.approx(2.0)
    assert ENZ.vmax(0.5) == pytest.approx(0.5)
    assert bio.segel_slemrod_epsilon(2.2, S0, ENZ) == pytest.approx(0.1)


def test_total_enzyme_and_total_substrate_are_conserved():
    for e0 in (0.2, 5.0, 30.0):
        r = bio.simulate_full(S0, e0, ENZ, _times(e0))
        assert np.max(np.abs(r["E"] + r["C"] - e0)) < 1e-9 * e0
        assert np.max(np.abs(r["S"] + r["C"] + r["P"] - S0)) < 1e-9 * S0
        assert np.all(np.diff(r["P"]) >= -1e-12)  # product only accumulates


def test_tendencies_sum_to_zero_on_both_conservation_laws():
    y = np.random.default_rng(0).uniform(0, 5, size=(10, 4))
    d = bio.full_rhs(y, None, ENZ)
    assert np.allclose(d[:, 1] + d[:, 2], 0)
    assert np.allclose(d[:, 0] + d[:, 2] + d[:, 3], 0)


def test_jacobian_matches_finite_differences():
    y = np.array([3.0, 0.7, 0.4, 1.1])
    jac = bio.full_jacobian(y, None, ENZ)
    h = 1e-6
    fd = np.column_stack([(bio.full_rhs(y + h * e, None, ENZ) - bio.full_rhs(y - h * e, None, ENZ))
                          / (2 * h) for e in np.eye(4)])
    assert np.allclose(jac, fd, atol=1e-8)


def test_qssa_limit_when_the_enzyme_is_scarce():
    # full and reduced models agree as E0 -> 0, the error shrinking about in proportion to eps
    errors = np.array([_qssa_error(e0) for e0 in (2.2, 0.22, 0.022)])
    assert np.all(np.diff(errors) < 0)
    assert errors[-1] < 5e-4
    assert errors[0] / errors[-1] > 50


def test_reduced_integrator_matches_lambert_w_solution():
    e0 = 0.5
    t = np.linspace(0, 100, 401)
    exact = bio.michaelis_menten_exact(S0, e0, ENZ, t)
    s = bio.integrate_reduced(lambda v: bio.qssa_rate(v, e0, ENZ), S0, t[1], t.size - 1)
    assert np.max(np.abs(s[:, 0] - exact)) < 1e-6 * S0
    # the Lambert-W solution satisfies the ODE
    ds = np.gradient(exact, t)
    assert np.allclose(ds[1:-1], -bio.qssa_rate(exact, e0, ENZ)[1:-1], rtol=1e-3, atol=1e-5)


def test_integrate_reduced_runs_a_batch_with_own_steps():
    e0 = np.array([0.5, 2.0])
    s = bio.integrate_reduced(lambda v: bio.qssa_rate(v, e0, ENZ), [S0, S0], [0.1, 0.05], 200)
    for i in range(2):
        exact = bio.michaelis_menten_exact(S0, e0[i], ENZ, [0.1, 0.05][i] * np.arange(201))
        assert np.max(np.abs(s[:, i] - exact)) < 1e-6 * S0


def test_stability_limits():
    e0 = 0.22
    r = bio.simulate_full(S0, e0, ENZ, _times(e0))
    states = np.c_[r["S"], r["E"], r["C"], r["P"]]
    dt_full = bio.max_stable_dt_full(states, ENZ)
    # largest fast eigenvalue at t = 0: roots of l^2 + (k1(E+S) + km1 + k2) l + k1 k2 E = 0
    b, c = ENZ.k1 * (e0 + S0) + ENZ.k_minus1 + ENZ.k2, ENZ.k1 * ENZ.k2 * e0
    lam = (b + np.sqrt(b * b - 4 * c)) / 2
    assert dt_full == pytest.approx(2 / lam, rel=1e-9)
    dt_red = bio.max_stable_dt_reduced(lambda s: bio.qssa_rate(s, e0, ENZ), np.linspace(0, S0, 50))
    assert dt_red == pytest.approx(2 * ENZ.km / ENZ.vmax(e0), rel=1e-4)
    stable = bio.euler_full(S0, e0, ENZ, 0.95 * dt_full, 2000)
    unstable = bio.euler_full(S0, e0, ENZ, 1.1 * dt_full, 2000)
    # below the limit the start-up wiggle of the complex dies out; above it, it grows until the
    # nonlinearity caps it far outside the physical range [0, E0]
    assert np.all((stable[100:, 2] >= 0) & (stable[100:, 2] <= e0))
    assert unstable[:, 2].min() < 0 and unstable[:, 2].max() > 10 * e0
    exploded = bio.euler_full(S0, e0, ENZ, 20 * dt_full, 200)
    assert np.isnan(exploded[-1, 0])  # left the bound and stopped


def test_euler_on_reduced_model_diverges_beyond_its_limit():
    # near s = 0 the QSSA rate is linear, Vmax s / Km, and the Euler map is s (1 - dt Vmax/Km)
    e0, small = 1.0, 1e-6
    limit = bio.max_stable_dt_reduced(lambda s: bio.qssa_rate(s, e0, ENZ), [0.0, 1.0])

    def linear(s):
        return ENZ.vmax(e0) * s / ENZ.km

    grow = bio.integrate_reduced(linear, small, 1.1 * limit, 50, method="euler")
    decay = bio.integrate_reduced(linear, small, 0.9 * limit, 50, method="euler")
    assert abs(grow[-1, 0]) > 10 * small
    assert abs(decay[-1, 0]) < 0.1 * small


@pytest.mark.parametrize("call, name", [
    (lambda: bio.Enzyme(-1.0, 1.0, 1.0), "k1"),
    (lambda: bio.Enzyme(1.0, -1.0, 1.0), "k_minus1"),
    (lambda: bio.Enzyme(1.0, 1.0, 0.0), "k2"),
    (lambda: bio.simulate_full(-1.0, 1.0, ENZ, [0, 1]), "s0"),
    (lambda: bio.simulate_full(1.0, 0.0, ENZ, [0, 1]), "e0"),
    (lambda: bio.simulate_full(1.0, 1.0, ENZ, [1, 2]), "times"),
    (lambda: bio.simulate_full(1.0, 1.0, "enzyme", [0, 1]), "enzyme"),
    (lambda: bio.full_rhs(np.zeros(3), None, ENZ), "state"),
    (lambda: bio.qssa_rate(-1.0, 1.0, ENZ), "s"),
    (lambda: bio.qssa_rate(1.0, 0.0, ENZ), "e0"),
    (lambda: bio.integrate_reduced(lambda s: s, 1.0, -0.1, 10), "dt"),
    (lambda: bio.integrate_reduced(lambda s: s, 1.0, 0.1, 0), "n_steps"),
    (lambda: bio.integrate_reduced(lambda s: s, 1.0, 0.1, 5, method="rk2"), "method"),
    (lambda: bio.integrate_reduced(2.0, 1.0, 0.1, 5), "rate"),
    (lambda: bio.euler_full(1.0, 1.0, ENZ, 0.0, 5), "dt"),
    (lambda: bio.max_stable_dt_full(np.zeros((3, 2)), ENZ), "states"),
    (lambda: bio.max_stable_dt_reduced(lambda s: s, [-1.0]), "s_values"),
    (lambda: bio.michaelis_menten_exact(1.0, 1.0, ENZ, [[0.0]]), "times"),
    (lambda: bio.segel_slemrod_epsilon(1.0, np.nan, ENZ), "s0"),
])
def test_bad_input_raises_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
