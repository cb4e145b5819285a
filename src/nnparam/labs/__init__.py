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
answer) become an empty answer box. Cells tagged ``book-only`` (text about the book page) are
left out of the lab; cells tagged ``lab-only`` (with ``remove-cell``, so the book hides them)
appear only in the lab. MyST roles and directives become plain markdown (:mod:`.myst`).

Each cell of the lab carries ``metadata.nnparam`` with its role (``exercise``, ``check``,
``answer``) and the notebook ``metadata.nnparam.lab`` its name. :func:`generate` writes the
labs and, for the grader, a JSON definition of each lab (:mod:`.definition`) that travels with
the package and holds no solution. Run ``python -m nnparam.labs`` to regenerate both.
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
BOOK_ONLY = "book-only"  # a markdown cell about the book page: left out of the lab
LAB_ONLY = "lab-only"  # a cell for the student notebook only (tag it remove-cell as well)
#: tags that only make sense on the worked solution (collapsed answers in the book)
SOLUTION_ONLY_TAGS = {"hide-input", "hide-cell", "hide-output", "remove-input", "remove-cell",
                      LAB_ONLY}

_BLOCK = re.compile(rf"^([ \t]*){re.escape(BEGIN)}[^\n]*\n.*?^[ \t]*{re.escape(END)}[^\n]*$",
                    re.DOTALL | re.MULTILINE)
_HEADING = re.compile(r"^#+\s*(Exercise\s+\d+[^\n]*)", re.IGNORECASE | re.MULTILINE)
_ANY_HEADING = re.compile(r"^#+\s*(.+)$", re.MULTILINE)


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


def _tags(cell) -> list:
    return list(cell.get("metadata", {}).get("tags", []))


def _labels(cells) -> tuple[dict, dict]:
    """Labels of the exercises and written answers of a solution, by cell index."""
    exercise_labels, answer_labels = {}, {}
    heading, section = None, None
    n_ex = n_ans = 0
    for i, cell in enumerate(cells):
        src = _source(cell)
        if cell.get("cell_type") == "markdown" and "solution" not in _tags(cell):
            match = _HEADING.search(src)
            if match:
                heading = match.group(1).strip()
            headings = _ANY_HEADING.findall(src)
            if headings:
                section = headings[-1].strip()
        if is_exercise(cell):
            n_ex += 1
            exercise_labels[i] = heading or (f"Exercise {n_ex} ({section})" if section
                                             else f"Exercise {n_ex}")
            heading = None  # a heading names the first exercise after it only
        elif cell.get("cell_type") == "markdown" and "solution" in _tags(cell):
            n_ans += 1
            prompt = _source(cells[i - 1]) if i else ""
            first = prompt.strip().splitlines()[0] if prompt.strip() else ""
            name = re.sub(r"[*#]", "", first).strip()
            name = re.sub(r"^(written answer|question)\s*[.:]?\s*", "", name, flags=re.I)
            name = name if len(name) <= 70 else name[:67] + "..."
            answer_labels[i] = f"Written answer {n_ans}" + (f": {name}" if name else "")
    return exercise_labels, answer_labels


