"""Tests of nnparam.stability against analytic results and independent references."""

import numpy as np
import pytest
import torch
from torch import nn

from nnparam import stability as st
from nnparam.metrics import time_blocks
from nnparam.nn import mlp

LAM = 1 / 7200


def test_amplification_factor_broadcasts_and_matches_formula():
    h = np.array([[100.0], [3600.0]])
    k = np.array([-LAM, 0.0, 0.5 * LAM])
    a = st.amplification_factor(h, k, LAM)
    assert a.shape == (2, 3)
    np.testing.assert_allclose(a, 1 + h * (k - LAM))
    assert st.amplification_factor(7200.0, 0.0, LAM) == pytest.approx(0.0)


def test_stable_window_edges_are_neutral():
    lo, hi = st.stable_k_window(3600.0, LAM)
    assert hi == pytest.approx(LAM) and lo == pytest.approx(LAM - 2 / 3600)
    assert st.amplification_factor(3600.0, lo, LAM) == pytest.approx(-1.0)
    assert st.amplification_factor(3600.0, hi, LAM) == pytest.approx(1.0)


def test_classic_example_and_both_regimes():
    assert st.max_stable_timestep(LAM, 0.7 * LAM) == pytest.approx(4.8e4)
    assert st.max_stable_timestep(LAM, -LAM) == pytest.approx(7200.0)
    assert st.max_stable_timestep(LAM, 0.0) == pytest.approx(2 / LAM)
    # 0 < k < lam: the closure erodes damping and h_max GROWS with k
    ks = np.linspace(0.0, 0.99, 50) * LAM
    assert np.all(np.diff(st.max_stable_timestep(LAM, ks)) > 0)
    # negative k (over-damping) shrinks h_max
    kn = np.linspace(-5, 0, 50) * LAM
    assert np.all(np.diff(st.max_stable_timestep(LAM, kn)) > 0)
    # k >= lam: no stable positive step
    assert st.max_stable_timestep(LAM, LAM) == 0.0
    assert st.max_stable_timestep(LAM, 2 * LAM) == 0.0


def test_hmax_is_where_amplification_reaches_minus_one():
    for r in (-3.0, -0.5, 0.3, 0.9):
        hmax = st.max_stable_timestep(LAM, r * LAM)
        assert st.amplification_factor(hmax, r * LAM, LAM) == pytest.approx(-1.0)
        assert abs(st.amplification_factor(0.99 * hmax, r * LAM, LAM)) < 1
        assert abs(st.amplification_factor(1.01 * hmax, r * LAM, LAM)) > 1


def test_backward_euler_has_no_lower_edge():
    lam = 1 / 7200
    k = np.linspace(-50, 0.99, 200) * lam
    for h in (100.0, 9000.0, 1e6):
        assert np.all(np.abs(st.backward_euler_amplification(h, k, lam)) < 1)
    assert st.backward_euler_amplification(3600.0, lam, lam) == pytest.approx(1.0)
    assert st.backward_euler_amplification(3600.0, 2 * lam, lam) > 1  # the upper edge stays
    # the two schemes agree to first order in h
    assert st.backward_euler_amplification(1.0, -lam, lam) == pytest.approx(
        st.amplification_factor(1.0, -lam, lam), abs=1e-7)


def test_implicit_mixing_is_stable_and_consistent():
    toy = st.SteepClosureToy()
    matrix = st.mixing_matrix(toy)
    q = np.random.default_rng(0).standard_normal(toy.n)
    np.testing.assert_allclose(matrix @ q, toy.subgrid_tendency(q)
                               - toy.gain * toy.lam * toy.q0 * np.tanh(q / toy.q0), atol=1e-15)
    assert np.abs(matrix.sum(axis=0)).max() < 1e-18  # flux form: the mixing keeps the mean
    assert np.linalg.eigvalsh(matrix).min() == pytest.approx(-6 * toy.lam)  # 4 kappa/dx^2
    t, q_ref, _ = toy.truth(40, 9000.0, substeps=48)
    implicit = st.run_implicit_mixing(toy, q_ref[10], t[10], 9000.0, 29)
    explicit = toy.run(toy.subgrid_tendency, q_ref[10], t[10], 9000.0, 29)
    assert explicit["blew_up"] and not implicit["blew_up"]
    err = np.sqrt(np.mean((implicit["q"] - q_ref[10:]) ** 2))
    assert err < 0.2 * q_ref[10:].std()
    # first order in h: halving the step halves the error against the fine reference
    errs = []
    for sub in (4, 8):
        run = st.run_implicit_mixing(toy, q_ref[10], t[10], 9000.0 / sub, 10 * sub)
        errs.append(np.abs(run["q"][::sub][-1] - q_ref[20]).max())
    assert 1.6 < errs[0] / errs[1] < 2.4
    with pytest.raises(ValueError, match="q_start"):
        st.run_implicit_mixing(toy, np.ones(5), 0.0, 9000.0, 3)
    with pytest.raises(ValueError, match="toy"):
        st.mixing_matrix("toy")


