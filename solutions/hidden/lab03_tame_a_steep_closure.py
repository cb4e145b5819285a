"""Hidden checks of lab 3 (run by the grader only)."""

import numpy as np

from nnparam.labs.feedback import as_scalar, call, passed, require


def exercise_1(h_max):
    """Damping rates and slopes of other magnitudes."""
    for lam, k in ((1e-2, -3e-2), (2.5e-6, 1e-6), (4e-4, 4e-4), (1.0, 5.0)):
        want = 2 / (lam - k) if k < lam else 0.0
        got = as_scalar("h_max", call("h_max", h_max, lam, k))
        require(np.isclose(got, want, rtol=1e-9),
                f"h_max({lam}, {k}) should be {want:g}")
    passed("h_max on new damping rates")


def exercise_2(power_spectral_norm):
    """A tall matrix with two close singular values (slower convergence)."""
    rng = np.random.default_rng(31)
    u, _ = np.linalg.qr(rng.standard_normal((50, 50)))
    v, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    w = u[:, :3] @ np.diag([2.0, 1.6, 0.1]) @ v.T
    got = as_scalar("power_spectral_norm", call("power_spectral_norm",
                                                power_spectral_norm, w))
    require(np.isclose(got, 2.0, rtol=1e-4),
            f"power_spectral_norm gives {got:.5f} for a matrix of spectral norm 2")
    passed("power iteration on a 50x3 matrix")
