"""What ``_config.yml`` and ``book/_ext`` do to the pages, on a two-page book built with
them: the repository URL is one setting (buttons only when it is set), written answers on
lab pages are collapsed, and a chapter's self-check quiz is embedded in the page."""

import re

import pytest
from minibook import ANSWER, build


@pytest.fixture(scope="module")
def unset(tmp_path_factory):
    return build(tmp_path_factory.mktemp("unset"))


@pytest.fixture(scope="module")
def fork(tmp_path_factory):
    return build(tmp_path_factory.mktemp("fork"), "https://github.com/someone/course-book")


def test_no_repository_buttons_without_a_url(unset):
    page = (unset / "solutions" / "lab99_mini.html").read_text()
    for marker in ("repository-button", "issues-button", "launch-buttons",
                   "mybinder.org/v2", "colab.research.google.com/github"):
        assert marker not in page, marker
    assert "not set" in (unset / "book" / "guide.html").read_text()


def test_buttons_follow_the_url(fork):
    page = (fork / "solutions" / "lab99_mini.html").read_text()
    assert "https://github.com/someone/course-book" in page
    for marker in ("repository-button", "launch-buttons", "mybinder.org/v2/gh/someone",
                   "colab.research.google.com/github/someone"):
        assert marker in page, marker
    assert "https://github.com/someone/course-book" in (fork / "book" / "guide.html"
                                                         ).read_text()


def test_written_answers_are_collapsed_on_lab_pages(unset):
    page = (unset / "solutions" / "lab99_mini.html").read_text()
    box = re.search(r'<div class="[^"]*dropdown[^"]*lab-model-answer[^"]*"[^>]*>(.*?)</div>',
                    page, re.DOTALL)
    assert box and "Model answer" in box.group(1) and ANSWER in box.group(1)


def test_quiz_is_embedded_in_the_page(unset):
    page = (unset / "solutions" / "lab99_mini.html").read_text()
    assert "show_questions" in page and "h_max" in page
    assert "nnparam.quiz" not in page  # the cell's input is removed
