"""The otter-grader export: every lab converts to a master notebook that ``otter assign``
accepts (student and autograder notebooks, tests, no solution left for the student), and the
autograder made from a small lab grades a correct and an empty submission offline."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from notebooks import make_notebook

from nnparam.labs import STUB, make_lab, otter_export

pytest.importorskip("otter")

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))


def _src(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]



MINI = make_notebook(
    ("markdown", "# Lab 91: otter"),
    ("code", "from nnparam.labs.feedback import passed, require"),
    ("markdown", "## Exercise 1: double it"),
    ("code", "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
     ["hide-input"]),
    ("code", "require(double(3) == 6, 'double(3) should be 6')\npassed('double works')"),
    ("markdown", "**Written answer.** Why?"),
    ("markdown", "Because.", ["solution"]),
)
HIDDEN = ("from nnparam.labs.feedback import require\n\n\n"
          "def exercise_1(double):\n    require(double(5) == 10, 'double(5) should be 10')\n")


def test_free_names_are_the_test_parameters():
    names = otter_export.free_names("check.f(f, x)\ny = g(y0)\nprint(y)")
    assert sorted(names) == ["check", "f", "g", "x", "y0"]


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_every_lab_exports_to_a_master_notebook(path):
    solution = json.loads(path.read_text())
    hidden = ROOT / "solutions" / "hidden" / f"{path.stem}.py"
    nb = otter_export.to_otter(solution, path.stem, hidden_source=hidden.read_text()
                               if hidden.exists() else None)
    raws = [_src(c) for c in nb["cells"] if c["cell_type"] == "raw"]
    assert raws[0].startswith("# ASSIGNMENT CONFIG") and "ok_format: false" in raws[0]
    n_ex = sum(1 for c in make_lab(solution)["cells"]
               if c.get("metadata", {}).get("nnparam", {}).get("role") == "exercise")
    assert sum(r.startswith("# BEGIN QUESTION\nname: exercise_") for r in raws) == n_ex
    for name in ("QUESTION", "SOLUTION", "TESTS"):
        assert sum(r == f"# END {name}" for r in raws) == sum(
            r.startswith(f"# BEGIN {name}") for r in raws)
    code = [_src(c) for c in nb["cells"] if c["cell_type"] == "code"]
    assert not any("### BEGIN SOLUTION" in s for s in code)
    for src in code:  # every generated test is valid Python
        compile(src, path.name, "exec")


def _assign(master: Path, out: Path) -> None:
    from otter.assign import main as assign

    assign(str(master), str(out), no_run_tests=True, no_pdfs=True)


@pytest.mark.parametrize("path", SOLUTIONS[:1] + SOLUTIONS[-1:], ids=lambda p: p.name)
def test_otter_assign_accepts_the_export(path, tmp_path):
    master = otter_export.export(ROOT / "solutions", tmp_path / "export", [path.stem])[0]
    _assign(master, tmp_path / "dist")
    student = json.loads((tmp_path / "dist" / "student" / master.name).read_text())
    sources = "\n".join(_src(c) for c in student["cells"] if c["cell_type"] == "code")
    solution = json.loads(path.read_text())
    for cell in solution["cells"]:
        if "### BEGIN SOLUTION" in _src(cell):
            block = _src(cell).split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
            for line in (ln.strip() for ln in block.splitlines() if len(ln.strip()) > 30):
                assert line not in sources, line
    assert STUB not in sources and "grader.check(" in sources
    assert list((tmp_path / "dist" / "autograder").glob("*.zip"))


@pytest.mark.slow
def test_otter_grades_a_small_lab_offline(tmp_path):
    sol = tmp_path / "solutions"
    (sol / "hidden").mkdir(parents=True)
    (sol / "lab91_otter.ipynb").write_text(json.dumps(MINI))
    (sol / "hidden" / "lab91_otter.py").write_text(HIDDEN)
    master = otter_export.export(sol, tmp_path / "export")[0]
    _assign(master, tmp_path / "dist")
    zip_path = next((tmp_path / "dist" / "autograder").glob("*.zip"))
    scores = {}
    for who, nb in (("solution", tmp_path / "dist" / "autograder" / master.name),
                    ("student", tmp_path / "dist" / "student" / master.name)):
        out = tmp_path / f"run_{who}"
        out.mkdir()
        done = subprocess.run([str(Path(sys.executable).with_name("otter")), "run", "-a",
                               str(zip_path), "-o", str(out), str(nb)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        results = json.loads((out / "results.json").read_text())
        scores[who] = {t["name"]: t.get("score") for t in results["tests"]}
    assert scores["solution"]["exercise_1"] == 2  # the lab's check and the hidden one
    assert scores["student"]["exercise_1"] == 0
