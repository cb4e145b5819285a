"""Checks of lab 08, "Learn an eddy closure in pyqg": each names the typical mistake it catches.

The checks call the student's functions on fields they make themselves (waves of known
wavenumber, snapshots of the cached truth the student has not used) and compare with the
engine (:mod:`nnparam.apps.qg`) and with the usual wrong answers: no filter or the wrong one,
a missing FFT normalisation, a block average, the forcing with the wrong sign or without the
coarse model's tendency, a shuffled or gapless split, an R^2 computed on training data, and
the kinetic energy without the background flow.
"""

from __future__ import annotations

import numpy as np

from .. import evaluation
from ..apps import qg, qg_metrics
from .feedback import (
    LabCheckError,
    as_array,
    as_indices,
    as_scalar,
    call,
    call_without,
    expect_times,
    lab_check,
    passed,
    relative_error,
    require,
)

HIGH, LOW = qg.HIGH_NX, qg.LOW_NX
#: the lab subsamples the eddy truth record (every other snapshot: 6 days apart)
EVERY = 2
#: the gap the lab asks for, in snapshots of the subsampled record (36 days)
MIN_GAP = 6
_SHORTCUTS = {
    "nnparam.apps.qg.coarsen": "write the truncation and the filter yourself (numpy FFTs and "
                               "qg.spectral_filter), without the engine's qg.coarsen",
    "nnparam.apps.qg_model.coarsen": "write the truncation and the filter yourself",
}
_FORCING_SHORTCUTS = {
    "nnparam.apps.qg.subgrid_forcing": "build S_q from your coarse_grain and qg.tendency, "
                                       "not with the engine's qg.subgrid_forcing",
    "nnparam.apps.qg_model.subgrid_forcing": "build S_q from coarse_grain and qg.tendency",
    "nnparam.apps.qg.forcing": "build S_q yourself from the high-resolution snapshots",
}


def lab_record() -> np.ndarray:
    """The lab's high-resolution PV record (time, 2, 128, 128): every other truth snapshot."""
    return qg.truth("eddy")["q"].values[::EVERY].astype(float)


# ------------------------------------------------------------------------------------------
# exercise 1: the filter


def _waves(shape_lead=()):
    """A field on the fine grid made of three waves: one resolved (filter 1), one inside the
    coarse filter's roll-off, one beyond the coarse grid's Nyquist wavenumber; and the
    wavenumber index of the roll-off wave."""
    x = (np.arange(HIGH) + 0.5) / HIGH * qg.COMMON["L"]
    X, Y = np.meshgrid(x, x)
    k1 = 2 * np.pi / qg.COMMON["L"]
    field = (np.cos(3 * k1 * X + 2 * k1 * Y) + 0.6 * np.cos(24 * k1 * X + 5 * k1 * Y + 0.3)
             + 0.4 * np.sin(45 * k1 * Y))
    scale = 1.0 + np.arange(int(np.prod(shape_lead)) or 1).reshape(shape_lead or ())
    return field * (np.asarray(scale)[..., None, None] if shape_lead else 1.0)


