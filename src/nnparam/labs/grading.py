"""Grade student lab notebooks: run each top to bottom, re-run the lab's own checks, report.

For each notebook the grader

1. recognises the lab (notebook metadata ``{"nnparam": {"lab": ...}}``, else the file name,
   else the lab whose cells it matches best) and aligns the student's cells with the lab's:
   cells the student did not touch anchor the alignment, so inserted scratch cells, edited
   exercise cells and a renamed file are all fine;
2. executes the whole notebook in a fresh kernel, every cell, within one wall-clock budget;
3. after each exercise, re-runs **the lab's own check code** (from the lab definition, not
   the student's check cell) against the objects the notebook defined, with the check modules
   restored from the installed package (:mod:`nnparam.labs.harness`), so an edited, deleted
   or monkeypatched check does not count; then the instructor's **hidden check** for that
   exercise, if there is one;
4. writes one CSV row per exercise (passed or the check's message), per written answer (its
   text, to grade by hand), per failing cell (exercise or not: its number, the section it is
   in, the error), and one row saying whether the notebook ran top to bottom.

A time-out, a dead kernel, an unreadable file or a notebook that is no lab becomes a row of
the report, never an exception.

Where the labs come from (:func:`find_labs`): an explicit ``--solutions`` folder of solution
notebooks (its ``hidden/`` subfolder holds the hidden checks); else the ``solutions/`` folder
of the source tree the package was installed from, when there is one; else the lab
definitions installed with the package (:mod:`nnparam.labs.definition`), which carry no
solution, with hidden checks only from an explicit ``--hidden`` folder.
"""

from __future__ import annotations

import csv
import difflib
import json
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import ANSWER_BOX, STUB, bib_for, make_lab
from . import definition as definition_mod
from .harness import MIME

COLUMNS = ("student file", "lab", "kind", "item", "cell", "passed", "message")
NOT_IMPLEMENTED = "not implemented"
NOT_ANSWERED = "(not answered: the answer box is unchanged)"
#: fraction of a lab's cells that a notebook must reproduce unchanged to count as that lab
MIN_MATCH = 0.5
HIDDEN_FOLDER = "hidden"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_HEADING = re.compile(r"^#+\s*(.+)$", re.MULTILINE)
_GRADER = "__nnparam_grader__"


@dataclass(frozen=True)
class Exercise:
    number: int
    label: str
    first: int  # lab cell index of the exercise cell
    last: int  # lab cell index of its check cell (== first when there is none)
    check: str  # the lab's check code for this exercise


@dataclass(frozen=True)
class Answer:
    number: int
    label: str
    cell: int  # lab cell index of the answer box


@dataclass(frozen=True)
class Lab:
    """A lab as the grader sees it (see :mod:`nnparam.labs.definition`)."""

    name: str
    cells: tuple  # (cell_type, stripped source) of each cell of the generated lab
    exercises: tuple  # of Exercise
    answers: tuple = ()  # of Answer
    aliases: dict = field(default_factory=dict, hash=False, compare=False)
    title: str = ""
    hidden: str | None = None  # source of the instructor's hidden checks
    hidden_path: str | None = None


@dataclass(frozen=True)
class Row:
    student_file: str
    lab: str
    kind: str  # "exercise", "answer", "cell", "notebook", or "" for a file that is no lab
    item: str
    cell: int | None
    passed: str  # "yes", "no", "manual" (written answers), "" (not applicable)
    message: str

    def as_csv(self) -> list:
        return [self.student_file, self.lab, self.kind, self.item,
                "" if self.cell is None else self.cell, self.passed, self.message]


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _key(cell) -> tuple:
    return cell.get("cell_type", ""), _source(cell).strip()


# ---------------------------------------------------------------------------------------
# labs


def lab_from_definition(d: dict, hidden_path: Path | None = None) -> Lab:
    hidden = None
    if hidden_path is not None and hidden_path.is_file():
        hidden = hidden_path.read_text()
    return Lab(
        name=d["lab"], title=d.get("title", d["lab"]),
        cells=tuple((t, s) for t, s in d["cells"]),
        exercises=tuple(Exercise(e["number"], e["label"], e["first"], e["last"], e["check"])
                        for e in d["exercises"]),
        answers=tuple(Answer(a["number"], a["label"], a["cell"]) for a in d["answers"]),
        aliases={k: list(v) for k, v in d["aliases"].items()},
        hidden=hidden, hidden_path=str(hidden_path) if hidden else None)


def exercises_of(solution: dict) -> tuple:
    """``(label, first, last)`` lab cell indices of each exercise of a solution notebook."""
    d = definition_mod.definition_of(make_lab(solution), "lab")
    return tuple((e["label"], e["first"], e["last"]) for e in d["exercises"])


