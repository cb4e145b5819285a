"""Time-contiguous splits and convergence orders.

The skill scores that used to live here (``r2_score``, ``rmse``) moved to
:mod:`nnparam.evaluation`, the one home of every metric; the names below are aliases.
"""

from __future__ import annotations

import numpy as np

from ._validate import finite_array, positive_int
from .evaluation import r2_score, rmse  # noqa: F401 (aliases kept for old callers)


def time_blocks(n_time: int, fractions=(0.6, 0.2, 0.2), gap: int = 0) -> tuple[slice, ...]:
    """Split ``range(n_time)`` into consecutive, non-overlapping blocks (train, validation, test).

    Autocorrelated data must be split in time, never shuffled: a shuffled split puts near
    copies of every test sample into training and flatters the score. ``gap`` samples are
    dropped between blocks so that the blocks are also separated by a decorrelation time.
    """
    n_time = positive_int("n_time", n_time)
    gap = int(gap)
    if gap < 0:
        raise ValueError(f"gap must be >= 0 samples, got {gap}")
    fr = finite_array("fractions", fractions, ndim=1)
    if np.any(fr <= 0) or not np.isclose(fr.sum(), 1.0):
        raise ValueError(f"fractions must be positive and sum to 1, got {tuple(fr)}")
    usable = n_time - gap * (len(fr) - 1)
    sizes = np.floor(fr * usable).astype(int)
    sizes[-1] = usable - sizes[:-1].sum()
    if np.any(sizes < 1):
        raise ValueError(f"n_time={n_time} is too short for fractions {tuple(fr)} and gap {gap}")
    blocks, start = [], 0
    for size in sizes:
        blocks.append(slice(start, start + int(size)))
        start += int(size) + gap
    return tuple(blocks)


def convergence_order(resolution, error) -> float:
    """Observed order ``p`` in ``error ~ h**p``: the least-squares slope of ``log(error)``
    against ``log(h)``, where ``resolution`` holds the grid spacings (or time steps) ``h``.
    """
    h = finite_array("resolution", resolution, ndim=1)
    e = finite_array("error", error, ndim=1)
    if h.shape != e.shape or h.size < 2:
        raise ValueError("resolution and error must be 1-D arrays of the same length >= 2")
    if np.any(h <= 0) or np.any(e <= 0):
        raise ValueError("resolution and error must be strictly positive")
    return float(np.polyfit(np.log(h), np.log(e), 1)[0])
