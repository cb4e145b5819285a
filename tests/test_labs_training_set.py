"""Lab 1 checks: typical wrong answers are rejected with a message naming the mistake, valid
alternatives are accepted."""

import numpy as np
import pytest
import torch
import xarray as xr

from nnparam import filters, nn, tracer
from nnparam.labs import checks_training_set as check
from nnparam.labs.feedback import LabCheckError

FACTOR = 8


@pytest.fixture(scope="module")
def truth():
    return tracer.truth_run(tracer.TracerSetup(n=256, max_mode=24), t_end=6.0, spinup=2.0)


# --- exercise 1: coarse_grain --------------------------------------------------------------

def _reshape_mean(f, k):
    f = np.asarray(f)
    return f.reshape(*f.shape[:-1], f.shape[-1] // k, k).mean(axis=-1)


def _loop(f, k):
    f = np.asarray(f, dtype=float)
    return np.stack([f[..., i:i + k].mean(axis=-1) for i in range(0, f.shape[-1], k)], axis=-1)


def _reduceat(f, k):
    f = np.asarray(f, dtype=float)
    return np.add.reduceat(f, np.arange(0, f.shape[-1], k), axis=-1) / k


def _moving_then_subsample(f, k):
    f = np.asarray(f, dtype=float)
    c = np.cumsum(np.concatenate([np.zeros(f.shape[:-1] + (1,)), f], axis=-1), axis=-1)
    return (c[..., k:] - c[..., :-k])[..., ::k] / k


@pytest.mark.parametrize("func", [filters.coarse_grain, _reshape_mean, _loop, _reduceat,
                                  _moving_then_subsample])
def test_coarse_grain_accepts_valid_answers(func):
    assert check.coarse_grain(func)


def _in_place(f, k):
    f -= f.mean()  # changes the caller's array
    return _reshape_mean(f, k)


CG_WRONG = {
    "every-kth": (lambda f, k: f[..., ::k], "every"),
    "block-centre": (lambda f, k: f[..., k // 2::k], "centre cell"),
    "sum": (lambda f, k: f.reshape(*f.shape[:-1], -1, k).sum(axis=-1), "summed"),
    "interleaved": (lambda f, k: f.reshape(*f.shape[:-1], k, -1).mean(axis=-2), "CONSECUTIVE"),
    "first-axis": (lambda f, k: f.mean(axis=0), "shape"),
    "flattened": (lambda f, k: f.reshape(-1, k).mean(axis=-1), "flattened"),
    "list": (lambda f, k: _reshape_mean(f, k).tolist(), "numpy array"),
    "tensor": (lambda f, k: torch.as_tensor(_reshape_mean(f, k)), "numpy array"),
    "no-return": (lambda f, k: None, "return"),
    "nan": (lambda f, k: _reshape_mean(f, k) * np.nan, "NaN"),
    "in-place": (_in_place, "changed the field"),
    "raises": (lambda f, k: f.reshape(f.shape[0] // k, k).mean(axis=-1),
               "raised ValueError"),
    "stub": (lambda f, k: (_ for _ in ()).throw(NotImplementedError("Exercise")),
             "not written yet"),
}


@pytest.mark.parametrize("case", CG_WRONG, ids=str)
def test_coarse_grain_rejects_typical_mistakes(case):
    func, message = CG_WRONG[case]
    with pytest.raises(LabCheckError, match=message):
        check.coarse_grain(func)


def test_coarse_grain_needs_a_function():
    with pytest.raises(LabCheckError, match="no parentheses"):
        check.coarse_grain(np.zeros(3))


# --- exercise 2: the SGS tendency -----------------------------------------------------------

def _parts(truth, **change):
    setup = tracer.setup_of(truth)
    q, u = truth["q"].values, truth["u"].values
    faces = (np.arange(setup.n) + 1.0) * setup.dx
    u_faces = tracer.Wind(setup)(faces, truth["time"].values)
    lam = change.get("lam", setup.lam)
    alpha = change.get("alpha", setup.alpha)
    fine_wind = change.get("fine_wind", u_faces)
    fine_dx = change.get("fine_dx", setup.dx)
    true = filters.coarse_grain(tracer.tendency(q, fine_wind, fine_dx, lam, alpha), FACTOR)
    q_bar = filters.coarse_grain(q, FACTOR)
    u_bar = change.get("coarse_wind", tracer.coarse_face_wind(u, FACTOR))
    coarse_dx = change.get("coarse_dx", setup.dx * FACTOR)
    resolved = tracer.tendency(q_bar, u_bar, coarse_dx, change.get("coarse_lam", setup.lam),
                               change.get("coarse_alpha", setup.alpha))
    return true, resolved, true - resolved


def test_sgs_accepts_the_budget_residual(truth):
    true, resolved, sgs = _parts(truth)
    assert check.sgs_tendency(true, resolved, sgs, truth, FACTOR)
    # float32 arrays are fine
    assert check.sgs_tendency(true.astype(np.float32), resolved.astype(np.float32),
                              sgs.astype(np.float32), truth, FACTOR)


def test_sgs_rejects_typical_mistakes(truth):
    setup = tracer.setup_of(truth)
    true, resolved, sgs = _parts(truth)
    u = truth["u"].values
    cases = {
        "centre wind": (_parts(truth, fine_wind=u), "CENTRES"),
        "no source (fine)": (_parts(truth, lam=0.0, alpha=0.0), "source terms"),
        "coarse dx on fine grid": (_parts(truth, fine_dx=setup.dx * FACTOR), "setup.dx"),
        "fine dx on coarse grid": (_parts(truth, coarse_dx=setup.dx), "coarse spacing"),
        "no source (coarse)": (_parts(truth, coarse_lam=0.0, coarse_alpha=0.0),
                               "source terms"),
        "block-mean face wind": (_parts(truth, coarse_wind=filters.coarse_grain(
            tracer.Wind(setup)((np.arange(setup.n) + 1.0) * setup.dx, truth["time"].values),
            FACTOR)), "u_bar_face"),
        "forgot to subtract": ((true, resolved, true), "subtract"),
        "flipped": ((true, resolved, -sgs), "wrong sign"),
        "per second": ((true / 3600, resolved / 3600, sgs / 3600), "per second"),
        "fine shape": ((tracer.tendency(truth["q"].values, u, setup.dx, 0, 0), resolved, sgs),
                       "fine-grid shape"),
        "transposed": ((true, resolved, sgs.T), "transposed"),
        "list": ((true, resolved, sgs.tolist()), "numpy array"),
        "dataarray": ((true, resolved, xr.DataArray(sgs)), "take .values"),
    }
    for name, ((t, r, s), message) in cases.items():
        with pytest.raises(LabCheckError, match=message):
            check.sgs_tendency(t, r, s, truth, FACTOR)
            pytest.fail(f"{name} was accepted")


# --- exercise 3: the split -----------------------------------------------------------------

@pytest.mark.parametrize("blocks", [
    (np.arange(120), np.arange(120, 160), np.arange(160, 201)),
    (np.arange(121), np.arange(121, 161), np.arange(161, 201)),
    (slice(0, 120), slice(120, 160), slice(160, 201)),
    (list(range(120)), list(range(120, 160)), list(range(160, 201))),
    tuple(np.split(np.arange(201), [120, 160])),
], ids=["int", "round", "slices", "lists", "np.split"])
def test_split_accepts_valid_answers(blocks):
    assert check.time_split(*blocks, 201)


@pytest.mark.parametrize("blocks, message", [
    (np.split(np.random.default_rng(0).permutation(201), [120, 160]), "mixes times"),
    ((np.arange(121), np.arange(120, 160), np.arange(160, 201)), "overlap"),
    ((np.arange(160, 201), np.arange(120, 160), np.arange(120)), "order the blocks"),
    ((np.arange(120), np.arange(160, 201), np.arange(120, 160)), "order the blocks"),
    ((np.arange(120), np.arange(120, 160), np.arange(160, 200)), "200 of the 201"),
    ((np.arange(100), np.arange(100, 150), np.arange(150, 201)), "asks for 60%"),
    ((np.arange(120.0), np.arange(120.0, 160), np.arange(160.0, 201)), "floats"),
    ((np.arange(120), np.arange(120, 160), np.array([], dtype=int)), "empty"),
    ((np.arange(120), np.arange(120, 160), np.arange(160, 202)), "outside"),
], ids=["shuffled", "overlap", "test-first", "swapped", "drops-last", "50-25-25", "floats",
        "empty", "out-of-range"])
def test_split_rejects_typical_mistakes(blocks, message):
    with pytest.raises(LabCheckError, match=message):
        check.time_split(*blocks, 201)


# --- exercises 4 and 5: the linear baseline and the network ---------------------------------

@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1200, 7))
    y = (1.5 * x[:, :1] + 0.5 * x[:, 4:5] + np.sin(2 * x[:, 1:2]) + 0.5 * x[:, 2:3] * x[:, 3:4]
         + 0.05 * rng.normal(size=(1200, 1)))
    return {"train": (x[:700], y[:700]), "validation": (x[700:940], y[700:940]),
            "test": (x[940:], y[940:])}


def _fit(x, y, intercept=True):
    design = np.column_stack([x, np.ones(len(x))]) if intercept else x
    return np.linalg.lstsq(design, y, rcond=None)[0]


def _predict(coef, x, intercept=True):
    return (np.column_stack([x, np.ones(len(x))]) if intercept else x) @ coef


def test_linear_baseline_accepts_valid_answers(data):
    (x, y), _, (xt, _yt) = data["train"], data["validation"], data["test"]
    coef = _fit(x, y)
    assert 0.5 < check.linear_baseline(_predict(coef, xt), data) < 0.9
    # normal equations, a 1-D prediction, standardised inputs
    d = np.column_stack([x, np.ones(len(x))])
    normal = np.linalg.solve(d.T @ d, d.T @ y)
    check.linear_baseline(_predict(normal, xt), data)
    check.linear_baseline(_predict(coef, xt).ravel(), data)
    sx = nn.Standardizer(x)
    check.linear_baseline(_predict(_fit(sx.transform(x), y), sx.transform(xt)), data)


def test_linear_baseline_rejects_typical_mistakes(data):
    (x, y), (xv, yv), (xt, yt) = data["train"], data["validation"], data["test"]
    cases = {
        "no intercept": (_predict(_fit(x, y, False), xt, False), "intercept"),
        "fitted on test": (_predict(_fit(xt, yt), xt), "TEST block"),
        "train+validation": (_predict(_fit(np.vstack([x, xv]), np.vstack([y, yv])), xt),
                             "train \\+ validation"),
        "training block": (_predict(_fit(x, y), x), "predict on the test block"),
        "lstsq tuple": (np.linalg.lstsq(np.column_stack([x, np.ones(len(x))]), y,
                                        rcond=None), "tuple"),
        "constant": (np.full_like(yt, y.mean()), "differ from least squares"),
        "sign": (-_predict(_fit(x, y), xt), "wrong sign"),
        "nan": (np.full_like(yt, np.nan), "NaN"),
    }
    for name, (pred, message) in cases.items():
        with pytest.raises(LabCheckError, match=message):
            check.linear_baseline(pred, data)
            pytest.fail(f"{name} was accepted")


@pytest.fixture(scope="module")
def net(data):
    torch.set_num_threads(1)
    (x, y), (xv, yv), _ = data["train"], data["validation"], data["test"]
    sx, sy = nn.Standardizer(x), nn.Standardizer(y)
    model = nn.mlp(7, 1, hidden=(32, 32), seed=0)
    nn.train(model, sx.transform(x), sy.transform(y), epochs=600, lr=1e-2,
             validation=(sx.transform(xv), sy.transform(yv)), patience=100)
    return model, sx, sy


def test_mlp_accepts_the_network(data, net):
    model, sx, sy = net
    xt = data["test"][0]
    pred = sy.inverse(nn.predict(model, sx.transform(xt)))
    assert check.mlp(pred, model, sx, sy, data) > 0.9
    check.mlp(pred.ravel(), model, sx, sy, data)  # 1-D predictions are fine


def test_mlp_rejects_typical_mistakes(data, net):
    model, sx, sy = net
    (x, y), (xv, _yv), (xt, _yt) = data["train"], data["validation"], data["test"]
    good = sy.inverse(nn.predict(model, sx.transform(xt)))
    linear = _predict(_fit(x, y), xt)
    cases = {
        "no inverse": ((nn.predict(model, sx.transform(xt)), model, sx, sy), "standardised "
                                                                             "units"),
        "raw inputs": ((sy.inverse(nn.predict(model, xt)), model, sx, sy), "raw test inputs"),
        "test statistics": ((sy.inverse(nn.predict(model, nn.Standardizer(xt).transform(xt))),
                             model, sx, sy), "their own statistics"),
        "scaler on test": ((good, model, nn.Standardizer(xt), sy), "fitted on the test"),
        "scaler on all": ((good, model, nn.Standardizer(np.vstack([x, xv, xt])), sy),
                          "all the data"),
        "linear copied": ((linear, model, sx, sy), "not what `model`"),
        "validation block": ((sy.inverse(nn.predict(model, sx.transform(xv))), model, sx, sy),
                             "predict on the test block"),
        "validation, same size": ((sy.inverse(nn.predict(model, sx.transform(xt[:240]))),
                                   model, sx, sy), "predict on the test block"),
        "not a model": ((good, None, sx, sy), "torch network"),
        "not a scaler": ((good, model, None, sy), "Standardizer"),
    }
    for name, (args, message) in cases.items():
        with pytest.raises(LabCheckError, match=message):
            check.mlp(*args, data)
            pytest.fail(f"{name} was accepted")
    untrained = nn.mlp(7, 1, hidden=(32, 32), seed=3)
    weak = sy.inverse(nn.predict(untrained, sx.transform(xt)))
    with pytest.raises(LabCheckError, match="below 0.9"):
        check.mlp(weak, untrained, sx, sy, data)


def test_data_must_be_the_blocks(data):
    with pytest.raises(LabCheckError, match="lacks the key"):
        check.linear_baseline(np.zeros((260, 1)), {"train": data["train"]})
    with pytest.raises(LabCheckError, match="pair"):
        check.linear_baseline(np.zeros((260, 1)), {**data, "test": data["test"][0]})


def test_written_answer_numbers():
    """The model answer: the tracer moves about 40 km per hour, less than a coarse cell."""
    setup = tracer.TracerSetup()
    coarse_cell = setup.length / (setup.n // 16)
    assert setup.u_mean == 40.0 and coarse_cell == 62.5 and setup.u_mean < coarse_cell
