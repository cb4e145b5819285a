"""The checks of the uncertainty lab accept the solution and reject typical mistakes."""

import json
from pathlib import Path

import numpy as np
import pytest

from nnparam import uq
from nnparam.labs import ANSWER_BOX, STUB, make_lab
from nnparam.labs import checks_uq as check
from nnparam.labs.feedback import LabCheckError

ROOT = Path(__file__).resolve().parents[1]
LAB = "lab06_know_when_your_closure_does_not_know.ipynb"


# ------------------------------------------------------------------ decompose
def good_decompose(mu, var):
    return uq.decompose(mu, var)


@pytest.mark.parametrize("wrong, message", [
    (lambda mu, var: (var.mean(0), mu.var(0, ddof=1)), "divisor M - 1"),
    (lambda mu, var: (mu.var(0), var.mean(0)), "swapped"),
    (lambda mu, var: (var.mean(0), mu.std(0)), "standard deviation"),
    (lambda mu, var: (var.mean(1), mu.var(1)), "shape"),
    (lambda mu, var: var.mean(0), "pair"),
    (lambda mu, var: (var.sum(0), mu.var(0)), "aleatoric is wrong"),
    (lambda mu, var: None, "pair"),
])
def test_decompose_rejects_typical_mistakes(wrong, message):
    with pytest.raises(LabCheckError, match=message):
        check.decompose(wrong)


def test_decompose_accepts_solution_and_reports_errors(capsys):
    assert check.decompose(good_decompose)
    assert "[ok]" in capsys.readouterr().out
    with pytest.raises(LabCheckError, match="no parentheses"):
        check.decompose(good_decompose(np.zeros((2, 2)), np.ones((2, 2))))

    def broken(mu, var):
        raise KeyError("oops")

    with pytest.raises(LabCheckError, match="raised KeyError"):
        check.decompose(broken)


def test_mixture_check():
    rng = np.random.default_rng(0)
    mu, var = rng.normal(size=(5, 3)), rng.uniform(0.2, 4.0, size=(5, 3))
    a, e = uq.decompose(mu, var)
    good = uq.sample_mixture(mu, var, 200_000, seed=1).var(axis=0)
    assert check.mixture_check(good, a, e)
    # a typical mistake: using the variance as the scale of the Gaussian draws
    member = rng.integers(0, 5, size=(200_000, 3))
    cols = np.arange(3)
    bad = (mu[member, cols] + var[member, cols] * rng.standard_normal((200_000, 3))).var(axis=0)
    with pytest.raises(LabCheckError, match="square root"):
        check.mixture_check(bad, a, e)


# ------------------------------------------------------------------ pinball
def test_pinball_accepts_engine_and_rejects_mistakes():
    assert check.pinball(lambda y, q, t: uq.pinball_loss(y, q, t))

    def swapped(y, q, tau):
        u = y - q
        return np.mean(np.maximum((1 - tau) * u, -tau * u))

    def summed(y, q, tau):
        u = y - q
        return np.sum(np.maximum(tau * u, (tau - 1) * u))

    def absolute(y, q, tau):
        return np.mean(np.abs(y - q))

    for wrong, message in ((swapped, "sides of the pinball loss are swapped"),
                           (summed, "take the mean"), (absolute, "absolute error"),
                           (lambda y, q, t: [1, 2], "one number"),
                           (lambda y, q, t: 0.0, "expected")):
        with pytest.raises(LabCheckError, match=message):
            check.pinball(wrong)


# ------------------------------------------------------------------ toy and flag
@pytest.fixture
def toy_arrays():
    x_train = np.linspace(-4, 4, 20)
    x_grid = np.linspace(-6, 6, 121)
    beyond = np.clip(np.abs(x_grid) - 4, 0, None)
    aleatoric = np.full_like(x_grid, 9.0)
    epistemic = 2.0 + 50.0 * beyond**2
    return x_grid, aleatoric, epistemic, x_train


def test_toy_uncertainty(toy_arrays):
    x_grid, a, e, x_train = toy_arrays
    assert check.toy_uncertainty(x_grid, a, e, x_train)
    with pytest.raises(LabCheckError, match="swap"):
        check.toy_uncertainty(x_grid, e, a, x_train)
    with pytest.raises(LabCheckError, match="epistemic grows only"):
        check.toy_uncertainty(x_grid, a, np.full_like(a, 2.0), x_train)
    with pytest.raises(LabCheckError, match="aleatoric grows"):
        check.toy_uncertainty(x_grid, a + e, e, x_train)
    with pytest.raises(LabCheckError, match="far above the true 3"):
        check.toy_uncertainty(x_grid, 100 * a, 100 * e, x_train)
    with pytest.raises(LabCheckError, match="shape"):
        check.toy_uncertainty(x_grid, a[:-1], e, x_train)


def test_ood_flag_check(toy_arrays):
    x_grid, a, e, x_train = toy_arrays
    good = e > 2.5
    assert check.ood(x_grid, good, x_train)
    with pytest.raises(LabCheckError, match="inverted"):
        check.ood(x_grid, ~good, x_train)
    with pytest.raises(LabCheckError, match="beyond the data are flagged"):
        check.ood(x_grid, a > 10, x_train)  # flag from the aleatoric part: never set
    with pytest.raises(LabCheckError, match="threshold is too low"):
        check.ood(x_grid, e >= 0, x_train)
    with pytest.raises(LabCheckError, match="boolean"):
        check.ood(x_grid, good.astype(float), x_train)


# ------------------------------------------------------------------ split and coverage
def test_time_split():
    assert check.time_split(slice(0, 60), slice(70, 100), 100)
    shuffled = np.random.default_rng(0).permutation(100)
    with pytest.raises(LabCheckError, match="contiguous"):
        check.time_split(shuffled[:60], shuffled[60:], 100)
    with pytest.raises(LabCheckError, match="overlap"):
        check.time_split(slice(0, 60), slice(50, 100), 100)
    with pytest.raises(LabCheckError, match="after the training block"):
        check.time_split(slice(40, 100), slice(0, 30), 100)


def test_coverage_check():
    rng = np.random.default_rng(3)
    y = rng.standard_normal(5000)
    z = np.array([-1.2816, 0.0, 1.2816])
    good = np.tile(z, (y.size, 1))
    assert check.coverage(y, good, (0.1, 0.5, 0.9))
    wide = np.tile([-1.645, 0.0, 1.645], (y.size, 1))  # the 5-95 % interval
    with pytest.raises(LabCheckError, match="expected about 80%"):
        check.coverage(y, wide, (0.1, 0.5, 0.9))
    with pytest.raises(LabCheckError, match="quantiles cross"):
        check.coverage(y, good[:, ::-1], (0.1, 0.5, 0.9))
    with pytest.raises(LabCheckError, match="shape"):
        check.coverage(y, good[:, :2], (0.1, 0.5, 0.9))


# ------------------------------------------------------------------ lab generation
def test_generated_lab_hides_every_solution():
    solution = json.loads((ROOT / "solutions" / LAB).read_text())
    lab = make_lab(solution)
    sources = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
               for c in lab["cells"]]
    assert not any("BEGIN SOLUTION" in s for s in sources)
    assert sum(STUB in s for s in sources) == 6
    assert sum(s == ANSWER_BOX for s in sources) == 1  # the written answer is blanked
    assert json.loads((ROOT / "labs" / LAB).read_text()) == lab
