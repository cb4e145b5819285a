"""nnparam.apps.qg: the pyqg-jax benchmark engine, checked against pyqg-jax itself and by hand."""

import numpy as np
import pytest
import torch
import xarray as xr

from nnparam import evaluation
from nnparam.apps import qg, qg_metrics, qg_net

torch.set_num_threads(1)
RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _private_cache(request, tmp_path, monkeypatch):
    """Runs made by the tests go to a temporary cache, never to the book's (except for the
    mutation runs of the chapter, which read the book's cached data)."""
    if not request.node.name.startswith("test_a_perturbed_claim"):
        monkeypatch.setenv("NNPARAM_CACHE", str(tmp_path))


def test_x64_is_enabled_and_models_are_double():
    import jax
    import jax.numpy as jnp

    assert jax.config.jax_enable_x64
    assert jnp.zeros(1).dtype == jnp.float64
    m = qg.model(32, "jet")
    import pyqg_jax

    assert m.precision == pyqg_jax.state.Precision.DOUBLE
    assert (m.rek, m.delta, m.beta) == (7.0e-8, 0.1, 1.0e-11)
    e = qg.model(32, "eddy")
    assert (e.rek, e.delta, e.beta, e.rd, e.H1, e.U1, e.U2, e.L) == (
        5.787e-7, 0.25, 1.5e-11, 15000.0, 500.0, 0.025, 0.0, 1.0e6)


def test_invert_matches_pyqg_jax():
    import jax
    import jax.numpy as jnp

    q = qg.initial_q(32, "eddy", seed=3) + 1e-6 * RNG.standard_normal((2, 32, 32))
    for config in qg.CONFIGS:
        base = qg.model(32, config)
        full = base.get_full_state(base.create_initial_state(jax.random.key(0)).update(
            q=jnp.asarray(q)))
        mine = qg.invert(q, config)
        for name in ("u", "v"):
            ref = np.asarray(getattr(full, name))
            np.testing.assert_allclose(mine[name], ref, atol=1e-12 * np.abs(ref).max())
        np.testing.assert_allclose(mine["psi"], np.asarray(full.p),
                                   atol=1e-10 * np.abs(full.p).max())


def test_op1_filter_is_the_model_filter_and_op2_is_gaussian():
    base = qg.model(32, "eddy")
    np.testing.assert_allclose(qg.spectral_filter(32, "op1"), np.asarray(base.filtr),
                               atol=1e-14)
    k, l = qg.wavenumbers(32)
    dx = 1e6 / 32
    np.testing.assert_allclose(qg.spectral_filter(32, "op2"),
                               np.exp(-(k**2 + l**2) * (2 * dx) ** 2 / 24))
    with pytest.raises(ValueError, match="operator"):
        qg.spectral_filter(32, "op3")


def test_coarsen_keeps_a_resolved_wave_and_removes_a_subgrid_one():
    x = (np.arange(128) + 0.5) / 128 * 1e6
    X, Y = np.meshgrid(x, x)
    k1 = 2 * np.pi / 1e6
    big = np.cos(3 * k1 * X + 2 * k1 * Y)  # |k| dx_coarse well below 0.65 pi: filter = 1
    small = np.cos(20 * k1 * X)  # beyond the 32 grid's Nyquist (16)
    coarse = qg.coarsen(big + small, 32)
    # as in the benchmark, truncation keeps the coefficients of the grid index: coarse point j
    # holds the filtered field at x = j dx_coarse + dx_fine / 2 (a translation, harmless in a
    # doubly periodic, homogeneous model)
    xc = np.arange(32) / 32 * 1e6 + 0.5e6 / 128
    Xc, Yc = np.meshgrid(xc, xc)
    np.testing.assert_allclose(coarse, np.cos(3 * k1 * Xc + 2 * k1 * Yc), atol=1e-12)
    # a wave inside the filter's roll-off is damped by exactly the filter's value
    mid = np.cos(12 * k1 * X)
    gain = np.abs(np.fft.rfft2(qg.coarsen(mid, 32))).max() / (32 * 32 / 2)
    wvx = 12 * k1 * 1e6 / 32
    assert gain == pytest.approx(np.exp(-23.6 * (wvx - 0.65 * np.pi) ** 4), rel=1e-10)
    with pytest.raises(ValueError, match="divide"):
        qg.coarsen(big, 48)
    with pytest.raises(ValueError, match="even"):
        qg.coarsen(big, 31)


