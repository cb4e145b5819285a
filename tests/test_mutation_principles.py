"""Mutation tests of the Principles chapters: the safety net is real.

Each case perturbs one stated number (or swaps in a deliberately wrong ingredient) in a
chapter and checks that the chapter's own assertion about that claim then fails, with the
message of the claim that no longer holds. The control shows the unmutated chapter passes,
so the failures come from the mutations and not from the harness. The chapters chosen are
the cheap ones; every mutated run stops at the first failing cell.
"""

import pytest
from mutation import assert_mutation_fails, run_mutated

CASES = {
    # a calmer wind leaves too little gust-scale structure for the explicit filter to
    # separate: the asserted physics/numerics shares no longer hold
    "closure: weaker gusts": (
        "book/principles/closure_problem.ipynb",
        {"setup = tracer.TracerSetup()": "setup = tracer.TracerSetup(gust=0.05)"},
        "physics vs numerics at 62.5 km"),
    # the budget computed with another model's wind (a wrong setup in the attributes) no
    # longer matches the time derivative of the coarse-grained truth
    "closure: budget with the wrong wind": (
        "book/principles/closure_problem.ipynb",
        {"b_fine = tracer.sgs_budget(fine_in_time, FACTOR)":
         "b_fine = tracer.sgs_budget(fine_in_time.assign_attrs(setup_u_mean=44.0), FACTOR)"},
        "true tendency must be d(qbar)/dt"),
    # the two-sided Green-Kubo integral (a factor 2 too large) of the exercise
    "stochastic: two-sided Green-Kubo": (
        "book/principles/stochastic.ipynb",
        {"gk_expected = SIGMA_Y**2 / LAM * (1 - np.exp(-5.0))":
         "gk_expected = 2 * SIGMA_Y**2 / LAM * (1 - np.exp(-5.0))"},
        "Green-Kubo integral off by"),
    # a host step below h_max of the exact closure: the stated instability disappears
    "stability: a shorter host step": (
        "book/principles/stability.ipynb",
        {"h = 9000.0\n": "h = 1800.0\n"},
        "the exact closure is too steep"),
    # a longer memory than the closed form the chapter states (a = 0.8)
    "universal approximation: more memory": (
        "book/principles/universal_approximation.ipynb",
        {"ua.memory_series(2000, memory=0.8, seed=2)":
         "ua.memory_series(2000, memory=0.9, seed=2)"},
        "x_t alone: R^2 = 1 - 0.8^2 = 0.36"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_perturbed_claim_stops_the_chapter(name):
    assert_mutation_fails(*CASES[name])


def test_control_the_unmutated_chapter_passes():
    assert run_mutated("book/principles/closure_problem.ipynb", {}, timeout=300) is None
