"""Lazy synthetic truth, chunked store and streaming dataset."""

import dask
import numpy as np
import pytest
import torch

from nnparam import nn, scaling, streaming, tracer


@pytest.fixture(scope="module")
def small():
    return scaling.synthetic_truth(n_time=24, n=512, chunk_time=8)


def test_synthetic_truth_is_lazy_deterministic_and_described(small):
    assert small["q"].chunks == ((8, 8, 8), (512,))
    assert small["q"].attrs["units"] == "1" and small["u"].attrs["units"] == "km/h"
    with dask.config.set(scheduler="synchronous"):
        q = small["q"].values
        again = scaling.synthetic_truth(n_time=24, n=512, chunk_time=8)["q"].values
        u = small["u"].values
    np.testing.assert_array_equal(q, again)
    assert q.min() > 0 and u.min() > 0
    # compression: where the wind is strong, the tracer is thin
    assert np.corrcoef(q.ravel(), u.ravel())[0, 1] < -0.3
    with pytest.raises(ValueError, match="n_time"):
        scaling.synthetic_truth(n_time=0)


@pytest.fixture(scope="module")
def store(small, tmp_path_factory):
    with dask.config.set(scheduler="synchronous"):
        budget = tracer.sgs_budget(small, 8)
        path = tmp_path_factory.mktemp("store") / "train.zarr"
        budget.to_zarr(path, zarr_format=2)  # consolidated metadata, the default
        nc = path.with_suffix(".nc")
        budget.to_netcdf(nc, encoding={v: {"chunksizes": (8, 64)} for v in budget.data_vars})
    return path, nc, budget.compute()


def test_streaming_yields_chunks_and_exact_moments(store):
    path, nc, budget = store
    for source in (path, nc):
        data = streaming.StreamingSamples(source)
        chunks = list(data)
        assert len(chunks) == 3 and chunks[0][0].shape == (8 * 64, 7)
        feats = streaming.stencil_features(budget["q"].values, budget["u_face"].values)
        target = budget["sgs_tendency"].values.reshape(-1, 1)
        mean, std = streaming.streamed_moments(data)
        full = np.column_stack([feats, target]).astype(np.float32).astype(float)
        np.testing.assert_allclose(mean, full.mean(axis=0), rtol=1e-6)
        np.testing.assert_allclose(std, full.std(axis=0), rtol=1e-5)


def test_fit_streaming_learns(store):
    path, _, _ = store
    mean, std = streaming.streamed_moments(streaming.StreamingSamples(path))
    data = streaming.StreamingSamples(path, mean=mean[:7], std=std[:7], target_scale=std[7])
    model = nn.mlp(7, 1, hidden=(16,), seed=0)
    history = streaming.fit_streaming(model, data, epochs=30, lr=1e-2)
    assert history[-1] < 0.5 * history[0]
    assert all(isinstance(x, torch.Tensor) for x in next(iter(data)))


def test_streaming_bad_input(store, tmp_path):
    path, _, _ = store
    with pytest.raises(ValueError, match="path"):
        streaming.StreamingSamples(tmp_path / "missing.zarr")
    with pytest.raises(ValueError, match="lacks variables"):
        streaming.StreamingSamples(path, target="nope")
    with pytest.raises(ValueError, match="epochs"):
        streaming.fit_streaming(nn.mlp(7, 1), streaming.StreamingSamples(path), epochs=0)


def test_tasks_stay_small_whatever_the_grid():
    """Large arrays captured in task closures would be shipped with, and held alongside, every
    task on a dask worker, so worker memory would grow with the length of the record."""
    import cloudpickle

    truth = scaling.synthetic_truth(n_time=64, n=16384, chunk_time=8)
    graph = dict(tracer.sgs_budget(truth, 64)["sgs_tendency"].__dask_graph__())
    largest = max(len(cloudpickle.dumps(task)) for task in graph.values())
    assert largest < 16384 * 8 / 4, f"a task pickles to {largest} bytes"


def test_blocks_of_any_length_cover_the_record_once(store):
    path, _, budget = store
    data = streaming.StreamingSamples(path, times_per_item=5)
    assert data.time_chunks == (5, 5, 5, 5, 4)
    targets = np.concatenate([y.numpy().ravel() for _, y in data])
    np.testing.assert_allclose(targets, budget["sgs_tendency"].values.ravel().astype(np.float32))


