"""Export a lab as an otter-grader assignment notebook (otter's "v1" master-notebook format).

`otter-grader <https://otter-grader.readthedocs.io>`_ is chosen over nbgrader because it
grades offline from one command (``otter run``, or ``otter grade`` in Docker), runs on
Gradescope or a JupyterHub, and is a plain pip package; nbgrader needs a course database
and a JupyterHub service. Both tools would read our solution markers.

The export is generated from the same solution notebook as the book's lab: the same cells,
with book-only cells left out and MyST markup turned into markdown; each exercise becomes an
otter question whose solution is the marked block and whose test is the lab's own check
code (an exception-based test: a check that raises fails it); each instructor hidden check
becomes a hidden test; each written answer a manually graded question with its model answer.
The lab's check cells stay in the notebook, so students keep the instant feedback.

    python -m nnparam.labs export-otter --out otter/
    otter assign otter/lab01_training_set/lab01_training_set.ipynb dist/lab01

The book's own grader (``python -m nnparam.labs grade``) stays the default.
"""

from __future__ import annotations

import ast
import builtins
import copy
import json
import re
from pathlib import Path

from . import BEGIN, BOOK_ONLY, END, SOLUTION_ONLY_TAGS, bib_for, is_exercise, make_lab, myst
from .definition import check_aliases, definition_of

_BEGIN_LINE = re.compile(rf"^([ \t]*){re.escape(BEGIN)}[^\n]*$", re.MULTILINE)
_END_LINE = re.compile(rf"^([ \t]*){re.escape(END)}[^\n]*$", re.MULTILINE)


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _raw(text: str) -> dict:
    return {"cell_type": "raw", "metadata": {}, "source": text}


def _code(text: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "source": text, "outputs": [],
            "execution_count": None}


def free_names(code: str) -> list[str]:
    """Names ``code`` reads but never binds, in order of first use (no builtins)."""
    tree = ast.parse(code)
    bound, used = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            bound.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
    for node in ast.walk(tree):
        if (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
                and node.id not in bound and node.id not in used
                and not hasattr(builtins, node.id)):
            used.append(node.id)
    return used


def _imports(aliases: dict) -> list[str]:
    lines = []
    for alias, (module, attr) in aliases.items():
        if attr is None:
            lines.append(f"import {module} as {alias}")
        else:
            lines.append(f"from {module} import {attr} as {alias}")
    return lines


def _test_cell(name: str, code: str, aliases: dict, hidden: bool = False) -> dict:
    used = [n for n in free_names(code) if n not in aliases]
    params = ", ".join(used)
    body = "\n".join("    " + ln for ln in _imports(aliases) + code.splitlines())
    config = f'""" # BEGIN TEST CONFIG\npoints: 1\nhidden: {str(hidden).lower()}\n' \
             f'""" # END TEST CONFIG'
    return _code(f"{config}\ndef {name}({params}):\n{body}")


def _hidden_functions(source: str) -> dict[int, list[str]]:
    """``{n: [parameter names]}`` of the ``exercise_<n>`` functions of a hidden-check file."""
    found = {}
    for node in ast.parse(source).body:
        match = isinstance(node, ast.FunctionDef) and re.fullmatch(r"exercise_(\d+)", node.name)
        if match:
            found[int(match.group(1))] = [a.arg for a in node.args.args]
    return found


def _hidden_test(number: int, params: list[str], source: str) -> dict:
    call = ", ".join(f"{p}={p}" for p in params)
    code = (f"source = {source!r}\nnamespace = {{}}\n"
            f"exec(compile(source, 'hidden checks', 'exec'), namespace)\n"
            f"namespace['exercise_{number}']({call})")
    config = '""" # BEGIN TEST CONFIG\npoints: 1\nhidden: true\n""" # END TEST CONFIG'
    body = "\n".join("    " + ln for ln in code.splitlines())
    return _code(f"{config}\ndef test_hidden_exercise_{number}({', '.join(params)}):\n{body}")


def _otter_solution(source: str) -> str:
    """Our ``### BEGIN SOLUTION`` markers in otter's spelling (``# BEGIN SOLUTION``)."""
    source = _BEGIN_LINE.sub(lambda m: m.group(1) + "# BEGIN SOLUTION", source)
    return _END_LINE.sub(lambda m: m.group(1) + "# END SOLUTION", source)