@lab_check
def coarse_grain(func) -> bool:
    """``func(field, nx)``: the benchmark's operator 1 from a (..., 128, 128) field to
    (..., nx, nx): spectral truncation, times the coarse model's filter, normalised."""
    for lead in ((), (3, 2)):
        field = _waves(lead)
        shape = lead + (LOW, LOW)
        got = as_array("coarse_grain(field, 64)", call_without(
            "coarse_grain", func, _SHORTCUTS, field, LOW,
            inputs=f"a field of shape {field.shape} and nx = {LOW}"), shape=shape)
        want = qg.coarsen(field, LOW)
        if relative_error(got, want) < 1e-6:
            continue
        ratio = float(np.sum(got * want) / np.sum(want * want))
        require(abs(ratio - (HIGH / LOW) ** 2) > 0.01 or relative_error(
            got / ratio, want) > 1e-3,
            f"your coarse field is {ratio:.0f} times too large: numpy's rfft2 is not "
            f"normalised, so the truncated coefficients of a {HIGH}^2 field must be divided "
            f"by ({HIGH}/{LOW})^2 = {(HIGH / LOW) ** 2:.0f} before the inverse transform on "
            f"the {LOW}^2 grid.")
        require(relative_error(got, _truncate(field)) > 1e-3,
                "the wave inside the filter's roll-off (|k| dx = 0.77 pi on the coarse grid) "
                "keeps its full amplitude: you truncated the spectrum but did not multiply it "
                "by the coarse model's filter, qg.spectral_filter(nx).")
        require(relative_error(got, qg.coarsen(field, LOW, operator="op2")) > 1e-3,
                "this is the benchmark's operator 2 (a Gaussian filter); the lab asks for "
                "operator 1, the coarse model's own filter qg.spectral_filter(nx).")
        block = field.reshape(lead + (LOW, HIGH // LOW, LOW, HIGH // LOW)).mean(axis=(-3, -1))
        require(relative_error(got, block) > 1e-3,
                "this is a block average in real space. The benchmark's operator keeps the "
                "Fourier modes of the coarse grid and multiplies them by the model's filter: "
                "np.fft.rfft2, keep |l| < nx/2 and k <= nx/2, filter, np.fft.irfft2.")
        raise LabCheckError(
            f"your coarse field differs from the benchmark's operator 1 by "
            f"{relative_error(got, want):.1%} (rms) for a field of shape {field.shape}. Keep "
            f"the rows l = 0..nx/2-1 and the last nx/2 rows, the columns k = 0..nx/2 of the "
            f"rfft2, multiply by qg.spectral_filter(nx) and divide by (N/nx)^2.")
    return passed(f"operator 1: a resolved wave kept, the roll-off wave damped to "
                  f"{_rolloff_gain():.3f}, the wave beyond the {LOW}^2 Nyquist removed")


def _truncate(field):
    fh = np.fft.rfft2(field)
    half = LOW // 2
    trunc = np.concatenate([fh[..., :half, :half + 1], fh[..., HIGH - half:, :half + 1]],
                           axis=-2)
    return np.fft.irfft2(trunc / (HIGH / LOW) ** 2, s=(LOW, LOW))


def _rolloff_gain() -> float:
    k, l = qg.wavenumbers(LOW)
    dk = 2 * np.pi / qg.COMMON["L"]
    idx = np.argmin(np.abs(k - 24 * dk) + np.abs(l - 5 * dk))
    return float(qg.spectral_filter(LOW).ravel()[idx])


# ------------------------------------------------------------------------------------------
# exercise 2: the forcing


@lab_check
def forcing(func, coarse_grain_func) -> bool:
    """``func(q_hi)`` for high-resolution PV (time, 2, 128, 128) returns ``(q_bar, S_q)``, each
    (time, 2, 64, 64): the filtered PV and ``S_q = coarse_grain(dq/dt) - dq/dt(q_bar)``."""
    q_hi = qg.truth("eddy")["q"].values[1::EVERY][-3:].astype(float)  # unseen snapshots
    out = call_without("forcing", func, _FORCING_SHORTCUTS, q_hi,
                       inputs=f"three truth snapshots of shape {q_hi.shape}")
    if not (isinstance(out, tuple) and len(out) == 2):
        raise LabCheckError("`forcing` should return the pair (q_bar, S_q)")
    shape = (3, 2, LOW, LOW)
    q_bar = as_array("q_bar", out[0], shape=shape)
    s_q = as_array("S_q", out[1], shape=shape)
    ref = qg.subgrid_forcing(q_hi, "eddy", LOW)
    require(relative_error(q_bar, ref["q"]) < 1e-6,
            "`q_bar` is not coarse_grain(q_hi, 64): filter the PV with your operator 1")
    if relative_error(s_q, ref["S_q"]) < 1e-6:
        return passed(f"S_q of 3 unseen snapshots matches the benchmark's forcing; rms "
                      f"{ref['S_q'][:, 0].std():.2e} 1/s^2 (upper), "
                      f"{ref['S_q'][:, 1].std():.2e} (lower)")
    require(relative_error(s_q, -ref["S_q"]) > 1e-6,
            "S_q has the wrong sign. It is what must be ADDED to the coarse model's tendency "
            "to give the filtered high-resolution tendency: coarse_grain(dq/dt at high "
            "resolution) minus dq/dt of the coarse model at q_bar (the benchmark's "
            "q_subgrid_forcing is written with the opposite sign).")
    filtered_tendency = qg.coarsen(qg.tendency(q_hi, "eddy"), LOW)
    require(relative_error(s_q, filtered_tendency) > 1e-3,
            "S_q is the filtered high-resolution tendency alone: subtract the coarse model's "
            "own tendency at q_bar, qg.tendency(q_bar, 'eddy').")
    jet = qg.coarsen(qg.tendency(q_hi, "jet"), LOW) - qg.tendency(ref["q"], "jet")
    require(relative_error(s_q, jet) > 1e-6,
            "these are the tendencies of the jet configuration: the truth is an eddy run, "
            "use qg.tendency(..., 'eddy').")
    raise LabCheckError(f"S_q differs from the benchmark's forcing by "
                        f"{relative_error(s_q, ref['S_q']):.1%} (rms): compute "
                        f"coarse_grain(qg.tendency(q_hi, 'eddy'), 64) - "
                        f"qg.tendency(q_bar, 'eddy').")


# ------------------------------------------------------------------------------------------
# exercise 3: the split


@lab_check
def split(func) -> bool:
    """``func(n_time)`` returns (train, validation, test) blocks: in time order, contiguous,
    at least ``MIN_GAP`` snapshots apart, the test block at least 15 % of the record."""
    for n in (60, 75):
        out = call("split", func, n, inputs=f"n_time = {n}")
        if not (isinstance(out, tuple | list) and len(out) == 3):
            raise LabCheckError("`split` should return three blocks: (train, validation, test)")
        blocks = [as_indices(name, b, n) for name, b in zip(("train", "validation", "test"),
                                                            out, strict=True)]
        for name, idx in zip(("train", "validation", "test"), blocks, strict=True):
            require(np.all(np.diff(idx) == 1),
                    f"`{name}` is not one contiguous block of times: it looks shuffled. "
                    f"Snapshots 6 days apart are near copies of each other (the coarse PV "
                    f"decorrelates in about a month), so a shuffled split puts a twin of "
                    f"every test snapshot in the training set and flatters R^2.")
        tr, va, te = blocks
        require(tr.max() < va.min() and va.max() < te.min(),
                "the blocks must follow each other in time: train, then validation, then test")
        gaps = (va.min() - tr.max() - 1, te.min() - va.max() - 1)
        require(min(gaps) >= MIN_GAP,
                f"only {min(gaps)} snapshots separate two blocks (n_time = {n}); leave at "
                f"least {MIN_GAP} ({MIN_GAP * 6} days, longer than the PV's decorrelation "
                f"time) so that the test block is independent of training.")
        require(te.size >= 0.15 * n, f"the test block holds {te.size} of {n} snapshots: keep "
                                     f"at least 15 % for testing")
    return passed(f"time-contiguous blocks of {tr.size}, {va.size} and {te.size} snapshots "
                  f"(n_time = {n}), gaps of {min(gaps)}")


# ------------------------------------------------------------------------------------------
# exercise 4: the network, offline


@lab_check
def offline(closure, r2, q_bar, s_q, blocks) -> bool:
    """The trained :class:`~nnparam.apps.qg_net.QGClosure` and its reported test ``R^2`` per
    layer (the benchmark's definition) on the test block of ``blocks``."""
    if not isinstance(closure, qg.QGClosure):
        raise LabCheckError(f"`closure` should be the QGClosure of your trained network, got "
                            f"{type(closure).__name__}: wrap it with qg.QGClosure(net)")
    q_bar, s_q = as_array("q_bar", q_bar), as_array("S_q", s_q)
    n = q_bar.shape[0]
    test = as_indices("test", blocks[2], n)
    train = as_indices("train", blocks[0], n)
    reported = as_array("r2", r2, shape=(2,))
    pred = as_array("closure(q_bar[test])", call("closure", closure, q_bar[test]),
                    shape=s_q[test].shape)
    value = qg_metrics.offline_skill(s_q[test], pred)["r2"]
    on_train = qg_metrics.offline_skill(s_q[train], closure(q_bar[train]))["r2"]
    if not np.allclose(reported, value, atol=1e-3):
        hint = (" That is the score on the training block: compute it on the test block."
                if np.allclose(reported, on_train, atol=1e-3) else "")
        raise LabCheckError(f"you report R^2 = {np.round(reported, 3)}, but the closure "
                            f"scores {np.round(value, 3)} on the test block.{hint}")
    require(np.all(value > 0.25),
            f"test R^2 = {np.round(value, 3)}: a small network trained for 20 epochs reaches "
            f"about 0.4 in both layers. Check the inputs (q_bar, not q_hi), the target (S_q "
            f"of the training block) and that training used the training block.")
    return passed(f"offline R^2 on the test block: {value[0]:.2f} (upper), {value[1]:.2f} "
                  f"(lower); on the training block {on_train[0]:.2f}, {on_train[1]:.2f}")


# ------------------------------------------------------------------------------------------
# exercise 5: one online similarity score


@lab_check
def online_score(func, closure, run, baseline) -> bool:
    """``func(run, baseline, truth)``: the similarity score of the upper-layer kinetic energy
    ``(u + U1)^2 + v^2``, ``1 - W1(run, truth) / W1(baseline, truth)``, pooled over members,
    times and grid points; ``run`` the lab's online run with the student's closure."""
    require(hasattr(run, "attrs") and run.attrs.get("closure") == qg.closure_key(closure),
            "`run` should be qg.lab_run(closure) with your trained closure")
    require(baseline.attrs.get("closure") == "none",
            "`baseline` should be qg.lab_run(None): the same protocol without a closure")
    save = qg.ONLINE["save_every"]
    expect_times("run['time']", run["time"].values / 86400, start=0.25 * 360 + save / 86400,
                 step=save / 86400, count=18, unit="days")
    require(bool(np.all(np.isnan(run["blew_up_at"].values))),
            "your closure's run blew up: check the sign and scale of the network's output")
    truth = qg.truth("eddy")
    got = as_scalar("score", call("online score", func, run, baseline, truth,
                                  inputs="the lab's run, its no-closure twin and the truth"))
    u1 = qg.COMMON["U1"]

    def ke(ds, background=u1, layer=0):
        sel = ds.isel(lev=layer)
        return ((sel["u"] + background) ** 2 + sel["v"] ** 2).values.ravel()

    def score(**kw):
        d_run = evaluation.wasserstein(ke(run, **kw), ke(truth, **kw))
        d_base = evaluation.wasserstein(ke(baseline, **kw), ke(truth, **kw))
        return d_run, d_base

    d_run, d_base = score()
    want = evaluation.similarity_score(d_run, d_base)
    if abs(got - want) < 1e-6:
        return passed(f"similarity score of the upper-layer KE: {want:.3f} (W1 {d_run:.2e} "
                      f"with your network, {d_base:.2e} without closure, m^2/s^2)")
    require(abs(got - (1 - d_base / d_run)) > 1e-6,
            "the ratio is upside down: the score is 1 - D(run, truth) / D(no closure, truth), "
            "so that 1 is perfect and 0 no better than no closure.")
    require(abs(got - d_run) > 1e-9 and abs(got - d_base) > 1e-9,
            "that is a distance, not the score: return 1 - D(run) / D(no closure).")
    anomaly = evaluation.similarity_score(*score(background=0.0))
    require(abs(got - anomaly) > 1e-6,
            "the kinetic energy must use the full velocity u + U1 (the benchmark's ufull): "
            "run['u'] is the anomaly, the background flow U1 = 0.025 m/s is not included.")
    lower = evaluation.similarity_score(*score(layer=1, background=0.0))
    require(abs(got - lower) > 1e-6, "that is the lower layer (lev=2): use the upper, lev=1")
    raise LabCheckError(f"expected the score {want:.4f}, got {got:.4f}: use "
                        f"evaluation.wasserstein on the flattened (u + U1)^2 + v^2 of the upper "
                        f"layer of each dataset, against the truth's, and "
                        f"evaluation.similarity_score.")