def load_labs(solutions_dir="solutions", hidden_dir=None, use_hidden: bool = True
              ) -> dict[str, Lab]:
    """Every lab that ``solutions_dir`` defines, keyed by its name (the file stem).

    Hidden checks are read from ``hidden_dir/<name>.py`` (default ``solutions_dir/hidden``).
    """
    src = Path(solutions_dir)
    if not src.is_dir():
        raise ValueError(f"solutions_dir {src} is not a directory (pass the folder of "
                         f"solution notebooks with --solutions)")
    hidden = Path(hidden_dir) if hidden_dir is not None else src / HIDDEN_FOLDER
    bib = bib_for(src)
    labs = {}
    for path in sorted(src.glob("*.ipynb")):
        lab = make_lab(json.loads(path.read_text()), name=path.stem, bib=bib)
        d = definition_mod.definition_of(lab, path.stem)
        labs[path.stem] = lab_from_definition(d, hidden / f"{path.stem}.py" if use_hidden
                                              else None)
    if not labs:
        raise ValueError(f"solutions_dir {src} holds no solution notebooks (*.ipynb)")
    return labs


def load_definitions(folder=definition_mod.PACKAGE_DIR, hidden_dir=None) -> dict[str, Lab]:
    """The labs of a folder of definitions (default: those installed with the package)."""
    folder = Path(folder)
    if not folder.is_dir() or not list(folder.glob("*.json")):
        raise ValueError(f"no lab definitions in {folder}")
    hidden = Path(hidden_dir) if hidden_dir is not None else None
    return {name: lab_from_definition(d, hidden / f"{name}.py" if hidden else None)
            for name, d in definition_mod.load_dir(folder).items()}


def source_tree_solutions() -> Path | None:
    """``solutions/`` of the source tree the package runs from (an editable install or a
    clone on ``PYTHONPATH``), or None for an installed package."""
    root = Path(__file__).resolve().parents[3]
    candidate = root / "solutions"
    if (root / "src" / "nnparam").is_dir() and candidate.is_dir() and list(
            candidate.glob("*.ipynb")):
        return candidate
    return None


def find_labs(solutions=None, hidden=None, use_hidden: bool = True) -> tuple[dict, str]:
    """The labs to grade against and a sentence saying where they came from."""
    if hidden is not None and not Path(hidden).is_dir():
        raise ValueError(f"--hidden {hidden} is not a directory")
    if solutions is not None or (solutions := source_tree_solutions()) is not None:
        labs = load_labs(solutions, hidden, use_hidden)
        origin = f"labs from the solutions in {solutions}"
    else:
        try:
            labs = load_definitions(definition_mod.PACKAGE_DIR, hidden if use_hidden else None)
        except ValueError as err:
            raise ValueError(f"{err}: found no solutions folder and no lab definitions "
                             f"installed with nnparam; pass --solutions DIR") from None
        origin = "lab definitions installed with nnparam"
    with_hidden = sorted(name for name, lab in labs.items() if lab.hidden)
    origin += (f"; hidden checks for {', '.join(with_hidden)}" if with_hidden
               else "; no hidden checks" + ("" if hidden else " (pass --hidden DIR)"))
    return labs, origin


# ---------------------------------------------------------------------------------------
# recognising and aligning a notebook


def _match_fraction(lab: Lab, keys: list) -> float:
    matcher = difflib.SequenceMatcher(None, lab.cells, keys, autojunk=False)
    return sum(b.size for b in matcher.get_matching_blocks()) / max(len(lab.cells), 1)


def identify(nb: dict, path: Path, labs: dict[str, Lab]) -> Lab | None:
    """The lab ``nb`` is a copy of, or None: metadata first, then file name, then content."""
    keys = [_key(c) for c in nb.get("cells", [])]
    named = nb.get("metadata", {}).get("nnparam", {}).get("lab")
    for name in (named, Path(path).stem):
        if name in labs and _match_fraction(labs[name], keys) >= MIN_MATCH:
            return labs[name]
    scored = sorted(((_match_fraction(lab, keys), name) for name, lab in labs.items()),
                    reverse=True)
    if scored and scored[0][0] >= MIN_MATCH:
        return labs[scored[0][1]]
    return None


def _image(lab: Lab, nb: dict) -> dict[int, int]:
    """Lab cell index -> student cell index, for the cells that correspond."""
    keys = [_key(c) for c in nb["cells"]]
    matcher = difflib.SequenceMatcher(None, lab.cells, keys, autojunk=False)
    image = {}
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        # equal cells match; a run of edited cells with as many cells as in the lab (edited in
        # place, nothing inserted or deleted) matches one to one
        if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
            image.update(zip(range(i1, i2), range(j1, j2), strict=True))
    return image


