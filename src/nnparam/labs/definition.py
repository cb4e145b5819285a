"""The grader's definition of a lab: what it needs to grade a copy, and no solution.

A definition is a JSON-ready dict made from a *generated* student lab (never from the
solution text):

* ``cells``: ``[cell_type, source]`` of every cell, to recognise a student's copy and align
  its cells with the lab's, however the student inserted, deleted or edited cells;
* ``exercises``: per exercise its number, label, first and last lab cell, and ``check``, the
  code the grader re-runs in the student's kernel after the exercise: the whole check cell
  that follows the exercise cell, plus the statements of the exercise cell after the stub that
  call a check (``check.x(...)``, ``require(...)``);
* ``answers``: the written-answer cells (their text goes into the report, for grading by hand);
* ``aliases``: the names under which the lab imports its checks, each bound to
  ``[module, attribute or None]``, so that the grader can bind them to the installed package's
  own objects, whatever the notebook did to them.

The definitions of the book's labs are written by ``python -m nnparam.labs`` into
``nnparam/labs/definitions/`` and installed with the package, so ``grade`` works without the
repository.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

FORMAT = 1
PACKAGE_DIR = Path(__file__).resolve().parent / "definitions"
CHECK_PACKAGE = "nnparam.labs"


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _is_check_module(module: str) -> bool:
    parts = module.split(".")
    return (module.startswith(CHECK_PACKAGE + ".") and len(parts) == 3
            and (parts[2].startswith("checks_") or parts[2] == "feedback"))


def check_aliases(cells) -> dict[str, list]:
    """Names the lab's code cells bind to check modules or to objects imported from them."""
    aliases: dict[str, list] = {}
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        try:
            tree = ast.parse(_source(cell))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                for a in node.names:
                    if _is_check_module(a.name) and a.asname:
                        aliases[a.asname] = [a.name, None]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:
                    if node.module == CHECK_PACKAGE and _is_check_module(f"{node.module}.{a.name}"):
                        aliases[a.asname or a.name] = [f"{node.module}.{a.name}", None]
                    elif _is_check_module(node.module) and a.name != "*":
                        aliases[a.asname or a.name] = [node.module, a.name]
    return aliases


def _uses(node: ast.AST, names) -> bool:
    return any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(node))


def check_code(exercise_source: str, check_source: str | None, aliases) -> str:
    """The code that checks one exercise (see the module docstring)."""
    from . import STUB

    parts = []
    try:
        tree = ast.parse(exercise_source)
    except SyntaxError:
        tree = None
    if tree is not None:
        stub_lines = {i + 1 for i, line in enumerate(exercise_source.splitlines())
                      if STUB in line}
        after = False
        for node in tree.body:
            if any(node.lineno <= ln <= node.end_lineno for ln in stub_lines):
                after = True
                continue
            if after and _uses(node, aliases):
                parts.append(ast.get_source_segment(exercise_source, node))
    if check_source and check_source.strip():
        parts.append(check_source.strip())
    return "\n".join(p for p in parts if p)


def definition_of(lab: dict, name: str) -> dict:
    """The definition (a JSON-ready dict) of a generated lab notebook named ``name``."""
    cells = lab["cells"]
    aliases = check_aliases(cells)
    exercises, answers = [], []
    title = next((line.lstrip("#").strip() for c in cells if c.get("cell_type") == "markdown"
                  for line in _source(c).splitlines() if line.startswith("# ")), name)
    for i, cell in enumerate(cells):
        meta = cell.get("metadata", {}).get("nnparam", {})
        if meta.get("role") == "exercise":
            nxt = cells[i + 1] if i + 1 < len(cells) else None
            has_check = nxt is not None and nxt.get("metadata", {}).get("nnparam", {}).get(
                "role") == "check"
            exercises.append({
                "number": meta["exercise"], "label": meta["label"], "first": i,
                "last": i + 1 if has_check else i,
                "check": check_code(_source(cell), _source(nxt) if has_check else None,
                                    aliases)})
        elif meta.get("role") == "answer":
            answers.append({"number": meta["answer"], "label": meta["label"], "cell": i})
    return {"format": FORMAT, "lab": name, "title": title,
            "cells": [[c.get("cell_type", ""), _source(c).strip()] for c in cells],
            "exercises": exercises, "answers": answers, "aliases": aliases}


def load_dir(folder) -> dict[str, dict]:
    """Every definition ``<name>.json`` in ``folder``, keyed by lab name."""
    folder = Path(folder)
    found = {}
    for path in sorted(folder.glob("*.json")):
        d = json.loads(path.read_text())
        if d.get("format") != FORMAT:
            raise ValueError(f"{path}: lab definition format {d.get('format')!r}, expected "
                             f"{FORMAT}: regenerate with `python -m nnparam.labs`")
        found[d["lab"]] = d
    return found
