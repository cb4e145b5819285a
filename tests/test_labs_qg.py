"""The checks of lab 8 accept the worked solution and reject the typical mistakes."""

import numpy as np
import pytest
import torch

from nnparam import evaluation
from nnparam.apps import qg, qg_metrics
from nnparam.labs import checks_qg as check
from nnparam.labs.feedback import LabCheckError
from nnparam.metrics import time_blocks

torch.set_num_threads(1)


def coarse_grain(field, nx):
    big, half = field.shape[-1], nx // 2
    fh = np.fft.rfft2(field)
    kept = np.concatenate([fh[..., :half, :half + 1], fh[..., big - half:, :half + 1]], -2)
    return np.fft.irfft2(kept * qg.spectral_filter(nx) / (big / nx) ** 2, s=(nx, nx))


def truncation_only(field, nx):
    big, half = field.shape[-1], nx // 2
    fh = np.fft.rfft2(field)
    kept = np.concatenate([fh[..., :half, :half + 1], fh[..., big - half:, :half + 1]], -2)
    return np.fft.irfft2(kept / (big / nx) ** 2, s=(nx, nx))


def unnormalised(field, nx):
    return coarse_grain(field, nx) * (field.shape[-1] / nx) ** 2


def _op2(field, nx):
    big, half = field.shape[-1], nx // 2
    fh = np.fft.rfft2(field)
    kept = np.concatenate([fh[..., :half, :half + 1], fh[..., big - half:, :half + 1]], -2)
    return np.fft.irfft2(kept * qg.spectral_filter(nx, "op2") / (big / nx) ** 2,
                         s=(nx, nx))


def block_average(field, nx):
    r = field.shape[-1] // nx
    return field.reshape(field.shape[:-2] + (nx, r, nx, r)).mean(axis=(-3, -1))


