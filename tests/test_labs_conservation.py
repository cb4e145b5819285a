"""Lab 2 checks: typical wrong answers are rejected with a message naming the mistake, valid
alternatives are accepted."""

import numpy as np
import pytest
import torch

from nnparam import conservation as cons
from nnparam import metrics, nn, tracer
from nnparam.labs import checks_conservation as check
from nnparam.labs.feedback import LabCheckError

# --- exercise 1: the divergence -------------------------------------------------------------

def _good(f, w):
    return -(f - torch.roll(f, 1, dims=-1)) / w


DIV_VALID = {
    "torch.roll": _good,
    "diff": lambda f, w: -torch.diff(f, dim=-1, prepend=f[..., -1:]) / w,
    "cat": lambda f, w: -(f - torch.cat([f[..., -1:], f[..., :-1]], dim=-1)) / w,
    "widths via as_tensor": lambda f, w: -(f - f.roll(1, -1)) / torch.as_tensor(w, dtype=f.dtype),
    "engine": lambda f, w: __import__("nnparam").grid.flux_divergence(f, w),
}


@pytest.mark.parametrize("case", DIV_VALID, ids=str)
def test_divergence_accepts_valid_answers(case):
    assert check.divergence(DIV_VALID[case])


DIV_WRONG = {
    "np.roll on the tensor": (lambda f, w: -(f - np.roll(f, 1, axis=-1)) / w, "numpy function"),
    "numpy copies": (lambda f, w: -(f.detach().numpy() - np.roll(f.detach().numpy(), 1, -1))
                     / w.numpy(), "torch tensor"),
    "detached": (lambda f, w: _good(f.detach(), w), "cut off from the gradient"),
    "flipped sign": (lambda f, w: (f - torch.roll(f, 1, dims=-1)) / w, "sign is flipped"),
    "wrong roll direction": (lambda f, w: -(f - torch.roll(f, -1, dims=-1)) / w,
                             "shifted by one"),
    "zero boundary": (lambda f, w: -torch.diff(f, dim=-1, prepend=torch.zeros_like(f[..., :1]))
                      / w, "LAST cell"),
    "mean width": (lambda f, w: -(f - torch.roll(f, 1, dims=-1)) / w.mean(), "ITS OWN width"),
    "times width": (lambda f, w: -(f - torch.roll(f, 1, dims=-1)) * w, "ITS OWN width"),
    "batch axis": (lambda f, w: -(f - torch.roll(f, 1, dims=0)) / w, "differs|batch"),
    "float64 always": (lambda f, w: _good(f.double(), w.double()), "dtype"),
    "no return": (lambda f, w: None, "return"),
}


@pytest.mark.parametrize("case", DIV_WRONG, ids=str)
def test_divergence_rejects_typical_mistakes(case):
    func, message = DIV_WRONG[case]
    with pytest.raises(LabCheckError, match=message):
        check.divergence(func)


# --- exercise 2: kappa and the flux -----------------------------------------------------------

def _flux(k, q, d):
    return -k * (torch.roll(q, -1, dims=-1) - q) / d


KAPPA_VALID = {
    "softplus": torch.nn.functional.softplus,
    "exp": torch.exp,
    "log1p(exp)": lambda r: torch.logaddexp(torch.zeros_like(r), r),
    "sigmoid": torch.sigmoid,
    "softplus beta 2": lambda r: torch.nn.functional.softplus(r, beta=2.0),
    "elu + 1": lambda r: torch.nn.functional.elu(r) + 1,
}


@pytest.mark.parametrize("case", KAPPA_VALID, ids=str)
def test_kappa_accepts_valid_answers(case):
    assert check.kappa_parts(KAPPA_VALID[case], _flux)


def test_flux_accepts_valid_alternatives():
    assert check.kappa_parts(torch.nn.functional.softplus,
                             lambda k, q, d: -k * torch.diff(q, dim=-1, append=q[..., :1]) / d)
    assert check.kappa_parts(torch.exp, lambda k, q, d: k * (q - q.roll(-1, -1)) / d)


KAPPA_WRONG = {
    "identity": (lambda r: r, "negative kappa"),
    "relu": (torch.relu, "flat"),
    "clamp": (lambda r: r.clamp(min=1e-6), "flat"),
    "abs": (torch.abs, "decreases"),
    "square": (lambda r: r**2, "decreases"),
    "softplus(-raw)": (lambda r: torch.nn.functional.softplus(-r), "decreases"),
    "numpy softplus": (lambda r: np.logaddexp(0, r.detach().numpy()), "torch tensor"),
    "tanh": (torch.tanh, "negative kappa"),
    "detached": (lambda r: torch.exp(r).detach(), "cut off"),
}


@pytest.mark.parametrize("case", KAPPA_WRONG, ids=str)
def test_kappa_rejects_typical_mistakes(case):
    func, message = KAPPA_WRONG[case]
    with pytest.raises(LabCheckError, match=message):
        check.kappa_parts(func, _flux)


