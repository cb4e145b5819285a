"""The grader: exercise discovery and alignment (every lab); a class of a small synthetic lab
(pass, stub, wrong answer, edited, deleted and monkeypatched checks, a crash after the last
exercise, written answers, time-out, errors, non-labs, hidden checks); where the labs come
from (solutions, the source tree, the installed definitions); and the real lab 1."""

import copy
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from notebooks import make_notebook

from nnparam import labs
from nnparam.labs import __main__ as cli
from nnparam.labs import definition, grading

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
LAB1 = ROOT / "solutions" / "lab01_training_set.ipynb"



MINI = make_notebook(
    ("markdown", "# Lab 90: mini"),
    ("code", "import time\n\nfrom nnparam.labs.feedback import passed, require"),
    ("markdown", "## Exercise 1: double it"),
    ("code", "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
     ["hide-input"]),
    ("code", "require(double(3) == 6, f'double(3) should be 6, got {double(3)}')\n"
             "require(double(-2) == -4, 'double(-2) should be -4')\npassed('double works')"),
    ("markdown", "## Exercise 2: squares"),
    ("code", "### BEGIN SOLUTION\nsquares = [k * k for k in range(4)]\n### END SOLUTION\n"
             "require(squares == [0, 1, 4, 9], 'squares should be [0, 1, 4, 9]')\n"
             "passed('squares')", ["hide-input"]),
    ("markdown", "**Written answer.** Why do squares grow?"),
    ("markdown", "Because each is larger.", ["solution"]),
    ("markdown", "## The end"),
    ("code", "print(double(squares[-1]))"),
)
HIDDEN = '''"""Hidden checks of the mini lab."""
from nnparam.labs.feedback import passed, require


def exercise_1(double):
    require(double(10) == 20, "double(10) should be 20")
    passed("double(10) == 20")


def exercise_2(squares):
    require(len(squares) == 4, "four squares")
'''


def _with(nb, index, source, insert=None):
    """A copy of ``nb`` with cell ``index`` replaced (and optionally a code cell inserted)."""
    new = copy.deepcopy(nb)
    new["cells"][index]["source"] = source
    if insert is not None:
        new["cells"].insert(index, make_notebook(("code", insert))["cells"][0])
    return new


@pytest.fixture(scope="module")
def mini_solutions(tmp_path_factory):
    folder = tmp_path_factory.mktemp("solutions")
    (folder / "lab90_mini.ipynb").write_text(json.dumps(MINI))
    (folder / "hidden").mkdir()
    (folder / "hidden" / "lab90_mini.py").write_text(HIDDEN)
    return folder


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_every_lab_has_exercises_that_align_after_student_edits(path):
    solution = json.loads(path.read_text())
    exercises = grading.exercises_of(solution)
    assert exercises, f"{path.name}: no ### BEGIN SOLUTION cell"
    lab_nb = labs.make_lab(solution, name=path.stem, bib=labs.bib_for(path.parent))
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


