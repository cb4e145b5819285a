"""Tests of nnparam.apps.ocean against analytic references and exact budgets."""

import numpy as np
import pytest
import torch

from nnparam.apps import ocean as oc
from nnparam.grid import Grid1D

SMALL = oc.EddySetup(nx=64, ny=16, n_coarse=8, eddy_wavenumber=8.0, eddy_bandwidth=3.0)


def test_cell_means_are_exact_integrals():
    s = SMALL
    k = 3
    q = np.broadcast_to(np.sin(k * s.x), (s.ny, s.nx))
    grid = s.grid
    a, b = grid.faces - grid.widths, grid.faces
    exact = (np.cos(k * a) - np.cos(k * b)) / (k * grid.widths)
    np.testing.assert_allclose(oc.coarse_budget(q, s)["Q"], exact, atol=1e-12)


def test_coarse_budget_closes_to_round_off():
    s = SMALL
    rng = np.random.default_rng(1)
    x, y = np.meshgrid(s.x, np.arange(s.ny) * s.length_y / s.ny)
    q = np.sin(2 * x) + 0.3 * np.cos(3 * x + 2 * y) + 0.1 * np.cos(x - 4 * y + rng.uniform())
    budget = oc.coarse_budget(q, s, seed=3)
    div = s.grid.divergence(budget["face_flux"])
    assert np.abs(budget["tendency"]).max() > 1e-2  # the eddies do move tracer
    np.testing.assert_allclose(div, budget["tendency"], atol=1e-11)


def test_no_eddies_reduces_to_analytic_diffusion():
    s = oc.EddySetup(nx=64, ny=8, n_coarse=8, eddy_wavenumber=8.0, base_speed=0.0,
                     gradient_speed=0.0, diffusivity=0.05)
    k, t_end = 2, 1.0
    out = oc.simulate_truth(np.cos(k * s.x), t_end=t_end, dt=0.01, save_every=100, setup=s)
    grid = s.grid
    a, b = grid.faces - grid.widths, grid.faces
    cell_mean = (np.sin(k * b) - np.sin(k * a)) / (k * grid.widths)
    np.testing.assert_allclose(out["t"], [0.0, t_end])
    np.testing.assert_allclose(out["Q"][-1], cell_mean * np.exp(-s.diffusivity * k**2 * t_end),
                               atol=1e-9)


def test_truth_conserves_tracer_and_mixes_it():
    s = SMALL
    q0 = np.sin(s.x) + 0.2
    out = oc.simulate_truth(q0, t_end=0.4, dt=0.005, save_every=10, setup=s, seed=0)
    totals = s.grid.total(out["Q"])
    np.testing.assert_allclose(totals, totals[0], atol=1e-11)
    var = oc.large_scale_variance(out["Q"], s.grid)
    assert var[-1] < var[0]
    assert out["Q"].shape == out["sgs_flux"].shape == (out["t"].size, s.n_coarse)


def test_run_coarse_matches_discrete_diffusion_eigenvalue():
    grid = Grid1D.uniform(16, 2 * np.pi)
    kappa, k, dt, n = 0.2, 2, 0.01, 100
    q0 = np.cos(k * grid.centers)
    out = oc.run_coarse(q0, grid, lambda Q: oc.flux_gradient(kappa, Q, grid), dt, n)
    h = grid.widths[0]
    rate = kappa * 4 / h**2 * np.sin(k * h / 2) ** 2
    np.testing.assert_allclose(out[-1], q0 * np.exp(-rate * dt * n), atol=1e-8)


def test_any_flux_closure_conserves_total():
    grid = Grid1D.stretched(12, 3.0, amplitude=0.4)
    rng = np.random.default_rng(0)
    out = oc.run_coarse(rng.normal(size=12), grid, lambda Q: np.sin(Q) + Q**2, 0.01, 50, 0.1)
    totals = grid.total(out)
    np.testing.assert_allclose(totals, totals[0], atol=1e-12)


def test_fit_constant_kappa_recovers_diffusivity_and_clips():
    rng = np.random.default_rng(0)
    grad = rng.normal(size=500)
    assert oc.fit_constant_kappa(grad, -0.3 * grad) == pytest.approx(0.3)
    assert oc.fit_constant_kappa(grad, 0.3 * grad) == 0.0


def test_stencil_and_flux_gradient():
    grid = Grid1D.uniform(8, 8.0)
    Q = np.arange(8.0) ** 2
    feats = oc.stencil_features(Q, grid, width=1)
    g = grid.face_gradient(Q)
    np.testing.assert_allclose(feats[:, 1], g)
    np.testing.assert_allclose(feats[:, 0], np.roll(g, 1))
    np.testing.assert_allclose(feats[:, 2], np.roll(g, -1))
    np.testing.assert_allclose(oc.flux_gradient(0.5, Q, grid), -0.5 * g)


def test_kappa_net_is_nonnegative_and_down_gradient():
    net = oc.KappaNet(3, (8,), g_scale=2.0, kappa_scale=0.1, seed=1)
    x = torch.randn(200, 3, dtype=torch.float32) * 3
    with torch.no_grad():
        kappa = net.kappa(x)
        flux = net(x)
    assert torch.all(kappa >= 0)
    assert torch.all(flux * x[:, 1:2] <= 0)
    fnet = oc.FluxNet(3, (8,), seed=0)
    closure = oc.network_closure(fnet, Grid1D.uniform(8, 1.0))
    assert closure(np.zeros(8)).shape == (8,)


def test_large_scale_variance():
    grid = Grid1D.uniform(4, 1.0)
    assert oc.large_scale_variance([1.0, -1.0, 1.0, -1.0], grid) == pytest.approx(1.0)