FLUX_WRONG = {
    "up the gradient": (lambda k, q, d: k * (torch.roll(q, -1, dims=-1) - q) / d, "up the"),
    "left face": (lambda k, q, d: -k * (q - torch.roll(q, 1, dims=-1)) / d, "LEFT face"),
    "no distance": (lambda k, q, d: -k * (torch.roll(q, -1, dims=-1) - q), "centre distance"),
    "times distance": (lambda k, q, d: -k * (torch.roll(q, -1, dims=-1) - q) * d, "multiply"),
    "rolled distance": (lambda k, q, d: -k * (torch.roll(q, -1, dims=-1) - q)
                        / torch.roll(d, 1), "distances\\[i\\]"),
    "centred": (lambda k, q, d: -k * (torch.roll(q, -1, dims=-1) - torch.roll(q, 1, dims=-1))
                / d, "centred"),
    "batch axis": (lambda k, q, d: -k * (torch.roll(q, -1, dims=0) - q) / d, "first \\(batch"),
    "np.roll": (lambda k, q, d: -k * (np.roll(q, -1, axis=-1) - q) / d, "numpy"),
}


@pytest.mark.parametrize("case", FLUX_WRONG, ids=str)
def test_flux_rejects_typical_mistakes(case):
    func, message = FLUX_WRONG[case]
    with pytest.raises(LabCheckError, match=message):
        check.kappa_parts(torch.nn.functional.softplus, func)


# --- exercises 3 and 4: budgets and the coupled runs ---------------------------------------

@pytest.fixture(scope="module")
def lab():
    torch.set_num_threads(1)
    nn.seed_everything(0)
    setup = tracer.TracerSetup(n=256, max_mode=24, lam=0.0, alpha=0.0)
    truth = tracer.truth_run(setup, t_end=40.0, spinup=2.0)
    blocks = cons.alternating_blocks(setup.n, small=4, large=12)
    budget = cons.coarse_budget(truth, blocks)
    train, val, test = metrics.time_blocks(budget.sizes["time"], (0.6, 0.2, 0.2), gap=1)
    heads = {kind: cons.fit_head(kind, budget, train, val, epochs=30)[0] for kind in cons.HEADS}
    widths = budget["widths"].values
    x_rand = cons.random_inputs(200, len(widths), seed=1)
    model = cons.CoarseModel(setup, blocks)
    q0, t0 = budget["q"].values[test.start], float(budget["time"][test.start])
    return dict(setup=setup, heads=heads, widths=widths, x_rand=x_rand, model=model, q0=q0,
                t0=t0, budget=budget, blocks=blocks)


def _budgets(lab, reducer=np.max, x=None):
    out = {}
    for kind, head in lab["heads"].items():
        vt = nn.predict(head, lab["x_rand"] if x is None else x) * lab["widths"]
        out[kind] = reducer(np.abs(vt.sum(-1)) / np.abs(vt).sum(-1))
    return out


def test_conservation_accepts_valid_answers(lab):
    args = (lab["heads"], lab["x_rand"], lab["widths"])
    assert check.conservation(_budgets(lab), *args)
    engine = {k: np.abs(cons.relative_domain_budget(nn.predict(h, lab["x_rand"]),
                                                    lab["widths"])).max()
              for k, h in lab["heads"].items()}
    assert check.conservation(engine, *args)
    as_python = {k: float(v) for k, v in _budgets(lab).items()}
    assert check.conservation(as_python, *args)


def test_conservation_rejects_typical_mistakes(lab):
    args = (lab["heads"], lab["x_rand"], lab["widths"])
    good = _budgets(lab)
    heads, x, w = lab["heads"], lab["x_rand"], lab["widths"]
    raw = {k: nn.predict(h, x) for k, h in heads.items()}
    vt = {k: r * w for k, r in raw.items()}
    cases = {
        "mean": ({**good, "tendency": _budgets(lab, np.mean)["tendency"]}, "MEAN"),
        "signed": ({**good, "tendency": (vt["tendency"].sum(-1)
                                         / np.abs(vt["tendency"]).sum(-1)).max()},
                   "absolute value"),
        "absolute budget": ({**good, "tendency": np.abs(vt["tendency"].sum(-1)).max()},
                            "absolute budget"),
        "unweighted": ({k: (np.abs(r.sum(-1)) / np.abs(r).sum(-1)).max()
                        for k, r in raw.items()}, "VOLUME"),
        "percent": ({**good, "tendency": 100 * good["tendency"]}, "percentage"),
        "per-sample array": ({**good, "tendency": np.abs(vt["tendency"].sum(-1))
                              / np.abs(vt["tendency"]).sum(-1)}, "one number"),
        "training inputs": (_budgets(lab, x=cons.stack_inputs(lab["budget"]["q"].values,
                                                              lab["budget"]["u_face"].values)),
                            "x_rand"),
        "missing key": ({"flux": 0.0, "kappa": 0.0}, "lacks the key"),
        "a list": ([0.1, 0.0, 0.0], "dict"),
        "nan": ({**good, "tendency": np.nan}, "finite"),
    }
    signed = cases["signed"][0]["tendency"]
    if np.isclose(signed, good["tendency"]):  # the largest budget is positive: no mistake here
        del cases["signed"]
    for name, (budgets, message) in cases.items():
        with pytest.raises(LabCheckError, match=message):
            check.conservation(budgets, *args)
            pytest.fail(f"{name} was accepted")