def test_coarse_grain_accepts_the_operator_and_rejects_mistakes(capsys):
    assert check.coarse_grain(coarse_grain)
    assert "[ok]" in capsys.readouterr().out
    cases = [(truncation_only, "did not multiply it by the coarse model's filter"),
             (unnormalised, "times too large"),
             (_op2, "operator 2"),
             (block_average, "block average"),
             (lambda f, nx: coarse_grain(f, nx)[..., :nx // 2, :], "shape"),
             (lambda f, nx: qg.coarsen(f, nx), "without the engine's qg.coarsen"),
             (lambda f, nx: None, "None"),
             (lambda f, nx: 1 / 0, "ZeroDivisionError"),
             (lambda f, nx: coarse_grain(f, nx) + 1e-3 * f.std(), "differs")]
    for func, message in cases:
        with pytest.raises(LabCheckError, match=message):
            check.coarse_grain(func)


def forcing(q_hi):
    q_bar = coarse_grain(q_hi, 64)
    return q_bar, coarse_grain(qg.tendency(q_hi, "eddy"), 64) - qg.tendency(q_bar, "eddy")


def test_forcing_accepts_the_solution_and_names_the_sign():
    assert check.forcing(forcing, coarse_grain)

    def flipped(q):
        q_bar, s = forcing(q)
        return q_bar, -s

    def filtered_tendency_only(q):
        return coarse_grain(q, 64), coarse_grain(qg.tendency(q, "eddy"), 64)

    def jet(q):
        q_bar = coarse_grain(q, 64)
        return q_bar, coarse_grain(qg.tendency(q, "jet"), 64) - qg.tendency(q_bar, "jet")

    def unfiltered_state(q):
        q_bar = truncation_only(q, 64)
        return q_bar, coarse_grain(qg.tendency(q, "eddy"), 64) - qg.tendency(q_bar, "eddy")

    cases = [(flipped, "wrong sign"), (filtered_tendency_only, "subtract"),
             (jet, "jet configuration"), (unfiltered_state, "q_bar"),
             (lambda q: forcing(q)[1], "pair"),
             (lambda q: qg.subgrid_forcing(q, "eddy", 64), "qg.subgrid_forcing")]
    for func, message in cases:
        with pytest.raises(LabCheckError, match=message):
            check.forcing(func, coarse_grain)


def test_split_needs_contiguous_ordered_blocks_with_a_gap():
    assert check.split(lambda n: time_blocks(n, (0.6, 0.2, 0.2), gap=6))
    assert check.split(lambda n: time_blocks(n, (0.5, 0.2, 0.3), gap=8))  # also fine
    rng = np.random.default_rng(0)

    def shuffled(n):
        perm = rng.permutation(n)
        return perm[: int(0.6 * n)], perm[int(0.6 * n): int(0.8 * n)], perm[int(0.8 * n):]

    cases = [(shuffled, "shuffled"),
             (lambda n: time_blocks(n, (0.6, 0.2, 0.2), gap=2), "gap|separate"),
             (lambda n: time_blocks(n, (0.6, 0.2, 0.2), gap=6)[::-1], "follow each other in time"),
             (lambda n: time_blocks(n, (0.8, 0.1, 0.1), gap=6), "15 %"),
             (lambda n: time_blocks(n, (0.6, 0.4), gap=6), "three blocks")]
    for func, message in cases:
        with pytest.raises(LabCheckError, match=message):
            check.split(func)


@pytest.fixture(scope="module")
def trained():
    q_bar, s_q = forcing(check.lab_record())
    blocks = time_blocks(q_bar.shape[0], (0.6, 0.2, 0.2), gap=6)
    train, val, test = blocks
    net, _ = qg.train_fcnn(q_bar[train], s_q[train], (q_bar[val], s_q[val]), epochs=20,
                           seed=0)
    closure = qg.QGClosure(net)
    return dict(q_bar=q_bar, s_q=s_q, blocks=blocks, closure=closure,
                r2=qg_metrics.offline_skill(s_q[test], closure(q_bar[test]))["r2"])


def test_offline_check_recomputes_the_test_score(trained):
    t = trained
    assert check.offline(t["closure"], t["r2"], t["q_bar"], t["s_q"], t["blocks"])
    train = t["blocks"][0]
    on_train = qg_metrics.offline_skill(t["s_q"][train], t["closure"](t["q_bar"][train]))
    with pytest.raises(LabCheckError, match="training block"):
        check.offline(t["closure"], on_train["r2"], t["q_bar"], t["s_q"], t["blocks"])
    with pytest.raises(LabCheckError, match="QGClosure"):
        check.offline(t["closure"].module, t["r2"], t["q_bar"], t["s_q"], t["blocks"])
    untrained = qg.QGClosure(qg.FCNN(q_scale=(1e-5, 1e-6), s_scale=(1e-11, 1e-13)))
    test = t["blocks"][2]
    r2_bad = qg_metrics.offline_skill(t["s_q"][test], untrained(t["q_bar"][test]))["r2"]
    with pytest.raises(LabCheckError, match="test R"):
        check.offline(untrained, r2_bad, t["q_bar"], t["s_q"], t["blocks"])
    with pytest.raises(LabCheckError, match="shape"):
        check.offline(t["closure"], t["r2"][:1], t["q_bar"], t["s_q"], t["blocks"])


def ke1_score(run, baseline, truth):
    def ke1(ds):
        upper = ds.sel(lev=1)
        return ((upper["u"] + qg.COMMON["U1"]) ** 2 + upper["v"] ** 2).values.ravel()

    ref = ke1(truth)
    return evaluation.similarity_score(evaluation.wasserstein(ke1(run), ref),
                                       evaluation.wasserstein(ke1(baseline), ref))


@pytest.fixture(scope="module")
def runs():
    # a physical closure stands in for the student's network: cheap, cached, and not zero
    return "backscatter", qg.lab_run("backscatter"), qg.lab_run(None)


def test_online_score_names_each_slip(runs):
    closure, run, baseline = runs
    assert check.online_score(ke1_score, closure, run, baseline)

    def anomaly(run, baseline, truth):
        def ke1(ds):
            upper = ds.sel(lev=1)
            return (upper["u"] ** 2 + upper["v"] ** 2).values.ravel()
        ref = ke1(truth)
        return 1 - (evaluation.wasserstein(ke1(run), ref)
                    / evaluation.wasserstein(ke1(baseline), ref))

    def inverted(run, baseline, truth):  # 1 - D(no closure) / D(run)
        return 1 - 1 / (1 - ke1_score(run, baseline, truth))

    def lower(run, baseline, truth):
        def ke2(ds):
            lev2 = ds.sel(lev=2)
            return (lev2["u"] ** 2 + lev2["v"] ** 2).values.ravel()
        ref = ke2(truth)
        return 1 - evaluation.wasserstein(ke2(run), ref) / evaluation.wasserstein(
            ke2(baseline), ref)

    def distance(run, baseline, truth):
        return _d_run(run, truth)

    cases = [(anomaly, "full velocity"), (inverted, "upside down"), (lower, "lower layer"),
             (distance, "distance"), (lambda r, b, t: "0.5", "number")]
    for func, message in cases:
        with pytest.raises(LabCheckError, match=message):
            check.online_score(func, closure, run, baseline)
    with pytest.raises(LabCheckError, match="lab_run"):
        check.online_score(ke1_score, "smagorinsky", run, baseline)
    with pytest.raises(LabCheckError, match="without a closure"):
        check.online_score(ke1_score, closure, run, run)


def _d_run(run, truth):
    def ke1(ds):
        upper = ds.sel(lev=1)
        return ((upper["u"] + qg.COMMON["U1"]) ** 2 + upper["v"] ** 2).values.ravel()
    return evaluation.wasserstein(ke1(run), ke1(truth))
