"""The checks of lab 7 accept the worked solution and reject the typical mistakes, with the
message that names them (the wrong answers of the student trial among them)."""

import numpy as np
import pytest
import xarray as xr

from nnparam import evaluation as ev
from nnparam import l96
from nnparam.labs import checks_l96 as check
from nnparam.labs.feedback import LabCheckError
from nnparam.metrics import r2_score, time_blocks


def coupling_term(ds):
    a = ds.attrs
    return -(a["h"] * a["c"] / a["b"]) * ds.Y.values.sum(axis=-1)


def split_in_time(n_time):
    return time_blocks(n_time, (0.6, 0.2, 0.2), gap=50)


def offline_r2(P, X, target, test_b):
    return r2_score(target[test_b], P(X[test_b]))


def train_closure(X, target, train_b, val_b):
    """The lab's worked answer: a 16-16 tanh MLP of the stencil, on every 10th time."""
    import torch

    from nnparam.nn import Standardizer, mlp, train

    torch.set_num_threads(1)
    feats = l96.stencil(X, 1)
    x_tr, y_tr = feats[train_b][::10].reshape(-1, 3), target[train_b][::10].reshape(-1, 1)
    x_va, y_va = feats[val_b][::10].reshape(-1, 3), target[val_b][::10].reshape(-1, 1)
    sx, sy = Standardizer(x_tr), Standardizer(y_tr)
    net = mlp(3, 1, hidden=(16, 16), seed=0)
    train(net, sx.transform(x_tr), sy.transform(y_tr), epochs=300, lr=2e-2,
          validation=(sx.transform(x_va), sy.transform(y_va)), patience=40)
    return l96.neural_closure(net, 1, sx, sy)


def coupled_climate(P, X0, **kw):
    kw = {"K": 8, "F": 18.0, "dt": 0.01, "n_steps": 1200, "X0": X0, "seed": 1, **kw}
    run = l96.simulate_one_scale(P, **kw)
    return run, run["X"].sel(time=slice(2.0, None))


def both_scores(r2, x_clim, X):
    return {"r2": r2, "hellinger": ev.hellinger(X, x_clim.values, bins=40, range=(-15, 25))}


@pytest.fixture(scope="module")
def lab():
    truth = check.make_truth()
    X, U = truth.X.values, truth.coupling.values
    blocks = split_in_time(X.shape[0])
    P = train_closure(X, U, blocks[0], blocks[1])
    X0 = 18.0 + 0.01 * np.random.default_rng(0).standard_normal((10, 8))
    run, x_clim = coupled_climate(P, X0)
    return dict(truth=truth, X=X, U=U, blocks=blocks, P=P, X0=X0, run=run, x_clim=x_clim,
                r2=offline_r2(P, X, U, blocks[2]))


def test_truth_is_cached_and_spun_up(lab):
    assert check.make_truth() is lab["truth"]
    assert lab["X"].shape == (6001, 8) and lab["truth"].Y.shape == (6001, 8, 32)
    assert abs(lab["X"].mean() - 3.7) < 0.5  # on the attractor, not near the random start


# ---------------------------------------------------------------------------------- ex. 1
def test_coupling_target_accepts_the_solution(lab, capsys):
    assert check.coupling_target(coupling_term, coupling_term(lab["truth"]))
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (lambda ds: -coupling_term(ds), "wrong sign"),
    (lambda ds: coupling_term(ds) / ds.attrs["J"], "averaged"),
    (lambda ds: coupling_term(ds).T, "transposed"),
    (lambda ds: -ds.Y.values.sum(axis=1), "fast index j"),
    (lambda ds: None, "None"),
])
def test_coupling_target_rejects_wrong_targets(lab, wrong, message):
    with pytest.raises(LabCheckError, match=message):
        check.coupling_target(wrong, wrong(lab["truth"]))


