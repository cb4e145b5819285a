"""A two-page book built with the repository's own ``_config.yml`` and ``book/_ext``, for
testing what the configuration does to the pages (buttons, collapsed answers, quizzes)
without building the whole book."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
ANSWER = "The model answer of the mini lab."


def _notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    answer = nbformat.v4.new_markdown_cell(ANSWER)
    answer.metadata["tags"] = ["solution"]
    quiz = nbformat.v4.new_code_cell('from nnparam.quiz import show; show("stability")')
    quiz.metadata["tags"] = ["remove-input"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Lab 99: mini\n\nA lab page."),
                nbformat.v4.new_code_cell("x = 1 + 1"),
                nbformat.v4.new_markdown_cell("**Written answer.** Why?"), answer,
                nbformat.v4.new_markdown_cell("## Self-check"), quiz]
    nbformat.write(nb, path)


def build(folder: Path, repository_url: str = "") -> Path:
    """Build the mini book in ``folder``; return its ``_build/html``."""
    (folder / "book").mkdir(parents=True)
    (folder / "solutions").mkdir()
    for name in ("_ext", "_static", "references.bib"):
        (folder / "book" / name).symlink_to(ROOT / "book" / name)
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["repository"]["url"] = repository_url
    (folder / "_config.yml").write_text(yaml.safe_dump(config))
    (folder / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n"
                                     "  - file: solutions/lab99_mini\n  - file: book/guide\n")
    (folder / "book" / "intro.md").write_text("# Mini book\n\nThe first page.\n")
    (folder / "book" / "guide.md").write_text("# Guide\n\nThe repository: "
                                              "{{ repository_url }}.\n")
    _notebook(folder / "solutions" / "lab99_mini.ipynb")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep
           + os.environ.get("PYTHONPATH", "")}
    jb = Path(sys.executable).with_name("jupyter-book")
    subprocess.run([str(jb), "build", str(folder), "-W", "-n", "--keep-going", "-q"],
                   check=True, env=env, capture_output=True, text=True)
    return folder / "_build" / "html"
