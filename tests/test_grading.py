"""The grader: exercise discovery and alignment (every lab), headless grading of a small
synthetic lab (pass, stub, wrong answer, renamed file, time-out, errors, non-labs), and the
real lab 1 (solution, generated lab, a deliberately wrong submission)."""

import copy
import csv
import json
import re
from pathlib import Path

import pytest

from nnparam import labs
from nnparam.labs import __main__ as cli
from nnparam.labs import grading

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
LAB1 = ROOT / "solutions" / "lab01_training_set.ipynb"


def _nb(*cells):
    out = []
    for kind, src in cells:
        cell = {"cell_type": kind, "metadata": {}, "source": src}
        if kind == "code":
            cell.update(outputs=[], execution_count=None)
        out.append(cell)
    return {"cells": out, "metadata": {"kernelspec": {"name": "python3", "language": "python",
                                                      "display_name": "Python 3"}},
            "nbformat": 4, "nbformat_minor": 5}


MINI = _nb(
    ("markdown", "# Lab 90: mini"),
    ("code", "import time\n\nfrom nnparam.labs.feedback import passed, require"),
    ("markdown", "## Exercise 1: double it"),
    ("code", "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"),
    ("code", "require(double(3) == 6, f'double(3) should be 6, got {double(3)}')\n"
             "passed('double works')"),
    ("markdown", "## Exercise 2: squares"),
    ("code", "### BEGIN SOLUTION\nsquares = [k * k for k in range(4)]\n### END SOLUTION\n"
             "require(squares == [0, 1, 4, 9], 'squares should be [0, 1, 4, 9]')\n"
             "passed('squares')"),
    ("markdown", "## The end"),
    ("code", "print(double(squares[-1]))"),
)


def _with(nb, index, source, insert=None):
    """A copy of ``nb`` with cell ``index`` replaced (and optionally a code cell inserted)."""
    new = copy.deepcopy(nb)
    new["cells"][index]["source"] = source
    if insert is not None:
        new["cells"].insert(index, _nb(("code", insert))["cells"][0])
    return new


@pytest.fixture(scope="module")
def mini_solutions(tmp_path_factory):
    folder = tmp_path_factory.mktemp("solutions")
    (folder / "lab90_mini.ipynb").write_text(json.dumps(MINI))
    return folder


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_every_lab_has_exercises_that_align_after_student_edits(path):
    solution = json.loads(path.read_text())
    exercises = grading.exercises_of(solution)
    assert exercises, f"{path.name}: no ### BEGIN SOLUTION cell"
    lab_nb = labs.make_lab(solution)
    lab = grading.load_labs(path.parent)[path.stem]
    assert grading.align(lab, lab_nb) == list(exercises)
    # a student fills every stub in place: every exercise maps to the same cells
    in_place = copy.deepcopy(lab_nb)
    for k, (_, first, _) in enumerate(exercises):
        in_place = _with(in_place, first, f"answer_{k} = {k}")
    assert grading.align(lab, in_place) == list(exercises)
    # a student fills every stub and inserts a scratch cell before each exercise
    student = copy.deepcopy(lab_nb)
    for k, (_, first, _) in enumerate(reversed(exercises)):
        student = _with(student, first, f"answer_{k} = {k}", insert="scratch = 0")
    assert grading.identify(student, Path("renamed.ipynb"), {lab.name: lab}) is lab
    spans = grading.align(lab, student)
    for shift, ((_, first, last), (_, s_first, s_last)) in enumerate(zip(exercises, spans,
                                                                        strict=True)):
        cells = student["cells"][s_first:s_last + 1]
        assert cells[0]["source"] == "scratch = 0" and s_first == first + shift
        assert cells[1]["source"].startswith("answer_")
        assert s_last - s_first == last - first + 1  # the check cell is included