@pytest.fixture(scope="module")
def graded(mini_solutions, tmp_path_factory):
    """A class of mini-lab notebooks graded through the command line, as a table."""
    sub = tmp_path_factory.mktemp("submissions")
    lab_nb = labs.make_lab(MINI, name="lab90_mini")
    notebooks = {
        "alice": MINI,  # the solution, renamed
        "bob": lab_nb,  # the untouched lab
        "carol": _with(MINI, 3, "def double(x):\n    return x * x", insert="helper = 1"),
        # the exercise 1 check edited to print the ok line without checking
        "gina": _with(_with(MINI, 3, "def double(x):\n    return x + 3"), 4,
                      "passed('double works')"),
        # the monkeypatched check: the check function replaced before the check cell runs
        "mallory": _with(MINI, 3, "def double(x):\n    return abs(x) * 2\n\n"
                                  "import nnparam.labs.feedback as fb\n"
                                  "fb.require = lambda condition, message: None\n"
                                  "require = fb.require"),
        # a crash in a provided cell after the last exercise, and a written answer
        "henry": _with(_with(MINI, 10, "raise ValueError('late crash')"), 8,
                       "Each square is the previous one plus an odd number."),
        "dave": _with(MINI, 3, "def double(x):\n    return 2 * x\n\n\ntime.sleep(120)"),
        "erin": _with(MINI, 1, "import nonexistent_module_xyz"),
    }
    # the student's own stale outputs never count
    notebooks["dave"]["cells"][6]["outputs"] = [{"output_type": "stream", "name": "stdout",
                                                 "text": "[ok] squares\n"}]
    frank = copy.deepcopy(MINI)
    del frank["cells"][4]  # the check of exercise 1 deleted, and double is wrong
    frank["cells"][3]["source"] = "def double(x):\n    return x + 3"
    notebooks["frank"] = frank
    for name, nb in notebooks.items():
        (sub / f"{name}.ipynb").write_text(json.dumps(nb))
    (sub / "notes.ipynb").write_text(json.dumps(make_notebook(("code", "print('hello')"))))
    (sub / "broken.ipynb").write_text("{ not json")
    out = sub / "grades.csv"
    assert cli.main(["grade", str(sub), "--out", str(out), "--timeout", "20",
                     "--solutions", str(mini_solutions)]) == 0
    with out.open() as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == grading.COLUMNS
    table = {}
    for r in rows[1:]:
        table.setdefault(Path(r[0]).stem, []).append(dict(zip(grading.COLUMNS, r,
                                                              strict=True)))
    return table


def _rows(table, name, kind):
    return [r for r in table[name] if r["kind"] == kind]


def _exercise(table, name, k):
    return _rows(table, name, "exercise")[k - 1]


def test_correct_and_untouched_notebooks(graded):
    ex = _rows(graded, "alice", "exercise")
    assert [(r["item"], r["passed"]) for r in ex] == [("Exercise 1: double it", "yes"),
                                                      ("Exercise 2: squares", "yes")]
    assert ex[0]["message"] == "[ok] double works | hidden check passed"
    assert _rows(graded, "alice", "notebook")[0]["passed"] == "yes"
    assert not _rows(graded, "alice", "cell")
    for r in _rows(graded, "bob", "exercise"):
        assert r["passed"] == "no" and r["message"].startswith("not implemented")
    assert _rows(graded, "bob", "answer")[0]["message"] == grading.NOT_ANSWERED


def test_wrong_answer_gets_the_check_message(graded):
    assert _exercise(graded, "carol", 1)["message"] == "double(3) should be 6, got 9"
    assert _exercise(graded, "carol", 2)["passed"] == "yes"


def test_edited_check_does_not_count(graded):
    # x + 3 passes neither check, whatever the student's edited check cell printed
    row = _exercise(graded, "gina", 1)
    assert row["passed"] == "no" and row["message"] == "double(-2) should be -4"


def test_monkeypatched_check_does_not_count(graded):
    row = _exercise(graded, "mallory", 1)
    assert row["passed"] == "no" and row["message"] == "double(-2) should be -4"


def test_deleted_check_does_not_count(graded):
    row = _exercise(graded, "frank", 1)
    assert row["passed"] == "no" and row["message"] == "double(-2) should be -4"
    assert _exercise(graded, "frank", 2)["passed"] == "yes"


def test_crash_after_the_last_exercise_and_the_written_answer(graded):
    assert [r["passed"] for r in _rows(graded, "henry", "exercise")] == ["yes", "yes"]
    cells = _rows(graded, "henry", "cell")
    assert len(cells) == 1 and cells[0]["cell"] == "11"
    assert cells[0]["item"].startswith("The end: raise ValueError")
    assert cells[0]["message"] == "ValueError: late crash"
    nb_row = _rows(graded, "henry", "notebook")[0]
    assert nb_row["passed"] == "no" and "first: cell 11" in nb_row["message"]
    answer = _rows(graded, "henry", "answer")[0]
    assert answer["passed"] == "manual" and answer["cell"] == "9"
    assert answer["item"] == "Written answer 1: Why do squares grow?"
    assert answer["message"] == "Each square is the previous one plus an odd number."


