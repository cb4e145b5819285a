"""Grade student lab notebooks: run them headless, read off which exercise checks passed.

The grader needs no markers in the student's file. It rebuilds each lab from ``solutions/``
(:func:`nnparam.labs.make_lab`) and aligns the student's cells with the lab's cells: the cells
a student does not touch (text, setup, the check cells) anchor the alignment, so inserted
helper cells, an edited exercise cell or a renamed file are all fine. The lab is recognised
by notebook metadata ``{"nnparam": {"lab": "<id>"}}`` when present, else by its file name,
else by the solution whose cells it matches best.

An exercise is one cell holding a ``### BEGIN SOLUTION`` block in the solution, together with
the code cell right after it when that cell is not itself an exercise (the check cell). It
passes when every student cell in that stretch runs without an error and a check printed its
``[ok]`` line (:func:`nnparam.labs.feedback.passed`); otherwise the message
is ``not implemented`` while the lab's stub line is still in place, else the check's own
message (``LabCheckError``) or the error's type and text.

Each notebook runs in a fresh kernel with a wall-clock budget for the whole notebook; a
time-out, a dead kernel, an unreadable file or a notebook that is no lab becomes a row of the
report, never an exception.
"""

from __future__ import annotations

import csv
import difflib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from . import STUB, is_exercise, make_lab

COLUMNS = ("student file", "lab", "exercise", "passed", "message")
NOT_IMPLEMENTED = "not implemented"
NO_CHECK = "no check ran: the check cell after the exercise is missing or was changed"
#: fraction of a lab's cells that a notebook must reproduce unchanged to count as that lab
MIN_MATCH = 0.5
_HEADING = re.compile(r"^#+\s*(Exercise\s+\d+[^\n]*)", re.IGNORECASE | re.MULTILINE)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Lab:
    """A lab as the grader sees it: the generated student notebook and its exercises."""

    name: str
    cells: tuple  # (cell_type, normalised source) of each cell of the generated lab
    exercises: tuple  # (label, first lab cell index, last lab cell index) per exercise


@dataclass(frozen=True)
class Row:
    student_file: str
    lab: str
    exercise: str
    passed: bool
    message: str

    def as_csv(self) -> list:
        return [self.student_file, self.lab, self.exercise, "yes" if self.passed else "no",
                self.message]


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _key(cell) -> tuple:
    return cell.get("cell_type", ""), _source(cell).strip()


def exercises_of(solution: dict) -> tuple:
    """``(label, first, last)`` cell indices of each exercise of a solution notebook."""
    cells = solution["cells"]
    found = []
    heading = None
    for i, cell in enumerate(cells):
        if cell.get("cell_type") == "markdown":
            match = _HEADING.search(_source(cell))
            if match:
                heading = match.group(1).strip()
        if not is_exercise(cell):
            continue
        last = i
        if (i + 1 < len(cells) and cells[i + 1].get("cell_type") == "code"
                and not is_exercise(cells[i + 1])):
            last = i + 1
        label = heading or f"Exercise {len(found) + 1}"
        heading = None  # a heading names the first exercise after it only
        found.append((label, i, last))
    return tuple(found)


def load_labs(solutions_dir="solutions") -> dict[str, Lab]:
    """Every lab that ``solutions_dir`` defines, keyed by its name (the file stem)."""
    src = Path(solutions_dir)
    if not src.is_dir():
        raise ValueError(f"solutions_dir {src} is not a directory")
    labs = {}
    for path in sorted(src.glob("*.ipynb")):
        solution = json.loads(path.read_text())
        lab = make_lab(solution)
        labs[path.stem] = Lab(path.stem, tuple(_key(c) for c in lab["cells"]),
                              exercises_of(solution))
    return labs


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


def align(lab: Lab, nb: dict) -> list[tuple[str, int, int]]:
    """``(label, first, last)`` student cell indices of each exercise of ``lab`` in ``nb``.

    Cells the student left as in the lab are matched exactly, and so are cells edited in place.
    Where the student inserted or deleted cells, an exercise stretches from the cell after the
    last matched cell before it to its check cell (or, if the check cell was edited too, to the
    cell before the next matched one).
    """
    keys = [_key(c) for c in nb["cells"]]
    matcher = difflib.SequenceMatcher(None, lab.cells, keys, autojunk=False)
    image = {}
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        # equal cells match; a run of edited cells with as many cells as in the lab (edited in
        # place, nothing inserted or deleted) matches one to one
        if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
            image.update(zip(range(i1, i2), range(j1, j2), strict=True))
    spans = []
    for label, first, last in lab.exercises:
        if first in image:
            start = image[first]
        else:
            before = [image[i] for i in range(first) if i in image]
            start = before[-1] + 1 if before else 0
        if last in image:
            stop = image[last]
        else:
            after = [image[i] for i in range(last + 1, len(lab.cells)) if i in image]
            stop = (after[0] if after else len(keys)) - 1
        spans.append((label, start, max(start, stop)))
    return spans


