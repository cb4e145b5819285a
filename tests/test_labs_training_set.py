"""Lab 1 checks accept the worked answers and reject typical mistakes."""

import numpy as np
import pytest

from nnparam import filters, tracer
from nnparam.labs import checks_training_set as check
from nnparam.labs.feedback import LabCheckError


@pytest.fixture(scope="module")
def truth():
    return tracer.truth_run(tracer.TracerSetup(n=256, max_mode=24), t_end=6.0, spinup=2.0)


def test_coarse_grain_check():
    assert check.coarse_grain(filters.coarse_grain)
    with pytest.raises(LabCheckError, match="every 4th cell"):
        check.coarse_grain(lambda f, k: f[..., ::k])
    with pytest.raises(LabCheckError, match="last"):
        check.coarse_grain(lambda f, k: f.mean(axis=0))
    with pytest.raises(LabCheckError, match="return"):
        check.coarse_grain(lambda f, k: None)


def test_sgs_check(truth):
    sgs = tracer.sgs_budget(truth, 8)["sgs_tendency"].values
    assert check.sgs_tendency(sgs, truth, 8)
    with pytest.raises(LabCheckError, match="wrong sign"):
        check.sgs_tendency(-sgs, truth, 8)
    with pytest.raises(LabCheckError, match="fine-grid shape"):
        check.sgs_tendency(truth["q"].values, truth, 8)
    with pytest.raises(LabCheckError, match="differs"):
        check.sgs_tendency(1.1 * sgs, truth, 8)


def test_split_check():
    idx = np.arange(100)
    assert check.time_split(idx[:60], idx[60:80], idx[80:], 100)
    shuffled = np.random.default_rng(0).permutation(100)
    with pytest.raises(LabCheckError, match="mixes times"):
        check.time_split(shuffled[:60], shuffled[60:80], shuffled[80:], 100)
    with pytest.raises(LabCheckError, match="overlap"):
        check.time_split(idx[:60], idx[50:80], idx[80:], 100)
    with pytest.raises(LabCheckError, match="order"):
        check.time_split(idx[40:], idx[20:40], idx[:20], 100)


def test_prediction_check():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(50, 1))
    good = y + 0.1 * rng.normal(size=y.shape)
    assert check.test_predictions(good, y, "model") > 0.9
    with pytest.raises(LabCheckError, match="wrong sign"):
        check.test_predictions(-good, y, "model")
    with pytest.raises(LabCheckError, match="expected 50 predictions"):
        check.test_predictions(good[:30], y, "model")
    with pytest.raises(LabCheckError, match="does not beat"):
        check.test_predictions(good, y, "model", better_than=0.999)
