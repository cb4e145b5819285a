"""Hidden checks of lab 4 (run by the grader only)."""

import numpy as np

from nnparam import grayzone as gz
from nnparam.labs.feedback import as_ndarray, as_scalar, call, passed, require


def exercise_1(subgrid_share):
    """Partitions of another plume field."""
    field = gz.plume_field(2.0, seed=17)
    for dx in (4.0, 20.0):
        part = gz.coarse_grain(field, dx)
        got = as_scalar("subgrid_share", call("subgrid_share", subgrid_share, part))
        require(np.isclose(got, part.subgrid / part.total, rtol=1e-9),
                f"subgrid_share is wrong at dx = {dx} km")
    passed("subgrid share of another field")


def exercise_3(make_features, RADIUS):  # noqa: N803 (the lab's name)
    """Samples of other fields and resolutions."""
    data = gz.samples([1.5, 7.0, 30.0], seeds=(21,), plume_radius_km=RADIUS)
    got = as_ndarray("make_features", call("make_features", make_features, data))
    require(np.allclose(got, gz.features(data, plume_radius_km=RADIUS)),
            "make_features is wrong for other resolutions")
    passed("features for other resolutions")
