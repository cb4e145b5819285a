"""Hidden checks of lab 8 (run by the grader only)."""

import numpy as np

from nnparam.apps import qg
from nnparam.labs.feedback import as_array, call, passed, relative_error, require


def exercise_1(coarse_grain):
    """Operator 1 for another coarse grid (factor 4) and a float32 field."""
    field = np.random.default_rng(808).standard_normal((2, 128, 128)).astype(np.float32)
    out = call("coarse_grain", coarse_grain, field, 32)
    got = as_array("coarse_grain(field, 32)", out, shape=(2, 32, 32))
    require(relative_error(got, qg.coarsen(field.astype(float), 32)) < 1e-5,
            "coarse_grain is wrong for nx = 32: does it assume a factor 2 somewhere?")
    passed("operator 1 onto a 32 x 32 grid")


def exercise_3(split):
    """A longer record than the visible check's."""
    train, val, test = call("split", split, 200)
    idx = [np.arange(200)[b] if isinstance(b, slice) else np.asarray(b)
           for b in (train, val, test)]
    require(idx[1].min() - idx[0].max() > 6 and idx[2].min() - idx[1].max() > 6,
            "split(200) leaves less than 6 snapshots between blocks")
    passed("split of a 200-snapshot record")
