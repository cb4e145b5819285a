"""The engine's coarse-graining, filters and SGS budget stay lazy on dask-backed xarray data."""

import dask
import numpy as np
import pytest
import xarray as xr

from nnparam import filters, tracer


def refuse_to_compute(dsk, keys, **kwargs):
    raise AssertionError("a dask graph was computed before the final, explicit compute")


@pytest.fixture(scope="module")
def truth():
    return tracer.truth_run(tracer.TracerSetup(n=256, max_mode=24), t_end=8.0, spinup=2.0)


def test_budget_and_filters_build_lazily_and_match_memory(truth):
    lazy = truth.chunk({"time": 3, "x": 64})
    dx = truth.attrs["setup_length"] / truth.sizes["x"]
    with dask.config.set(scheduler=refuse_to_compute):
        budget = tracer.sgs_budget(lazy, 8)
        coarse = filters.coarse_grain(lazy["q"], 8)
        smooth = filters.gaussian(lazy["q"], 4 * dx, dx)
        hat = filters.top_hat(lazy["q"], 3 * dx, dx)
        assert all(v.chunks is not None for v in budget.data_vars.values())
        assert coarse.chunks is not None and smooth.chunks is not None and hat.chunks is not None
    eager = tracer.sgs_budget(truth, 8)
    with dask.config.set(scheduler="synchronous"):
        xr.testing.assert_allclose(budget.compute(), eager, rtol=0, atol=1e-14)
        np.testing.assert_allclose(coarse.values, filters.coarse_grain(truth["q"].values, 8))
    assert budget["sgs_tendency"].attrs["units"] == "1/h" and budget["x"].attrs["units"] == "km"


def test_budget_refuses_datasets_without_dims_or_units(truth):
    with pytest.raises(ValueError, match="units"):
        tracer.sgs_budget(truth.assign(u=truth["u"].drop_attrs()), 8)
    with pytest.raises(ValueError, match="missing"):
        tracer.sgs_budget(truth.drop_vars("u"), 8)
    with pytest.raises(ValueError, match="truth"):
        tracer.sgs_budget(truth["q"], 8)