@pytest.mark.parametrize("wrong, message", [
    (lambda ds: -ds.Y.values.sum(axis=-1), "prefactor h c / b is missing"),  # h c / b = 1 here
    (lambda ds: -(ds.attrs["h"] * ds.attrs["b"] / ds.attrs["c"]) * ds.Y.values.sum(axis=-1),
     "times the expected"),
    (lambda ds: ds.coupling.values, "reads ds.coupling"),
    (lambda ds: -10.0 / 10.0 * ds.Y.values.sum(axis=-1), "prefactor"),  # hard-coded constants
])
def test_coupling_target_needs_the_parameters_of_the_dataset(lab, wrong, message):
    # these agree with the truth's coupling (h = 1, b = c = 10) but not for other parameters
    with pytest.raises(LabCheckError, match=message):
        check.coupling_target(wrong, coupling_term(lab["truth"]))


def test_coupling_target_wraps_student_errors(lab):
    def broken(ds):
        raise IndexError("tuple index out of range")

    with pytest.raises(LabCheckError, match="raised IndexError"):
        check.coupling_target(broken, coupling_term(lab["truth"]))


# ---------------------------------------------------------------------------------- ex. 2
def test_split_accepts_slices_arrays_and_masks(lab):
    n = lab["X"].shape[0]
    assert check.split(split_in_time, lab["blocks"])
    as_arrays = tuple(np.arange(n)[b] for b in lab["blocks"])
    assert check.split(lambda m: tuple(np.arange(m)[b] for b in split_in_time(m)), as_arrays)
    masks = []
    for b in lab["blocks"]:
        mask = np.zeros(n, bool)
        mask[b] = True
        masks.append(mask)
    assert check.split(split_in_time, tuple(masks))


def _shuffled(n):
    perm = np.random.default_rng(0).permutation(n)
    return perm[: int(0.6 * n)], perm[int(0.6 * n): int(0.8 * n)], perm[int(0.8 * n):]


@pytest.mark.parametrize("make, message", [
    (_shuffled, "shuffled"),
    (lambda n: time_blocks(n, (0.6, 0.2, 0.2)), "gap"),  # no gap at all
    (lambda n: tuple(reversed(time_blocks(n, (0.2, 0.2, 0.6), gap=50))), "before"),
    (lambda n: (slice(0, int(0.6 * n)), slice(int(0.8 * n), n)), "three blocks"),
    (lambda n: (slice(0, int(0.6 * n)), slice(int(0.6 * n) + 20, int(0.8 * n)),
                slice(int(0.8 * n) + 20, n - 1)), "last block"),  # drops the last index
    (lambda n: time_blocks(n, (0.3, 0.2, 0.5), gap=50), "about 20 %"),
    (lambda n: tuple(np.arange(n)[b].astype(float) for b in time_blocks(n, (0.6, 0.2, 0.2),
                                                                      gap=50)), "integer"),
])
def test_split_rejects_typical_mistakes(lab, make, message):
    n = lab["X"].shape[0]
    with pytest.raises(LabCheckError, match=message):
        check.split(make, make(n))


def test_split_checks_the_function_on_another_length(lab):
    fixed = lab["blocks"]  # a function that ignores n_time
    with pytest.raises(LabCheckError, match="no time of a record of 1000"):
        check.split(lambda n: fixed, fixed)


# ---------------------------------------------------------------------------------- ex. 3
def test_offline_score_accepts_a_closure_that_beats_the_cubic(lab, capsys):
    train, _, test = lab["blocks"]
    assert check.offline_score(offline_r2, lab["P"], lab["r2"], train, test)
    assert "cubic" in capsys.readouterr().out