def align(lab: Lab, nb: dict) -> list[tuple[str, int, int]]:
    """``(label, first, last)`` student cell indices of each exercise of ``lab`` in ``nb``.

    Cells the student left as in the lab are matched exactly, and so are cells edited in place.
    Where the student inserted or deleted cells, an exercise stretches from the cell after the
    last matched cell before it to its check cell (or, if the check cell was edited too, to the
    cell before the next matched one).
    """
    image = _image(lab, nb)
    n = len(nb["cells"])
    spans = []
    for ex in lab.exercises:
        if ex.first in image:
            start = image[ex.first]
        else:
            before = [image[i] for i in range(ex.first) if i in image]
            start = before[-1] + 1 if before else 0
        if ex.last in image:
            stop = image[ex.last]
        else:
            after = [image[i] for i in range(ex.last + 1, len(lab.cells)) if i in image]
            stop = (after[0] if after else n) - 1
        spans.append((ex.label, start, max(start, stop)))
    return spans


def _answer_cells(lab: Lab, nb: dict, image: dict) -> list[int | None]:
    """The student's cell for each written answer of ``lab`` (None if it cannot be found)."""
    found = []
    for ans in lab.answers:
        if ans.cell in image:
            found.append(image[ans.cell])
            continue
        # edited answer: the markdown cell between the matched neighbours
        before = [image[i] for i in range(ans.cell) if i in image]
        after = [image[i] for i in range(ans.cell + 1, len(lab.cells)) if i in image]
        lo = before[-1] + 1 if before else 0
        hi = after[0] if after else len(nb["cells"])
        candidates = [j for j in range(lo, hi) if nb["cells"][j].get("cell_type") == "markdown"]
        found.append(candidates[0] if candidates else None)
    return found


# ---------------------------------------------------------------------------------------
# running


def _error(cell):
    """``(ename, evalue)`` of the first error output of an executed code cell, or None."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return out.get("ename", "Error"), _ANSI.sub("", out.get("evalue", ""))
    return None


def _result(cell) -> dict | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "display_data" and MIME in out.get("data", {}):
            data = out["data"][MIME]
            return json.loads(data) if isinstance(data, str) else data
    return None


def _grader_cell(source: str, role: str, number: int | None = None) -> dict:
    return {"cell_type": "code", "metadata": {"nnparam_grader": {"role": role,
                                                                 "exercise": number}},
            "source": source, "outputs": [], "execution_count": None}


def plan(nb: dict, lab: Lab, spans) -> list[dict]:
    """The cells to execute: a grader preamble, the student's cells (each marked with its
    index), and after each exercise the grader cell that re-runs its checks."""
    modules = sorted({m for m, _ in lab.aliases.values()})
    pre = (f"import nnparam.labs.harness as __nnparam_harness__\n"
           f"{_GRADER} = __nnparam_harness__.Grader(globals(), {modules!r})\n"
           f"del __nnparam_harness__")
    if lab.hidden:
        pre += f"\n{_GRADER}.load_hidden({lab.hidden!r}, {lab.hidden_path!r})"
    after: dict[int, list] = {}
    for ex, (_, _, stop) in zip(lab.exercises, spans, strict=True):
        code = f"{_GRADER}.run({ex.number}, {ex.check!r}, {lab.aliases!r});"
        after.setdefault(stop, []).append(_grader_cell(code, "check", ex.number))
    cells = [_grader_cell(pre, "preamble")]
    for j, cell in enumerate(nb["cells"]):
        cell = dict(cell)
        cell["metadata"] = {**cell.get("metadata", {}), "nnparam_student": j}
        if cell.get("cell_type") == "code":  # the student's own outputs never count
            cell["outputs"], cell["execution_count"] = [], None
        cells.append(cell)
        cells += after.get(j, [])
    return cells


def execute(nb: dict, workdir: Path, timeout: float, kernel_name: str = "python3") -> str | None:
    """Run ``nb`` in place in a fresh kernel; return None, or why execution stopped early."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
        cell["id"] = f"cell-{i}"
    nb = {**nb, "nbformat": 4, "nbformat_minor": max(5, nb.get("nbformat_minor", 5))}
    node = nbformat.reads(json.dumps(nb), as_version=4)  # joins list-of-lines sources
    client = NotebookClient(node, kernel_name=kernel_name, allow_errors=True,
                            timeout=max(1, int(timeout)), startup_timeout=60,
                            resources={"metadata": {"path": str(workdir)}})
    stopped = None
    client.reset_execution_trackers()
    try:
        # the kernel's own log lines (e.g. its TCP warning) are not the student's output
        with client.setup_kernel(cwd=str(workdir), stderr=subprocess.DEVNULL):
            deadline = time.monotonic() + timeout  # kernel start-up is not the student's time
            for index, cell in enumerate(node.cells):
                if cell.cell_type != "code":
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    stopped = f"timed out after {timeout:g} s"
                    break
                client.timeout = max(1, int(remaining + 0.999))
                try:
                    client.execute_cell(cell, index)
                except CellTimeoutError:
                    stopped = f"timed out after {timeout:g} s"
                    cell["outputs"] = [{"output_type": "error", "ename": "TimeoutError",
                                        "evalue": stopped, "traceback": []}]
                    break
    except DeadKernelError as err:
        stopped = f"the kernel died: {err}"
    except Exception as err:  # kernel start-up or protocol failure: report, do not crash
        stopped = f"could not run the notebook: {type(err).__name__}: {err}"
    nb["cells"][:] = [dict(c) for c in node.cells]
    return stopped


