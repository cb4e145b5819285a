import numpy as np
import pytest

from nnparam import data


def test_netcdf_round_trip_is_bit_for_bit(tmp_path):
    rng = np.random.default_rng(0)
    ds = data.fields_to_dataset(np.arange(4.0), np.linspace(0.5, 9.5, 10),
                                attrs={"note": "test"},
                                q=(rng.normal(size=(4, 10)), "1", "tracer"))
    back = data.load_netcdf(data.save_netcdf(ds, tmp_path / "ds.nc"))
    np.testing.assert_array_equal(back["q"].values, ds["q"].values)
    assert back["q"].dtype == np.float64
    assert back["q"].attrs == {"units": "1", "long_name": "tracer"}
    assert back["x"].attrs["units"] == "km" and back.attrs["note"] == "test"
    lazy = data.load_netcdf(tmp_path / "ds.nc", chunks={"time": 2})
    assert lazy["q"].chunks is not None
    data.require_units(back, ["q", "x", "time"])


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="q must have shape"):
        data.fields_to_dataset([0.0], [0.5, 1.5], q=(np.ones((2, 2)), "1", "q"))
    with pytest.raises(ValueError, match="tuple"):
        data.fields_to_dataset([0.0], [0.5], q=np.ones((1, 1)))
    with pytest.raises(ValueError, match="time"):
        data.fields_to_dataset([np.nan], [0.5], q=(np.ones((1, 1)), "1", "q"))
    with pytest.raises(ValueError, match="path"):
        data.load_netcdf(tmp_path / "missing.nc")
    ds = data.fields_to_dataset([0.0], [0.5], q=(np.ones((1, 1)), "1", "q"))
    ds["q"].attrs.pop("units")
    with pytest.raises(ValueError, match="units"):
        data.require_units(ds)
    with pytest.raises(ValueError, match="missing"):
        data.require_units(ds, ["nope"])
