"""Conservation engine: budgets, output heads and time coupling against analytic references."""

import numpy as np
import pytest
import torch

from nnparam import conservation as cons
from nnparam import metrics, tracer
from nnparam.grid import Grid1D, flux_divergence

WIDTHS = np.array([1.0, 3.0, 0.5, 2.0, 1.5])


@pytest.fixture(scope="module")
def truth():
    setup = tracer.TracerSetup(n=128, max_mode=16, min_gust_mode=8, lam=0.0, alpha=0.0)
    return tracer.truth_run(setup, t_end=4.0, spinup=1.0)


def test_domain_budget_analytic():
    t = np.array([1.0, -1.0, 2.0, 0.0, 4.0])
    assert cons.domain_budget(t, WIDTHS) == pytest.approx(1.0 - 3.0 + 1.0 + 6.0)
    assert cons.relative_domain_budget(np.ones(5), WIDTHS) == pytest.approx(1.0)
    assert cons.relative_domain_budget(np.zeros(5), WIDTHS) == 0.0
    batch = np.stack([t, -t])
    np.testing.assert_allclose(cons.domain_budget(batch, WIDTHS), [5.0, -5.0])
    assert cons.domain_budget(t, 2.0) == pytest.approx(2 * t.sum())


def test_flux_and_kappa_forms_conserve_any_input():
    rng = np.random.default_rng(0)
    flux = rng.normal(size=(50, WIDTHS.size)) * 10 ** rng.uniform(-3, 3, size=(50, 1))
    rel = cons.relative_domain_budget(flux_divergence(flux, WIDTHS), WIDTHS)
    assert np.abs(rel).max() < 1e-12
    q = rng.normal(size=(50, WIDTHS.size))
    kappa = rng.uniform(0, 5, size=q.shape)
    dist = Grid1D(WIDTHS).distances
    tend = flux_divergence(cons.kappa_flux(kappa, q, 1.0, dist), WIDTHS)
    assert np.abs(cons.relative_domain_budget(tend, WIDTHS)).max() < 1e-12
    # summation by parts: 2 sum V q T = -2 sum kappa (dq)^2 / d <= 0
    want = -2 * np.sum(kappa * (np.roll(q, -1, axis=-1) - q) ** 2 / dist, axis=-1)
    np.testing.assert_allclose(cons.variance_tendency(tend, q, WIDTHS), want, rtol=1e-12)