def test_timeouts_errors_and_files_that_are_no_labs(graded):
    assert _exercise(graded, "dave", 1)["message"] == "not reached: timed out after 20 s"
    assert _exercise(graded, "dave", 2)["message"] == "not reached: timed out after 20 s"
    assert "stopped: timed out" in _rows(graded, "dave", "notebook")[0]["message"]
    # the setup cell fails: every cell that needed it is reported, the notebook did not run
    # through; the answers themselves are right (the grader binds the check names itself)
    erin = _rows(graded, "erin", "cell")
    assert erin[0]["cell"] == "2" and erin[0]["message"].startswith("ModuleNotFoundError")
    assert [r["cell"] for r in erin] == ["2", "5", "7"]
    assert "NameError: name 'require' is not defined" in erin[1]["message"]
    assert _rows(graded, "erin", "notebook")[0]["passed"] == "no"
    assert _exercise(graded, "erin", 1)["passed"] == "yes"
    assert graded["notes"][0]["message"].startswith("not a lab")
    assert graded["broken"][0]["message"].startswith("unreadable notebook")


def test_hidden_checks_run_after_the_lab_checks(graded):
    assert _exercise(graded, "alice", 2)["message"] == "[ok] squares | hidden check passed"
    # a wrong answer fails the lab's check first; the hidden check adds its own message
    row = _exercise(graded, "carol", 1)
    assert row["passed"] == "no" and "hidden check" not in row["message"]


def test_summary_says_which_notebooks_did_not_run_through(graded, mini_solutions, capsys):
    rows = [grading.Row(**{k.replace(" ", "_"): (None if k == "cell" else v)
                           for k, v in r.items()}) for name in ("alice", "henry")
            for r in graded[name]]
    text = grading.summary(rows)
    assert "alice.ipynb: lab90_mini 2/2 exercises passed; ran top to bottom; 1 written " \
           "answer(s) to read" in text
    assert "henry.ipynb: lab90_mini 2/2 exercises passed; did NOT run top to bottom" in text
    assert "1 notebook(s) did not run top to bottom" in text


def test_hidden_check_failure_and_missing_names(mini_solutions, tmp_path):
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "lab90_mini.py").write_text(
        HIDDEN.replace("double(10) == 20", "double(10) == 21").replace(
            "def exercise_2(squares):", "def exercise_2(squares, missing_name):"))
    labs_ = grading.load_labs(mini_solutions, hidden)
    path = tmp_path / "alice.ipynb"
    path.write_text(json.dumps(MINI))
    rows = grading.grade_notebook(path, labs_, timeout=60)
    ex1, ex2 = [r for r in rows if r.kind == "exercise"]
    assert not ex1.passed == "yes" and "hidden check: double(10) should be 20" in ex1.message
    assert ex2.passed == "no" and "`missing_name` is not defined" in ex2.message


def test_labs_come_from_solutions_the_source_tree_or_the_package(monkeypatch, tmp_path):
    labs_, origin = grading.find_labs()
    assert set(labs_) == {p.stem for p in SOLUTIONS} and "solutions" in origin
    monkeypatch.setattr(grading, "source_tree_solutions", lambda: None)
    installed, origin = grading.find_labs()
    assert origin.startswith("lab definitions installed with nnparam")
    assert {k: v.cells for k, v in installed.items()} == {k: v.cells
                                                          for k, v in labs_.items()}
    assert [e.check for e in installed["lab01_training_set"].exercises] == [
        e.check for e in labs_["lab01_training_set"].exercises]
    monkeypatch.setattr(definition, "PACKAGE_DIR", tmp_path)
    with pytest.raises(ValueError, match="pass --solutions DIR"):
        grading.find_labs()
    with pytest.raises(ValueError, match="--hidden"):
        grading.find_labs(hidden=tmp_path / "nope")