def test_shuffle_buffer_mixes_blocks_and_keeps_every_sample(store):
    path, _, _ = store
    plain = streaming.StreamingSamples(path, times_per_item=4)
    mixed = streaming.StreamingSamples(path, times_per_item=4, shuffle_blocks=3, seed=1)
    first = np.concatenate([y.numpy().ravel() for _, y in mixed])
    second = np.concatenate([y.numpy().ravel() for _, y in mixed])  # a new epoch
    reference = np.concatenate([y.numpy().ravel() for _, y in plain])
    np.testing.assert_array_equal(np.sort(first), np.sort(reference))
    assert not np.array_equal(first, reference) and not np.array_equal(first, second)
    again = streaming.StreamingSamples(path, times_per_item=4, shuffle_blocks=3, seed=1)
    np.testing.assert_array_equal(np.concatenate([y.numpy().ravel() for _, y in again]), first)
    # features travel with their targets through the shuffle
    x, y = next(iter(streaming.StreamingSamples(path, times_per_item=4, shuffle_blocks=3)))
    assert x.shape[0] == y.shape[0]


def test_dataloader_workers_read_disjoint_shares(store, monkeypatch):
    path, _, _ = store

    class Info:
        def __init__(self, wid):
            self.id, self.num_workers = wid, 2

    seen = []
    for wid in (0, 1):
        monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda wid=wid: Info(wid))
        data = streaming.StreamingSamples(path, times_per_item=4)
        seen.append(np.concatenate([y.numpy().ravel() for _, y in data]))
    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: None)
    whole = np.concatenate([y.numpy().ravel() for _, y in streaming.StreamingSamples(
        path, times_per_item=4)])
    assert seen[0].size + seen[1].size == whole.size
    np.testing.assert_array_equal(np.sort(np.concatenate(seen)), np.sort(whole))


def test_area_weighted_coarsening_conserves_the_integral_over_masked_cells():
    import xarray as xr

    rng = np.random.default_rng(0)
    lat = np.linspace(-87.5, 87.5, 36)
    lon = np.arange(0, 360, 5.0)
    area = xr.DataArray(np.cos(np.deg2rad(lat))[:, None] * np.ones(lon.size),
                        dims=("lat", "lon"), coords={"lat": lat, "lon": lon})
    field = xr.DataArray(rng.normal(size=(36, 72)), dims=("lat", "lon"), coords=area.coords)
    ocean = xr.DataArray(rng.random((36, 72)) > 0.3, dims=("lat", "lon"), coords=area.coords)
    coarse, coarse_area = scaling.area_weighted_coarsen(field, area, mask=ocean, lat=4, lon=4)
    fine_total = float((field * area).where(ocean).sum())
    assert float((coarse * coarse_area).sum()) == pytest.approx(fine_total, rel=1e-12)
    naive = field.where(ocean).coarsen(lat=4, lon=4).mean()
    assert abs(float((naive * coarse_area).sum()) - fine_total) > 1e-3 * abs(fine_total)
    assert coarse.attrs["cell_methods"] == "area: mean where sea"
    with pytest.raises(ValueError, match="area"):
        scaling.area_weighted_coarsen(field, -area, lat=4, lon=4)
    with pytest.raises(ValueError, match="factors"):
        scaling.area_weighted_coarsen(field, area)


def test_require_instantaneous_reads_cell_methods():
    import xarray as xr

    ds = xr.Dataset({"q": ("time", np.zeros(3), {"cell_methods": "time: point"}),
                     "u": ("time", np.zeros(3), {"cell_methods": "time: mean area: mean"}),
                     "v": ("time", np.zeros(3))})
    scaling.require_instantaneous(ds, ["q"])
    with pytest.raises(ValueError, match="time: mean"):
        scaling.require_instantaneous(ds, ["q", "u"])
    with pytest.raises(ValueError, match="no 'cell_methods'"):
        scaling.require_instantaneous(ds, ["v"])


def test_memory_use_sees_an_allocation_and_the_peak_resets():
    rss0, peak0 = scaling.memory_use()
    assert 0 < rss0 <= peak0
    block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
    rss1, peak1 = scaling.memory_use()
    assert rss1 - rss0 > 32 * 2**20 and peak1 >= rss1
    del block
    if scaling.reset_peak_memory():
        rss2, peak2 = scaling.memory_use()
        assert peak2 < peak1 - 32 * 2**20