# ---------------------------------------------------------------------------------------
# judging


def _sections(cells) -> list[str]:
    """The nearest markdown heading above each cell ("" before the first)."""
    current, out = "", []
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            found = _HEADING.findall(_source(cell))
            if found:
                current = found[-1].strip()
        out.append(current)
    return out


def _first_line(cell) -> str:
    lines = [ln for ln in _source(cell).splitlines() if ln.strip()]
    line = lines[0].strip() if lines else ""
    return line if len(line) <= 60 else line[:57] + "..."


def _grade(nb: dict, path: Path, name: str, labs: dict[str, Lab], timeout: float) -> list[Row]:
    lab = identify(nb, path, labs)
    if lab is None:
        return [Row(name, "", "", "", None, "", "not a lab: matches none of the labs")]
    student = nb["cells"]
    image = _image(lab, nb)
    spans = align(lab, nb)
    answers = _answer_cells(lab, nb, image)
    run_nb = {**nb, "cells": plan(nb, lab, spans)}
    stopped = execute(run_nb, path.parent.resolve(), timeout)
    executed = {c["metadata"]["nnparam_student"]: c for c in run_nb["cells"]
                if "nnparam_student" in c.get("metadata", {})}
    results = {c["metadata"]["nnparam_grader"]["exercise"]: c for c in run_nb["cells"]
               if c.get("metadata", {}).get("nnparam_grader", {}).get("role") == "check"}
    preamble = run_nb["cells"][0]
    rows: list[Row] = []

    # exercises
    role_of = {}
    for ex, (label, first, last) in zip(lab.exercises, spans, strict=True):
        for j in range(first, last + 1):
            role_of.setdefault(j, f"{label} ({'exercise' if j == first else 'check'} cell)")
        stub = any(STUB in _source(student[j]) for j in range(first, last + 1)
                   if student[j].get("cell_type") == "code")
        cell_no = first + 1
        grader_cell = results[ex.number]
        result = _result(grader_cell)
        if stub:
            ok, message = False, f"{NOT_IMPLEMENTED} (the exercise's stub line is still in place)"
        elif _error(preamble):
            ok, message = False, "the grader could not start in the kernel: " + ": ".join(
                _error(preamble))
        elif result is None:
            if stopped and not grader_cell.get("outputs"):
                ok, message = False, f"not reached: {stopped}"
            else:
                err = _error(grader_cell)
                ok, message = False, f"the check did not run: {': '.join(err) if err else '?'}"
        else:
            ok, message = bool(result["ok"]), result["message"]
            hidden = result.get("hidden")
            if hidden is not None and ok:  # after a failed lab check, its message is enough
                if hidden["ok"]:
                    message += " | hidden check passed"
                else:
                    ok, message = False, f"{message} | hidden check: {hidden['message']}"
        rows.append(Row(name, lab.name, "exercise", label, cell_no, "yes" if ok else "no",
                        message))

    # written answers
    for ans, j in zip(lab.answers, answers, strict=True):
        if j is None:
            rows.append(Row(name, lab.name, "answer", ans.label, None, "manual",
                            "(the answer cell is missing)"))
            continue
        text = _source(student[j]).strip()
        message = NOT_ANSWERED if text == ANSWER_BOX or not text else text
        rows.append(Row(name, lab.name, "answer", ans.label, j + 1, "manual", message))

    # every failing cell, and whether the notebook ran through
    sections = _sections(student)
    n_code = sum(1 for c in student if c.get("cell_type") == "code")
    failing = []
    for j, cell in enumerate(student):
        if cell.get("cell_type") != "code":
            continue
        err = _error(executed.get(j, {}))
        if err is None:
            continue
        where = role_of.get(j) or sections[j] or "(top of the notebook)"
        failing.append(j)
        rows.append(Row(name, lab.name, "cell", f"{where}: {_first_line(cell)}", j + 1, "no",
                        f"{err[0]}: {err[1]}"))
    not_run = [j for j, c in enumerate(student) if c.get("cell_type") == "code"
               and not executed.get(j, {}).get("outputs") and j not in failing
               and stopped]
    if stopped:
        message = f"stopped: {stopped}" + (f"; {len(failing)} cell(s) failed before" if failing
                                           else "")
        ran = "no"
    elif failing:
        j = failing[0]
        err = _error(executed[j])
        message = (f"{len(failing)} of {n_code} code cells failed; first: cell {j + 1} "
                   f"({_first_line(student[j])}): {err[0]}: {err[1]}")
        ran = "no"
    else:
        message, ran = f"all {n_code} code cells ran without error", "yes"
    if not_run:
        message += f"; {len(not_run)} code cell(s) never ran"
    rows.append(Row(name, lab.name, "notebook", "runs top to bottom", None, ran, message))
    return rows


