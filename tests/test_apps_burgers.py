"""Tests of the Burgers LES toy against conservation laws and analytic references."""

import numpy as np
import pytest

from nnparam.apps import burgers as bg
from nnparam.filters import coarse_grain

L = 2 * np.pi


def _wave(n, amplitude=1.0):
    x = (np.arange(n) + 0.5) * L / n
    return amplitude * np.sin(x) + 0.3 * np.cos(3 * x) + 0.2


def test_momentum_conserved_without_forcing_and_viscosity():
    u0 = _wave(64)
    t, u = bg.simulate(u0, L, nu=0.0, dt=0.01, n_steps=200)
    mean = u.mean(axis=1)
    assert np.max(np.abs(mean - u0.mean())) < 1e-12


def test_energy_conserved_by_advection_alone_before_shocks():
    # the energy-conserving flux conserves sum u^2 in the semi-discrete limit; RK3 adds O(dt^4)
    u0 = _wave(128, amplitude=0.5)
    _, u = bg.simulate(u0, L, nu=0.0, dt=1e-3, n_steps=300)
    energy = 0.5 * np.mean(u ** 2, axis=1)
    assert np.max(np.abs(energy / energy[0] - 1)) < 1e-8


def test_energy_decays_monotonically_with_viscosity():
    _, u = bg.simulate(_wave(128), L, nu=0.05, dt=0.005, n_steps=400)
    energy = 0.5 * np.mean(u ** 2, axis=1)
    assert np.all(np.diff(energy) < 0)
    assert energy[-1] < 0.9 * energy[0]


def test_small_amplitude_wave_decays_at_the_discrete_diffusion_rate():
    n, nu, amp, dt, steps = 64, 0.1, 1e-6, 0.01, 100
    x = (np.arange(n) + 0.5) * L / n
    _, u = bg.simulate(amp * np.sin(2 * x), L, nu=nu, dt=dt, n_steps=steps)
    dx = L / n
    rate = nu * (2 - 2 * np.cos(2 * dx)) / dx ** 2  # eigenvalue of the discrete Laplacian
    expected = amp * np.exp(-rate * dt * steps)
    measured = 2 * np.abs(np.fft.rfft(u[-1]))[2] / n
    assert measured == pytest.approx(expected, rel=1e-5)


def test_tendency_matches_simulate_first_euler_like_stage():
    u = _wave(32)
    stress = np.linspace(0, 1, 32)
    du = bg.tendency(u, L, 0.02, forcing=np.ones(32), stress=stress)
    # momentum budget: flux form -> the stress and advection do not change the domain mean
    assert du.mean() == pytest.approx(1.0, abs=1e-12)


def test_forcing_cell_average_is_exact():
    forcing = bg.RandomForcing.draw(5.0, seed=3)
    n_fine = 4096
    fine = forcing.cell_average(n_fine, 2.3)
    coarse = forcing.cell_average(16, 2.3)
    assert np.allclose(fine.reshape(16, -1).mean(axis=1), coarse, atol=1e-12)


def test_sgs_stress_of_a_linear_ramp_is_the_discrete_uniform_variance():
    factor, n_fine, a = 8, 64, 0.7
    dx = L / n_fine
    u = a * dx * np.arange(n_fine)  # a ramp (the periodic jump is far from face 0)
    tau = bg.sgs_stress(u, factor)
    expected = a ** 2 * dx ** 2 * (factor ** 2 - 1) / 12
    assert tau[0] == pytest.approx(expected, rel=1e-10)
    assert np.all(tau >= 0)


def test_sgs_stress_vanishes_for_a_constant_and_is_galilean_invariant():
    u = np.random.default_rng(0).standard_normal(64)
    assert np.allclose(bg.sgs_stress(np.full(64, 3.0), 8), 0)
    assert np.allclose(bg.sgs_stress(u + 5.0, 8), bg.sgs_stress(u, 8))


def test_model_consistent_stress_reproduces_the_filtered_tendency():
    rng = np.random.default_rng(1)
    u = np.cumsum(rng.standard_normal(256)) * 0.05
    u -= np.linspace(0, 1, 256) * (u[-1] - u[0])  # periodic-friendly
    factor, nu = 8, 0.03
    stress = bg.model_consistent_stress(u, factor, L, nu)
    coarse = bg.tendency(coarse_grain(u, factor), L, nu, stress=stress)
    fine = coarse_grain(bg.tendency(u, L, nu), factor)
    assert np.allclose(coarse, fine, atol=1e-10)


