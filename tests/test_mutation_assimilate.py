"""Mutations of "Learning without a truth": a changed setting must trip the chapter's asserts."""

import pytest
from mutation import assert_mutation_fails

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
    assert_mutation_fails(CHAPTER, replacements, message, timeout=120)
