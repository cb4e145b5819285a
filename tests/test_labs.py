"""The lab generator, the lab sync, the grader's lab definitions, what the student notebooks
may contain, and the notebook storage rules."""

import json
import re
from pathlib import Path

import pytest
from notebooks import make_notebook

from nnparam import labs
from nnparam.labs import definition, myst

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for d in ("book", "solutions", "labs") for p in (ROOT / d).rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts and "_build" not in p.parts)
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
LABS = sorted((ROOT / "labs").glob("*.ipynb"))


def _src(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src



def _nb(*cells):
    return make_notebook(*cells, kernel=False)


def test_strip_solution_keeps_indentation_and_surroundings():
    src = ("def f(x):\n    ### BEGIN SOLUTION\n    y = 2 * x\n    return y\n"
           "    ### END SOLUTION\n\nprint(f)")
    assert labs.strip_solution(src) == f"def f(x):\n    {labs.STUB}\n\nprint(f)"
    with pytest.raises(ValueError, match="unbalanced"):
        labs.strip_solution("### BEGIN SOLUTION\nx = 1\n")


def test_make_lab_stubs_tags_clears_and_labels():
    nb = _nb(("markdown", "# Lab 99: x"),
             ("markdown", "On this page the solutions are collapsed.", ["book-only"]),
             ("markdown", "Run the cells in order.", ["lab-only", "remove-cell"]),
             ("code", "import numpy"),
             ("markdown", "## Exercise 1: the answer"),
             ("code", "### BEGIN SOLUTION\nans = 42\n### END SOLUTION", ["hide-input"]),
             ("code", "check(ans)"),
             ("markdown", "**Written answer.** Why 42?"),
             ("markdown", "Because.", ["solution"]))
    nb["cells"][3].update(outputs=[1], execution_count=3)
    lab = labs.make_lab(nb, name="lab99_x")
    title, lab_only, first, heading, exercise, check, prompt, answer = lab["cells"]
    assert lab["metadata"]["nnparam"] == {"lab": "lab99_x"}
    assert "On this page" not in json.dumps(lab)  # the book-only cell is gone
    assert "tags" not in lab_only["metadata"]  # kept for the lab, no longer removed
    assert first["outputs"] == [] and first["execution_count"] is None
    assert "tags" not in first["metadata"]  # runs normally in the lab
    assert exercise["source"] == labs.STUB and exercise["metadata"]["tags"] == [labs.RAISES]
    assert exercise["metadata"]["nnparam"] == {"role": "exercise", "exercise": 1,
                                               "label": "Exercise 1: the answer"}
    assert check["source"] == "check(ans)" and labs.RAISES in check["metadata"]["tags"]
    assert check["metadata"]["nnparam"] == {"role": "check", "exercise": 1}
    assert answer["source"] == labs.ANSWER_BOX and "tags" not in answer["metadata"]
    assert answer["metadata"]["nnparam"] == {"role": "answer", "answer": 1,
                                             "label": "Written answer 1: Why 42?"}
    assert nb["cells"][5]["source"].startswith("### BEGIN")  # the solution is untouched


def test_myst_roles_and_directives_become_markdown():
    bib = {"Kubo1966": {"short": "Kubo, 1966", "author": "Kubo", "year": "1966",
                        "full": "Kubo, R. (1966). The fluctuation-dissipation theorem."}}
    text = ("As shown {footcite}`Kubo1966` and by {cite:t}`Kubo1966`, see "
            "{doc}`the chapter <../book/x>` and {download}`the lab <../labs/y.ipynb>`; "
            "{math}`a^2` and {unknown}`z`.\n\n```{note}\n:class: tip\nBe careful.\n```\n\n"
            "## References\n\n```{footbibliography}\n```\n")
    out = myst.to_markdown(text, bib)
    assert "(Kubo, 1966)" in out and "Kubo (1966)" in out
    assert "the chapter" in out and "the lab" in out and "$a^2$" in out and " z." in out
    assert "> **Note.**\n> Be careful." in out
    assert "* Kubo, R. (1966). The fluctuation-dissipation theorem." in out
    assert not myst.has_markup(out)
    assert myst.to_markdown("{footcite}`Nobody2000`") == "(Nobody2000)"  # unknown key kept


def test_generate_detects_stale_and_orphan_labs_and_definitions(tmp_path):
    sol, lab, defs = tmp_path / "solutions", tmp_path / "labs", tmp_path / "defs"
    sol.mkdir()
    nb = _nb(("code", "### BEGIN SOLUTION\nx = 1\n### END SOLUTION"))
    (sol / "lab99_x.ipynb").write_text(json.dumps(nb))
    assert labs.generate(sol, lab, check=True, definitions_dir=defs) == [
        lab / "lab99_x.ipynb", defs / "lab99_x.json"]
    labs.generate(sol, lab, definitions_dir=defs)
    assert labs.generate(sol, lab, check=True, definitions_dir=defs) == []
    (lab / "lab98_orphan.ipynb").write_text("{}")
    (defs / "lab98_orphan.json").write_text("{}")
    assert labs.generate(sol, lab, check=True, definitions_dir=defs) == [
        lab / "lab98_orphan.ipynb", defs / "lab98_orphan.json"]
    with pytest.raises(ValueError, match="solutions_dir"):
        labs.generate(tmp_path / "nope", lab)


def test_committed_labs_and_definitions_are_up_to_date():
    assert labs.generate(ROOT / "solutions", ROOT / "labs", check=True,
                         definitions_dir=definition.PACKAGE_DIR) == []


def test_check_code_takes_the_check_cell_and_the_check_calls_after_the_stub():
    aliases = {"check": ["nnparam.labs.checks_x", None], "require": [
        "nnparam.labs.feedback", "require"]}
    exercise = (f"prep = 1\ndef f(x):\n    {labs.STUB}\n\n\ny = f(2)\nprint(y)\n"
                f"check.f(f)\nrequire(y == 4, 'no')")
    assert definition.check_code(exercise, "check.g(g)\nz = 3", aliases) == \
        "check.f(f)\nrequire(y == 4, 'no')\ncheck.g(g)\nz = 3"
    assert definition.check_aliases([
        {"cell_type": "code", "source": "import numpy as np\nfrom nnparam.labs import "
                                        "checks_x as check\nfrom nnparam.labs.feedback "
                                        "import require, passed as ok"}]) == {
        "check": ["nnparam.labs.checks_x", None], "require": ["nnparam.labs.feedback",
                                                              "require"],
        "ok": ["nnparam.labs.feedback", "passed"]}


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_every_exercise_has_a_check_the_grader_can_rerun(path):
    d = json.loads((definition.PACKAGE_DIR / f"{path.stem}.json").read_text())
    assert d["exercises"], f"{path.name}: no exercise"
    for ex in d["exercises"]:
        assert ex["check"].strip(), f"{path.name}: {ex['label']} has no check"
        assert any(alias in ex["check"] for alias in d["aliases"]), ex["check"]


#: labs whose authors still have to move their book-page text into a `book-only` cell
BOOK_TEXT_TO_MOVE: set[str] = set()


@pytest.mark.parametrize("path", [
    pytest.param(p, marks=pytest.mark.xfail(
        strict=True, reason="the intro still speaks of the book page and links a repository "
                            "by hand: move it into a book-only cell"))
    if p.name in BOOK_TEXT_TO_MOVE else p for p in LABS], ids=lambda p: p.name)
def test_student_labs_hold_no_book_markup_and_no_solution(path):
    lab = json.loads(path.read_text())
    solution = json.loads((ROOT / "solutions" / path.name).read_text())
    texts = [_src(c) for c in lab["cells"]]
    for text in texts:
        assert not myst.has_markup(text), f"{path.name}: MyST markup left: {text[:200]!r}"
        assert not re.search(r"on this page|launch button|worked solutions are", text, re.I), \
            f"{path.name}: text about the book page: {text[:200]!r}"
        assert labs.BEGIN not in text and labs.END not in text
    everything = "\n".join(texts)
    code = "\n".join(_src(c) for c in lab["cells"] if c["cell_type"] == "code")
    for cell in solution["cells"]:
        src = _src(cell)
        if cell["cell_type"] == "markdown" and "solution" in cell["metadata"].get("tags", []):
            assert src.strip() not in everything, f"{path.name}: the model answer leaked"
        for block in re.findall(rf"{re.escape(labs.BEGIN)}(.*?){re.escape(labs.END)}", src,
                                re.DOTALL):
            lines = [ln.strip() for ln in block.splitlines() if len(ln.strip()) > 25]
            leaked = [ln for ln in lines if ln in code]  # (the text may quote a line)
            assert not leaked, f"{path.name}: solution lines in the lab: {leaked}"
    assert sum(t == labs.ANSWER_BOX for t in texts) == sum(
        "solution" in c["metadata"].get("tags", []) for c in solution["cells"]
        if c["cell_type"] == "markdown")


@pytest.mark.parametrize("path", sorted(definition.PACKAGE_DIR.glob("*.json")),
                         ids=lambda p: p.name)
def test_definitions_hold_no_solution(path):
    solution = json.loads((ROOT / "solutions" / f"{path.stem}.ipynb").read_text())
    d = json.loads(path.read_text())
    text = "\n".join([s for t, s in d["cells"] if t == "code"]
                     + [e["check"] for e in d["exercises"]])
    for cell in solution["cells"]:
        for block in re.findall(rf"{re.escape(labs.BEGIN)}(.*?){re.escape(labs.END)}",
                                _src(cell), re.DOTALL):
            for line in (ln.strip() for ln in block.splitlines() if len(ln.strip()) > 25):
                assert line not in text, f"{path.name}: {line}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebooks_are_stored_without_outputs(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, \
                f"{path.name} has outputs: clear them before committing"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solution_cells_are_collapsed_online(path):
    for cell in json.loads(path.read_text())["cells"]:
        if labs.is_exercise(cell):
            assert "hide-input" in cell["metadata"].get("tags", []), \
                f"{path.name}: tag exercise cells hide-input so the book shows them collapsed"
        if "lab-only" in cell["metadata"].get("tags", []):
            assert "remove-cell" in cell["metadata"]["tags"], \
                f"{path.name}: a lab-only cell needs remove-cell too, or the book shows it"
