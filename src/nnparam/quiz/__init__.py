"""Formative self-checks for the chapters: a few quick questions with immediate feedback.

``show("stability")`` displays the questions of a chapter with jupyterquiz (interactive in
Jupyter and on the built book's pages, where the quiz's script and styles are embedded in the
page, so it works offline). Nothing is recorded or graded. Without jupyterquiz, or outside a
notebook, the questions and their answers are printed instead.

A chapter shows its quiz with one cell, tagged ``remove-input`` so that the book shows the
quiz and not the code::

    from nnparam.quiz import show; show("stability")
"""

from __future__ import annotations

import random

from .questions import QUESTIONS

__all__ = ["QUESTIONS", "chapters", "questions", "show", "validate"]


def chapters() -> list[str]:
    """The chapters that have self-check questions (notebook file stems)."""
    return sorted(QUESTIONS)


def questions(chapter: str) -> list[dict]:
    """The questions of ``chapter`` (a notebook file stem such as ``"stability"``)."""
    if chapter not in QUESTIONS:
        raise ValueError(f"chapter must be one of {chapters()}, got {chapter!r}")
    return QUESTIONS[chapter]


def validate(items: list[dict]) -> None:
    """Raise ValueError unless ``items`` are well-formed jupyterquiz questions with feedback
    on every answer and exactly one correct multiple-choice answer."""
    for i, q in enumerate(items):
        where = f"question {i + 1} ({q.get('question', '')[:40]!r})"
        if not q.get("question") or q.get("type") not in ("multiple_choice", "numeric"):
            raise ValueError(f"{where}: needs a text and the type multiple_choice or numeric")
        answers = q.get("answers") or []
        if any(not a.get("feedback") for a in answers):
            raise ValueError(f"{where}: every answer needs a feedback")
        if q["type"] == "multiple_choice":
            if len(answers) < 2 or sum(bool(a.get("correct")) for a in answers) != 1:
                raise ValueError(f"{where}: needs two or more answers, exactly one correct")
        else:
            values = [a for a in answers if a.get("type") == "value" and a.get("correct")]
            if len(values) != 1 or not isinstance(q.get("precision"), int):
                raise ValueError(f"{where}: needs one correct value and an integer precision")


def _text(items: list[dict]) -> str:
    lines = []
    for i, q in enumerate(items, 1):
        lines.append(f"{i}. {q['question']}")
        for a in q["answers"]:
            if q["type"] == "multiple_choice":
                lines.append(f"   {'*' if a['correct'] else '-'} {a['answer']}")
            elif a.get("type") == "value":
                lines.append(f"   * {a['value']:g}")
    return "\n".join(lines)


def show(chapter: str, shuffle_answers: bool = True) -> None:
    """Display the self-check questions of ``chapter`` (see the module docstring)."""
    items = questions(chapter)
    validate(items)
    try:
        from IPython import get_ipython
        from jupyterquiz import display_quiz
    except ImportError:
        print(_text(items))
        return
    if get_ipython() is None:  # plain Python: no display
        print(_text(items))
        return
    state = random.getstate()  # jupyterquiz names its container with the global generator
    try:
        display_quiz(items, shuffle_answers=shuffle_answers, max_width=720)
    finally:
        random.setstate(state)
