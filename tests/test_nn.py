import numpy as np
import pytest
import torch

from nnparam import metrics, nn


def test_mlp_training_is_deterministic_and_learns():
    x = np.linspace(-2, 2, 200)[:, None]
    y = np.sin(2 * x)
    preds = []
    for _ in range(2):
        model = nn.mlp(1, 1, hidden=(16, 16), seed=3)
        hist = nn.train(model, x, y, epochs=400, lr=1e-2, seed=3)
        preds.append(nn.predict(model, x))
    np.testing.assert_array_equal(preds[0], preds[1])
    assert hist["train"][-1] < 0.1 * hist["train"][0]
    assert metrics.r2_score(y, preds[0]) > 0.95


def test_early_stopping_restores_best(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 3)), rng.normal(size=(40, 1))  # pure noise: overfits
    model = nn.mlp(3, 1, hidden=(64,), seed=0)
    hist = nn.train(model, x[:30], y[:30], epochs=2000, lr=1e-2,
                    validation=(x[30:], y[30:]), patience=50)
    assert len(hist["train"]) < 2000
    best = min(hist["validation"])
    with torch.no_grad():
        val = float(torch.nn.functional.mse_loss(model(torch.tensor(x[30:], dtype=torch.float32)),
                                                 torch.tensor(y[30:], dtype=torch.float32)))
    assert np.isclose(val, best, rtol=1e-5)
    path = nn.save(model, tmp_path / "m.pt")
    clone = nn.load(nn.mlp(3, 1, hidden=(64,), seed=9), path)
    np.testing.assert_array_equal(nn.predict(clone, x), nn.predict(model, x))


def test_standardizer_round_trip():
    x = np.random.default_rng(1).normal(3.0, 2.0, size=(50, 2))
    s = nn.Standardizer(x)
    np.testing.assert_allclose(s.transform(x).mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(s.inverse(s.transform(x)), x)


def test_bad_input():
    model = nn.mlp(2, 1)
    with pytest.raises(ValueError, match="activation"):
        nn.mlp(2, 1, activation="sigmoidish")
    with pytest.raises(ValueError, match="x contains NaN"):
        nn.train(model, np.array([[np.nan, 1.0]]), np.array([1.0]))
    with pytest.raises(ValueError, match="same number of samples"):
        nn.train(model, np.ones((3, 2)), np.ones(4))
    with pytest.raises(ValueError, match="epochs"):
        nn.train(model, np.ones((3, 2)), np.ones(3), epochs=0)
