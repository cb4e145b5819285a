"""Jacobians, linear response, attribution, permutation importance and equation discovery
checked against closed forms."""

import numpy as np
import pytest
import torch
from torch import nn

from nnparam import interpret as ip
from nnparam import l96, stability
from nnparam.closure import Closure
from nnparam.discovery import SparseModel, TermLibrary, fit_sparse, sparsest_within


def linear_stencil_closure(weights, bias=0.0, x_mean=0.0, x_std=1.0, y_mean=0.0, y_std=1.0):
    """A per-column closure P_i = y_std * (w . (stencil_i - m) / s + b) + y_mean, float64."""
    w = torch.tensor([weights], dtype=torch.float64)
    layer = nn.Linear(len(weights), 1).double()
    with torch.no_grad():
        layer.weight.copy_(w)
        layer.bias.fill_(bias)
    return Closure(nn.Sequential(layer), inputs=("X",), stencil_width=len(weights) // 2,
                   x_mean=x_mean, x_std=x_std, y_mean=y_mean, y_std=y_std)


def tanh_closure(seed=0, width=1):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(2 * width + 1, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    return Closure(net, inputs=("X",), stencil_width=width, x_mean=3.0, x_std=4.0,
                   y_mean=-1.0, y_std=2.0)


# ---------------------------------------------------------------------------------------------
# Jacobians
# ---------------------------------------------------------------------------------------------
def test_jacobian_of_a_linear_stencil_closure_is_its_circulant():
    w = [0.2, -0.9, 0.5]  # weights of x[i-1], x[i], x[i+1]
    P = linear_stencil_closure(w, x_std=2.0, y_std=3.0)
    x = np.random.default_rng(0).standard_normal(8)
    jac = ip.jacobian(P, x)
    expected = np.zeros((8, 8))
    for i in range(8):
        for o, wo in zip((-1, 0, 1), w, strict=True):
            expected[i, (i + o) % 8] += wo * 3.0 / 2.0
    np.testing.assert_allclose(jac, expected, atol=1e-12)
    offsets, mean, outside = ip.band_profile(jac, 1)
    np.testing.assert_allclose(mean, np.array(w) * 1.5, atol=1e-12)
    assert list(offsets) == [-1, 0, 1] and outside == 0.0


def test_autograd_and_central_differences_agree_on_a_batch():
    P = tanh_closure()
    x = 3 + 4 * np.random.default_rng(1).standard_normal((5, 8))
    jac = ip.jacobian(P, x)
    jac_fd = ip.jacobian(lambda v: P(v), x, eps=1e-6)
    assert jac.shape == (5, 8, 8)
    np.testing.assert_allclose(jac, jac_fd, atol=1e-7)
    _, _, outside = ip.band_profile(jac, 1)
    assert outside == 0.0  # locality: a width-1 stencil touches only three cells


def test_jacobian_with_respect_to_a_second_field():
    def closure(a, b):
        return a * b ** 2

    a, b = np.array([1.0, 2.0, 3.0]), np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(ip.jacobian(closure, b, a, wrt=1), np.diag(2 * a * b),
                               atol=1e-8)
    np.testing.assert_allclose(ip.jacobian(closure, a, b, wrt=0), np.diag(b ** 2), atol=1e-8)


def test_jacobian_rejects_bad_input():
    P = tanh_closure()
    with pytest.raises(ValueError, match=r"shape \(n,\) or \(M, n\)"):
        ip.jacobian(P, np.zeros((2, 2, 8)))
    with pytest.raises(ValueError, match="wrt"):
        ip.jacobian(P, np.zeros(8), wrt=1)
    with pytest.raises(ValueError, match="callable"):
        ip.jacobian("P", np.zeros(8))
    with pytest.raises(ValueError, match="one value per cell"):
        ip.jacobian(lambda v: v[..., :3], np.zeros(8))
    with pytest.raises(ValueError, match="NaN"):
        ip.jacobian(P, np.full(8, np.nan))
    with pytest.raises(ValueError, match="eps"):
        ip.jacobian(P, np.zeros(8), eps=0)


def test_band_profile_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        ip.band_profile(np.zeros((3, 4)), 1)
    with pytest.raises(ValueError, match="2 width"):
        ip.band_profile(np.zeros((4, 4)), 2)


# ---------------------------------------------------------------------------------------------
# linear response of the coupled model
# ---------------------------------------------------------------------------------------------
def l96_host(x):
    return l96.advection(x) - x + 18.0


def test_lorenz96_host_jacobian_is_exact_and_has_trace_minus_n():
    x = np.random.default_rng(2).standard_normal((3, 8)) * 4 + 3
    jac = ip.coupled_jacobian(l96_host, None, x)
    k = 2  # analytic row of -X_{k-1}(X_{k-2} - X_{k+1}) - X_k
    row = np.zeros(8)
    row[k - 2] = -x[0, k - 1]
    row[k - 1] = -(x[0, k - 2] - x[0, k + 1])
    row[k + 1] = x[0, k - 1]
    row[k] = -1.0
    np.testing.assert_allclose(jac[0, k], row, atol=1e-8)
    eig = ip.linear_response(l96_host, None, x)
    np.testing.assert_allclose(eig.real.mean(axis=-1), -1.0, atol=1e-9)
    assert np.all(np.diff(eig.real, axis=-1) <= 1e-12)  # largest growth rate first


def test_a_linear_damping_closure_shifts_every_eigenvalue():
    x = np.random.default_rng(3).standard_normal(8) * 4 + 3
    damping = linear_stencil_closure([-0.8])  # P = -0.8 X
    without = np.sort_complex(ip.linear_response(l96_host, None, x))
    with_p = np.sort_complex(ip.linear_response(l96_host, damping, x))
    np.testing.assert_allclose(with_p, without - 0.8, atol=1e-7)
    with pytest.raises(ValueError, match="host"):
        ip.coupled_jacobian(None, damping, x)


def test_step_amplification_matches_the_stability_chapter_and_rk4():
    h, k, lam = 600.0, 2e-4, 1e-3
    euler = ip.step_amplification(np.array([k - lam]), h, "euler")[0]
    assert euler == pytest.approx(abs(stability.amplification_factor(h, k, lam)), rel=1e-12)
    z = np.array([-0.1, -0.05 + 0.2j, 0.3])
    np.testing.assert_allclose(ip.step_amplification(z, 1.0), np.abs(np.exp(z)), rtol=1e-4)
    assert ip.step_amplification(np.array([-2.7]), 1.0) < 1 < ip.step_amplification(
        np.array([-2.9]), 1.0)  # RK4 stability limit on the negative real axis: 2.785
    with pytest.raises(ValueError, match="scheme"):
        ip.step_amplification(z, 1.0, "rk5")
    with pytest.raises(ValueError, match="dt"):
        ip.step_amplification(z, -1.0)


# ---------------------------------------------------------------------------------------------
# attribution
# ---------------------------------------------------------------------------------------------
def test_attributions_of_a_linear_closure_are_weights_times_inputs():
    w = [0.2, -0.9, 0.5]
    P = linear_stencil_closure(w, bias=0.3, x_mean=1.0, x_std=2.0, y_mean=0.5, y_std=3.0)
    x = np.random.default_rng(4).standard_normal((6, 3))
    slope = np.array(w) * 3.0 / 2.0
    np.testing.assert_allclose(ip.gradient_x_input(P, x), slope * x, atol=1e-12)
    base = np.array([1.0, 1.0, 1.0])
    np.testing.assert_allclose(ip.integrated_gradients(P, x, baseline=base),
                               slope * (x - base), atol=1e-12)
    f = ip.feature_function(P)
    np.testing.assert_allclose(f(torch.tensor(x)).detach().numpy(),
                               P(np.ones(3))[0] + (x - 1) @ slope, atol=1e-12)


def test_predict_features_matches_the_closure_on_fields():
    P = tanh_closure(seed=2)
    x = 3 + 4 * np.random.default_rng(8).standard_normal((4, 8))
    feats = l96.stencil(x, 1)
    np.testing.assert_allclose(ip.predict_features(P, feats), P(x), atol=1e-12)
    with pytest.raises(ValueError, match="3 columns"):
        ip.predict_features(P, feats[..., :2])
    with pytest.raises(ValueError, match="per-column"):
        ip.predict_features(lambda z: z, feats)


def test_integrated_gradients_of_a_product_split_it_evenly():
    def product(z):
        return z[:, 0] * z[:, 1]

    x = np.array([[2.0, 3.0], [-1.0, 4.0]])
    ig = ip.integrated_gradients(product, x, n_steps=2)  # exact: the integrand is linear
    np.testing.assert_allclose(ig, np.repeat((x[:, :1] * x[:, 1:]) / 2, 2, axis=1), atol=1e-12)
    np.testing.assert_allclose(ip.gradient_x_input(product, x),
                               np.repeat(x[:, :1] * x[:, 1:], 2, axis=1), atol=1e-12)


def test_integrated_gradients_are_complete_for_a_network():
    P = tanh_closure(seed=5)
    x = 3 + 4 * np.random.default_rng(5).standard_normal((20, 3))
    base = np.full(3, 3.0)
    ig = ip.integrated_gradients(P, x, baseline=base, n_steps=16)
    f = ip.feature_function(P)
    gap = ig.sum(axis=1) - (f(torch.tensor(x)) - f(torch.tensor(base[None]))).detach().numpy()
    assert np.abs(gap).max() < 1e-8
    coarse = ip.integrated_gradients(P, x, baseline=base, n_steps=1)
    assert np.abs(coarse.sum(axis=1) - ig.sum(axis=1)).max() > 1e-4  # the quadrature matters


def test_attribution_rejects_bad_input():
    P = tanh_closure()
    with pytest.raises(ValueError, match="3 feature columns"):
        ip.gradient_x_input(P, np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"shape \(N, F\)"):
        ip.integrated_gradients(P, np.zeros(3))
    with pytest.raises(ValueError, match="baseline"):
        ip.integrated_gradients(P, np.zeros((4, 3)), baseline=np.zeros(2))
    with pytest.raises(ValueError, match="n_steps"):
        ip.integrated_gradients(P, np.zeros((4, 3)), n_steps=0)
    with pytest.raises(ValueError, match="per-column"):
        ip.feature_function(lambda x: x)
    with pytest.raises(ValueError, match="one value per row"):
        ip.gradient_x_input(lambda z: z, np.zeros((4, 3)))


# ---------------------------------------------------------------------------------------------
# permutation importance
# ---------------------------------------------------------------------------------------------
def test_permutation_importance_finds_the_used_input_and_ignores_the_other():
    rng = np.random.default_rng(6)
    feats = rng.standard_normal((400, 5, 2))
    target = 2.0 * feats[..., 0]

    def predict(f):
        return 2.0 * f[..., 0]

    imp = ip.permutation_importance(predict, feats, target, block=20, n_repeats=3,
                                    names=["used", "unused"])
    assert imp.base == pytest.approx(1.0)
    assert imp.as_dict()["unused"] == 0.0 and imp.drop[0] > 1.5  # R^2 ~ 1 - 2 = -1
    grouped = ip.permutation_importance(predict, feats, target, block=20,
                                        groups=[[0, 1]], names=["both"])
    assert grouped.drop[0] > 1.5


def test_block_permutation_moves_whole_blocks():
    perm = ip._block_permutation(10, 3, np.random.default_rng(0))
    assert sorted(perm) == list(range(10))
    blocks = [list(perm[i:i + 3]) for i in range(0, 9, 3)]
    assert all(b == list(range(b[0], b[0] + len(b))) for b in blocks if len(b) == 3)


def test_permutation_importance_rejects_bad_input():
    feats, target = np.zeros((20, 3, 2)), np.zeros((20, 3))

    def predict(f):
        return f[..., 0]

    with pytest.raises(ValueError, match="target must have the shape"):
        ip.permutation_importance(predict, feats, np.zeros((20, 2)), block=2)
    with pytest.raises(ValueError, match="half the record"):
        ip.permutation_importance(predict, feats, target, block=11)
    with pytest.raises(ValueError, match="groups"):
        ip.permutation_importance(predict, feats, target, block=2, groups=[[2]])
    with pytest.raises(ValueError, match="names"):
        ip.permutation_importance(predict, feats, target, block=2, names=["a"])
    with pytest.raises(ValueError, match="callables"):
        ip.permutation_importance(None, feats, target, block=2)


# ---------------------------------------------------------------------------------------------
# equation discovery
# ---------------------------------------------------------------------------------------------
def cubic_data(n=2000, noise=0.0, seed=7):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-10, 20, n)
    y = 0.5 - 0.8 * x + 0.002 * x ** 3 + noise * rng.standard_normal(n)
    return x[:, None], y