def test_offline_score_rejects_typical_mistakes(lab):
    X, U, P = lab["X"], lab["U"], lab["P"]
    train, val, test = lab["blocks"]
    with pytest.raises(LabCheckError, match="training block"):
        check.offline_score(lambda P, X, t, b: r2_score(t[train], P(X[train])), P,
                            lab["r2"], train, test)
    with pytest.raises(LabCheckError, match=r"r2_score\(true, predicted\)"):
        check.offline_score(lambda P, X, t, b: r2_score(t[val], P(X[val])), P, lab["r2"],
                            train, test)
    with pytest.raises(LabCheckError, match=r"r2_score\(true, predicted\)"):
        check.offline_score(lambda P, X, t, b: r2_score(P(X[b]), t[b]), P, lab["r2"], train,
                            test)
    with pytest.raises(LabCheckError, match="you report"):
        check.offline_score(offline_r2, P, lab["r2"] + 0.05, train, test)
    with pytest.raises(LabCheckError, match="wrong sign"):
        check.offline_score(offline_r2, lambda x: -P(x), -lab["r2"], train, test)
    line = l96.fit_polynomial(X[train], U[train], 1)
    with pytest.raises(LabCheckError, match="cubic polynomial .* reaches"):
        check.offline_score(offline_r2, line, offline_r2(line, X, U, test), train, test)
    with pytest.raises(LabCheckError, match="one number"):
        check.offline_score(offline_r2, P, f"{lab['r2']:.3f}", train, test)
    with pytest.raises(LabCheckError, match="shape"):
        check.offline_score(offline_r2, lambda x: x[..., :2], lab["r2"], train, test)


def test_offline_score_explains_a_bare_network(lab):
    from nnparam.nn import mlp

    net = mlp(3, 1, hidden=(4,), seed=0)  # callable, but on torch tensors of 3 features
    train, _, test = lab["blocks"]
    with pytest.raises(LabCheckError, match=r"`P\(X\[test\]\)` raised.*wrap it as a closure"):
        check.offline_score(offline_r2, net, 0.9, train, test)


# ---------------------------------------------------------------------------------- ex. 4
def test_coupled_run_accepts_the_solution(lab):
    assert check.coupled_run(lab["run"], lab["x_clim"], lab["P"], lab["X0"])
    alt = lab["run"]["X"].isel(time=slice(200, None))  # isel instead of sel: same data
    assert check.coupled_run(lab["run"], alt, lab["P"], lab["X0"])


@pytest.mark.parametrize("kwargs, message", [
    (dict(X0=None), "no member dimension"),  # forgot X0: a random single start
    (dict(dt=0.005), "dt = 0.005"),  # forgot dt
    (dict(n_steps=300), "ends at t = 3.00"),
    (dict(F=10.0), "F = 10"),
])
def test_coupled_run_verifies_the_run_that_was_asked_for(lab, kwargs, message):
    kwargs = dict(kwargs)
    run, x_clim = coupled_climate(lab["P"], kwargs.pop("X0", lab["X0"]), **kwargs)
    with pytest.raises(LabCheckError, match=message):
        check.coupled_run(run, x_clim, lab["P"], lab["X0"])


def test_coupled_run_rejects_the_wrong_closure_start_and_members(lab):
    P, X0 = lab["P"], lab["X0"]
    for closure, message in ((None, "no closure"), (lambda x: -P(x), "wrong sign")):
        run, x_clim = coupled_climate(closure, X0, n_steps=300)
        run = run.assign_coords(time=run.time * 4)  # pass the time checks, reach the closure
        run.attrs["dt"] = 0.01
        with pytest.raises(LabCheckError, match=message):
            check.coupled_run(run, x_clim, P, X0)
    one, x_one = coupled_climate(P, X0[:1])
    with pytest.raises(LabCheckError, match="1 members"):
        check.coupled_run(one, x_one, P, X0)
    other, x_other = coupled_climate(P, X0 + 1.0)
    with pytest.raises(LabCheckError, match="does not start from X0"):
        check.coupled_run(other, x_other, P, X0)


def test_coupled_run_rejects_wrong_climate_samples(lab):
    run, P, X0 = lab["run"], lab["P"], lab["X0"]
    cases = [
        (run["X"], "spin-up"),
        (run["X"].sel(time=slice(2.0, 10.0)), "up to the end"),
        (run["X"].sel(time=slice(2.0, None)).mean("member"), "no member dimension"),
        (run.sel(time=slice(2.0, None)), "not the Dataset"),
        (run["X"].sel(time=slice(2.0, None)).values, "DataArray"),
        (run["X"].sel(time=slice(2.0, None)).drop_vars("time"), "time coordinate"),
    ]
    for x_clim, message in cases:
        with pytest.raises(LabCheckError, match=message):
            check.coupled_run(run, x_clim, P, X0)
    with pytest.raises(LabCheckError, match="Dataset that l96.simulate_one_scale returns"):
        check.coupled_run(run["X"], run["X"], P, X0)


