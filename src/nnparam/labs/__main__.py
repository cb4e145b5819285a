"""``python -m nnparam.labs [--check]``: regenerate ``labs/`` from ``solutions/``."""

from __future__ import annotations

import argparse
import sys

from . import generate


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nnparam.labs", description=__doc__)
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
