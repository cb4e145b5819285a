"""Lab 12 checks: the solution passes, typical mistakes are named, valid variants pass."""

import numpy as np
import pytest
import xarray as xr

from nnparam import assimilate as da
from nnparam import l96
from nnparam.evaluation import hellinger
from nnparam.labs import checks_assimilate as check
from nnparam.labs.feedback import LabCheckError

X = check.nature()
N_SEG = 400


@pytest.fixture(scope="module")
def stats():
    seg = np.stack([check.climate_stats(X[i * N_SEG:(i + 1) * N_SEG])
                    for i in range(X.shape[0] // N_SEG)])
    return check.climate_stats(X), np.cov(seg.T), seg.shape[0]


@pytest.fixture(scope="module")
def filtered():
    obs, idx, std, truth = check.observations()
    return da.run_enkf(obs, idx, std, n_members=20, steps_per_cycle=5, inflation=1.2,
                       loc_radius=2.0, X0=truth[0], seed=4)


def test_statistics(stats):
    y, gamma, n_seg = stats
    assert check.statistics(y, gamma)
    with pytest.raises(LabCheckError, match="times too small"):
        check.statistics(y, gamma / n_seg)  # the standard error of the whole record
    seg10 = np.stack([check.climate_stats(X[i * 200:(i + 1) * 200]) for i in range(100)])
    with pytest.raises(LabCheckError, match="20 MTU"):
        check.statistics(y, np.cov(seg10.T))  # 10-MTU segments
    with pytest.raises(LabCheckError, match="expected the mean and std of all of X"):
        check.statistics(check.climate_stats(X[:N_SEG]), gamma)
    with pytest.raises(LabCheckError, match="2 x 2"):
        check.statistics(y, np.diag(gamma))
    with pytest.raises(LabCheckError, match="None"):
        check.statistics(None, gamma)


def test_calibration(stats):
    y, gamma, _ = stats
    prior = np.random.default_rng(1).normal(-0.5, 0.3, (20, 1))
    final = da.eki(check.forward, prior, y, gamma, n_iter=5, vectorized=True)
    assert check.calibration(prior, final)
    with pytest.raises(LabCheckError, match="only 3 members"):
        check.calibration(prior[:3], prior[:3])
    with pytest.raises(LabCheckError, match="still has a spread"):
        check.calibration(prior, prior)  # eki never run
    with pytest.raises(LabCheckError, match="almost no spread"):
        check.calibration(np.full((20, 1), -0.5), np.full((20, 1), -0.5))
    with pytest.raises(LabCheckError, match="shape"):
        check.calibration(prior[:, 0], final[:, 0])
    off = da.eki(check.forward, prior, y * np.array([1.0, 0.9]), gamma, n_iter=5,
                 vectorized=True)
    with pytest.raises(LabCheckError, match="reference calibration"):
        check.calibration(prior, off)


def test_filter_run(filtered):
    assert check.filter_run(filtered)
    obs, idx, std, truth = check.observations()
    with pytest.raises(LabCheckError, match="without inflation"):
        check.filter_run(da.run_enkf(obs, idx, std, n_members=20, steps_per_cycle=5,
                                     inflation=1.0, X0=truth[0], seed=4))
    with pytest.raises(LabCheckError, match="cycle length"):  # steps_per_cycle=10
        check.filter_run(filtered.assign_attrs(cycle_length=0.05))
    with pytest.raises(LabCheckError, match="Dataset returned by da.run_enkf"):
        check.filter_run(filtered["analysis"])
    with pytest.raises(LabCheckError, match="assimilate all"):
        check.filter_run(filtered.isel(cycle=slice(0, 100)))
    # a valid variant: more inflation, more members
    assert check.filter_run(da.run_enkf(obs, idx, std, n_members=30, steps_per_cycle=5,
                                        inflation=1.3, X0=truth[0], seed=5))


def test_increment_targets(filtered):
    ds, keep = filtered, slice(200, None)
    cyc = ds.attrs["cycle_length"]
    fc, an, inc = (ds[v].values for v in ("forecast", "analysis", "increment"))
    assert check.increment_targets(fc[keep], inc[keep] / cyc, ds)
    assert check.increment_targets(ds["forecast"][keep], ds["increment"][keep] / cyc, ds)
    cases = [((fc[keep], an[keep]), "analysis itself"),
             ((fc[keep], an[keep] / cyc), "not the analysis"),
             ((fc[keep], inc[keep]), "divide by the cycle length"),
             ((fc[keep], -inc[keep] / cyc), "wrong sign"),
             ((an[keep], inc[keep] / cyc), "inputs` are the analysis"),
             ((fc, inc / cyc), "drop the first 200 cycles")]
    for (x, y), message in cases:
        with pytest.raises(LabCheckError, match=message):
            check.increment_targets(x, y, ds)


def test_climate():
    starts = X[np.random.default_rng(5).integers(0, X.shape[0], 5)]
    run = l96.simulate_one_scale(lambda x: -0.9 * x, dt=0.005, n_steps=10_400,
                                 save_every=10, X0=starts)
    h = hellinger(X, run["X"].sel(time=slice(2.0, None)).values, bins=40, range=(-15, 25))
    assert check.climate(run, h)
    with pytest.raises(LabCheckError, match="adjustment"):
        check.climate(run, hellinger(X, run["X"].values, bins=40, range=(-15, 25)))
    with pytest.raises(LabCheckError, match="number"):
        check.climate(run, None)
    short = l96.simulate_one_scale(lambda x: -0.9 * x, dt=0.005, n_steps=2_000,
                                   save_every=10, X0=starts)
    with pytest.raises(LabCheckError, match="ends at"):
        check.climate(short, h)
    bare = l96.simulate_one_scale(None, dt=0.005, n_steps=10_400, save_every=10, X0=starts)
    with pytest.raises(LabCheckError, match="without a closure"):
        check.climate(bare, h)
    single = l96.simulate_one_scale(lambda x: -0.9 * x, dt=0.005, n_steps=10_400,
                                    save_every=10, X0=starts[0])
    with pytest.raises(LabCheckError, match="ensemble"):
        check.climate(single, h)
    with pytest.raises(LabCheckError, match="simulate_one_scale"):
        check.climate(xr.Dataset(), h)