def test_coupled_run_flags_blown_members(lab):
    X0 = lab["X0"]
    cubic = l96.fit_polynomial(lab["X"][lab["blocks"][0]], lab["U"][lab["blocks"][0]], 3)
    run, x_clim = coupled_climate(cubic, X0)  # the cubic blows up from the cold start
    with pytest.raises(LabCheckError, match="blew up"):
        check.coupled_run(run, x_clim, cubic, X0)


# ---------------------------------------------------------------------------------- ex. 5
def test_report_accepts_the_solution(lab):
    scores = both_scores(lab["r2"], lab["x_clim"], lab["X"])
    assert check.report(both_scores, scores, lab["r2"], lab["x_clim"])


@pytest.mark.parametrize("wrong, message", [
    (lambda r2, x, X: {"r2": r2, "hellinger": ev.hellinger(X, x.values)}, "default bins"),
    (lambda r2, x, X: {"r2": r2, "hellinger": ev.hellinger(X, x.values, bins=40,
                                                           range=(-15, 25)) ** 2}, "squared"),
    (lambda r2, x, X: {"r2": r2, "hellinger": ev.hellinger(
        X, x.mean("member").values, bins=40, range=(-15, 25))}, "every member"),
    (lambda r2, x, X: {"r2": r2, "hellinger": None}, "one number"),
    (lambda r2, x, X: {"R2": r2}, "keys"),
    (lambda r2, x, X: (r2, 0.1), "dict"),
])
def test_report_rejects_typical_mistakes(lab, wrong, message):
    scores = both_scores(lab["r2"], lab["x_clim"], lab["X"])
    with pytest.raises(LabCheckError, match=message):
        check.report(wrong, scores, lab["r2"], lab["x_clim"])


def test_report_checks_the_lab_values(lab):
    scores = both_scores(lab["r2"], lab["x_clim"], lab["X"])
    with pytest.raises(LabCheckError, match="offline R\\^2 from exercise 3"):
        check.report(both_scores, {**scores, "r2": 0.5}, lab["r2"], lab["x_clim"])
    with pytest.raises(LabCheckError, match="one number"):
        check.report(both_scores, {**scores, "hellinger": None}, lab["r2"], lab["x_clim"])


# ---------------------------------------------------------------------------------- ex. 6
def _hell(a, b):
    return ev.hellinger(a, b, bins=40, range=(-15, 25))


def test_interval_accepts_the_solution(lab):
    iv = ev.block_bootstrap(_hell, lab["X"], lab["x_clim"].values, block=100, n_boot=200,
                            level=0.9, seed=3)
    assert check.interval(iv, lab["x_clim"])


def test_interval_rejects_typical_mistakes(lab):
    X, x = lab["X"], lab["x_clim"].values
    with pytest.raises(LabCheckError, match="blocks are too short"):
        check.interval(ev.block_bootstrap(_hell, X, x, block=1, n_boot=200), lab["x_clim"])
    with pytest.raises(LabCheckError, match="level=0.9"):
        check.interval(ev.block_bootstrap(_hell, X, x, block=100, n_boot=200, level=0.95),
                       lab["x_clim"])
    with pytest.raises(LabCheckError, match="estimate"):
        check.interval(ev.block_bootstrap(ev.hellinger, X, x, block=100, n_boot=200),
                       lab["x_clim"])
    with pytest.raises(LabCheckError, match="Interval"):
        check.interval((0.02, 0.05), lab["x_clim"])


def test_checks_turn_unforeseen_values_into_messages(lab):
    bad = xr.DataArray(np.zeros(3), dims="time")
    with pytest.raises(LabCheckError):
        check.interval(ev.Interval(0.0, 0.0, 0.1, 0.9), bad)