def test_polynomial_library_names_and_values():
    lib = TermLibrary.polynomial(["a", "b"], 2)
    assert lib.names == ("1", "a", "b", "a^2", "a b", "b^2") and len(lib) == 6
    vals = lib(np.array([[2.0, 3.0]]))
    np.testing.assert_allclose(vals, [[1, 2, 3, 4, 6, 9]])
    extra = lib + TermLibrary.from_functions(["a", "b"], {"|a| a": lambda f: abs(f[..., 0])
                                                           * f[..., 0]})
    assert extra.names[-1] == "|a| a" and extra(np.array([[-2.0, 0.0]]))[0, -1] == -4.0


def test_normalised_sparse_regression_recovers_a_cubic_with_a_small_coefficient():
    x, y = cubic_data(noise=0.05)
    lib = TermLibrary.polynomial(["x"], 4)
    model = fit_sparse(lib, x, y, threshold=0.05, target_name="y")
    assert model.support == ("1", "x", "x^3")
    t = model.terms()
    assert t["x"] == pytest.approx(-0.8, rel=0.01) and t["x^3"] == pytest.approx(0.002, rel=0.01)
    assert t["1"] == pytest.approx(0.5, abs=0.02)
    assert str(model).startswith("y = 0.499") and model.equation(2) == "y = 0.5 - 0.8 x + 0.002 x^3"
    raw = fit_sparse(lib, x, y, threshold=0.05, normalize=False)
    assert "x^3" not in raw.support  # thresholding raw coefficients drops the 0.002 x^3