def _error(cell):
    """``(ename, evalue)`` of the first error output of an executed code cell, or None."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return out.get("ename", "Error"), _ANSI.sub("", out.get("evalue", ""))
    return None


def _ok_lines(cell) -> list[str]:
    lines = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream" and out.get("name") == "stdout":
            text = out.get("text", "")
            text = "".join(text) if isinstance(text, list) else text
            lines += [ln.strip() for ln in text.splitlines() if ln.strip().startswith("[ok]")]
    return lines


def judge(cells: list, first: int, last: int, failed_before: bool) -> tuple[bool, str]:
    """Pass/fail and message for the executed cells ``first..last`` of one exercise."""
    errors = [e for e in (_error(c) for c in cells[first:last + 1] if c.get("cell_type") == "code")
              if e is not None]
    if not errors:
        oks = [ln for c in cells[first:last + 1] for ln in _ok_lines(c)]
        if not oks:  # every check prints an [ok] line: none here means no check ran
            return False, NO_CHECK
        return True, " | ".join(oks)
    ename, evalue = errors[0]
    if ename == "NotImplementedError":
        return False, f"{NOT_IMPLEMENTED} ({evalue})" if evalue else NOT_IMPLEMENTED
    if any(STUB in _source(c) for c in cells[first:last + 1]):
        # the stub is still in place: whatever broke first, the exercise was not done
        return False, f"{NOT_IMPLEMENTED} (the exercise's stub line is still in place)"
    if ename == "LabCheckError":
        return False, evalue
    message = f"{ename}: {evalue}"
    if ename == "NameError" and failed_before:
        message += " (an earlier cell failed, so this name was never defined)"
    return False, message


def execute(nb: dict, workdir: Path, timeout: float, kernel_name: str = "python3") -> str | None:
    """Run ``nb`` in place in a fresh kernel; return None, or why execution stopped early."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") == "code":  # the student's own outputs never count
            cell["outputs"], cell["execution_count"] = [], None
        if nb.get("nbformat_minor", 0) >= 5:  # cell ids are required from format 4.5 on
            cell.setdefault("id", f"cell-{i}")
    node = nbformat.reads(json.dumps(nb), as_version=4)  # joins list-of-lines sources
    client = NotebookClient(node, kernel_name=kernel_name, allow_errors=True,
                            timeout=max(1, int(timeout)), startup_timeout=60,
                            resources={"metadata": {"path": str(workdir)}})
    stopped = None
    client.reset_execution_trackers()
    try:
        with client.setup_kernel(cwd=str(workdir)):
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
    nb["cells"] = [dict(c) for c in node.cells]
    return stopped


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
        return [Row(name, "", "", False, f"unreadable notebook: {err}")]
    try:
        return _grade(nb, path, name, labs, timeout)
    except Exception as err:  # a malformed notebook must not stop a class's grading
        return [Row(name, "", "", False, f"could not grade: {type(err).__name__}: {err}")]


def _grade(nb: dict, path: Path, name: str, labs: dict[str, Lab], timeout: float) -> list[Row]:
    lab = identify(nb, path, labs)
    if lab is None:
        return [Row(name, "", "", False, "not a lab: matches none of the solutions")]
    spans = align(lab, nb)
    stopped = execute(nb, path.parent.resolve(), timeout)
    cells = nb["cells"]
    rows = []
    for label_, first, last in spans:
        if stopped and not any(c.get("outputs") for c in cells[first:last + 1]
                               if c.get("cell_type") == "code"):
            rows.append(Row(name, lab.name, label_, False, f"not reached: {stopped}"))
            continue
        failed_before = any(_error(c) for c in cells[:first] if c.get("cell_type") == "code")
        ok, message = judge(cells, first, last, failed_before)
        rows.append(Row(name, lab.name, label_, ok, message))
    return rows


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
    """A few lines: one per notebook (score or problem), then the totals."""
    by_file: dict[str, list[Row]] = {}
    for r in rows:
        by_file.setdefault(r.student_file, []).append(r)
    lines = []
    for name, rs in by_file.items():
        if len(rs) == 1 and not rs[0].exercise:
            lines.append(f"{name}: {rs[0].message}")
            continue
        n_ok = sum(r.passed for r in rs)
        note = ""
        stopped = [r.message for r in rs if r.message.startswith("not reached")]
        if stopped:
            note = f" ({stopped[0][len('not reached: '):]})"
        lines.append(f"{name}: {rs[0].lab} {n_ok}/{len(rs)} exercises passed{note}")
    graded = [r for r in rows if r.exercise]
    lines.append(f"{len(by_file)} notebooks, {sum(r.passed for r in graded)}/{len(graded)} "
                 f"exercises passed")
    return "\n".join(lines)


def grade(paths, solutions_dir="solutions", timeout: float = 300.0) -> list[Row]:
    """Grade every notebook under ``paths`` against the labs defined in ``solutions_dir``."""
    if not (isinstance(timeout, int | float) and timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    labs = load_labs(solutions_dir)
    rows = []
    for path in find_notebooks(paths):
        rows += grade_notebook(path, labs, timeout)
    return rows