def test_lipschitz_bounds_of_euler_map():
    assert st.euler_map_lipschitz_bound(10.0, 0.1, 0.2) == pytest.approx(4.0)
    # linear check: G(x) = x + dt*(-lam + k) x has Lipschitz |1 + dt(k - lam)| <= both bounds
    dt, k = 3000.0, 0.5 * LAM
    exact = abs(st.amplification_factor(dt, k, LAM))
    assert exact <= st.damped_euler_lipschitz_bound(dt, LAM, abs(k)) + 1e-12
    assert exact <= st.euler_map_lipschitz_bound(dt, LAM, abs(k))
    cap = st.max_contractive_lipschitz(dt, LAM)
    assert st.damped_euler_lipschitz_bound(dt, LAM, cap) == pytest.approx(1.0)
    assert st.max_contractive_lipschitz(3 / LAM, LAM) == 0.0


@pytest.mark.parametrize("shape", [(5, 8), (20, 3), (32, 16), (1, 7), (16, 3)])
def test_spectral_norm_matches_svd(shape):
    rng = np.random.default_rng(1)
    for _ in range(10):
        w = rng.standard_normal(shape)
        assert st.spectral_norm(w) == pytest.approx(np.linalg.svd(w, compute_uv=False)[0],
                                                    abs=1e-6)


def test_spectral_norm_needs_more_iterations_for_a_small_gap():
    # square Gaussian matrices have close top singular values: 100 steps are not enough
    w = np.random.default_rng(1).standard_normal((64, 64))
    sigma = np.linalg.svd(w, compute_uv=False)[0]
    assert st.spectral_norm(w) <= sigma  # power iteration approaches from below
    assert st.spectral_norm(w, n_iter=5000) == pytest.approx(sigma, abs=1e-6)
    assert st.spectral_norm(torch.eye(3) * 2.5) == pytest.approx(2.5)
    assert st.spectral_norm(np.zeros((3, 4))) == 0.0


def test_mlp_bound_is_product_and_never_beaten_by_gradients():
    torch.manual_seed(0)
    model = mlp(4, 2, hidden=(16, 16), activation="tanh", seed=3)
    with torch.no_grad():
        model[0].weight.mul_(3.0)  # a steep first layer
    bound = st.mlp_lipschitz_bound(model)
    product = np.prod([np.linalg.svd(w.numpy(), compute_uv=False)[0]
                       for w in st.linear_weights(model)])
    assert bound == pytest.approx(product, rel=1e-6)
    x = torch.randn(2000, 4) * 3
    jac = torch.func.vmap(torch.func.jacrev(model))(x)  # (2000, 2, 4)
    largest = torch.linalg.matrix_norm(jac, ord=2).max().item()
    assert 0 < largest <= bound


def test_activation_constants_cover_their_derivatives():
    x = torch.linspace(-10, 10, 200001, requires_grad=True)
    for layer, const in st.ACTIVATION_LIPSCHITZ.items():
        (grad,) = torch.autograd.grad(layer()(x).sum(), x)
        assert grad.abs().max().item() <= const + 1e-6, layer.__name__


def test_spectral_normalized_mlp_trains_to_target():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 3))
    y = 5.0 * x[:, :1] + np.sin(x[:, 1:2])  # needs slope 5; the cap is 2
    model = st.spectral_normalized_mlp(3, 1, target=2.0, hidden=(16, 16), seed=0)
    from nnparam.nn import train
    train(model, x, y, epochs=200)
    st.freeze_spectral_norm(model)
    bound = st.mlp_lipschitz_bound(model)
    assert bound <= 2.0 * (1 + 1e-4)
    assert bound > 1.5  # the fit pushes against the cap
    for w in st.linear_weights(model):
        assert np.linalg.svd(w.numpy(), compute_uv=False)[0] == pytest.approx(1.0, abs=1e-4)