def to_otter(solution: dict, name: str, bib: dict | None = None,
             hidden_source: str | None = None) -> dict:
    """The otter master notebook (a notebook dict) of the solution notebook ``solution``."""
    lab = make_lab(solution, name=name, bib=bib)
    d = definition_of(lab, name)
    aliases = check_aliases(lab["cells"])
    hidden = _hidden_functions(hidden_source) if hidden_source else {}
    # the solution's cells, aligned with the lab's (the book-only ones dropped)
    sol_cells = [c for c in solution["cells"] if BOOK_ONLY not in c.get("metadata", {}).get(
        "tags", [])]
    assert len(sol_cells) == len(lab["cells"])
    exercise_at = {e["first"]: e for e in d["exercises"]}
    answer_at = {a["cell"]: a for a in d["answers"]}
    config = (f"# ASSIGNMENT CONFIG\nname: {name}\ninit_cell: true\ncheck_all_cell: false\n"
              f"export_cell: false\nrun_tests: false\nsolutions_pdf: false\ngenerate: true\n"
              f"tests:\n  ok_format: false\n  files: false")
    cells = [_raw(config)]
    for i, (sol, stu) in enumerate(zip(sol_cells, lab["cells"], strict=True)):
        cell = copy.deepcopy(stu)
        meta = cell.setdefault("metadata", {})
        meta.pop("nnparam", None)
        meta["tags"] = [t for t in meta.get("tags", []) if t not in SOLUTION_ONLY_TAGS
                        and t != "raises-exception"]
        if not meta["tags"]:
            meta.pop("tags")
        if i in exercise_at:
            ex = exercise_at[i]
            prompt = []
            if cells and cells[-1]["cell_type"] == "markdown":
                prompt = [cells.pop()]
            tests = [_test_cell(f"test_exercise_{ex['number']}", ex["check"], aliases)]
            if ex["number"] in hidden and "cells" not in hidden[ex["number"]]:
                tests.append(_hidden_test(ex["number"], hidden[ex["number"]], hidden_source))
            cells += [_raw(f"# BEGIN QUESTION\nname: exercise_{ex['number']}\n"
                           f"points: {len(tests)}"), *prompt, _raw("# BEGIN SOLUTION")]
            cell["source"] = _otter_solution(_source(sol))
            cells += [cell, _raw("# END SOLUTION"), _raw("# BEGIN TESTS"), *tests]
            cells += [_raw("# END TESTS"), _raw("# END QUESTION")]
            continue
        if i in answer_at:
            ans = answer_at[i]
            prompt = [cells.pop()] if cells and cells[-1]["cell_type"] == "markdown" else []
            model = {"cell_type": "markdown", "metadata": {},
                     "source": myst.to_markdown(_source(sol), bib)}
            cells += [_raw(f"# BEGIN QUESTION\nname: answer_{ans['number']}\nmanual: true\n"
                           f"points: 2"), *prompt, _raw("# BEGIN SOLUTION"), model,
                      _raw("# END SOLUTION"), _raw("# END QUESTION")]
            continue
        if cell["cell_type"] == "code" and is_exercise(sol):  # pragma: no cover
            raise ValueError("an exercise cell without a definition")
        cells.append(cell)
    for k, cell in enumerate(cells):  # ids are required from nbformat 4.5 on
        cell.setdefault("id", f"otter-{k}")
    nb = {"cells": cells, "metadata": copy.deepcopy(solution.get("metadata", {})),
          "nbformat": 4, "nbformat_minor": 5}
    nb["metadata"].pop("nnparam", None)
    return nb


def export(solutions_dir, out_dir, names=None, hidden_dir=None) -> list[Path]:
    """Write ``out_dir/<lab>/<lab>.ipynb`` for each lab (all, or those in ``names``)."""
    from . import dumps

    src = Path(solutions_dir)
    if not src.is_dir():
        raise ValueError(f"solutions_dir {src} is not a directory")
    hidden = Path(hidden_dir) if hidden_dir else src / "hidden"
    bib = bib_for(src)
    paths = sorted(src.glob("*.ipynb"))
    known = {p.stem for p in paths}
    if names:
        unknown = sorted(set(names) - known)
        if unknown:
            raise ValueError(f"labs {unknown} are not in {src}; known: {sorted(known)}")
        paths = [p for p in paths if p.stem in set(names)]
    written = []
    for path in paths:
        h = hidden / f"{path.stem}.py"
        nb = to_otter(json.loads(path.read_text()), path.stem, bib,
                      h.read_text() if h.is_file() else None)
        target = Path(out_dir) / path.stem / f"{path.stem}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(dumps(nb))
        written.append(target)
    return written