def _online(lab, **change):
    model, heads = lab["model"], lab["heads"]
    q0, t0 = change.get("q0", lab["q0"]), change.get("t0", lab["t0"])
    runs, drift, std = {}, {}, {}
    for kind, head in heads.items():
        closure = change.get("closure", {}).get(kind, head.numpy_closure())
        run = model.run(q0, change.get("n_steps", 2000), change.get("dt", 0.375),
                        closure=closure, save_every=change.get("save_every", 100), t0=t0)
        runs[kind] = run
        total = run["total"].values
        drift[kind] = (total[-1] - total[0]) / total[0]
        std[kind] = float(run["q"].values[-1].std())
    return runs, drift, std


@pytest.fixture(scope="module")
def online(lab):
    return _online(lab)


def test_online_accepts_the_runs(lab, online):
    runs, drift, std = online
    args = (lab["heads"], lab["model"], lab["q0"], lab["t0"])
    assert check.online(runs, drift, std, *args)
    # torch closures (slower, the student's own operators) and another saving interval
    torch_runs = dict(runs)
    torch_runs["kappa"] = lab["model"].run(lab["q0"], 2000, 0.375,
                                           closure=cons.torch_closure(lab["heads"]["kappa"]),
                                           save_every=250, t0=lab["t0"])
    t = torch_runs["kappa"]["total"].values
    assert check.online(torch_runs, {**drift, "kappa": (t[-1] - t[0]) / t[0]},
                        {**std, "kappa": float(torch_runs["kappa"]["q"].values[-1].std())},
                        *args)


def test_online_rejects_typical_mistakes(lab, online):
    runs, drift, std = online
    args = (lab["heads"], lab["model"], lab["q0"], lab["t0"])
    tot = {k: r["total"].values for k, r in runs.items()}
    q = {k: r["q"].values for k, r in runs.items()}
    no_closure = _online(lab, closure={"tendency": None})
    swapped = _online(lab, closure={"flux": lab["heads"]["kappa"].numpy_closure()})
    cases = {
        "relative to the end": ((runs, {**drift, "tendency": (tot["tendency"][-1]
                                                              - tot["tendency"][0])
                                        / tot["tendency"][-1]}, std), "END"),
        "percent": ((runs, {**drift, "tendency": 100 * drift["tendency"]}, std), "percentage"),
        "absolute": ((runs, {**drift, "tendency": tot["tendency"][-1] - tot["tendency"][0]},
                      std), "absolute change"),
        "ratio": ((runs, {**drift, "tendency": tot["tendency"][-1] / tot["tendency"][0]}, std),
                  "subtract 1"),
        "unweighted": ((runs, {**drift, "tendency": (tot["tendency"][-1] - tot["tendency"][0])
                               / q["tendency"][0].sum()}, std), "sum q_i"),
        "time series": ((runs, {**drift, "tendency": (tot["tendency"] - tot["tendency"][0])
                                / tot["tendency"][0]}, std), "one number"),
        "std over time": ((runs, drift, {**std, "kappa": float(q["kappa"][:, 0].std())}),
                          "over time"),
        "std at the start": ((runs, drift, {**std, "flux": float(q["flux"][0].std())}),
                             "at the start"),
        "no closure": (no_closure, "without a closure"),
        "another head": (swapped, "'kappa' head's closure"),
        "missing std": ((runs, drift, {"flux": 1.0, "kappa": 1.0}), "lacks the key"),
        "a run array": (({**runs, "flux": runs["flux"]["q"].values}, drift, std), "Dataset"),
    }
    for name, (given, message) in cases.items():
        with pytest.raises(LabCheckError, match=message):
            check.online(*given, *args)
            pytest.fail(f"{name} was accepted")


@pytest.mark.parametrize("change, message", [
    ({"t0": 0.0}, "pass t0"),
    ({"n_steps": 1000}, "not 2000 steps"),
    ({"dt": 0.1875, "n_steps": 2000}, "not 2000 steps"),
    ({"save_every": 2000}, None),
], ids=["no t0", "half the steps", "half the step", "only the end saved"])
def test_online_checks_the_run_that_was_asked_for(lab, online, change, message):
    runs, drift, std = _online(lab, **change)
    args = (lab["heads"], lab["model"], lab["q0"], lab["t0"])
    if message is None:  # saving only the end is a valid choice
        assert check.online(runs, drift, std, *args)
        return
    with pytest.raises(LabCheckError, match=message):
        check.online(runs, drift, std, *args)


def test_online_needs_the_right_start(lab, online):
    runs, drift, std = _online(lab, q0=lab["budget"]["q"].values[0])
    with pytest.raises(LabCheckError, match="q0"):
        check.online(runs, drift, std, lab["heads"], lab["model"], lab["q0"], lab["t0"])
