"""Each check of lab 09 accepts the right answer and rejects typical mistakes with its message."""

import copy

import numpy as np
import pytest
import torch

from nnparam import stability
from nnparam.labs import checks_aposteriori as check
from nnparam.labs.feedback import LabCheckError
from nnparam.metrics import time_blocks

torch.set_num_threads(1)
H = 9000.0


@pytest.fixture(scope="module")
def toy():
    return stability.SteepClosureToy()


def _loss(toy, *, detach=False, numpy_closure=False, before=False, late=False, total=False,
          as_float=False):
    def fn(closure, q_start, t_start, targets):
        x, loss = q_start, 0.0
        window = targets.shape[1]
        for k in range(window):
            prev = x
            tk = t_start + (k + 1 if late else k) * H
            p = torch.as_tensor(closure(x.detach().numpy())) if numpy_closure \
                else closure.torch(x)
            x = toy.euler_step(x, tk, H, p)
            err = ((prev if before else x) - targets[:, k]) ** 2
            loss = loss + (err.sum() if total else err.mean())
            if detach:
                x = x.detach()
        out = loss if total else loss / window
        return float(out.detach()) if as_float else out
    return fn


def test_unrolled_loss_check(toy):
    assert check.unrolled_loss(_loss(toy), toy, H)
    with pytest.raises(LabCheckError, match="detached between steps"):
        check.unrolled_loss(_loss(toy, detach=True), toy, H)
    with pytest.raises(LabCheckError, match="not connected to the closure's weights"):
        check.unrolled_loss(_loss(toy, numpy_closure=True), toy, H)
    with pytest.raises(LabCheckError, match=r"wrong times.*\*before\* each step"):
        check.unrolled_loss(_loss(toy, before=True), toy, H)
    with pytest.raises(LabCheckError, match=r"wrong times.*end of each step"):
        check.unrolled_loss(_loss(toy, late=True), toy, H)
    with pytest.raises(LabCheckError, match="you sum the squared errors"):
        check.unrolled_loss(_loss(toy, total=True), toy, H)
    with pytest.raises(LabCheckError, match="scalar torch tensor"):
        check.unrolled_loss(_loss(toy, as_float=True), toy, H)
    with pytest.raises(LabCheckError, match="raised NameError"):
        check.unrolled_loss(lambda *a: undefined_name, toy, H)  # noqa: F821


@pytest.fixture(scope="module")
def closures(toy):
    t, q, s = toy.truth(60, H)
    blocks = time_blocks(len(t), (0.6, 0.2, 0.2))
    offline = stability.fit_stencil_closure(q, s, blocks, epochs=3)[0]
    trained = copy.deepcopy(offline)
    with torch.no_grad():
        next(trained.module.parameters()).add_(0.01)
    return offline, trained, q[blocks[2]]


def test_trained_closure_check(closures):
    offline, trained, truth = closures
    losses = list(np.geomspace(1.0, 1e-3, 50))
    good = {"q": truth + 0.01, "blew_up": False, "blowup_step": None}
    assert check.trained_closure(trained, offline, losses, good, truth, 0.1)
    with pytest.raises(LabCheckError, match="train a copy"):
        check.trained_closure(offline, offline, losses, good, truth, 0.1)
    with pytest.raises(LabCheckError, match="weights did not change"):
        check.trained_closure(copy.deepcopy(offline), offline, losses, good, truth, 0.1)
    with pytest.raises(LabCheckError, match="fell only"):
        check.trained_closure(trained, offline, [1.0] * 50, good, truth, 0.1)
    blown = {"q": truth[:5] * 40, "blew_up": True, "blowup_step": 4}
    with pytest.raises(LabCheckError, match="blew up at step 4.*longer window"):
        check.trained_closure(trained, offline, losses, blown, truth, 0.1)
    drifting = {"q": truth + 0.5, "blew_up": False, "blowup_step": None}
    with pytest.raises(LabCheckError, match="drifts"):
        check.trained_closure(trained, offline, losses, drifting, truth, 0.1)
    with pytest.raises(LabCheckError, match="expected the trained Closure"):
        check.trained_closure(lambda x: x, offline, losses, good, truth, 0.1)


def test_online_rmse_check(toy):
    t, q, s = toy.truth(60, H)
    test = time_blocks(len(t), (0.6, 0.2, 0.2))[2]
    n = test.stop - test.start - 1

    def right(closure):
        run = toy.run(closure, q[test.start], t[test.start], H, n)
        return run, float(np.sqrt(np.mean((run["q"] - q[test]) ** 2)))

    def training_period(closure):
        run = toy.run(closure, q[0], t[0], H, n)
        return run, float(np.sqrt(np.mean((run["q"] - q[: n + 1]) ** 2)))

    def shifted(closure):
        run = toy.run(closure, q[test.start], t[test.start], H, n)
        return run, float(np.sqrt(np.mean((run["q"][1:] - q[test][:-1]) ** 2)))

    def wrong_step(closure):
        run = toy.run(closure, q[test.start], t[test.start], H / 2, n)
        return run, 0.0

    assert check.online_rmse(right, toy, q, t, test, H)
    with pytest.raises(LabCheckError, match="never over the training period"):
        check.online_rmse(training_period, toy, q, t, test, H)
    with pytest.raises(LabCheckError, match="one step earlier"):
        check.online_rmse(shifted, toy, q, t, test, H)
    with pytest.raises(LabCheckError, match="should step at h = 9000 s"):
        check.online_rmse(wrong_step, toy, q, t, test, H)


def test_window_checks():
    def right(lam1, dt):
        return max(1, int(np.floor(1 / (lam1 * dt))))

    assert check.longest_window(right)
    with pytest.raises(LabCheckError, match="model time units"):
        check.longest_window(lambda lam1, dt: 1 / lam1)
    with pytest.raises(LabCheckError, match="longer than the predictability time"):
        check.longest_window(lambda lam1, dt: int(np.ceil(1 / (lam1 * dt))) + 1)
    with pytest.raises(LabCheckError, match="expected"):
        check.longest_window(lambda lam1, dt: 1)
    assert check.window_choice(20, lam1=2.0, dt=0.01)
    with pytest.raises(LabCheckError, match="longer than the predictability time"):
        check.window_choice(128, lam1=2.0, dt=0.01)
    with pytest.raises(LabCheckError, match=">= 2"):
        check.window_choice(1, lam1=2.0, dt=0.01)
