"""nnparam.cache: compute once, read back identical data."""

import numpy as np
import pytest
import xarray as xr

from nnparam import cache


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("NNPARAM_CACHE", str(tmp_path))
    return tmp_path


def test_cached_computes_once_and_reads_back(folder):
    calls = []

    def compute():
        calls.append(1)
        return xr.Dataset({"a": ("t", np.arange(3.0) / 7)})

    first = cache.cached("demo", {"n": 3}, compute)
    second = cache.cached("demo", {"n": 3}, compute)
    assert len(calls) == 1
    xr.testing.assert_identical(first["a"], second["a"])
    cache.cached("demo", {"n": 4}, compute)  # other parameters: another entry
    cache.cached("demo", {"n": 3}, compute, version=2)  # new numerics: another entry
    assert len(calls) == 3 and len(list(folder.glob("*.nc"))) == 3


def test_key_is_stable_and_order_free():
    assert cache.key("x", {"a": 1, "b": 2}) == cache.key("x", {"b": 2, "a": 1})
    assert cache.key("x", {"a": 1}) != cache.key("x", {"a": 2})


def test_warm_runs_producers(folder):
    timings = cache.warm(["nnparam.cache:cache_dir"])
    assert timings[0][0] == "nnparam.cache:cache_dir" and timings[0][1] >= 0


def test_bad_input(folder):
    with pytest.raises(ValueError, match="name"):
        cache.key("a/b", {})
    with pytest.raises(ValueError, match="compute"):
        cache.cached("x", {}, 3)
    with pytest.raises(ValueError, match="compute must return"):
        cache.cached("x", {}, lambda: np.zeros(3))