def test_smagorinsky_formula_and_dissipation():
    u = _wave(32)
    c_s = 0.2
    delta = L / 32
    s = (np.roll(u, -1) - u) / delta
    tau = bg.smagorinsky_stress(u, L, c_s)
    assert np.allclose(tau, -2 * (c_s * delta) ** 2 * np.abs(s) * s)
    eps = bg.sgs_dissipation(u, tau, L)
    assert eps == pytest.approx((c_s * delta) ** 2 * np.mean(np.abs(s) ** 3))
    # the fit recovers the constant from its own stress
    assert bg.fit_smagorinsky(u[None], tau[None], L) == pytest.approx(c_s)


def test_energy_spectrum_obeys_parseval_and_peaks_at_the_wave():
    n = 64
    x = (np.arange(n) + 0.5) * L / n
    u = np.sin(3 * x) + 0.5 * np.cos(7 * x)
    k, e = bg.energy_spectrum(u, L)
    assert np.sum(e) * (k[1] - k[0]) == pytest.approx(0.5 * np.mean(u ** 2))
    assert k[np.argmax(e)] == pytest.approx(3)


def test_stencil_features_are_gradients():
    u = np.arange(8.0) ** 2
    feats = bg.stencil_features(u, 8.0)
    g = np.roll(u, -1) - u
    assert np.allclose(feats[:, 1], g)
    assert np.allclose(feats[:, 0], np.roll(g, 1))


def test_closure_enters_the_run_and_forcing_power():
    forcing = bg.RandomForcing.draw(2.0, seed=0)
    u0 = np.zeros(32)
    t, u = bg.simulate(u0, L, 0.05, 0.02, 50, forcing=forcing,
                       closure=lambda v: bg.smagorinsky_stress(v, L, 0.2))
    assert t[-1] == pytest.approx(1.0)
    power = bg.forcing_power(t, u, forcing)
    assert power.shape == t.shape and power[0] == 0.0


def test_blow_up_is_reported():
    with pytest.raises(FloatingPointError), np.errstate(over="ignore", invalid="ignore"):
        bg.simulate(_wave(32), L, 0.0, 1.0, 50, closure=lambda v: -100 * v ** 3)


@pytest.mark.parametrize("kwargs, name", [
    ({"u0": np.ones(3)}, "u0"),
    ({"u0": [0, np.nan, 0, 0]}, "u0"),
    ({"dt": -1.0}, "dt"),
    ({"nu": -0.1}, "nu"),
    ({"n_steps": 0}, "n_steps"),
    ({"length": 0.0}, "length"),
    ({"closure": 3.0}, "closure"),
    ({"forcing": "sin"}, "forcing"),
    ({"save_every": 0}, "save_every"),
])
def test_simulate_rejects_bad_input(kwargs, name):
    args = {"u0": np.zeros(8), "length": L, "nu": 0.01, "dt": 0.01, "n_steps": 2}
    args.update(kwargs)
    u0 = args.pop("u0")
    with pytest.raises(ValueError, match=name):
        bg.simulate(u0, **args)


def test_simulate_rejects_run_beyond_the_forcing():
    forcing = bg.RandomForcing.draw(1.0, seed=0)
    with pytest.raises(ValueError, match="forcing"):
        bg.simulate(np.zeros(8), L, 0.01, 0.1, 100, forcing=forcing)


def test_other_functions_reject_bad_input():
    with pytest.raises(ValueError, match="factor"):
        bg.sgs_stress(np.zeros(16), 3)
    with pytest.raises(ValueError, match="u_fine"):
        bg.sgs_stress(np.zeros((2, 2, 16)), 4)
    with pytest.raises(ValueError, match="c_s"):
        bg.smagorinsky_stress(np.zeros(8), L, -0.1)
    with pytest.raises(ValueError, match="stress"):
        bg.sgs_dissipation(np.zeros(8), np.zeros(7), L)
    with pytest.raises(ValueError, match="nu"):
        bg.model_consistent_stress(np.zeros(16), 4, L, -1.0)
    with pytest.raises(ValueError, match="times"):
        bg.forcing_power(np.zeros(3), np.zeros((2, 8)), bg.RandomForcing.draw(1.0))
    with pytest.raises(ValueError, match="wavenumbers"):
        bg.RandomForcing.draw(1.0, wavenumbers=(0, 1))
    with pytest.raises(ValueError, match="t_end"):
        bg.RandomForcing.draw(-1.0)
    with pytest.raises(ValueError, match="stress"):
        bg.tendency(np.zeros(8), L, 0.1, stress=np.zeros(4))
    with pytest.raises(ValueError, match="u"):
        bg.energy_spectrum(np.zeros(2), L)
    with pytest.raises(ValueError, match="backscatter"):
        bg.fit_smagorinsky(_wave(16)[None], -bg.smagorinsky_stress(_wave(16), L, 0.2)[None], L)


