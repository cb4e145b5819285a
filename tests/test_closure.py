"""nnparam.closure: one closure concept for every online run."""

import json

import numpy as np
import pytest
import torch

from nnparam import closure as cl
from nnparam import conservation as cons
from nnparam import l96, stability
from nnparam.apps import ocean
from nnparam.grid import Grid1D
from nnparam.nn import Standardizer, mlp, train

RNG = np.random.default_rng(0)


def test_stencil_features_order_numpy_and_torch():
    q = np.arange(5.0)
    u = 10 * np.arange(5.0)
    f = cl.stencil_features(q, u, width=1)
    assert f.shape == (5, 6)
    np.testing.assert_array_equal(f[0], [4, 0, 1, 40, 0, 10])  # q[i-1], q[i], q[i+1], u...
    ft = cl.stencil_features(torch.tensor(q), torch.tensor(u), width=1, xp=torch)
    np.testing.assert_array_equal(ft.numpy(), f)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_numpy_twin_matches_torch(dtype):
    net = mlp(3, 1, hidden=(8, 8), activation="tanh", seed=1, dtype=dtype)
    x_mean, x_std = np.array([0.1, 0.2, 0.3]), np.array([1.5, 2.0, 0.5])
    c = cl.Closure(net, inputs=("q",), stencil_width=1, x_mean=x_mean, x_std=x_std,
                   y_mean=0.5, y_std=3.0)
    assert c.has_numpy_twin
    q = RNG.normal(size=(4, 6, 10))  # (time, member, cells)
    out = c(q)
    assert out.shape == q.shape
    with torch.no_grad():
        ref = c.torch(torch.as_tensor(q)).double().numpy()
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol)
    # and by hand for one cell
    z = (np.array([q[0, 0, -1], q[0, 0, 0], q[0, 0, 1]]) - x_mean) / x_std
    with torch.no_grad():
        by_hand = float(net(torch.as_tensor(z[None], dtype=dtype))) * 3.0 + 0.5
    assert out[0, 0, 0] == pytest.approx(by_hand, rel=tol, abs=tol)


def test_twin_follows_training_after_wrapping():
    net = mlp(1, 1, hidden=(4,), seed=0, dtype=torch.float64)
    c = cl.Closure(net, inputs=("x",))
    before = c(np.array([0.3, 0.7]))
    x = RNG.normal(size=(64, 1))
    train(net, x, 3 * x, epochs=50, lr=1e-2)
    after = c(np.array([0.3, 0.7]))
    with torch.no_grad():
        ref = net(torch.tensor([[0.3], [0.7]], dtype=torch.float64)).numpy()[:, 0]
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, ref, rtol=1e-12)


def test_torch_path_is_differentiable():
    net = mlp(6, 1, hidden=(5,), seed=2, dtype=torch.float64)
    c = cl.Closure(net, inputs=("q", "u"), stencil_width=1, x_std=2.0)
    q = torch.randn(7, dtype=torch.float64, requires_grad=True)
    u = torch.randn(7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: c.torch(a, b), (q, u))


def test_non_sequential_module_falls_back_to_torch():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(1, 1)

        def forward(self, x):
            return self.lin(x) ** 2

    c = cl.Closure(Net(), inputs=("x",))
    assert not c.has_numpy_twin
    x = np.linspace(-1, 1, 5)
    with torch.no_grad():
        ref = c.module(torch.tensor(x[:, None], dtype=torch.float32)).numpy()[:, 0]
    np.testing.assert_allclose(c(x), ref, rtol=1e-6)


def test_metadata_is_json_and_complete():
    sx = Standardizer(RNG.normal(size=(50, 3)))
    sy = Standardizer(RNG.normal(size=(50, 1)))
    c = l96.neural_closure(mlp(3, 1, seed=0), 1, sx, sy)
    meta = json.loads(json.dumps(c.metadata()))
    assert meta["inputs"] == ["X"] and meta["stencil_width"] == 1
    assert meta["feature_names"] == ["X[i-1]", "X[i]", "X[i+1]"]
    np.testing.assert_allclose(meta["x_mean"], sx.mean)
    assert meta["dtype"] == "float32" and meta["version"] == cl.VERSION
    assert c.width == 1 and isinstance(c, cl.Closure)


