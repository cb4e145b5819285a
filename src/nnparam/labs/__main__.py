"""Command line of the labs.

``python -m nnparam.labs [--check]``: regenerate ``labs/`` (and the grader's lab definitions
in the package) from ``solutions/``.

``python -m nnparam.labs grade PATH... [--out FILE] [--timeout S] [--solutions DIR]
[--hidden DIR]``: run student notebooks headless, re-run the lab's checks and the hidden
checks, and write a CSV (see :mod:`nnparam.labs.grading`). Works from any folder.

``python -m nnparam.labs export-otter [--out DIR] [--solutions DIR] [--hidden DIR] [LAB...]``:
write each lab as an otter-grader assignment notebook (see :mod:`nnparam.labs.otter_export`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import generate


def grade_main(argv) -> int:
    from . import grading

    parser = argparse.ArgumentParser(
        prog="python -m nnparam.labs grade",
        description="Execute student lab notebooks top to bottom in fresh kernels, re-run the "
                    "lab's own checks (and the instructor's hidden checks) against what each "
                    "notebook defined, and write a CSV with the columns "
                    + ", ".join(grading.COLUMNS) + ".")
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="a student notebook, or a folder searched for *.ipynb")
    parser.add_argument("--out", default="grades.csv",
                        help="CSV file to write (default: grades.csv in the current folder)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="wall-clock limit per notebook in seconds (default: 300)")
    parser.add_argument("--solutions", default=None, metavar="DIR",
                        help="folder of solution notebooks that define the labs (default: the "
                             "solutions/ of the source tree nnparam runs from, else the lab "
                             "definitions installed with nnparam)")
    parser.add_argument("--hidden", default=None, metavar="DIR",
                        help="folder of hidden checks <lab name>.py (default: the hidden/ "
                             "folder of the solutions)")
    parser.add_argument("--no-hidden", action="store_true", help="skip the hidden checks")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    # the student's kernel inherits these: headless plots, one thread per notebook
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    try:
        labs, origin = grading.find_labs(args.solutions, args.hidden, not args.no_hidden)
        notebooks = grading.find_notebooks(args.paths)
    except ValueError as err:
        parser.error(str(err))
    if not notebooks:
        parser.error("no .ipynb files found in " + " ".join(args.paths))
    print(f"grading against {origin}", flush=True)
    rows = []
    for path in notebooks:
        print(f"grading {path} ...", flush=True)
        rows += grading.grade_notebook(path, labs, args.timeout)
    out = grading.write_csv(rows, args.out)
    print(grading.summary(rows))
    print(f"wrote {out}")
    return 0


def export_main(argv) -> int:
    from . import grading, otter_export

    parser = argparse.ArgumentParser(
        prog="python -m nnparam.labs export-otter",
        description="Write each lab as an otter-grader assignment notebook (one folder per "
                    "lab); run `otter assign <folder>/<lab>.ipynb dist/` on it.")
    parser.add_argument("labs", nargs="*", metavar="LAB", help="lab names (default: all)")
    parser.add_argument("--out", default="otter", help="output folder (default: otter/)")
    parser.add_argument("--solutions", default=None, metavar="DIR",
                        help="folder of solution notebooks (default: the source tree's)")
    parser.add_argument("--hidden", default=None, metavar="DIR",
                        help="folder of hidden checks (default: the solutions' hidden/)")
    args = parser.parse_args(argv)
    solutions = Path(args.solutions) if args.solutions else grading.source_tree_solutions()
    if solutions is None or not solutions.is_dir():
        parser.error("the otter export needs the solution notebooks: pass --solutions DIR")
    try:
        written = otter_export.export(solutions, args.out, args.labs or None, args.hidden)
    except ValueError as err:
        parser.error(str(err))
    for path in written:
        print(f"wrote {path}")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "grade":
        return grade_main(argv[1:])
    if argv and argv[0] == "export-otter":
        return export_main(argv[1:])
    from . import definition, grading

    parser = argparse.ArgumentParser(
        prog="python -m nnparam.labs", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="only report files that are out of date; exit 1 if any")
    parser.add_argument("--solutions", default="solutions", help="folder of solution notebooks")
    parser.add_argument("--labs", default="labs", help="folder of generated student labs")
    parser.add_argument("--definitions", default=None, metavar="DIR",
                        help="where to write the grader's lab definitions (default: inside the "
                             "package, when --solutions is the source tree's own solutions/)")
    args = parser.parse_args(argv)
    definitions = args.definitions
    tree = grading.source_tree_solutions()
    if definitions is None and tree is not None and Path(args.solutions).resolve() == tree:
        definitions = definition.PACKAGE_DIR
    try:
        stale = generate(args.solutions, args.labs, check=args.check,
                         definitions_dir=definitions)
    except ValueError as err:
        parser.error(str(err))
    for path in stale:
        print(("stale: " if args.check else "wrote: ") + str(path))
    if args.check and stale:
        print("labs are out of date: run `python -m nnparam.labs`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