def test_interpolate_then_coarsen_is_the_identity_on_resolved_scales():
    q = qg.coarsen(qg.initial_q(64, "eddy", seed=1), 32, "op1")
    q = qg.coarsen(qg.interpolate(q, 128), 32, "op1")  # filter applied twice on the roll-off
    back = qg.coarsen(qg.interpolate(q, 128), 32, "op1")
    low = np.fft.rfft2(back)[..., :8, :8]
    ref = np.fft.rfft2(q)[..., :8, :8]
    np.testing.assert_allclose(low, ref, atol=1e-12 * np.abs(ref).max())


def test_subgrid_forcing_is_minus_the_eddy_flux_divergence():
    """S_q from the model's tendencies equals -(coarsen(div(u q)) - div(ubar qbar)),
    computed here by hand with numpy: the linear terms cancel exactly."""
    q = qg.initial_q(128, "eddy", seed=2) * 2 + 2e-6 * qg.interpolate(
        qg.initial_q(64, "eddy", seed=5), 128)
    out = qg.subgrid_forcing(q[None], "eddy", 32)
    assert out["S_q"].shape == (1, 2, 32, 32)

    def div_flux(qf, config):
        n = qf.shape[-1]
        vel = qg.invert(qf, config)
        k, l = qg.wavenumbers(n)
        return np.fft.irfft2(1j * k * np.fft.rfft2(vel["u"] * qf)
                             + 1j * l * np.fft.rfft2(vel["v"] * qf), s=(n, n))

    q_bar = qg.coarsen(q, 32)
    by_hand = -(qg.coarsen(div_flux(q, "eddy"), 32) - div_flux(q_bar, "eddy"))
    np.testing.assert_allclose(out["S_q"][0], by_hand, atol=1e-9 * np.abs(by_hand).max())
    np.testing.assert_allclose(out["q"][0], q_bar)
    # zero domain mean in each layer (a flux divergence)
    assert np.abs(out["S_q"].mean(axis=(-2, -1))).max() < 1e-12 * np.abs(by_hand).max()


# ------------------------------------------------------------------------------------------
# runs
# ------------------------------------------------------------------------------------------


def _short_sim(**kw):
    args = dict(nx=32, config="eddy", years=30 * 86400 / qg.YEAR, save_every=10 * 86400.0,
                spinup=(0.05, 0.0), use_cache=False)
    args.update(kw)
    return qg.simulate(**args)


def test_simulate_returns_q_u_v_with_units_coordinates_and_is_deterministic():
    ds = _short_sim()
    assert ds["q"].dims == ("time", "lev", "y", "x") and ds.sizes["time"] == 3
    for name, units in (("q", "1/s"), ("u", "m/s"), ("v", "m/s")):
        assert ds[name].attrs["units"] == units and "long_name" in ds[name].attrs
    assert ds["x"].attrs["units"] == "m" and ds["time"].attrs["units"] == "s"
    np.testing.assert_allclose(ds["x"].values, (np.arange(32) + 0.5) * 1e6 / 32)
    np.testing.assert_allclose(np.diff(ds["time"].values), 10 * 86400.0)
    assert ds.attrs["pyqg_rek"] == 5.787e-7 and np.isnan(ds.attrs["blew_up_at"])
    again = _short_sim()
    np.testing.assert_array_equal(ds["q"].values, again["q"].values)
    other = _short_sim(seed=1)
    assert not np.allclose(ds["q"].values, other["q"].values)
    # u, v are the velocities of q
    vel = qg.invert(ds["q"].values.astype(float), "eddy")
    np.testing.assert_allclose(ds["u"].values, vel["u"])


def test_cached_simulate_reads_back_what_it_wrote():
    first = qg.simulate(32, "jet", years=20 * 86400 / qg.YEAR, save_every=10 * 86400.0,
                        spinup=(5 / 360, 0.0))
    second = qg.simulate(32, "jet", years=20 * 86400 / qg.YEAR, save_every=10 * 86400.0,
                         spinup=(5 / 360, 0.0))
    np.testing.assert_array_equal(first["q"].values, second["q"].values)
    assert first.attrs["cache_key"] == second.attrs["cache_key"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(config="gyre"), "config"),
    (dict(nx=33), "nx"),
    (dict(years=0.0), "years"),
    (dict(years=-1.0), "years"),
    (dict(dt=0.0), "dt"),
    (dict(dt=-3600.0), "dt"),
    (dict(save_every=5000.0), "save_every"),
    (dict(spinup=(0.0, 0.0)), "spinup"),
    (dict(spinup_nx=64), "spinup_nx"),
])
def test_simulate_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _short_sim(**kwargs)