@pytest.mark.parametrize("kwargs, name", [
    ({"n_coarse": 5}, "n_coarse"), ({"nx": 3}, "nx"), ({"diffusivity": -1.0}, "diffusivity"),
    ({"base_speed": -0.1}, "base_speed"), ({"eddy_wavenumber": 200.0}, "eddy_wavenumber"),
])
def test_setup_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        oc.EddySetup(**kwargs)


def test_bad_inputs_name_the_argument():
    s = SMALL
    grid = s.grid
    with pytest.raises(ValueError, match="q0"):
        oc.simulate_truth(np.zeros(5), 1.0, 0.01, setup=s)
    with pytest.raises(ValueError, match="dt"):
        oc.simulate_truth(np.zeros(s.nx), 1.0, -0.01, setup=s)
    with pytest.raises(ValueError, match="save_every"):
        oc.simulate_truth(np.zeros(s.nx), 1.0, 0.01, save_every=0, setup=s)
    with pytest.raises(ValueError, match="q"):
        oc.coarse_budget(np.zeros((3, 3)), s)
    with pytest.raises(ValueError, match="Q0"):
        oc.run_coarse(np.zeros(3), grid, None, 0.1, 10)
    with pytest.raises(ValueError, match="n_steps"):
        oc.run_coarse(np.zeros(grid.n), grid, None, 0.1, 0)
    with pytest.raises(ValueError, match="diffusivity"):
        oc.run_coarse(np.zeros(grid.n), grid, None, 0.1, 5, diffusivity=-1)
    with pytest.raises(ValueError, match="kappa"):
        oc.flux_gradient(-0.1, np.zeros(grid.n), grid)
    with pytest.raises(ValueError, match="grad"):
        oc.fit_constant_kappa(np.zeros(4), np.ones(4))
    with pytest.raises(ValueError, match="flux"):
        oc.fit_constant_kappa(np.ones(4), np.ones(3))
    with pytest.raises(ValueError, match="width"):
        oc.stencil_features(np.zeros(grid.n), grid, width=-1)
    with pytest.raises(ValueError, match="g_scale"):
        oc.KappaNet(1, g_scale=0.0)


def test_run_coarse_batch_equals_members_run_one_by_one():
    grid = Grid1D.uniform(16, 2 * np.pi)
    rng = np.random.default_rng(3)
    Q0 = rng.normal(size=(4, 16))
    net = oc.KappaNet(1, (8,), seed=0)
    closures = [lambda Q: oc.flux_gradient(0.2, Q, grid), oc.network_closure(net, grid, 0),
                oc.network_closure(oc.FluxNet(3, (8,), seed=1), grid, 1)]
    for closure in closures:
        batch = oc.run_coarse(Q0, grid, closure, 0.02, 30, 0.01)
        assert batch.shape == (31, 4, 16)
        for m in range(4):
            single = oc.run_coarse(Q0[m], grid, closure, 0.02, 30, 0.01)
            np.testing.assert_allclose(batch[:, m], single, rtol=1e-6, atol=1e-7)


def test_run_coarse_stops_only_the_member_that_blows_up():
    grid = Grid1D.uniform(8, 2 * np.pi)
    Q0 = np.stack([np.zeros(8), np.sin(grid.centers)])

    def anti_diffusion(Q):  # an up-gradient flux: every nonzero mode grows until overflow
        return 0.5 * grid.face_gradient(Q)

    with np.errstate(over="ignore", invalid="ignore"):
        out = oc.run_coarse(Q0, grid, anti_diffusion, 0.5, 200)
    assert np.all(out[:, 0] == 0), "the quiet member runs to the end"
    finite = np.isfinite(out[:, 1]).all(axis=1)
    assert 1 < finite.sum() < 200 and not finite[finite.sum():].any(), "stopped, then NaN"


def test_run_coarse_rejects_bad_closure_output_and_shapes():
    grid = Grid1D.uniform(8, 2 * np.pi)
    with pytest.raises(ValueError, match="Q0"):
        oc.run_coarse(np.zeros((2, 3, 8)), grid, None, 0.1, 2)
    with pytest.raises(ValueError, match="closure must return"):
        oc.run_coarse(np.zeros((2, 8)), grid, lambda Q: Q[0], 0.1, 2)


def test_truth_runs_cache_members_and_match_simulate(tmp_path, monkeypatch):
    monkeypatch.setenv("NNPARAM_CACHE", str(tmp_path))
    s = SMALL
    kwargs = {"modes": [1, 2], "amplitudes": [1.0, 0.3], "phases": [0.0, 0.5],
              "t_end": 0.1, "dt": 0.01, "save_every": 5, "setup": s}
    runs = oc.truth_runs(seeds=[4, 5], **kwargs)
    assert runs.Q.shape == (3, 2, s.n_coarse) and runs.q_final.shape == (2, s.ny, s.nx)
    q0 = np.sin(s.x) + 0.3 * np.sin(2 * s.x + 0.5)
    np.testing.assert_allclose(oc.sine_profile(s, [1, 2], [1.0, 0.3], [0.0, 0.5]), q0)
    direct = oc.simulate_truth(q0, 0.1, 0.01, 5, s, seed=5)
    np.testing.assert_allclose(runs.Q.values[:, 1], direct["Q"], atol=1e-13)
    again = oc.truth_runs(seeds=[4, 5], **kwargs)
    np.testing.assert_array_equal(again.sgs_flux.values, runs.sgs_flux.values)
    assert len(list(tmp_path.glob("ocean-truth-*.nc"))) == 1
    with pytest.raises(ValueError, match="seeds"):
        oc.truth_runs(seeds=[], **kwargs)
    with pytest.raises(ValueError, match="one value per mode"):
        oc.sine_profile(s, [1, 2], [1.0], [0.0, 0.5])
