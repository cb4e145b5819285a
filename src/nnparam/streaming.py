"""Stream training samples from a chunked store into torch, one block of times at a time.

For production pipelines, xbatcher (Pangeo) generates batches from xarray objects in the
same spirit; this module keeps the mechanics visible: blocks read lazily, a seeded shuffle
buffer over a few blocks, and disjoint shares for ``DataLoader`` workers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import xarray as xr

from ._validate import positive_int
from .grid import periodic_stencil


def stencil_features(q, u_face) -> np.ndarray:
    """Inputs of a local closure, shape ``(n_time * n_cells, 7)``: ``q`` at offsets -2..2 and
    the face wind on both sides of the cell (the features of lab 1)."""
    q, u_face = np.asarray(q, dtype=float), np.asarray(u_face, dtype=float)
    wind = np.stack([np.roll(u_face, 1, axis=-1), u_face], axis=-1)
    return np.concatenate([periodic_stencil(q, 2), wind], axis=-1).reshape(-1, 7)


class StreamingSamples(torch.utils.data.IterableDataset):
    """Stream ``(features, target)`` batches from a chunked store, a block of times at a time.

    ``path`` is a Zarr store or netCDF file holding ``q``, ``u_face`` and ``target`` on
    ``(time, x)``; ``time_slice`` selects a (time-contiguous) block. Each item is one block of
    ``times_per_item`` consecutive times (by default the store's time chunks): float32 tensors
    of shape ``(n_samples, 7)`` and ``(n_samples, 1)``, with the features standardised by
    ``mean`` and ``std`` (length-7 arrays) and the target divided by ``target_scale`` if given.

    ``shuffle_blocks > 1`` turns on a shuffle buffer for optimisation: the blocks come in a
    random order each epoch, and the samples of ``shuffle_blocks`` blocks at a time are mixed
    before being dealt out again as items (seeded by ``seed`` and the epoch; memory grows to
    that many blocks). Shuffling *within* the training block is fine; the train/test split
    itself stays a split in time. Under a ``torch.utils.data.DataLoader`` with several
    workers, each worker reads a disjoint share of the blocks (``get_worker_info``), so no
    sample is seen twice per epoch.
    """

    def __init__(self, path, target: str = "sgs_tendency", time_slice: slice = slice(None),
                 mean=None, std=None, target_scale: float = 1.0,
                 times_per_item: int | None = None, shuffle_blocks: int = 1, seed: int = 0):
        super().__init__()
        self.path, self.target, self.time_slice = Path(path), target, time_slice
        if not self.path.exists():
            raise ValueError(f"path {self.path} does not exist")
        self.mean, self.std, self.target_scale = mean, std, float(target_scale)
        ds = self._open()
        missing = [v for v in ("q", "u_face", target) if v not in ds.data_vars]
        if missing:
            raise ValueError(f"the store at path {self.path} lacks variables {missing}")
        n_time = ds.isel(time=time_slice).sizes["time"]
        if times_per_item is None:
            sizes = ds["q"].isel(time=time_slice).chunksizes.get("time", (n_time,))
        else:
            step = positive_int("times_per_item", times_per_item)
            sizes = (step,) * (n_time // step) + ((n_time % step,) if n_time % step else ())
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
        self.blocks = [(int(a), int(a + n)) for a, n in zip(starts, sizes, strict=True)]
        self.time_chunks = tuple(int(n) for n in sizes)
        self.shuffle_blocks = positive_int("shuffle_blocks", shuffle_blocks)
        self.seed, self._epoch = int(seed), 0

    def _open(self) -> xr.Dataset:
        if self.path.suffix == ".nc":
            return xr.open_dataset(self.path, chunks={})
        return xr.open_zarr(self.path)

    def _my_blocks(self, rng) -> list[tuple[int, int]]:
        blocks = list(self.blocks)
        if self.shuffle_blocks > 1:
            blocks = [blocks[i] for i in rng.permutation(len(blocks))]
        info = torch.utils.data.get_worker_info()
        if info is not None:  # each DataLoader worker reads its own share
            blocks = blocks[info.id::info.num_workers]
        return blocks

    def _load(self, ds, block):
        part = ds.isel(time=slice(*block)).load()  # one block in memory
        feats = stencil_features(part["q"].values, part["u_face"].values)
        if self.mean is not None:
            feats = (feats - self.mean) / self.std
        return feats, part[self.target].values.reshape(-1, 1) / self.target_scale

    def __iter__(self):
        ds = self._open().isel(time=self.time_slice)
        rng = np.random.default_rng((self.seed, self._epoch))
        self._epoch += 1
        blocks = self._my_blocks(rng)
        for first in range(0, len(blocks), self.shuffle_blocks):
            group = [self._load(ds, b) for b in blocks[first:first + self.shuffle_blocks]]
            if len(group) > 1:  # mix the samples of the buffered blocks, deal them out again
                feats = np.concatenate([g[0] for g in group])
                target = np.concatenate([g[1] for g in group])
                order = rng.permutation(len(target))
                group = list(zip(np.array_split(feats[order], len(group)),
                                 np.array_split(target[order], len(group)), strict=True))
            for feats, target in group:
                yield (torch.as_tensor(feats, dtype=torch.float32),
                       torch.as_tensor(target, dtype=torch.float32))


def streamed_moments(dataset: StreamingSamples) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the features and the target (last column) in one pass
    over the chunks, merging per-chunk moments exactly (the pairwise update of Chan, Golub and
    LeVeque); shapes ``(8,)``."""
    count, mean, m2 = 0, None, None
    for feats, target in dataset:
        x = torch.cat([feats, target], dim=1).double().numpy()
        n_b, mean_b = x.shape[0], x.mean(axis=0)
        m2_b = ((x - mean_b) ** 2).sum(axis=0)
        if mean is None:
            count, mean, m2 = n_b, mean_b, m2_b
            continue
        delta = mean_b - mean
        total = count + n_b
        mean = mean + delta * n_b / total
        m2 = m2 + m2_b + delta**2 * count * n_b / total
        count = total
    if mean is None:
        raise ValueError("dataset yielded no chunks")
    return mean, np.sqrt(m2 / count)


def fit_streaming(model: torch.nn.Module, dataset: StreamingSamples, epochs: int = 5,
                  lr: float = 3e-3, seed: int = 0) -> list[float]:
    """Train ``model`` with Adam, one step per streamed chunk; return the mean loss per epoch.

    Only one chunk of samples is in memory at a time, whatever the size of the store.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for _ in range(epochs):
        losses = []
        for feats, target in dataset:
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(feats), target)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        history.append(float(np.mean(losses)))
    return history
