"""Mutation tests of the atmosphere chapter: wrong numbers stop it, with the claim's message.

Each test runs the chapter with one substitution and expects the first failing cell to be the
assert that guards the mutated claim. The mutations sit early in the notebook, so each run
stops within the first seconds of the chapter.
"""

from pathlib import Path

from mutation import run_mutated

CHAPTER = Path("book/applications/atmosphere_l96.ipynb")


def test_a_perturbed_published_coefficient_is_not_reproduced():
    # Arnold et al. (2013), c = 10: b1 = 1.30; a published slope of 1.40 must fail the check
    failure = run_mutated(CHAPTER, {'"cubic": [0.341, 1.30, -0.0136, -0.00235]':
                                    '"cubic": [0.341, 1.40, -0.0136, -0.00235]'})
    assert failure is not None and failure.ename == "AssertionError"
    assert "Arnold's cubic is reproduced" in failure.message


def test_the_instantaneous_coupling_is_not_the_coarse_step_target():
    # training on the wrong target: the (dt / 2) X'' term that defines U_dt disappears
    failure = run_mutated(CHAPTER, {"U = l96.coarse_step_target(X, DT, F)  #":
                                    "U = U_inst[:-1]  #"})
    assert failure is not None and failure.ename == "AssertionError"
    assert "the targets differ by more than 20 %" in failure.message


def test_a_closure_with_the_wrong_sign_breaks_the_offline_claims():
    # a deliberately wrong closure: the cubic with its sign flipped
    failure = run_mutated(CHAPTER, {
        'r2 = {name: ev.r2_score(U[test_b], P(Xs[test_b])) for name, P in closures.items()}':
        'closures["cubic"] = l96.Polynomial(-poly["cubic"].coef)\n'
        'r2 = {name: ev.r2_score(U[test_b], P(Xs[test_b])) for name, P in closures.items()}'})
    assert failure is not None and failure.ename == "AssertionError"
    assert "offline skill rises" in failure.message