def test_kappa_flux_by_hand():
    q = np.array([0.0, 1.0, 3.0])
    flux = cons.kappa_flux(np.array([2.0, 1.0, 0.5]), q, 1.0, np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(flux, [-2.0, -1.0, 0.5])  # last face wraps to q[0]


def test_diffusive_step_limit_against_the_uniform_grid_formula():
    # uniform kappa on a uniform grid: rho(D) = 4 kappa / dx^2, so Euler needs dx^2 / (2 kappa)
    n, dx, kappa = 16, 2.0, 3.0
    limit = cons.diffusive_step_limit(np.full(n, kappa), dx, dx, interval=cons.EULER_REAL_INTERVAL)
    assert limit == pytest.approx(dx**2 / (2 * kappa), rel=1e-12)
    z = -cons.SSPRK3_REAL_INTERVAL
    assert 1 + z + z**2 / 2 + z**3 / 6 == pytest.approx(-1.0, abs=1e-12)
    # on a non-uniform grid: stepping just below the limit never raises sum V q^2, just
    # above it the grid-scale mode grows
    rng = np.random.default_rng(0)
    kap = rng.uniform(0.5, 2.0, WIDTHS.size)
    dist = Grid1D(WIDTHS).distances
    dt_max = cons.diffusive_step_limit(kap, WIDTHS, dist, interval=cons.EULER_REAL_INTERVAL)

    def variance_after(dt, steps=400):
        q = rng.standard_normal(WIDTHS.size)
        for _ in range(steps):
            q = q + dt * flux_divergence(cons.kappa_flux(kap, q, 1.0, dist), WIDTHS)
        return np.sum(WIDTHS * q**2)

    assert variance_after(0.99 * dt_max) < 10.0
    assert variance_after(1.05 * dt_max) > 1e3
    assert cons.diffusive_step_limit(np.zeros(5), WIDTHS, dist) == np.inf
    with pytest.raises(ValueError, match="kappa"):
        cons.diffusive_step_limit(-np.ones(5), WIDTHS, dist)


def test_mass_weighted_fix():
    t = np.array([1.0, 0.0, 0.0, 0.0, 0.0])
    fixed = cons.mass_weighted_fix(t, WIDTHS)
    assert abs(cons.domain_budget(fixed, WIDTHS)) < 1e-15
    np.testing.assert_allclose(t - fixed, WIDTHS[0] / WIDTHS.sum())  # same shift everywhere
    plain = t - t.mean()
    assert abs(cons.domain_budget(plain, WIDTHS)) > 0.1  # the unweighted fix fails


def test_upwind_face_value_reduces_to_truth_scheme():
    q = np.random.default_rng(1).normal(size=(3, 12))
    np.testing.assert_allclose(cons.upwind_face_value(q, np.full(12, 2.5)),
                               tracer.face_values(q), atol=1e-14)
    assert np.allclose(sum(cons.upwind_coefficients(WIDTHS)), 1.0)
    # exact for linear profiles away from the periodic seam on a non-uniform grid
    grid = Grid1D(WIDTHS)
    face = cons.upwind_face_value(2.0 * grid.centers + 1.0, WIDTHS)
    np.testing.assert_allclose(face[1:-1], 2.0 * grid.faces[1:-1] + 1.0)


def test_blocks_and_budget(truth):
    blocks = cons.alternating_blocks(128, 2, 6)
    assert blocks.sum() == 128 and blocks.size == 32
    q = truth["q"].values
    setup = tracer.setup_of(truth)
    qbar = cons.coarse_grain_blocks(q, blocks)
    grid = cons.block_grid(blocks, setup.dx)
    np.testing.assert_allclose(grid.total(qbar), q.sum(-1) * setup.dx, rtol=1e-13)
    b = cons.coarse_budget(truth, blocks)
    # independent reference: block means of the fine tendency
    u_faces = tracer.Wind(setup)(truth["x"].values + 0.5 * setup.dx, truth["time"].values)
    fine = tracer.tendency(q, u_faces, setup.dx, 0.0, 0.0)
    np.testing.assert_allclose(b["true_tendency"].values,
                               cons.coarse_grain_blocks(fine, blocks), atol=1e-12)
    np.testing.assert_allclose(flux_divergence(b["sgs_flux"].values, b["widths"].values),
                               b["sgs_tendency"].values, atol=1e-12)
    assert np.abs(cons.relative_domain_budget(b["sgs_tendency"].values, grid.widths)).max() < 1e-12


def test_coarse_model_conserves_and_orders(truth):
    setup = tracer.setup_of(truth)
    blocks = cons.alternating_blocks(128, 2, 6)
    model = cons.CoarseModel(setup, blocks)
    q0 = cons.coarse_grain_blocks(truth["q"].values[0], blocks)
    dist = model.grid.distances

    def closure(q, u):  # a smooth stand-in closure: diffusion growing with the wind
        return flux_divergence(cons.kappa_flux(20.0 * u, q, 1.0, dist), model.grid.widths)

    run = model.run(q0, 200, model.stable_dt(), closure=closure, save_every=50)
    assert np.abs(run["total"].values / run["total"].values[0] - 1).max() < 1e-13
    batch = model.run(np.stack([q0, 2 * q0]), 200, model.stable_dt(), closure=closure,
                      save_every=50)
    assert batch["q"].dims == ("time", "member", "x")
    np.testing.assert_allclose(batch["q"].values[:, 0], run["q"].values, rtol=1e-13)
    np.testing.assert_allclose(batch["total"].values[:, 1], 2 * run["total"].values, rtol=1e-12)
    horizon, dts = 3.0, np.array([0.375, 0.1875, 0.09375])
    ref = model.run(q0, 384, horizon / 384, closure=closure, save_every=384)
    assert ref["q"].shape == (2, 32)  # the initial and the final state
    ref_q = ref["q"].values[-1]
    order = {}
    for mode, integrator in (("unified", "ssprk3"), ("split", "ssprk3"), ("unified", "heun")):
        errs = [metrics.rmse(ref_q, model.run(q0, int(horizon / dt), dt, closure=closure,
                                              mode=mode, integrator=integrator,
                                              save_every=int(horizon / dt))["q"].values[-1])
                for dt in dts]
        order[mode, integrator] = metrics.convergence_order(dts, errs)
    assert order["unified", "ssprk3"] > 2.5
    assert 1.7 < order["unified", "heun"] < 2.5
    assert 0.8 < order["split", "ssprk3"] < 1.3


def test_splitting_orders_separate_the_commutator_from_the_sub_step(truth):
    """Lie splitting (sequential or parallel) is first order even with a third-order closure
    sub-step; Strang reaches second order only with a sub-step of order two or more."""
    setup = tracer.setup_of(truth)
    blocks = cons.alternating_blocks(128, 2, 6)
    model = cons.CoarseModel(setup, blocks)
    q0 = cons.coarse_grain_blocks(truth["q"].values[0], blocks)
    dist = model.grid.distances

    def closure(q, u):
        return flux_divergence(cons.kappa_flux(20.0 * u, q, 1.0, dist), model.grid.widths)

    horizon, dts = 3.0, np.array([0.375, 0.1875, 0.09375])
    ref = model.run(q0, 384, horizon / 384, closure=closure, save_every=384)["q"].values[-1]
    order = {}
    for mode, sub in (("sequential", "euler"), ("sequential", "ssprk3"),
                      ("parallel", "ssprk3"), ("strang", "euler"), ("strang", "heun"),
                      ("strang", "ssprk3")):
        errs = [metrics.rmse(ref, model.run(q0, int(horizon / dt), dt, closure=closure,
                                            mode=mode, closure_integrator=sub,
                                            save_every=int(horizon / dt))["q"].values[-1])
                for dt in dts]
        order[mode, sub] = metrics.convergence_order(dts, errs)
    for key in (("sequential", "euler"), ("sequential", "ssprk3"), ("parallel", "ssprk3"),
                ("strang", "euler")):
        assert 0.8 < order[key] < 1.3, (key, order[key])
    for key in (("strang", "heun"), ("strang", "ssprk3")):
        assert 1.7 < order[key] < 2.4, (key, order[key])
    # "split" is the sequential mode with the Euler sub-step, bit for bit
    a = model.run(q0, 8, 0.375, closure=closure, mode="split", save_every=8)["q"].values
    b = model.run(q0, 8, 0.375, closure=closure, mode="sequential", save_every=8)["q"].values
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", cons.HEADS)
def test_heads(kind):
    head = cons.ClosureHead(kind, WIDTHS, seed=2)
    rng = np.random.default_rng(3)
    q, u = rng.normal(1, 1, size=(4, 5)), rng.uniform(10, 60, size=(4, 5))
    head.fit_scales(q, u, rng.normal(size=(4, 5)))
    x = cons.random_inputs(64, WIDTHS.size, seed=4)
    with torch.no_grad():
        tend, flux, kappa = head.parts(torch.as_tensor(x))
    fast = head.numpy_closure()
    np.testing.assert_allclose(fast(x[:, :5], x[:, 5:]), tend.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(cons.torch_closure(head)(x[0, :5], x[0, 5:]), tend[0].numpy())
    rel = np.abs(cons.relative_domain_budget(tend.numpy(), WIDTHS))
    if kind == "tendency":
        assert flux is None and rel.max() > 1e-3
    else:
        assert rel.max() < 1e-12
    if kind == "kappa":
        assert kappa.min() >= 0
        assert np.all(cons.variance_tendency(tend.numpy(), x[:, :5], WIDTHS) <= 0)


def test_fit_head_runs(truth):
    b = cons.coarse_budget(truth, cons.alternating_blocks(128, 2, 6))
    head, hist = cons.fit_head("kappa", b, slice(0, 3), slice(3, 5), epochs=5)
    assert len(hist["train"]) == 5 and isinstance(head, cons.ClosureHead)


def test_bad_input(truth):
    with pytest.raises(ValueError, match="cell_volume"):
        cons.domain_budget(np.ones(5), np.ones(4))
    with pytest.raises(ValueError, match="cell_volume"):
        cons.domain_budget(np.ones(5), np.array([1.0, 1, 0, 1, 1]))
    with pytest.raises(ValueError, match="tendency"):
        cons.relative_domain_budget(np.array([1.0, np.nan]), 1.0)
    with pytest.raises(ValueError, match="cell_volume"):
        cons.mass_weighted_fix(np.ones(3), -1.0)
    with pytest.raises(ValueError, match="face_distance"):
        cons.kappa_flux(np.ones(3), np.ones(3), 1.0, np.array([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="face_area"):
        cons.kappa_flux(np.ones(3), np.ones(3), np.ones(2), 1.0)
    with pytest.raises(ValueError, match="kappa"):
        cons.kappa_flux(-np.ones(3), np.ones(3), 1.0, 1.0)
    with pytest.raises(ValueError, match="kappa"):
        cons.kappa_flux(np.ones(4), np.ones(3), 1.0, 1.0)
    with pytest.raises(ValueError, match="q"):
        cons.kappa_flux(np.ones(3), np.array([1.0, np.nan, 1.0]), 1.0, 1.0)
    with pytest.raises(ValueError, match="q"):
        cons.variance_tendency(np.ones(3), np.ones(4), 1.0)
    with pytest.raises(ValueError, match="block_sizes"):
        cons.block_grid([4, 0, 4], 1.0)
    with pytest.raises(ValueError, match="fine_dx"):
        cons.block_grid([4, 4], -1.0)
    with pytest.raises(ValueError, match="small"):
        cons.alternating_blocks(10, 2, 6)
    with pytest.raises(ValueError, match="field"):
        cons.coarse_grain_blocks(np.ones(7), [4, 4])
    with pytest.raises(ValueError, match="kind"):
        cons.ClosureHead("heat", WIDTHS)
    with pytest.raises(ValueError, match="truth"):
        cons.coarse_budget(truth.assign_attrs(setup_lam=0.1), [64, 64])
    model = cons.CoarseModel(tracer.setup_of(truth), [64, 64])
    with pytest.raises(ValueError, match="mode"):
        model.run(np.ones(2), 1, 0.1, mode="lie")
    with pytest.raises(ValueError, match="closure_integrator"):
        model.run(np.ones(2), 1, 0.1, mode="strang", closure_integrator="rk4")
    with pytest.raises(ValueError, match="q0"):
        model.run(np.ones(3), 1, 0.1)
    with pytest.raises(ValueError, match="dt"):
        model.run(np.ones(2), 1, 0.0)
    with pytest.raises(ValueError, match="block_sizes"):
        cons.CoarseModel(tracer.setup_of(truth), [64, 32])
