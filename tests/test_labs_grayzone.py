"""Checks of lab 04 accept the worked answer and reject the typical mistakes."""

import numpy as np
import pytest

from nnparam import grayzone as gz
from nnparam.labs import checks_grayzone as check
from nnparam.labs.feedback import LabCheckError


@pytest.fixture(scope="module")
def part():
    return gz.coarse_grain(gz.plume_field(2.0, seed=0), 3.0)


def test_subgrid_share(part):
    resolved = np.mean(part.w_bar * part.phi_bar)
    subgrid = np.mean(part.subgrid_flux)
    assert check.subgrid_share(subgrid / (resolved + subgrid), part)
    with pytest.raises(LabCheckError, match="RESOLVED"):
        check.subgrid_share(resolved / (resolved + subgrid), part)
    with pytest.raises(LabCheckError, match="total \\+ subgrid"):
        check.subgrid_share(subgrid / (resolved + 2 * subgrid), part)
    with pytest.raises(LabCheckError, match="None"):
        check.subgrid_share(None, part)


@pytest.fixture(scope="module")
def data():
    train = gz.samples([1.0, 5.0, 25.0], seeds=(0,))
    test = gz.samples([3.0], seeds=(10,))
    return train, test


def test_split(data):
    train, test = data
    assert check.split(train, test, 3.0)
    leaky = gz.samples([1.0, 3.0, 5.0, 25.0], seeds=(0,))
    with pytest.raises(LabCheckError, match="leaks"):
        check.split(leaky, test, 3.0)
    same_field = gz.samples([3.0], seeds=(0,))
    with pytest.raises(LabCheckError, match="seeds"):
        check.split(train, same_field, 3.0)
    outside = gz.samples([5.0, 10.0, 25.0], seeds=(0,))
    with pytest.raises(LabCheckError, match="INSIDE"):
        check.split(outside, test, 3.0)


def test_features():
    assert check.features(gz.features)

    def raw_km(data):
        return np.column_stack([np.arcsinh(data["w_bar"] / 0.05),
                                np.arcsinh(data["phi_bar"] / 0.05), data["dx_km"]])

    with pytest.raises(LabCheckError, match="raw kilometres"):
        check.features(raw_km)

    def no_dx(data):
        return gz.features(data, scale_aware=False)

    with pytest.raises(LabCheckError, match="shape"):
        check.features(no_dx)


def test_skill():
    assert check.skill(0.8, 0.1)
    with pytest.raises(LabCheckError, match="TRAINING statistics"):
        check.skill(0.2, 0.1)
    with pytest.raises(LabCheckError, match="not above"):
        check.skill(0.6, 0.7)
