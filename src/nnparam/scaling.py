"""Training data at scale: lazy synthetic truth, a chunked store, and a streaming torch dataset.

Real subgrid training sets come from kilometre-scale runs that do not fit in memory. The
engine's :func:`nnparam.tracer.sgs_budget` and :mod:`nnparam.filters` already work block by
block on dask-backed xarray objects; this module supplies the two ends of the pipeline:

* :func:`synthetic_truth`: a high-resolution ``(time, x)`` dataset defined analytically and
  generated chunk by chunk on demand (nothing is held until a chunk is computed);
* :class:`nnparam.streaming.StreamingSamples` (kept apart so that dask workers never import
  torch): a torch ``IterableDataset`` that reads a chunked store one time-chunk at a time.
"""

from __future__ import annotations

from dataclasses import asdict

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
