"""``python -m nnparam.labs [--check]``: regenerate ``labs/`` from ``solutions/``.

``python -m nnparam.labs grade PATH... [--out FILE] [--timeout SECONDS]``: run student lab
notebooks headless and write one CSV row per exercise (see :mod:`nnparam.labs.grading`).
"""

from __future__ import annotations

import argparse
import os
import sys

from . import generate


def grade_main(argv) -> int:
    from . import grading

    parser = argparse.ArgumentParser(
        prog="python -m nnparam.labs grade",
        description="Execute student lab notebooks headless and write a CSV of the exercise "
                    "checks (columns: " + ", ".join(grading.COLUMNS) + ").")
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="a student notebook, or a folder searched for *.ipynb")
    parser.add_argument("--out", default="grades.csv",
                        help="CSV file to write (default: grades.csv in the current folder)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="wall-clock limit per notebook in seconds (default: 300)")
    parser.add_argument("--solutions", default="solutions",
                        help="folder of solution notebooks that define the labs")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    # the student's kernel inherits these: headless plots, one thread per notebook
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        labs = grading.load_labs(args.solutions)
        notebooks = grading.find_notebooks(args.paths)
    except ValueError as err:
        parser.error(str(err))
    if not notebooks:
        parser.error("no .ipynb files found in " + " ".join(args.paths))
    rows = []
    for path in notebooks:
        print(f"grading {path} ...", flush=True)
        rows += grading.grade_notebook(path, labs, args.timeout)
    out = grading.write_csv(rows, args.out)
    print(grading.summary(rows))
    print(f"wrote {out}")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "grade":
        return grade_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m nnparam.labs", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="only report labs that are out of date; exit 1 if any")
    parser.add_argument("--solutions", default="solutions", help="folder of solution notebooks")
    parser.add_argument("--labs", default="labs", help="folder of generated student labs")
    args = parser.parse_args(argv)
    stale = generate(args.solutions, args.labs, check=args.check)
    for path in stale:
        print(("stale: " if args.check else "wrote: ") + str(path))
    if args.check and stale:
        print("labs/ is out of date: run `python -m nnparam.labs`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