def grade_notebook(path, labs: dict[str, Lab], timeout: float = 300.0,
                   label: str | None = None) -> list[Row]:
    """Rows of the report for one student notebook (never raises for a bad notebook)."""
    path = Path(path)
    name = label or str(path)
    try:
        nb = json.loads(path.read_text())
        if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list) or not all(
                isinstance(c, dict) for c in nb["cells"]):
            raise ValueError("no list of cells")
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return [Row(name, "", "", "", None, "", f"unreadable notebook: {err}")]
    try:
        return _grade(nb, path, name, labs, timeout)
    except Exception as err:  # a malformed notebook must not stop a class's grading
        return [Row(name, "", "", "", None, "", f"could not grade: {type(err).__name__}: {err}")]


def find_notebooks(paths) -> list[Path]:
    """The ``.ipynb`` files named by ``paths`` (files, or folders searched recursively)."""
    found = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(q for q in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts)
        elif p.exists():
            found.append(p)
        else:
            raise ValueError(f"paths: {p} does not exist")
    return found


def write_csv(rows: list[Row], out) -> Path:
    out = Path(out)
    with out.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerows(r.as_csv() for r in rows)
    return out


def summary(rows: list[Row]) -> str:
    """A few lines: one per notebook (score, whether it ran through, answers to read), then
    the totals and the notebooks that did not run top to bottom."""
    by_file: dict[str, list[Row]] = {}
    for r in rows:
        by_file.setdefault(r.student_file, []).append(r)
    lines, broken = [], []
    for name, rs in by_file.items():
        if len(rs) == 1 and not rs[0].kind:
            lines.append(f"{name}: {rs[0].message}")
            continue
        ex = [r for r in rs if r.kind == "exercise"]
        n_ok = sum(r.passed == "yes" for r in ex)
        nb_row = next(r for r in rs if r.kind == "notebook")
        if nb_row.passed == "yes":
            ran = "ran top to bottom"
        else:
            ran = "did NOT run top to bottom (" + nb_row.message + ")"
            broken.append(name)
        answers = [r for r in rs if r.kind == "answer"]
        empty = sum(r.message in (NOT_ANSWERED, "(the answer cell is missing)") for r in answers)
        text = f"{name}: {rs[0].lab} {n_ok}/{len(ex)} exercises passed; {ran}"
        if answers:
            text += f"; {len(answers) - empty} written answer(s) to read"
            if empty:
                text += f", {empty} not answered"
        lines.append(text)
    graded = [r for r in rows if r.kind == "exercise"]
    lines.append(f"{len(by_file)} notebooks, {sum(r.passed == 'yes' for r in graded)}/"
                 f"{len(graded)} exercises passed")
    if broken:
        lines.append(f"{len(broken)} notebook(s) did not run top to bottom: " + ", ".join(broken))
    return "\n".join(lines)


def grade(paths, solutions_dir=None, timeout: float = 300.0, hidden_dir=None) -> list[Row]:
    """Grade every notebook under ``paths``; labs as in :func:`find_labs`."""
    if not (isinstance(timeout, int | float) and timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    labs, _ = find_labs(solutions_dir, hidden_dir)
    rows = []
    for path in find_notebooks(paths):
        rows += grade_notebook(path, labs, timeout)
    return rows
