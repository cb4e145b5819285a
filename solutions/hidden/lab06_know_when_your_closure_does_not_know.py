"""Hidden checks of lab 6 (run by the grader only)."""

import numpy as np

from nnparam.labs.feedback import as_array, call, passed, require


def exercise_1(my_decompose):
    """A larger ensemble than the visible check's."""
    rng = np.random.default_rng(606)
    mu, var = rng.normal(0, 3, (11, 17)), rng.uniform(0.1, 4, (11, 17))
    ale, epi = call("my_decompose", my_decompose, mu, var)
    require(np.allclose(as_array("aleatoric", ale), var.mean(0)) and
            np.allclose(as_array("epistemic", epi), mu.var(0)),
            "my_decompose is wrong for an ensemble of 11 members at 17 inputs")
    passed("decomposition of an 11-member ensemble")


def exercise_3(ens):
    """The ensemble is the one the exercise asks for."""
    require(ens.size == 5 and ens.config.get("hidden") == (32, 32),
            f"the ensemble should have 5 members of hidden=(32, 32), got {ens.size} of "
            f"{ens.config.get('hidden')}")
    passed("five members of (32, 32)")
