"""Mutations of "Learning without a truth": a changed setting must trip the chapter's asserts."""

import pytest
from mutation import run_mutated

CHAPTER = "book/applications/learning_without_truth.ipynb"


@pytest.mark.parametrize("replacements, message", [
    # one EKI iteration cannot converge the ensemble
    ({"n_iter=6": "n_iter=1"}, "the ensemble has converged"),
    # a filter with inflation 1.0 loses the truth, so the observed components fail first
    ({"def assimilate(closure=None, inflation=1.2, seed=4)":
      "def assimilate(closure=None, inflation=1.0, seed=4)"},
     "observed components beat the observation error"),
])
def test_mutated_chapter_fails(replacements, message):
    failure = run_mutated(CHAPTER, replacements, timeout=120)
    assert failure is not None and failure.ename == "AssertionError", failure
    assert message in failure.message