def make_lab(solution: dict, name: str | None = None, bib: dict | None = None) -> dict:
    """Return the student version of a solution notebook (a notebook JSON dict).

    ``name`` (the lab's file stem) goes into the notebook metadata, ``bib`` (from
    :func:`nnparam.labs.myst.load_bib`) turns citations into author-year text.
    """
    from . import myst

    lab = copy.deepcopy(solution)
    markdown = [_source(c) for c in lab["cells"]
                if c.get("cell_type") == "markdown" and "solution" not in _tags(c)
                and BOOK_ONLY not in _tags(c)]
    keys = myst.cited_keys(markdown)
    exercise_labels, answer_labels = _labels(lab["cells"])
    cells = []
    seen_exercise = False
    n_ex = n_ans = 0
    for i, cell in enumerate(lab["cells"]):
        meta = cell.setdefault("metadata", {})
        original = _tags(cell)
        if BOOK_ONLY in original:
            continue
        tags = [t for t in original if t not in SOLUTION_ONLY_TAGS]
        meta.pop("nnparam", None)
        if cell["cell_type"] == "markdown":
            if "solution" in original:
                n_ans += 1
                cell["source"] = ANSWER_BOX
                tags.remove("solution")
                meta["nnparam"] = {"role": "answer", "answer": n_ans, "label": answer_labels[i]}
            else:
                cell["source"] = myst.to_markdown(_source(cell), bib, keys)
        if cell["cell_type"] == "code":
            if is_exercise(cell):
                n_ex += 1
                cell["source"] = strip_solution(_source(cell))
                meta["nnparam"] = {"role": "exercise", "exercise": n_ex,
                                   "label": exercise_labels[i]}
                seen_exercise = True
            elif i and is_exercise(solution["cells"][i - 1]):  # the exercise's check cell
                meta["nnparam"] = {"role": "check", "exercise": n_ex}
            cell["outputs"], cell["execution_count"] = [], None
            # after the first blank, later cells may use names the student has not defined yet
            if seen_exercise and RAISES not in tags:
                tags.append(RAISES)
        if tags:
            meta["tags"] = tags
        else:
            meta.pop("tags", None)
        cells.append(cell)
    lab["cells"] = cells
    if name:
        lab.setdefault("metadata", {})["nnparam"] = {"lab": name}
    return lab


def dumps(nb: dict) -> str:
    """Serialise a notebook the way nbformat does (stable, diff-friendly: sources as lists
    of lines)."""
    nb = copy.deepcopy(nb)
    for cell in nb.get("cells", []):
        cell["source"] = _source(cell).splitlines(keepends=True)
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def bib_for(solutions_dir) -> dict:
    """The book's bibliography seen from a solutions folder (``../book/references.bib``)."""
    from . import myst

    return myst.load_bib(Path(solutions_dir).resolve().parent / "book" / "references.bib")


def _write(target: Path, text: str, check: bool, stale: list) -> None:
    if target.exists() and target.read_text() == text:
        return
    stale.append(target)
    if not check:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def _prune(folder: Path | None, pattern: str, expected: set, check: bool, stale: list) -> None:
    if folder is None or not folder.is_dir():
        return
    for p in sorted(folder.glob(pattern)):
        if p.name not in expected:
            stale.append(p)
            if not check:
                p.unlink()


def generate(solutions_dir="solutions", labs_dir="labs", check: bool = False,
             definitions_dir=None) -> list[Path]:
    """Write ``labs/<name>.ipynb`` for each ``solutions/<name>.ipynb``.

    With ``definitions_dir`` the grader's definition ``<name>.json`` of each lab is written
    there too. With ``check=True`` nothing is written; the paths of stale, missing or orphan
    files are returned.
    """
    from .definition import definition_of

    src, dst = Path(solutions_dir), Path(labs_dir)
    if not src.is_dir():
        raise ValueError(f"solutions_dir {src} is not a directory")
    defs = Path(definitions_dir) if definitions_dir is not None else None
    bib = bib_for(src)
    stale: list[Path] = []
    expected, expected_defs = set(), set()
    for path in sorted(src.glob("*.ipynb")):
        lab = make_lab(json.loads(path.read_text()), name=path.stem, bib=bib)
        expected.add(path.name)
        _write(dst / path.name, dumps(lab), check, stale)
        if defs is not None:
            expected_defs.add(path.stem + ".json")
            text = json.dumps(definition_of(lab, path.stem), indent=1, ensure_ascii=False)
            _write(defs / (path.stem + ".json"), text + "\n", check, stale)
    _prune(dst, "*.ipynb", expected, check, stale)
    _prune(defs, "*.json", expected_defs, check, stale)
    return stale
