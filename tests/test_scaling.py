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
        budget.to_zarr(path, consolidated=False)
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
