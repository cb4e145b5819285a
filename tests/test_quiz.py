"""The chapter self-checks: every question is well-formed, every chapter of the book has
questions, and the questions are shown as text outside a notebook."""

from pathlib import Path

import pytest

from nnparam import quiz

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p.stem for d in ("principles", "applications", "hands-on")
                  for p in (ROOT / "book" / d).glob("*.ipynb"))


@pytest.mark.parametrize("chapter", quiz.chapters())
def test_questions_are_well_formed(chapter):
    items = quiz.questions(chapter)
    assert 2 <= len(items) <= 5
    quiz.validate(items)


def test_every_chapter_has_questions():
    assert set(CHAPTERS) <= set(quiz.chapters()), set(CHAPTERS) - set(quiz.chapters())


def test_validate_rejects_malformed_questions():
    good = quiz.questions("stability")[1]
    two_correct = {**good, "answers": [{**a, "correct": True} for a in good["answers"]]}
    no_feedback = {**good, "answers": [{k: v for k, v in a.items() if k != "feedback"}
                                       for a in good["answers"]]}
    for bad, message in ((two_correct, "exactly one correct"),
                         (no_feedback, "feedback"),
                         ({"question": "?", "type": "essay"}, "type")):
        with pytest.raises(ValueError, match=message):
            quiz.validate([bad])
    with pytest.raises(ValueError, match="chapter must be one of"):
        quiz.questions("no_such_chapter")


def test_show_prints_questions_outside_a_notebook(capsys):
    quiz.show("stability")
    out = capsys.readouterr().out
    assert out.startswith("1. Forward Euler") and "* 48000" in out
    assert "* By the product of the spectral norms" in out  # the correct answer is marked


def test_numeric_answers_are_computed():
    """The numeric answer of the stability quiz is the engine's h_max."""
    from nnparam.stability import max_stable_timestep

    (question,) = [q for q in quiz.questions("stability") if q["type"] == "numeric"]
    value = next(a["value"] for a in question["answers"] if a.get("correct"))
    lam = 1 / 7200
    assert abs(max_stable_timestep(lam, 0.7 * lam) - value) < 1e-6 * value