def test_coarse_size_must_divide_the_fine_grid():
    q = qg.initial_q(96, "eddy")
    with pytest.raises(ValueError, match="nx"):
        qg.subgrid_forcing(q[None], "eddy", nx=64)
    with pytest.raises(ValueError, match="q must have shape"):
        qg.tendency(q[0])


def _q0(members=1, nx=32, seed=0):
    return np.stack([qg.initial_q(nx, "eddy", seed + m) for m in range(members)])


def _short_online(closure, **kw):
    args = dict(nx=32, config="eddy", years=20 * 86400 / qg.YEAR, members=1,
                adjust_years=0.0, save_every=10 * 86400.0, q0=_q0(), use_cache=False)
    args.update(kw)
    return qg.online(closure, **args)


def test_online_rejects_bad_closures_and_arguments():
    with pytest.raises(ValueError, match="closure"):
        _short_online("leith")
    with pytest.raises(ValueError, match="closure"):
        _short_online(42)
    with pytest.raises(ValueError, match="closure must return S_q with the shape"):
        _short_online(lambda q: q[0])
    with pytest.raises(ValueError, match="closure returned NaN"):
        _short_online(lambda q: np.full_like(q, np.nan))
    with pytest.raises(ValueError, match="closure failed"):
        _short_online(lambda q: 1 / 0)
    with pytest.raises(ValueError, match="q0"):
        _short_online(None, q0=_q0(2))
    for kwargs, match in ((dict(config="jets"), "config"), (dict(years=0), "years"),
                          (dict(dt=-1.0), "dt"), (dict(members=0), "members"),
                          (dict(adjust_years=-0.1), "adjust_years")):
        with pytest.raises(ValueError, match=match):
            _short_online(None, **kwargs)


def test_a_run_that_blows_up_reports_the_step_and_stops():
    def explosive(q):
        return 1e-3 * q  # dq/dt = 1e-3 q: e-folds every 1000 s, overflows within a day

    with pytest.warns(RuntimeWarning, match=r"left the finite numbers at step \d+"):
        ds = _short_online(explosive, members=2, q0=_q0(2))
    blew = ds["blew_up_at"].values
    assert np.all(np.isfinite(blew)) and np.all(blew < 5 * 86400)
    assert np.all(np.isnan(ds["q"].values[:, -1]))


def test_network_closure_runs_in_jax_like_in_torch():
    net = qg_net.FCNN((4,), (3, 3), q_scale=(4e-6, 5e-7), s_scale=(1e-11, 1e-13), seed=1)
    closure = qg_net.QGClosure(net, nx=32)
    q = _q0(3)
    import jax.numpy as jnp

    twin = np.stack([np.asarray(qg_net.jax_forward(closure.jax_weights(), jnp.asarray(x)))
                     for x in q])
    ref = closure(q)
    np.testing.assert_allclose(twin, ref, atol=2e-6 * np.abs(ref).max())
    np.testing.assert_allclose(ref.mean(axis=(-2, -1)), 0, atol=1e-6 * np.abs(ref).max())
    jax_run = _short_online(closure)
    callback_run = _short_online(lambda x: closure(x))  # the same network through torch
    np.testing.assert_allclose(jax_run["q"].values, callback_run["q"].values,
                               atol=1e-5 * np.abs(jax_run["q"].values).max())
    assert qg.closure_key(closure).startswith("fcnn-")
    assert qg.closure_key(lambda x: x) is None
    meta = closure.metadata()
    assert meta["output_units"] == "1/s^2" and meta["grid"] == 32
    import json

    json.dumps(meta)


def test_baselines_change_the_run_in_the_expected_direction():
    base = _short_online(None, years=60 * 86400 / qg.YEAR, q0=_q0(1) * 2)
    ke = {}
    for name in (None, "smagorinsky", "zb2020"):
        ds = _short_online(name, years=60 * 86400 / qg.YEAR, q0=_q0(1) * 2)
        ke[name] = float((ds["u"] ** 2 + ds["v"] ** 2).isel(time=-1).mean())
    assert ke[None] == pytest.approx(float((base["u"] ** 2 + base["v"] ** 2).isel(time=-1)
                                           .mean()))
    assert ke["smagorinsky"] < ke[None], "Smagorinsky is a viscosity: it removes energy"


# ------------------------------------------------------------------------------------------
# the network and the metrics
# ------------------------------------------------------------------------------------------


