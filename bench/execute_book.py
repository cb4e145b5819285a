"""Execute every notebook of the book into its jupyter-cache, on all cores, before the build.

``jupyter-book build`` (``execute_notebooks: cache``) executes notebooks one after the other.
This script fills the same cache (``_build/.jupyter_cache``) with a process pool first, so
the build then only merges cached outputs. Notebooks already in the cache with unchanged
code are skipped. A notebook that fails is reported with its traceback and the script exits
with status 1 (the build would fail on it anyway, later and slower).

    python bench/execute_book.py [--timeout 180]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml
from jupyter_cache import get_cache
from jupyter_cache.executors import load_executor

ROOT = Path(__file__).resolve().parents[1]
# the kernels inherit the environment: figures must be displayed inline, as in the build
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"


def toc_notebooks(toc: Path) -> list[Path]:
    """The ``.ipynb`` files the table of contents lists (root and every part's chapters)."""
    data = yaml.safe_load(toc.read_text())
    files = [data["root"]] + [c["file"] for part in data.get("parts", [])
                              for c in part.get("chapters", [])]
    return [ROOT / f"{f}.ipynb" for f in files if (ROOT / f"{f}.ipynb").exists()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=int, default=180, help="seconds per notebook")
    args = parser.parse_args(argv)
    cache = get_cache(str(ROOT / "_build" / ".jupyter_cache"))
    notebooks = toc_notebooks(ROOT / "_toc.yml")
    for path in notebooks:
        cache.add_nb_to_project(str(path))
    stale = [r for r in cache.list_project_records() if cache.get_cached_project_nb(r.pk) is None]
    print(f"{len(notebooks)} notebooks in the book, {len(stale)} to execute", flush=True)
    if not stale:
        return 0
    executor = load_executor("local-parallel", cache=cache)
    result = executor.run_and_cache(filter_pks=[r.pk for r in stale], timeout=args.timeout,
                                    allow_errors=False)
    failed = result.excepted + result.errored
    for uri in failed:
        record = cache.get_project_record(uri)
        print(f"\nFAILED {uri}\n{record.traceback or ''}", file=sys.stderr)
    print(f"executed {len(result.succeeded)}, failed {len(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