def test_grade_cli_on_a_class_of_mini_labs(mini_solutions, tmp_path, capsys):
    sub = tmp_path / "submissions"
    sub.mkdir()
    lab_nb = labs.make_lab(MINI)
    (sub / "alice.ipynb").write_text(json.dumps(MINI))  # renamed solution: all pass
    (sub / "bob.ipynb").write_text(json.dumps(lab_nb))  # untouched lab: not implemented
    wrong = _with(MINI, 3, "def double(x):\n    return x * x", insert="helper = 1")
    (sub / "carol.ipynb").write_text(json.dumps(wrong))
    slow = _with(MINI, 3, "def double(x):\n    return 2 * x\n\n\ntime.sleep(120)")
    # stale outputs of the student's own run must not count for the exercise never reached
    slow["cells"][6]["outputs"] = [{"output_type": "stream", "name": "stdout",
                                    "text": "[ok] squares\n"}]
    (sub / "dave.ipynb").write_text(json.dumps(slow))
    setup_fails = _with(MINI, 1, "import nonexistent_module_xyz")
    (sub / "erin.ipynb").write_text(json.dumps(setup_fails))
    no_check = copy.deepcopy(MINI)
    del no_check["cells"][4]  # the check of exercise 1 deleted: no [ok], no pass
    (sub / "frank.ipynb").write_text(json.dumps(no_check))
    (sub / "notes.ipynb").write_text(json.dumps(_nb(("code", "print('hello')"))))
    (sub / "broken.ipynb").write_text("{ not json")
    out = tmp_path / "grades.csv"
    assert cli.main(["grade", str(sub), "--out", str(out), "--timeout", "20",
                     "--solutions", str(mini_solutions)]) == 0
    with out.open() as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == grading.COLUMNS
    table = {(Path(r[0]).stem, r[2]): (r[1], r[3], r[4]) for r in rows[1:]}
    ex1, ex2 = "Exercise 1: double it", "Exercise 2: squares"
    assert table[("alice", ex1)] == ("lab90_mini", "yes", "[ok] double works")
    assert table[("alice", ex2)] == ("lab90_mini", "yes", "[ok] squares")
    for ex in (ex1, ex2):
        assert table[("bob", ex)][1] == "no"
        assert table[("bob", ex)][2].startswith("not implemented")
    assert table[("carol", ex1)][1:] == ("no", "double(3) should be 6, got 9")
    assert table[("carol", ex2)][1] == "yes"
    assert table[("dave", ex1)][1:] == ("no", "TimeoutError: timed out after 20 s")
    assert table[("dave", ex2)][1:] == ("no", "not reached: timed out after 20 s")
    assert table[("erin", ex1)][1:] == ("no", "NameError: name 'require' is not defined "
                                             "(an earlier cell failed, so this name was never "
                                             "defined)")
    assert table[("frank", ex1)][1:] == ("no", grading.NO_CHECK)
    assert table[("frank", ex2)][1] == "yes"
    assert table[("notes", "")][2].startswith("not a lab")
    assert table[("broken", "")][2].startswith("unreadable notebook")
    assert len(rows) == 1 + 6 * 2 + 2
    printed = capsys.readouterr().out
    assert "alice.ipynb: lab90_mini 2/2 exercises passed" in printed
    assert "dave.ipynb: lab90_mini 0/2 exercises passed (timed out after 20 s)" in printed
    assert "8 notebooks, 4/12 exercises passed" in printed


def test_cli_keeps_the_generator_and_rejects_bad_input(mini_solutions, tmp_path, capsys):
    lab_dir = tmp_path / "labs"
    args = ["--solutions", str(mini_solutions), "--labs", str(lab_dir)]
    assert cli.main(["--check", *args]) == 1
    assert cli.main(args) == 0 and (lab_dir / "lab90_mini.ipynb").exists()
    assert cli.main(["--check", *args]) == 0
    for bad in (["grade", str(tmp_path / "missing.ipynb")],
                ["grade", str(lab_dir), "--timeout", "0"],
                ["grade", str(lab_dir), "--solutions", str(tmp_path / "nope")]):
        with pytest.raises(SystemExit):
            cli.main(bad)
    capsys.readouterr()
    with pytest.raises(ValueError, match="timeout"):
        grading.grade([lab_dir], mini_solutions, timeout=0)
    with pytest.raises(ValueError, match="solutions_dir"):
        grading.load_labs(tmp_path / "nope")
    with pytest.raises(ValueError, match="paths"):
        grading.find_notebooks([tmp_path / "missing.ipynb"])


@pytest.mark.skipif(not LAB1.exists(), reason="lab 1 is not in solutions/")
def test_grade_lab1_solution_stub_and_wrong_submission(tmp_path):
    solution = json.loads(LAB1.read_text())
    exercises = grading.exercises_of(solution)
    last_exercise = exercises[-1][1]
    wrong = copy.deepcopy(solution)
    # the network exercise "answered" with the linear baseline: the check must say so
    wrong["cells"][last_exercise]["source"] = "y_pred_mlp = y_pred_linear.copy()"
    (tmp_path / "student_17.ipynb").write_text(json.dumps(wrong))
    rows = grading.grade([LAB1, ROOT / "labs" / LAB1.name, tmp_path / "student_17.ipynb"],
                         ROOT / "solutions", timeout=240)
    by_file = {}
    for r in rows:
        by_file.setdefault(Path(r.student_file).parent.name, []).append(r)
    n = len(exercises)
    assert all(r.passed and r.message.startswith("[ok]") for r in by_file["solutions"]), rows
    assert all(not r.passed and r.message.startswith("not implemented")
               for r in by_file["labs"]), rows
    graded = by_file[tmp_path.name]
    assert [r.lab for r in graded] == ["lab01_training_set"] * n
    assert [r.passed for r in graded] == [True] * (n - 1) + [False]
    # the check's own message, scoring the copied baseline exactly as the baseline scored
    r2_linear = re.search(r"linear regression: test R\^2 = ([0-9.]+)", graded[-2].message)
    assert r2_linear, graded[-2].message
    assert graded[-1].message.startswith(f"MLP: test R^2 = {r2_linear.group(1)} is below 0.9")
