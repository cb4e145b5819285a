"""An on-disk cache for long truth runs, keyed by the parameters that made them.

A notebook asks for a dataset by name and parameters; the first call computes it and writes
netCDF, later calls (and later notebooks, and ``make book`` after ``make test``) read it
back in milliseconds. Nothing is ever stale by accident: the key is a hash of the name, the
parameters and a ``version`` the producing code bumps when its numerics change.

    ds = cache.cached("l96-truth", {"F": 18.0, "n_mtu": 1000}, lambda: expensive_run(...))

Where: ``$NNPARAM_CACHE`` if set, else ``.cache/`` at the repository root when the package
runs from a source checkout (ignored by git), else ``~/.cache/nnparam``. ``make data``
(``python -m nnparam.cache``) fills it by calling every producer listed in
:data:`WARMERS`; a notebook never depends on that having happened, it is only faster.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import xarray as xr

#: ``"module:function"`` producers that compute every dataset the book's notebooks read;
#: each takes no arguments (``make data`` calls them in turn)
WARMERS: list[str] = [
    "nnparam.assimilate:warm_cache",
    "nnparam.apps.ocean:warm_cache",
    "nnparam.apps.burgers:warm_cache",
    "nnparam.l96:warm_cache",  # atmosphere chapter and lab 7
    "nnparam.apps.qg:warm_cache",
]


def cache_dir() -> Path:
    """The cache folder (created on first use)."""
    env = os.environ.get("NNPARAM_CACHE")
    if env:
        path = Path(env)
    else:
        root = Path(__file__).resolve().parents[2]
        path = root / ".cache" if (root / "pyproject.toml").exists() else (
            Path.home() / ".cache" / "nnparam")
    path.mkdir(parents=True, exist_ok=True)
    return path


def key(name: str, params: dict, version: int = 1) -> str:
    """The file stem for ``name`` and ``params``: readable name plus a short content hash."""
    if not name or any(c in name for c in "/\\ "):
        raise ValueError(f"name must be a non-empty word without slashes or spaces, got {name!r}")
    try:
        blob = json.dumps({"name": name, "params": params, "version": int(version)},
                          sort_keys=True, default=str)
    except TypeError as err:
        raise ValueError(f"params must be JSON-like (numbers, strings, lists), got {params!r}"
                         ) from err
    return f"{name}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


def path_of(name: str, params: dict, version: int = 1) -> Path:
    return cache_dir() / f"{key(name, params, version)}.nc"


def cached(name: str, params: dict, compute: Callable[[], xr.Dataset],
           version: int = 1) -> xr.Dataset:
    """Return the dataset ``compute()`` makes for ``params``, computing it only once.

    ``compute`` must return an ``xarray.Dataset``; it is written atomically (a temporary file
    renamed into place), so two processes filling the same key at once both end with a
    complete file. The returned dataset is loaded into memory.
    """
    if not callable(compute):
        raise ValueError(f"compute must be callable, got {type(compute).__name__}")
    target = path_of(name, params, version)
    if target.exists():
        with xr.open_dataset(target, engine="netcdf4") as ds:
            return ds.load()
    ds = compute()
    if not isinstance(ds, xr.Dataset):
        raise ValueError(f"compute must return an xarray.Dataset, got {type(ds).__name__}")
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    ds.attrs.setdefault("cache_key", target.stem)
    ds.to_netcdf(tmp, engine="netcdf4")
    os.replace(tmp, target)
    return ds


def warm(producers: list[str] | None = None) -> list[tuple[str, float]]:
    """Run each ``"module:function"`` producer; return ``(producer, seconds)`` pairs."""
    timings = []
    for spec in WARMERS if producers is None else producers:
        module, _, func = spec.partition(":")
        start = time.perf_counter()
        getattr(importlib.import_module(module), func)()
        timings.append((spec, time.perf_counter() - start))
    return timings


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    producers = argv or None
    print(f"cache folder: {cache_dir()}")
    for spec, seconds in warm(producers):
        print(f"{spec}: {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