def test_toy_truth_and_steep_closure_blow_up_story():
    toy = st.SteepClosureToy()
    h = 9000.0
    t, q, s = toy.truth(240, h)
    assert q.shape == s.shape == (240, toy.n) and np.all(np.isfinite(q))
    # exact closure: steep grid-scale mixing, 4 kappa/dx^2 = 6 lam
    dx = toy.length / toy.n
    assert 4 * toy.kappa / dx**2 == pytest.approx(6 * LAM)
    blocks = time_blocks(len(t), (0.6, 0.2, 0.2))
    test = blocks[2]
    exact = toy.run(toy.subgrid_tendency, q[test.start], t[test.start], h, 47)
    assert exact["blew_up"]
    cap = 0.9 * st.max_contractive_lipschitz(h, toy.lam)
    sn, _ = st.fit_stencil_closure(q, s, blocks, target=cap)
    assert sn.lipschitz_bound() <= cap * (1 + 1e-4)
    assert st.damped_euler_lipschitz_bound(h, toy.lam, sn.lipschitz_bound()) < 1
    run = toy.run(sn, q[test.start], t[test.start], h, 47)
    assert not run["blew_up"] and np.abs(run["q"]).max() < 2 * np.abs(q).max()


def test_stencil_closure_bound_covers_its_jacobian():
    torch.manual_seed(0)
    closure = st.StencilClosure(mlp(3, 1, hidden=(8,), seed=1), x_scale=2.0, y_scale=0.5)
    rng = np.random.default_rng(0)
    q = rng.standard_normal(12)
    eps = 1e-6
    jac = np.array([(closure(q + eps * e) - closure(q - eps * e)) / (2 * eps)
                    for e in np.eye(12)]).T
    assert np.linalg.norm(jac, 2) <= closure.lipschitz_bound() * (1 + 1e-3)
    np.testing.assert_allclose(st.stencil(np.arange(4.0))[0], [3.0, 0.0, 1.0])


@pytest.mark.parametrize("call, name", [
    (lambda: st.amplification_factor(0.0, 0.1, LAM), "h"),
    (lambda: st.amplification_factor(-1.0, 0.1, LAM), "h"),
    (lambda: st.amplification_factor(1.0, np.nan, LAM), "k"),
    (lambda: st.amplification_factor(1.0, 0.1, 0.0), "lam"),
    (lambda: st.stable_k_window(-5.0, LAM), "h"),
    (lambda: st.stable_k_window(5.0, -LAM), "lam"),
    (lambda: st.max_stable_timestep(0.0, 0.1), "lam"),
    (lambda: st.max_stable_timestep(-LAM, 0.1), "lam"),
    (lambda: st.euler_map_lipschitz_bound(0.0, 1.0, 1.0), "dt"),
    (lambda: st.euler_map_lipschitz_bound(1.0, -1.0, 1.0), "L_F"),
    (lambda: st.euler_map_lipschitz_bound(1.0, 1.0, -1.0), "L_P"),
    (lambda: st.damped_euler_lipschitz_bound(1.0, 0.0, 1.0), "lam"),
    (lambda: st.max_contractive_lipschitz(0.0, LAM), "h"),
    (lambda: st.spectral_norm(np.ones(3)), "W"),
    (lambda: st.spectral_norm(np.ones((2, 2, 2))), "W"),
    (lambda: st.spectral_norm(np.ones((2, 2)), n_iter=0), "n_iter"),
    (lambda: st.mlp_lipschitz_bound(nn.Sequential(nn.Tanh())), "model"),
    (lambda: st.mlp_lipschitz_bound("not a model"), "model"),
    (lambda: st.mlp_lipschitz_bound(nn.Sequential(nn.Linear(2, 2), nn.Dropout())), "model"),
    (lambda: st.spectral_normalized_mlp(2, 1, target=0.0), "target"),
    (lambda: st.spectral_normalized_mlp(2, 1, target=1.0, activation="gelu"), "activation"),
    (lambda: st.stencil(np.ones(2)), "q"),
    (lambda: st.SteepClosureToy(lam=-1.0), "lam"),
    (lambda: st.StencilClosure(mlp(3, 1), 0.0, 1.0), "x_scale"),
    (lambda: st.fit_stencil_closure(np.ones((5, 4)), np.ones((5, 3)), (slice(0, 2),)), "s"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