def test_threshold_path_and_sparsest_model():
    x, y = cubic_data(noise=0.5)
    xv, yv = cubic_data(noise=0.5, seed=8)
    lib = TermLibrary.polynomial(["x"], 5)
    path = ip.threshold_path(lib, x, y, [0.001, 0.05, 0.3, 5.0], (xv, yv))
    assert [m.n_terms for _, m, _ in path][-1] == 0
    th, model, score = sparsest_within(path, keep=0.95)
    assert set(model.support) <= {"1", "x", "x^3"} and "x^3" in model.support and score > 0.9
    with pytest.raises(ValueError, match="empty"):
        sparsest_within([])
    with pytest.raises(ValueError, match="keep"):
        sparsest_within(path, keep=1.5)
    with pytest.raises(ValueError, match="pair"):
        ip.threshold_path(lib, x, y, [0.1], xv)


def test_sparse_model_on_a_stencil_is_a_translation_equivariant_closure():
    lib = TermLibrary.polynomial(["x[i-1]", "x[i]", "x[i+1]"], 2)
    coef = np.zeros(len(lib))
    coef[lib.names.index("x[i-1] x[i+1]")] = 1.0
    coef[lib.names.index("x[i]")] = -1.0
    P = SparseModel(lib, coef, 0.1, True, "P").on_stencil(1)
    x = np.random.default_rng(9).standard_normal((2, 8))
    expected = np.roll(x, 1, -1) * np.roll(x, -1, -1) - x
    np.testing.assert_allclose(P(x), expected, atol=1e-12)
    np.testing.assert_allclose(P(np.roll(x, 3, -1)), np.roll(P(x), 3, -1), atol=1e-12)
    with pytest.raises(ValueError, match="stencil of width"):
        SparseModel(lib, coef, 0.1, True).on_stencil(2)


