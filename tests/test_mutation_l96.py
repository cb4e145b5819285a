"""Mutation tests of the atmosphere chapter: wrong numbers stop it, with the claim's message.

Each test runs the chapter with one substitution and expects the first failing cell to be the
assert that guards the mutated claim. The mutations sit early in the notebook, so each run
stops within the first seconds of the chapter.
"""

from pathlib import Path

from mutation import assert_mutation_fails

CHAPTER = Path("book/applications/atmosphere_l96.ipynb")


def test_a_perturbed_published_coefficient_is_not_reproduced():
    # Arnold et al. (2013), c = 10: b1 = 1.30; a published slope of 1.40 must fail the check
    assert_mutation_fails(CHAPTER, {'"cubic": [0.341, 1.30, -0.0136, -0.00235]':
                                    '"cubic": [0.341, 1.40, -0.0136, -0.00235]'},
                          "Arnold's cubic is reproduced")


def test_the_instantaneous_coupling_is_not_the_coarse_step_target():
    # training on the wrong target: the (dt / 2) X'' term that defines U_dt disappears
    assert_mutation_fails(CHAPTER, {"U = l96.coarse_step_target(X, DT, F)  #":
                                    "U = U_inst[:-1]  #"},
                          "the targets differ by more than 20 %")


def test_a_closure_with_the_wrong_sign_breaks_the_offline_claims():
    # a deliberately wrong closure: the cubic with its sign flipped
    assert_mutation_fails(CHAPTER, {
        'r2 = {name: ev.r2_score(U[test_b], P(Xs[test_b])) for name, P in closures.items()}':
        'closures["cubic"] = l96.Polynomial(-poly["cubic"].coef)\n'
        'r2 = {name: ev.r2_score(U[test_b], P(Xs[test_b])) for name, P in closures.items()}'},
                          "offline skill rises")