# ------------------------------------------------------------------ ensembles and closures
def test_ensemble_run_equals_the_members_run_one_by_one():
    forcings = [bg.RandomForcing.draw(3.0, seed=s) for s in (1, 2, 3)]
    u0 = 0.3 * np.random.default_rng(0).standard_normal((3, 64))

    def smag(v):
        return bg.smagorinsky_stress(v, L, 0.2)

    t, u = bg.simulate_ensemble(u0, L, 0.03, 0.01, 200, forcing=forcings, closure=smag,
                                save_every=10, t0=0.5)
    assert u.shape == (21, 3, 64)
    for m in range(3):
        t1, u1 = bg.simulate(u0[m], L, 0.03, 0.01, 200, forcing=forcings[m], closure=smag,
                             save_every=10, t0=0.5)
        np.testing.assert_allclose(t, t1)
        np.testing.assert_allclose(u[:, m], u1, rtol=0, atol=1e-13)


def test_ensemble_with_one_shared_forcing_and_a_closure_object():
    torch = pytest.importorskip("torch")
    from nnparam import nn as nnp

    rng = np.random.default_rng(2)
    states = rng.standard_normal((50, 32))
    feats = bg.gradient_features(states, L).reshape(-1, 3)
    sx, sy = nnp.Standardizer(feats), nnp.Standardizer(rng.standard_normal((feats.shape[0], 1)))
    net = nnp.mlp(3, 1, hidden=(8,), seed=0)
    closure = bg.network_closure(net, L, sx, sy)
    # the Closure on a batch equals the network applied to every state's stencils
    with torch.no_grad():
        direct = sy.inverse(net(torch.as_tensor(sx.transform(feats), dtype=torch.float32))
                            .numpy()).reshape(50, 32)
    np.testing.assert_allclose(closure(states), direct, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(closure(states[3]), direct[3], rtol=1e-5, atol=1e-6)
    forcing = bg.RandomForcing.draw(1.0, seed=4)
    u0 = 0.2 * rng.standard_normal((2, 32))
    _, u = bg.simulate_ensemble(u0, L, 0.05, 0.01, 20, forcing=forcing, closure=closure)
    for m in range(2):
        _, u1 = bg.simulate(u0[m], L, 0.05, 0.01, 20, forcing=forcing, closure=closure)
        np.testing.assert_allclose(u[:, m], u1, rtol=1e-6, atol=1e-8)


def test_gradient_features_numpy_and_torch_agree_with_stencil_features():
    torch = pytest.importorskip("torch")
    u = np.random.default_rng(3).standard_normal((4, 16))
    feats = bg.gradient_features(u, L)
    assert feats.shape == (4, 16, 3)
    np.testing.assert_allclose(feats.reshape(-1, 3), bg.stencil_features(u, L))
    tfeats = bg.gradient_features(torch.as_tensor(u), L, xp=torch)
    np.testing.assert_allclose(tfeats.numpy(), feats)


def test_members_under_one_forcing_synchronise():
    forcing = bg.RandomForcing.draw(31.0, seed=5)
    u0 = np.stack([np.zeros(32), np.sin(2 * np.pi * np.arange(32) / 32)])
    _, u = bg.simulate_ensemble(u0, L, 0.03, 0.04, 750, forcing=forcing,
                                closure=lambda v: bg.smagorinsky_stress(v, L, 0.28))
    gap = np.sqrt(np.mean((u[:, 0] - u[:, 1]) ** 2, axis=-1))
    assert gap[-1] < 1e-6 * gap[0]


def test_ensemble_rejects_bad_input():
    u0 = np.zeros((2, 8))
    with pytest.raises(ValueError, match="u0"):
        bg.simulate_ensemble(np.zeros(8), L, 0.01, 0.01, 2)
    with pytest.raises(ValueError, match="forcing"):
        bg.simulate_ensemble(u0, L, 0.01, 0.01, 2, forcing=[bg.RandomForcing.draw(1.0)])
    with pytest.raises(ValueError, match="share"):
        bg.simulate_ensemble(u0, L, 0.01, 0.01, 2, forcing=[
            bg.RandomForcing.draw(1.0), bg.RandomForcing.draw(1.0, refresh=0.5)])
    with pytest.raises(ValueError, match="closure must return"):
        bg.simulate_ensemble(u0, L, 0.01, 0.01, 2, closure=lambda v: v[0])
    with pytest.raises(ValueError, match="time range"):
        bg.simulate_ensemble(u0, L, 0.01, 0.1, 100, forcing=bg.RandomForcing.draw(1.0))
    with pytest.raises(FloatingPointError, match="members"), \
            np.errstate(over="ignore", invalid="ignore"):
        bg.simulate_ensemble(np.stack([_wave(32), _wave(32)]), L, 0.0, 1.0, 50,
                             closure=lambda v: -100 * v ** 3)


def test_budget_residual_is_not_galilean_invariant_by_the_advective_error():
    # adding U changes the residual by 2U [(u_f^- + u_f^+)/2 - (ubar_I + ubar_I+1)/2]
    rng = np.random.default_rng(6)
    u = rng.standard_normal(64)
    factor, U = 8, 0.7
    change = (bg.model_consistent_stress(u + U, factor, L, 0.02)
              - bg.model_consistent_stress(u, factor, L, 0.02))
    fine_face = 0.5 * (u[factor - 1::factor] + np.roll(u, -1)[factor - 1::factor])
    ub = coarse_grain(u, factor)
    coarse_face = 0.5 * (ub + np.roll(ub, -1))
    np.testing.assert_allclose(change, 2 * U * (fine_face - coarse_face), atol=1e-12)


def test_clark_model_is_the_leading_term_for_smooth_fields():
    n_fine, factor = 4096, 64
    x = (np.arange(n_fine) + 0.5) * L / n_fine
    u = np.sin(x) + 0.3 * np.cos(2 * x + 1)
    tau = bg.sgs_stress(u, factor)
    clark = bg.clark_stress(coarse_grain(u, factor), L)
    # the Taylor expansion holds up to O(Delta^4); here Delta = 2 pi / 64
    np.testing.assert_allclose(clark, tau, rtol=0.05, atol=1e-6)
    assert np.all(clark >= 0)


def test_spectral_slope_of_a_power_law_and_spectra_per_state():
    k = np.arange(1.0, 40.0)
    assert bg.spectral_slope(k, 3.0 * k ** -2.0, (3, 12)) == pytest.approx(-2.0)
    with pytest.raises(ValueError, match="k_range"):
        bg.spectral_slope(k, k ** -2.0, (100, 200))
    with pytest.raises(ValueError, match="spectrum"):
        bg.spectral_slope(k, -k, (3, 12))
    u = np.random.default_rng(7).standard_normal((5, 3, 32))
    _, mean = bg.energy_spectrum(u, L)
    _, each = bg.energy_spectrum(u, L, average=False)
    assert each.shape == (5, 3, 16)
    np.testing.assert_allclose(each.reshape(-1, 16).mean(axis=0), mean)


def test_truth_runs_are_cached_and_equal_a_direct_run(tmp_path, monkeypatch):
    monkeypatch.setenv("NNPARAM_CACHE", str(tmp_path))
    kwargs = {"n_cells": 32, "nu": 0.05, "dt": 0.02, "t_end": 1.0, "save": 0.1}
    first = bg.truth_runs([3, 4], **kwargs)
    assert len(list(tmp_path.glob("burgers-truth-*.nc"))) == 1
    again = bg.truth_runs([3, 4], **kwargs)
    np.testing.assert_array_equal(first.u.values, again.u.values)
    _, direct = bg.simulate(np.zeros(32), L, 0.05, 0.02, 50,
                            forcing=bg.RandomForcing.draw(2.0, seed=4), save_every=5)
    np.testing.assert_allclose(first.u.values[:, 1], direct, atol=1e-13)
    with pytest.raises(ValueError, match="multiple"):
        bg.truth_runs([1], **{**kwargs, "save": 0.05 + 1e-3})
    with pytest.raises(ValueError, match="seeds"):
        bg.truth_runs([], **kwargs)