def test_discovery_rejects_bad_input():
    x, y = cubic_data(n=50)
    lib = TermLibrary.polynomial(["x"], 2)
    with pytest.raises(ValueError, match="empty"):
        TermLibrary.from_functions(["x"], {})
    with pytest.raises(ValueError, match="empty"):
        TermLibrary(["x"], [], [])
    with pytest.raises(ValueError, match="shape of features"):
        fit_sparse(lib, x, y[:-1], 0.1)
    with pytest.raises(ValueError, match="1 columns"):
        fit_sparse(lib, np.hstack([x, x]), y, 0.1)
    with pytest.raises(ValueError, match="threshold"):
        fit_sparse(lib, x, y, -0.1)
    with pytest.raises(ValueError, match="zero on every sample"):
        fit_sparse(TermLibrary.from_functions(["x"], {"0": lambda f: 0 * f[..., 0]}), x, y, 0.1)
    with pytest.raises(ValueError, match="more samples"):
        fit_sparse(TermLibrary.polynomial(["x"], 4), x[:4], y[:4], 0.1)
    with pytest.raises(ValueError, match="TermLibrary"):
        fit_sparse("x^2", x, y, 0.1)
    with pytest.raises(ValueError, match="degree"):
        TermLibrary.polynomial(["x"], 0)
    with pytest.raises(ValueError, match="unique"):
        TermLibrary(["x"], ["a", "a"], [np.sum, np.sum])


# ---------------------------------------------------------------------------------------------
# the chapter's discovered forms are asserted with tolerances that can fail
# ---------------------------------------------------------------------------------------------
CHAPTER = "book/principles/opening_the_box.ipynb"


def test_chapter_fails_without_a_normalised_library():
    from mutation import run_mutated

    failure = run_mutated(CHAPTER, {"ip.threshold_path(library, fit_f, fit_u, thresholds,":
                                    "ip.threshold_path(library, fit_f, fit_u, thresholds, "
                                    "normalize=False,"})
    assert failure is not None and "local quartic" in failure.message


def test_chapter_fails_when_the_narrow_filter_is_not_narrow():
    from mutation import run_mutated

    failure = run_mutated(CHAPTER, {"NARROW, LES = 2, 8": "NARROW, LES = 4, 8"})
    assert failure is not None and "gradient model alone" in failure.message
