"""Student labs generated from the solution notebooks: one source, never edited twice.

A solution notebook in ``solutions/`` marks each exercise inside a code cell with a pair of
comment lines::

    ### BEGIN SOLUTION
    ...the worked answer...
    ### END SOLUTION

:func:`make_lab` turns every marked block into a stub that raises ``NotImplementedError``,
clears outputs, tags the cells that can no longer run (``raises-exception``, which both nbval
and the book's executor accept), and keeps the check cells, so a student gets instant,
specific feedback as they fill the blanks. Markdown cells tagged ``solution`` (a written
answer) become an empty answer box. Run ``python -m nnparam.labs`` to regenerate ``labs/``.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
STUB = 'raise NotImplementedError("Exercise: replace this line with your code")'
ANSWER_BOX = "*Your answer here (a few sentences).*"
RAISES = "raises-exception"
#: tags that only make sense on the worked solution (collapsed answers in the book)
SOLUTION_ONLY_TAGS = {"hide-input", "hide-cell", "hide-output", "remove-input"}

_BLOCK = re.compile(rf"^([ \t]*){re.escape(BEGIN)}[^\n]*\n.*?^[ \t]*{re.escape(END)}[^\n]*$",
                    re.DOTALL | re.MULTILINE)


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def strip_solution(source: str) -> str:
    """Replace each marked solution block in ``source`` by an indented stub."""
    if source.count(BEGIN) != source.count(END):
        raise ValueError(f"source has unbalanced {BEGIN!r}/{END!r} markers:\n{source}")
    return _BLOCK.sub(lambda m: m.group(1) + STUB, source)


def is_exercise(cell) -> bool:
    return cell.get("cell_type") == "code" and BEGIN in _source(cell)


def make_lab(solution: dict) -> dict:
    """Return the student version of a solution notebook (a notebook JSON dict)."""
    lab = copy.deepcopy(solution)
    seen_exercise = False
    for cell in lab["cells"]:
        meta = cell.setdefault("metadata", {})
        tags = [t for t in meta.get("tags", []) if t not in SOLUTION_ONLY_TAGS]
        if cell["cell_type"] == "markdown" and "solution" in tags:
            cell["source"] = ANSWER_BOX
            tags.remove("solution")
        if cell["cell_type"] == "code":
            if is_exercise(cell):
                cell["source"] = strip_solution(_source(cell))
                seen_exercise = True
            cell["outputs"], cell["execution_count"] = [], None
            # after the first blank, later cells may use names the student has not defined yet
            if seen_exercise and RAISES not in tags:
                tags.append(RAISES)
        if tags:
            meta["tags"] = tags
        else:
            meta.pop("tags", None)
    return lab


def dumps(nb: dict) -> str:
    """Serialise a notebook the way nbformat does (stable, diff-friendly)."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def generate(solutions_dir="solutions", labs_dir="labs", check: bool = False) -> list[Path]:
    """Write ``labs/<name>.ipynb`` for each ``solutions/<name>.ipynb``.

    With ``check=True`` nothing is written; the paths of stale or missing labs are returned.
    """
    src, dst = Path(solutions_dir), Path(labs_dir)
    if not src.is_dir():
        raise ValueError(f"solutions_dir {src} is not a directory")
    stale = []
    expected = set()
    for path in sorted(src.glob("*.ipynb")):
        target = dst / path.name
        expected.add(target.name)
        text = dumps(make_lab(json.loads(path.read_text())))
        if target.exists() and target.read_text() == text:
            continue
        stale.append(target)
        if not check:
            dst.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    orphans = [p for p in dst.glob("*.ipynb") if p.name not in expected] if dst.is_dir() else []
    stale += orphans
    if not check:
        for p in orphans:
            p.unlink()
    return stale