def test_train_fcnn_learns_a_linear_forcing_and_is_deterministic():
    q = np.stack([qg.initial_q(32, "eddy", s) for s in range(12)])
    lap = qg.wavenumbers(32)
    s_q = np.fft.irfft2(-(lap[0] ** 2 + lap[1] ** 2) * np.fft.rfft2(q), s=(32, 32)) * 1e3
    net, hist = qg_net.train_fcnn(q[:8], s_q[:8], (q[8:], s_q[8:]), widths=(8,), kernels=(3, 3),
                                  epochs=60, lr=1e-2, batch_size=4, seed=0)
    assert hist["validation"][hist["best_epoch"]] < 0.2 * hist["validation"][0]
    net2, _ = qg_net.train_fcnn(q[:8], s_q[:8], (q[8:], s_q[8:]), widths=(8,), kernels=(3, 3),
                                epochs=60, lr=1e-2, batch_size=4, seed=0)
    for a, b in zip(net.state_dict().values(), net2.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="kernels"):
        qg_net.FCNN((8,), (3,))
    with pytest.raises(ValueError, match="share one shape"):
        qg_net.train_fcnn(q[:8], s_q[:7])


def test_offline_skill_follows_the_benchmark_definitions():
    truth = RNG.standard_normal((5, 2, 8, 8)) + 3.0  # a mean: the centring matters
    pred = truth + 0.5 * RNG.standard_normal(truth.shape)
    sk = qg_metrics.offline_skill(truth, pred)
    for z in range(2):
        t, p = truth[:, z], pred[:, z]
        by_hand = 1 - np.sum((t - p) ** 2) / np.sum((t - truth.mean()) ** 2)
        assert sk["r2"][z] == pytest.approx(by_hand)
        assert sk["corr"][z] == pytest.approx(np.corrcoef(t.ravel(), p.ravel())[0, 1])
    # centred on the global mean, not the layer's: differs from evaluation.r2_score here
    shifted = truth.copy()
    shifted[:, 1] += 10
    sk2 = qg_metrics.offline_skill(shifted, shifted + (pred - truth))
    assert sk2["r2"][1] != pytest.approx(evaluation.r2_score(shifted[:, 1], shifted[:, 1]
                                                             + (pred - truth)[:, 1]))
    perfect = qg_metrics.offline_skill(truth, truth)
    np.testing.assert_allclose(perfect["r2"], 1.0)
    np.testing.assert_allclose(perfect["r2_map_mean"], 1.0)
    with pytest.raises(ValueError, match="share a shape"):
        qg_metrics.offline_skill(truth, pred[:, :1])


def _fake_run(q, config="eddy"):
    ds = xr.Dataset({"q": (("member", "time", "lev", "y", "x"), q)},
                    coords=qg.grid_coords(q.shape[-1]), attrs={"config": config})
    return ds


def test_distances_are_zero_to_itself_and_similarity_handles_blow_ups():
    q = np.stack([np.stack([qg.initial_q(32, "eddy", 10 * m + t) for t in range(4)])
                  for m in range(2)])
    run = _fake_run(q)
    truth = qg_metrics.Truth(_fake_run(q[:1]).isel(member=0), "eddy", snapshots=4)
    d = qg_metrics.distances(run, truth)
    assert set(d) == set(qg_metrics.METRICS)
    for metric in qg_metrics.METRICS:
        assert d[metric][0] == pytest.approx(0.0, abs=1e-15)
        assert d[metric][1] > 0
    blown = q.copy()
    blown[1, -1] = np.nan
    d_blown = qg_metrics.distances(_fake_run(blown), truth)
    assert np.isnan(d_blown["q1"][1]) and d_blown["q1"][0] == pytest.approx(0.0, abs=1e-15)
    baseline = {m: np.full(2, d[m][1]) for m in qg_metrics.METRICS}
    sim = qg_metrics.similarity(d_blown, baseline)
    assert np.isnan(sim["KE1"][1]) and sim["KE1"][0] == pytest.approx(1.0)
    # Wasserstein of the upper-layer PV, by hand with scipy
    from scipy.stats import wasserstein_distance

    assert d["q1"][1] == pytest.approx(wasserstein_distance(q[1][:, 0].ravel(),
                                                            q[0][:, 0].ravel()))


def test_spectra_obey_parseval():
    q = np.stack([qg.initial_q(32, "eddy", t) for t in range(3)])[None]
    spec = qg_metrics.spectra(_fake_run(q), "eddy")
    dk = 2 * np.pi / 1e6
    total = spec["Ensspec"][0, 0].sum() * dk
    # the annuli up to Nyquist miss only the corners of the spectrum; the field is band-limited
    assert total == pytest.approx(np.mean(q[0, :, 0] ** 2), rel=1e-10)
    assert qg_metrics.k_max(64) == pytest.approx(0.65 * np.pi / (1e6 / 64))


