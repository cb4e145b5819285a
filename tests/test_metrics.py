import numpy as np
import pytest

from nnparam import metrics


def test_r2_and_rmse():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert metrics.r2_score(y, y) == 1.0
    assert np.isclose(metrics.r2_score(y, np.full(4, y.mean())), 0.0)
    assert np.isclose(metrics.rmse(y, y + 2.0), 2.0)
    with pytest.raises(ValueError, match="y_pred"):
        metrics.r2_score(y, y[:3])
    with pytest.raises(ValueError, match="constant"):
        metrics.r2_score(np.ones(3), np.ones(3))


def test_time_blocks_are_contiguous_and_ordered():
    train, val, test = metrics.time_blocks(100, (0.6, 0.2, 0.2), gap=5)
    assert (train.start, train.stop) == (0, 54)
    assert val.start == train.stop + 5 and test.start == val.stop + 5 and test.stop == 100
    with pytest.raises(ValueError, match="fractions"):
        metrics.time_blocks(100, (0.5, 0.2))
    with pytest.raises(ValueError, match="n_time"):
        metrics.time_blocks(3, gap=5)


def test_convergence_order_recovers_power_law():
    h = np.array([0.1, 0.05, 0.025])
    assert np.isclose(metrics.convergence_order(h, 7 * h**3), 3.0)
    with pytest.raises(ValueError, match="positive"):
        metrics.convergence_order(h, -h)