def test_wrappers_of_every_chapter_are_closures():
    # stability toy
    sc = stability.StencilClosure(mlp(3, 1, seed=0), x_scale=2.0, y_scale=0.5)
    q = RNG.normal(size=12)
    with torch.no_grad():
        ref = sc.net(torch.as_tensor(stability.stencil(q) / 2.0, dtype=torch.float32))
    np.testing.assert_allclose(sc(q), ref.numpy()[:, 0] * 0.5, rtol=1e-5, atol=1e-7)
    # ocean face-gradient closure
    grid = Grid1D.uniform(8, 1.0)
    fnet = ocean.FluxNet(n_in=3, seed=0)
    oc = ocean.network_closure(fnet, grid, width=1)
    Q = RNG.normal(size=8)
    with torch.no_grad():
        ref = fnet(torch.as_tensor(ocean.stencil_features(Q, grid, 1), dtype=torch.float32))
    np.testing.assert_allclose(oc(Q), ref.numpy()[:, 0], rtol=1e-6)
    g = torch.tensor(Q, requires_grad=True)
    oc.torch(g).sum().backward()
    assert g.grad is not None and torch.all(torch.isfinite(g.grad))
    # conservation head: whole-field closure
    widths = Grid1D.stretched(6, 600.0).widths
    head = cons.ClosureHead("flux", widths, hidden=(4,), seed=0)
    hc = head.as_closure()
    q, u = RNG.normal(1.0, 0.2, size=(3, 6)), RNG.uniform(20, 60, size=(3, 6))
    with torch.no_grad():
        ref = head(torch.as_tensor(cons.stack_inputs(q, u)))
    np.testing.assert_allclose(hc(q, u), ref.numpy(), rtol=1e-10)
    np.testing.assert_allclose(hc(q[0], u[0]), ref.numpy()[0], rtol=1e-10)
    assert not hc.per_column and hc.metadata()["inputs"] == ["q", "u_face"]


def test_l96_online_run_accepts_closure_and_plain_callable():
    net = mlp(3, 1, hidden=(4,), seed=0)
    c = l96.neural_closure(net, 1)
    X0 = RNG.normal(size=(2, 8))
    a = l96.simulate_one_scale(c, dt=0.01, n_steps=10, X0=X0)
    b = l96.simulate_one_scale(lambda X: c(X), dt=0.01, n_steps=10, X0=X0)
    np.testing.assert_array_equal(a["X"].values, b["X"].values)


def test_as_closure():
    assert cl.as_closure(None) is None
    f = np.sin
    assert cl.as_closure(f) is f
    assert isinstance(cl.as_closure(mlp(1, 1)), cl.Closure)
    with pytest.raises(ValueError, match="closure"):
        cl.as_closure(3.0)


def test_bad_input():
    net = mlp(3, 1, seed=0)
    with pytest.raises(ValueError, match="module"):
        cl.Closure(lambda x: x)
    with pytest.raises(ValueError, match="x_std"):
        cl.Closure(net, inputs=("q",), stencil_width=1, x_std=0.0)
    with pytest.raises(ValueError, match="x_mean"):
        cl.Closure(net, inputs=("q",), stencil_width=1, x_mean=[0.0, 1.0])
    with pytest.raises(ValueError, match="input_units"):
        cl.Closure(net, inputs=("q",), stencil_width=1, input_units=("a", "b"))
    c = cl.Closure(mlp(6, 1, seed=0), inputs=("q", "u"), stencil_width=1)
    with pytest.raises(ValueError, match="takes the fields"):
        c(np.zeros(5))
    with pytest.raises(ValueError, match="do not broadcast"):
        c(np.zeros(5), np.zeros(6))
    # a wind (n,) beside a batch of states (M, n) broadcasts
    assert c(np.zeros((3, 5)), np.ones(5)).shape == (3, 5)