def test_the_model_is_symmetric_under_a_meridional_reflection():
    """q(x, y) -> -q(x, -y) maps solutions to solutions (zonal flow, beta, drag), which is
    what train_fcnn(reflect=True) relies on. On the grid it is exact for fields whose
    products do not reach the Nyquist wavenumber (whose spectral derivative has no sign to
    flip): here |k| <= 7 dk on a 32 grid; model states are filtered there to ~1e-15."""
    k, l = qg.wavenumbers(32)
    band = np.hypot(k, l) <= 7.5 * 2 * np.pi / 1e6
    q = np.fft.irfft2(np.fft.rfft2(qg.initial_q(32, "eddy", seed=4)
                                   + 1e-6 * RNG.standard_normal((2, 32, 32))) * band,
                      s=(32, 32))
    for config in qg.CONFIGS:
        mirrored = -q[..., ::-1, :]
        lhs = qg.tendency(mirrored, config)
        rhs = -qg.tendency(q, config)[..., ::-1, :]
        np.testing.assert_allclose(lhs, rhs, atol=1e-12 * np.abs(rhs).max())
        # not a symmetry in x: the background flow U1 points east
        x_mirror = qg.tendency(-q[..., ::-1], config)
        assert not np.allclose(x_mirror, -qg.tendency(q, config)[..., ::-1],
                               atol=1e-3 * np.abs(rhs).max())
    x, y = np.repeat(q[None], 4, axis=0), np.repeat(qg.tendency(q, "eddy")[None], 4, axis=0)
    _, hist = qg_net.train_fcnn(x, y, epochs=2, reflect=True, batch_size=4)
    assert len(hist["train"]) == 2 and np.all(np.isfinite(hist["train"]))


def test_fft_and_direct_convolutions_agree():
    import jax.numpy as jnp

    net = qg_net.FCNN((6, 6), (5, 3, 3), q_scale=(4e-6, 5e-7), s_scale=(1e-11, 1e-13), seed=3)
    q = jnp.asarray(qg.initial_q(32, "jet", seed=1))
    direct = qg_net.QGClosure(net, nx=32, method="direct")
    fft = qg_net.QGClosure(net, nx=32, method="fft")
    a = np.asarray(qg_net.jax_forward(direct.jax_weights(), q))
    b = np.asarray(qg_net.jax_forward(fft.jax_weights(), q))
    np.testing.assert_allclose(a, b, atol=1e-5 * np.abs(a).max())
    np.testing.assert_allclose(a, direct(np.asarray(q)), atol=1e-5 * np.abs(a).max())
    with pytest.raises(ValueError, match="method"):
        qg_net.QGClosure(net, method="winograd")
    with pytest.raises(ValueError, match="FCNN"):
        qg_net.QGClosure(torch.nn.Linear(2, 2))


def test_make_data_knows_the_engine():
    from nnparam import cache

    assert "nnparam.apps.qg:warm_cache" in cache.WARMERS
    assert qg.training_blocks(150)[0] == slice(0, 75)
    with pytest.raises(ValueError, match="config"):
        qg.truth("gyre")


# ------------------------------------------------------------------------------------------
# the chapter's assertions can fail (mutation runs, on the book's cached data)
# ------------------------------------------------------------------------------------------

CHAPTER = "book/applications/ocean_pyqg.ipynb"
MUTATIONS = {
    # the eddy network scored on the eddy record where the jet record belongs: the
    # out-of-distribution drop of the lower-layer R2 disappears
    "offline: no jet in the jet test": (
        {'"jet": ("jet", slice(None))}': '"jet": ("eddy", slice(None))}'},
        "lower layer: below zero"),
    # the jet scores read as eddy scores: the networks no longer help in the eddy regime
    "online: jet scores in place of eddy scores": (
        {'mean_score = {c: {n: tables[c]["score"]':
         'mean_score = {c: {n: tables["jet"]["score"]'},
        "the networks help in eddy"),
}


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_a_perturbed_claim_stops_the_chapter(name):
    from mutation import run_mutated

    replacements, message = MUTATIONS[name]
    failure = run_mutated(CHAPTER, replacements, timeout=600)
    assert failure is not None, f"{name}: the mutated chapter still passes"
    assert failure.ename == "AssertionError", failure
    assert message in failure.message, failure