def test_grade_runs_from_any_folder(mini_solutions, tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    (course / "alice.ipynb").write_text(json.dumps(MINI))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-m", "nnparam.labs", "grade", "alice.ipynb",
                           "--solutions", str(mini_solutions)], cwd=course, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "alice.ipynb: lab90_mini 2/2 exercises passed" in done.stdout
    assert "hidden checks for lab90_mini" in done.stdout
    assert "TCP" not in done.stdout + done.stderr  # the kernel's log lines stay out
    assert (course / "grades.csv").exists()
    missing = subprocess.run([sys.executable, "-m", "nnparam.labs", "grade", "alice.ipynb",
                              "--solutions", "nope"], cwd=course, env=env,
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "--solutions" in missing.stderr


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
def test_grade_lab1_solution_and_a_student_who_games_the_checks(tmp_path):
    solution = json.loads(LAB1.read_text())
    lab = labs.make_lab(solution, name=LAB1.stem, bib=labs.bib_for(LAB1.parent))
    spans = [(e[1], e[2]) for e in grading.exercises_of(solution)]
    gamed = copy.deepcopy(lab)
    fill = {0: "def coarse_grain(field, factor):\n    return field[..., ::factor]\n\n"
               "check.coarse_grain = lambda f: print('[ok] looks fine')",
            1: "q_bar = coarse_grain(q_fine, FACTOR)\n"
               "u_bar_face = tracer.coarse_face_wind(u_fine, FACTOR)\n"
               "budget = tracer.sgs_budget(truth, FACTOR)\n"
               "true_tendency = budget['true_tendency'].values\n"
               "resolved_tendency = budget['resolved_tendency'].values\n"
               "sgs = budget['sgs_tendency'].values",
            2: "n_time = len(times)\ntrain_t, val_t, test_t = (np.arange(120), "
               "np.arange(120, 160), np.arange(160, 201))",
            3: "coef = np.linalg.lstsq(np.column_stack([x_train, np.ones(len(x_train))]), "
               "y_train, rcond=None)[0]\n"
               "y_pred_linear = np.column_stack([x_test, np.ones(len(x_test))]) @ coef",
            4: "model, sx, sy = None, None, None\ny_pred_mlp = y_pred_linear"}
    for k, (first, _) in enumerate(spans):
        gamed["cells"][first]["source"] = fill[k]
    # the network's check cell edited to a lower bar without the comparison
    gamed["cells"][spans[4][1]]["source"] = "print('[ok] MLP: test R^2 = 0.848')\nr2_mlp = 0.9"
    del gamed["cells"][spans[2][1]]  # and the split's check cell deleted
    (tmp_path / "gina.ipynb").write_text(json.dumps(gamed))
    rows = grading.grade([LAB1, tmp_path / "gina.ipynb"], ROOT / "solutions", timeout=240)
    mine = [r for r in rows if r.student_file == str(LAB1)]
    assert all(r.passed in ("yes", "manual") for r in mine), mine
    assert [r.passed for r in mine if r.kind == "notebook"] == ["yes"]
    gina = {r.item: r for r in rows if r.student_file.endswith("gina.ipynb")
            and r.kind == "exercise"}
    ex = list(gina.values())
    assert ex[0].passed == "no" and "every 4th cell" in ex[0].message  # the patch is undone
    # the engine shortcut passes the lab's check; the hidden check reads the cells run
    assert ex[1].passed == "no" and "hidden check" in ex[1].message
    assert "sgs_budget" in ex[1].message
    assert ex[2].passed == "yes" and ex[3].passed == "yes"  # the deleted check still ran
    assert ex[4].passed == "no" and "torch network" in ex[4].message


def test_an_installed_package_grades_without_the_repository(tmp_path):
    """The package alone (copied out of the source tree, as pip would install it) finds the
    lab definitions it carries, and takes hidden checks from an explicit folder."""
    import shutil

    site = tmp_path / "site-packages"
    shutil.copytree(ROOT / "src" / "nnparam", site / "nnparam",
                    ignore=shutil.ignore_patterns("__pycache__"))
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(ROOT / "labs" / "lab03_tame_a_steep_closure.ipynb", course / "ann.ipynb")
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "nnparam.labs", "grade", ".", "--hidden",
                           str(ROOT / "solutions" / "hidden")], cwd=course, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert "lab definitions installed with nnparam" in first
    assert "hidden checks for" in first and "lab03_tame_a_steep_closure" in first
    assert "ann.ipynb: lab03_tame_a_steep_closure 0/5 exercises passed" in done.stdout
