"""Hidden checks of lab 5 (run by the grader only)."""

import numpy as np

from nnparam import stochastic as st
from nnparam.labs.feedback import as_scalar, call, passed, require


def exercise_1(green_kubo_integral):
    """Another series, step and number of lags."""
    y = st.ou_process(5000, 0.03, sigma_y=1.3, lam=3.0, n_members=4, seed=99)
    y = y + 0.7
    got = as_scalar("green_kubo_integral", call("green_kubo_integral",
                                                green_kubo_integral, y, 0.03, 17))
    yp = y - y.mean(axis=0)
    c = np.array([np.mean(yp[: len(yp) - k] * yp[k:]) for k in range(18)])
    want = 0.03 * (c.sum() - 0.5 * (c[0] + c[-1]))
    require(abs(got / want - 1) < 5e-3,
            f"green_kubo_integral gives {got:.5g} for another series, expected "
            f"{want:.5g}")
    passed("Green-Kubo on another series")


def exercise_3(var_log_full, BETA, SIGMA_Y, LAM):  # noqa: N803 (the lab's names)
    """Times the visible check does not use."""
    t = np.array([0.013, 0.77, 5.5, 31.0])
    got = np.asarray(call("var_log_full", var_log_full, t), dtype=float)
    want = st.log_variance_full(t, BETA, SIGMA_Y, LAM)
    require(got.shape == t.shape and np.allclose(got, want, rtol=1e-6),
            "var_log_full is wrong at other times")
    passed("variance at other times")
