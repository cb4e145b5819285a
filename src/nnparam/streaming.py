"""Stream training samples from a chunked store into torch, one time-chunk at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import xarray as xr

from .grid import periodic_stencil


def stencil_features(q, u_face) -> np.ndarray:
    """Inputs of a local closure, shape ``(n_time * n_cells, 7)``: ``q`` at offsets -2..2 and
    the face wind on both sides of the cell (the features of lab 1)."""
    q, u_face = np.asarray(q, dtype=float), np.asarray(u_face, dtype=float)
    wind = np.stack([np.roll(u_face, 1, axis=-1), u_face], axis=-1)
    return np.concatenate([periodic_stencil(q, 2), wind], axis=-1).reshape(-1, 7)


class StreamingSamples(torch.utils.data.IterableDataset):
    """Stream ``(features, target)`` batches from a chunked store, one time-chunk at a time.

    ``path`` is a Zarr store or netCDF file holding ``q``, ``u_face`` and ``target`` on
    ``(time, x)``; ``time_slice`` selects a (time-contiguous) block. Each item is one chunk:
    float32 tensors of shape ``(n_samples, 7)`` and ``(n_samples, 1)``, with the features
    standardised by ``mean`` and ``std`` (length-7 arrays) and the target divided by
    ``target_scale`` if given.
    """

    def __init__(self, path, target: str = "sgs_tendency", time_slice: slice = slice(None),
                 mean=None, std=None, target_scale: float = 1.0):
        super().__init__()
        self.path, self.target, self.time_slice = Path(path), target, time_slice
        if not self.path.exists():
            raise ValueError(f"path {self.path} does not exist")
        self.mean, self.std, self.target_scale = mean, std, float(target_scale)
        ds = self._open()
        missing = [v for v in ("q", "u_face", target) if v not in ds.data_vars]
        if missing:
            raise ValueError(f"the store at path {self.path} lacks variables {missing}")
        self.time_chunks = ds["q"].chunksizes["time"]

    def _open(self) -> xr.Dataset:
        if self.path.suffix == ".nc":
            return xr.open_dataset(self.path, chunks={})
        return xr.open_zarr(self.path, consolidated=False)

    def __iter__(self):
        ds = self._open().isel(time=self.time_slice)
        start = 0
        for size in ds["q"].chunksizes["time"]:
            block = ds.isel(time=slice(start, start + size)).load()  # one chunk in memory
            start += size
            feats = stencil_features(block["q"].values, block["u_face"].values)
            if self.mean is not None:
                feats = (feats - self.mean) / self.std
            target = block[self.target].values.reshape(-1, 1) / self.target_scale
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
