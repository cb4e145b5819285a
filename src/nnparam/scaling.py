"""Training data at scale: lazy synthetic truth, a chunked store, and a streaming torch dataset.

Real subgrid training sets come from kilometre-scale runs that do not fit in memory. The
engine's :func:`nnparam.tracer.sgs_budget` and :mod:`nnparam.filters` already work block by
block on dask-backed xarray objects; this module supplies the two ends of the pipeline:

* :func:`synthetic_truth`: a high-resolution ``(time, x)`` dataset defined analytically and
  generated chunk by chunk on demand (nothing is held until a chunk is computed);
* :class:`nnparam.streaming.StreamingSamples` (kept apart so that dask workers never import
  torch): a torch ``IterableDataset`` that reads a chunked store one time-chunk at a time.

Real model output needs two more things the toy does not: coarse-graining that respects cell
areas and masks (:func:`area_weighted_coarsen`), and metadata that says what each variable is
(:func:`require_instantaneous` reads the CF ``cell_methods``). Its budget residual must be
written with the host model's own coarse operator; :func:`nnparam.tracer.sgs_budget` is the
toy's.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr

from . import data, tracer
from ._validate import positive, positive_int


def synthetic_truth(n_time: int = 512, n: int = 16384, chunk_time: int = 32, seed: int = 0,
                    dt: float = 0.25) -> xr.Dataset:
    """A lazy high-resolution tracer dataset: ``q`` and ``u`` of shape ``(n_time, n)``.

    ``u`` is the gusty wind of :class:`nnparam.tracer.Wind`; ``q`` is a large-scale pattern
    of travelling waves compressed by the gusts, ``q = (1 + waves) u_mean / u`` (seeded). Each
    ``chunk_time`` block of times is computed only when asked for, so the dataset may be far
    larger than memory. Times are ``dt`` hours apart. Attributes carry the tracer setup, so
    :func:`nnparam.tracer.sgs_budget` works on it unchanged.

    The fields are a pipeline test, not a solution: ``q`` does not satisfy the tracer
    equation, so the budget computed from them is the fine operator applied to an arbitrary
    field, and a closure's skill on it says nothing about the physics.
    """
    n_time, n = positive_int("n_time", n_time), positive_int("n", n, minimum=64)
    chunk_time = min(positive_int("chunk_time", chunk_time), n_time)
    setup = tracer.TracerSetup(n=n, seed=seed)
    dt = positive("dt", dt)
    rng = np.random.default_rng(seed + 7)
    modes = np.arange(1.0, 17.0)
    k = 2 * np.pi * modes / setup.length
    large_scale = tracer.TravellingWaves(
        0.3 * modes ** (-1.0) * rng.uniform(0.5, 1.0, modes.size) / np.sum(modes ** (-1.0)), k,
        k * rng.uniform(20.0, 60.0, modes.size),  # waves drift downwind [rad/h]
        rng.uniform(0, 2 * np.pi, modes.size))

    # each block rebuilds its positions and times: arrays captured by these closures would be
    # shipped with, and kept alongside, every task of the graph
    def block_grid(block_id):
        start = block_id[0] * chunk_time
        times = dt * np.arange(start, min(start + chunk_time, n_time))
        return (np.arange(n) + 0.5) * setup.dx, times

    def u_block(block_id=None):
        return tracer.Wind(setup)(*block_grid(block_id))

    def q_block(block_id=None):
        # large-scale waves, compressed where the wind is slow: the flux u q is smooth, as in
        # the steady state of the flux-form equation, so q' is tied to the gusts
        x, t = block_grid(block_id)
        return (1.0 + large_scale(x, t)) * setup.u_mean / tracer.Wind(setup)(x, t)

    chunks = da.core.normalize_chunks((chunk_time, n), (n_time, n))
    meta = np.array((), dtype=float).reshape(0, 0)
    q = da.map_blocks(q_block, chunks=chunks, dtype=float, meta=meta)
    u = da.map_blocks(u_block, chunks=chunks, dtype=float, meta=meta)
    return xr.Dataset(
        {"q": (("time", "x"), q, {"units": "1", "long_name": "synthetic tracer"}),
         "u": (("time", "x"), u, {"units": "km/h", "long_name": "wind at cell centres"})},
        coords={"time": data.coordinate("time", dt * np.arange(n_time)),
                "x": data.coordinate("x", (np.arange(n) + 0.5) * setup.dx)},
        attrs={f"setup_{key}": value for key, value in asdict(setup).items()})


def area_weighted_coarsen(field: xr.DataArray, area: xr.DataArray, mask=None,
                          **factors: int) -> tuple[xr.DataArray, xr.DataArray]:
    """Coarse-grain ``field`` by area-weighted block means: ``sum(f a) / sum(a)`` per block.

    ``area`` (same dims as the coarsened ones, in m^2 or any area unit) weights each fine
    cell; ``mask`` (boolean, True where the field is defined, e.g. sea) drops the other cells
    from both sums, so a coarse cell that is partly land averages its sea part only, and one
    that is all land is NaN. ``factors`` give the block size per dimension, e.g.
    ``lat=4, lon=4`` (the lengths must divide exactly). Returns ``(coarse, coarse_area)``:
    ``sum(coarse * coarse_area)`` equals the masked fine integral ``sum(f a)`` to round-off,
    which a plain ``coarsen(...).mean()`` does not. The result records what was done in CF
    ``cell_methods`` ("area: mean", "where sea" for a mask) and the block sizes.
    """
    if not factors:
        raise ValueError("factors must give a block size per dimension, e.g. lat=4, lon=4")
    if not isinstance(field, xr.DataArray) or not isinstance(area, xr.DataArray):
        raise ValueError("field and area must be xarray.DataArray objects")
    if not np.all(np.isfinite(area.values)) or np.any(area.values <= 0):
        raise ValueError("area must be finite and strictly positive")
    for dim, n in factors.items():
        positive_int(f"factors[{dim!r}]", n)
        if dim not in field.dims or dim not in area.dims:
            raise ValueError(f"factors name {dim!r}, which field or area lacks")
    weights = area if mask is None else area.where(mask, 0.0)
    blocks = {"boundary": "exact", **factors}
    weight_sum = weights.coarsen(**blocks).sum()
    coarse = (field.fillna(0.0) * weights).coarsen(**blocks).sum() / weight_sum
    coarse = coarse.where(weight_sum > 0)
    coarse.attrs = {**field.attrs,
                    "cell_methods": "area: mean" + ("" if mask is None else " where sea"),
                    "coarsening_factors": str(dict(factors))}
    coarse_area = weight_sum.where(weight_sum > 0)
    coarse_area.attrs = {"long_name": "area of the defined part of each coarse cell"}
    return coarse, coarse_area


def require_instantaneous(ds: xr.Dataset, variables) -> None:
    """Raise ``ValueError`` unless every variable is instantaneous ("time: point") per CF.

    A budget residual ``(q(t + dt) - q(t)) / dt - resolved tendency`` needs instantaneous
    snapshots: from time-mean output ("time: mean") it mixes the mean of a nonlinear term with
    the term of the mean. The check reads each variable's ``cell_methods`` attribute and
    refuses variables that lack one rather than guessing.
    """
    names = list(variables)
    missing = [n for n in names if n not in ds.variables]
    if missing:
        raise ValueError(f"ds is missing the variables {missing}")
    undocumented = [n for n in names if "cell_methods" not in ds[n].attrs]
    if undocumented:
        raise ValueError(f"ds variables {undocumented} have no 'cell_methods': cannot tell "
                         "instantaneous from time-mean output")
    averaged = [f"{n} ({ds[n].attrs['cell_methods']})" for n in names
                if "time: point" not in ds[n].attrs["cell_methods"]]
    if averaged:
        raise ValueError(f"ds variables {averaged} are not instantaneous ('time: point'); a "
                         "budget residual from time-mean output is wrong")


def memory_use() -> tuple[int, int]:
    """``(resident, peak)`` memory of the calling process in bytes.

    On Linux both come from ``/proc/self/status`` (``VmRSS`` and ``VmHWM``, the high-water mark
    of this process image). ``resource.getrusage``'s ``ru_maxrss`` is not used there: for a
    worker started from a large parent (a Jupyter kernel) it reports the parent's memory at
    the fork, not the worker's. Elsewhere: ``psutil``'s resident size for both (no peak).
    Call it on dask workers with ``client.run(scaling.memory_use)``.
    """
    status = Path("/proc/self/status")
    if status.exists():
        fields = {}
        for line in status.read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) * 1024  # kB
        if len(fields) == 2:
            return fields["VmRSS"], fields["VmHWM"]
    import psutil

    rss = psutil.Process().memory_info().rss
    return rss, rss


def reset_peak_memory() -> bool:
    """Reset this process's peak memory (``VmHWM``) to its current size; True on success.

    Linux 4.0 and later (writing ``5`` to ``/proc/self/clear_refs``); elsewhere a no-op
    returning False. Lets a worker's peak be measured for one piece of work.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True
