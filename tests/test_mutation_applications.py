"""Mutation tests of the application chapters: their assertions can fail.

Each case perturbs one stated parameter (or swaps in a deliberately wrong closure) in an
application chapter and checks that the chapter's own assertion about that claim then
fails, with the message of the claim that no longer holds. The control shows that an
unmutated chapter passes, so the failures come from the mutations and not from the
harness. Mutations act on early cells where possible: a mutated run stops at the first
failing cell.
"""

import pytest
from mutation import assert_mutation_fails, run_mutated

CASES = {
    # the 512-cell stress taken with the 256-cell filter width: the resolution check must
    # notice that the two truths no longer agree
    "burgers: resolution check with the wrong filter": (
        "book/applications/burgers.ipynb",
        {"bg.sgs_stress(u2, 2 * FACTOR).mean()": "bg.sgs_stress(u2, FACTOR).mean()"},
        "mean stress <tau> changes with resolution"),
    # eddies of uniform strength: the diffusivity no longer grows with the gradient
    "ocean: eddies that ignore the fronts": (
        "book/applications/ocean.ipynb",
        {"setup = ocean.EddySetup()":
         "setup = ocean.EddySetup(gradient_speed=0.0, base_speed=2.5)"},
        "eddy diffusivity should grow with gradient"),
    # a deliberately wrong closure: the direct-flux networks run in place of the learned
    # diffusivities, and the first of them loses to the constant online
    "ocean: direct flux in place of the learned kappa": (
        "book/applications/ocean.ipynb",
        {"ocean.network_closure(m, grid, width=0)\n"
         "                 for s, m in zip(seeds, kappa_nets, strict=True)})":
         "ocean.network_closure(m, grid, width=1)\n"
         "                 for s, m in zip(seeds, flux_nets, strict=True)})"},
        "learned kappa 0 should beat the constant online"),
    # a deliberately wrong closure: the mean-only network stands in for the variance-aware
    # one in the bucket runs, and misses the season totals
    "land: the mean-only network in the bucket": (
        "book/applications/land.ipynb",
        {'"NN(m, variance)": lambda m: closure_full(with_variance(m)),':
         '"NN(m, variance)": lambda m: closure_mean(with_variance(m)),'},
        "within 10 % on average"),
    # the output bound by E0 alone: the learned rate no longer vanishes without substrate,
    # and a reduced run drives the substrate below zero
    "biology: a closure bounded by E0 only": (
        "book/applications/biology.ipynb",
        {"return np.minimum(e0, np.maximum(np.asarray(s, dtype=float), 0.0))":
         "return np.full_like(np.asarray(s, dtype=float), e0)"},
        "a reduced run must not consume substrate that is not there"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_perturbed_claim_stops_the_chapter(name):
    assert_mutation_fails(*CASES[name])


def test_control_the_unmutated_chapter_passes():
    assert run_mutated("book/applications/land.ipynb", {}, timeout=300) is None
