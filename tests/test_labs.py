"""The lab generator, the lab sync, and the notebook storage rules."""

import json
from pathlib import Path

import pytest

from nnparam import labs

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for d in ("book", "solutions", "labs") for p in (ROOT / d).rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts and "_build" not in p.parts)


def test_strip_solution_keeps_indentation_and_surroundings():
    src = ("def f(x):\n    ### BEGIN SOLUTION\n    y = 2 * x\n    return y\n"
           "    ### END SOLUTION\n\nprint(f)")
    assert labs.strip_solution(src) == f"def f(x):\n    {labs.STUB}\n\nprint(f)"
    with pytest.raises(ValueError, match="unbalanced"):
        labs.strip_solution("### BEGIN SOLUTION\nx = 1\n")


def test_make_lab_stubs_tags_and_clears():
    nb = {"cells": [
        {"cell_type": "code", "metadata": {}, "source": "import numpy", "outputs": [1],
         "execution_count": 3},
        {"cell_type": "code", "metadata": {"tags": ["hide-input"]}, "outputs": [],
         "source": "### BEGIN SOLUTION\nans = 42\n### END SOLUTION", "execution_count": None},
        {"cell_type": "code", "metadata": {}, "source": "check(ans)", "outputs": [],
         "execution_count": None},
        {"cell_type": "markdown", "metadata": {"tags": ["solution"]}, "source": "Because."},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    lab = labs.make_lab(nb)
    first, exercise, check, answer = lab["cells"]
    assert first["outputs"] == [] and first["execution_count"] is None
    assert "tags" not in first["metadata"]  # runs normally in the lab
    assert exercise["source"] == labs.STUB and exercise["metadata"]["tags"] == [labs.RAISES]
    assert check["source"] == "check(ans)" and labs.RAISES in check["metadata"]["tags"]
    assert answer["source"] == labs.ANSWER_BOX and "tags" not in answer["metadata"]
    assert nb["cells"][1]["source"].startswith("### BEGIN")  # the solution is untouched


def test_generate_detects_stale_and_orphan_labs(tmp_path):
    sol, lab = tmp_path / "solutions", tmp_path / "labs"
    sol.mkdir()
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                     "source": "### BEGIN SOLUTION\nx = 1\n### END SOLUTION"}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (sol / "lab99_x.ipynb").write_text(json.dumps(nb))
    assert labs.generate(sol, lab, check=True) == [lab / "lab99_x.ipynb"]
    labs.generate(sol, lab)
    assert labs.generate(sol, lab, check=True) == []
    (lab / "lab98_orphan.ipynb").write_text("{}")
    assert labs.generate(sol, lab, check=True) == [lab / "lab98_orphan.ipynb"]
    with pytest.raises(ValueError, match="solutions_dir"):
        labs.generate(tmp_path / "nope", lab)


def test_committed_labs_are_up_to_date():
    assert labs.generate(ROOT / "solutions", ROOT / "labs", check=True) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebooks_are_stored_without_outputs(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, \
                f"{path.name} has outputs: clear them before committing"


@pytest.mark.parametrize("path", sorted((ROOT / "solutions").glob("*.ipynb")),
                         ids=lambda p: p.name)
def test_solution_cells_are_collapsed_online(path):
    for cell in json.loads(path.read_text())["cells"]:
        if labs.is_exercise(cell):
            assert "hide-input" in cell["metadata"].get("tags", []), \
                f"{path.name}: tag exercise cells hide-input so the book shows them collapsed"
