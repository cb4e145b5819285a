"""The pyqg benchmark's offline and online metrics (Ross et al. 2023), on this engine's runs.

Offline (``offline_skill``): per layer, the benchmark's ``R^2`` ("skill") ``1 - sum (S - P)^2 /
sum (S - mean S)^2`` pooled over time and space, where the benchmark takes ``mean S`` over the
whole array (both layers, all times: its ``truth.mean()``), and the Pearson correlation pooled
over time and space. The benchmark's figures show the average over grid points of the same
ratios computed per point over time (``"r2_map_mean"``, ``"corr_map_mean"``); both are given.

Online (``distances``, ``similarity``): the benchmark's ``diagnostic_differences`` compares a
run with the high-resolution truth through

* the first Wasserstein distance between the marginal distributions, per layer, of PV ``q``,
  the full velocities ``u + U_i`` and ``v``, ``KE = (u + U_i)^2 + v^2`` (no factor 1/2, as in
  the benchmark) and the enstrophy ``zeta^2`` of the relative vorticity;
* the RMS difference of the time-mean isotropic spectra of kinetic energy and of PV
  ("enstrophy", ``|q_hat|^2``) per layer, over the wavenumbers below the onset of the coarse
  model's filter (``|k| dx < 0.65 pi``, the benchmark's "two thirds of Nyquist");

and the similarity score ``1 - D(run, truth) / D(no closure, truth)``
(:func:`nnparam.evaluation.similarity_score`). The benchmark's energy-budget spectra (KE and
APE fluxes, APE generation, bottom drag) are left out: they need pyqg's diagnostics of the
parameterization's energy transfer. All distances use :mod:`nnparam.evaluation`.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .. import evaluation
from .qg_model import COMMON, check_config, invert, layer_parameters

#: the distributional quantities of the benchmark, per layer
QUANTITIES = ("q", "u", "v", "KE", "Ens")
#: the spectra of the benchmark kept here, per layer
SPECTRA = ("KEspec", "Ensspec")
METRICS = tuple(f"{name}{z}" for name in QUANTITIES for z in (1, 2)) + tuple(
    f"{name}{z}" for name in SPECTRA for z in (1, 2))


def offline_skill(s_true, s_pred) -> dict:
    """The benchmark's offline scores of a forcing prediction, per layer.

    ``s_true``, ``s_pred``: (time, 2, n, n) in any common units. Returns ``{"r2": (2,),
    "corr": (2,), "r2_map_mean": (2,), "corr_map_mean": (2,)}``: pooled over time and space
    (``r2`` centred on the mean of the whole ``s_true``, as the benchmark), and the average of
    the per-grid-point scores over time (the numbers on the benchmark's figures).
    """
    t = np.asarray(s_true, dtype=float)
    p = np.asarray(s_pred, dtype=float)
    if t.ndim != 4 or t.shape[1] != 2 or t.shape != p.shape:
        raise ValueError(f"s_true and s_pred must share a shape (time, 2, n, n), got {t.shape} "
                         f"and {p.shape}")
    centred = t - t.mean()
    out = {"r2": np.empty(2), "corr": np.empty(2), "r2_map_mean": np.empty(2),
           "corr_map_mean": np.empty(2)}
    for z in range(2):
        # evaluation.r2_score centres on the layer's own mean; S_q has zero domain mean in
        # every snapshot, so the two centrings agree to round-off (checked here)
        pooled = 1.0 - np.sum((t[:, z] - p[:, z]) ** 2) / np.sum(centred[:, z] ** 2)
        out["r2"][z] = pooled
        out["corr"][z] = evaluation.correlation(t[:, z], p[:, z])
        mse_map = np.mean((t[:, z] - p[:, z]) ** 2, axis=0)
        out["r2_map_mean"][z] = np.mean(1.0 - mse_map / np.mean(centred[:, z] ** 2, axis=0))
        ta = t[:, z] - t[:, z].mean(axis=0)
        pa = p[:, z] - p[:, z].mean(axis=0)
        out["corr_map_mean"][z] = np.mean(np.sum(ta * pa, axis=0) / np.sqrt(
            np.sum(ta ** 2, axis=0) * np.sum(pa ** 2, axis=0)))
    return out


def _fields(ds: xr.Dataset, config: str) -> dict:
    """Per-layer arrays (..., time, y, x) of the benchmark's quantities from a run."""
    q = ds["q"].values.astype(float)
    u_bg = layer_parameters(config)["U"]
    vel = invert(q, config)
    u_full = vel["u"] + u_bg[:, None, None]
    return {"q": q, "u": u_full, "v": vel["v"], "KE": u_full ** 2 + vel["v"] ** 2,
            "Ens": vel["zeta"] ** 2, "u_anom": vel["u"]}


def k_max(nx: int) -> float:
    """The benchmark's upper wavenumber for spectral errors: the onset of the coarse filter."""
    return 0.65 * np.pi / (COMMON["L"] / nx)


def spectra(ds: xr.Dataset, config: str) -> dict:
    """Time-mean isotropic KE and PV spectra per layer: ``{"k", "KEspec", "Ensspec"}``.

    ``KEspec[z]`` is the spectrum of ``u`` plus that of ``v`` of layer ``z + 1``,
    ``Ensspec[z]`` that of ``q`` (:func:`nnparam.evaluation.isotropic_spectrum`); shape
    (..., 2, n_k) with leading axes of ``ds`` other than time kept (e.g. members).
    """
    f = _fields(ds, check_config(config))
    dx = COMMON["L"] / ds.sizes["x"]
    lead = f["q"].shape[:-4]
    out = {"KEspec": np.empty(lead + (2, ds.sizes["x"] // 2)),
           "Ensspec": np.empty(lead + (2, ds.sizes["x"] // 2))}
    for idx in np.ndindex(lead):
        for z in range(2):
            k, e_u = evaluation.isotropic_spectrum(f["u_anom"][idx][:, z], dx)
            _, e_v = evaluation.isotropic_spectrum(f["v"][idx][:, z], dx)
            _, e_q = evaluation.isotropic_spectrum(f["q"][idx][:, z], dx)
            out["KEspec"][idx + (z,)] = e_u + e_v
            out["Ensspec"][idx + (z,)] = e_q
    out["k"] = k
    return out


class Truth:
    """The truth's samples and spectra, computed once for many comparisons.

    ``ds``: a high-resolution run of :func:`nnparam.apps.qg.simulate`; the marginal
    distributions pool ``snapshots`` states spread evenly over the record (the benchmark
    pools the last 10 snapshots, 1000 h apart), the spectra average all of them.
    """

    def __init__(self, ds: xr.Dataset, config: str, snapshots: int = 10):
        self.config = check_config(config)
        n = ds.sizes["time"]
        pick = np.unique(np.linspace(n - 1, 0, min(snapshots, n)).round().astype(int))
        sub = ds.isel(time=pick)
        f = _fields(sub, config)
        self.samples = {f"{n}{z + 1}": f[n][:, z].ravel() for n in QUANTITIES for z in range(2)}
        spec = spectra(ds, config)
        self.k = spec["k"]
        self.spectra = {f"{n}{z + 1}": spec[n][z] for n in SPECTRA for z in range(2)}


def distances(run: xr.Dataset, truth: Truth) -> dict:
    """Distances of each member of ``run`` (member, time, lev, y, x) to ``truth``.

    Returns ``{metric: array (members,)}`` for every name in :data:`METRICS`: Wasserstein
    distances of the marginals (units of the quantity) and RMS differences of the spectra
    below :func:`k_max` of the run's grid.
    """
    members = run.sizes["member"]
    finite = np.isfinite(run["q"].values).reshape(members, -1).all(axis=1)
    out = {m: np.full(members, np.nan) for m in METRICS}
    if not finite.any():
        return out
    run = run.isel(member=np.flatnonzero(finite))
    f = _fields(run, truth.config)
    spec = spectra(run, truth.config)
    nk = spec["k"].size
    keep = spec["k"] < k_max(run.sizes["x"])
    for i, m in enumerate(np.flatnonzero(finite)):
        for name in QUANTITIES:
            for z in range(2):
                out[f"{name}{z + 1}"][m] = evaluation.wasserstein(
                    f[name][i][:, z], truth.samples[f"{name}{z + 1}"])
        for name in SPECTRA:
            for z in range(2):
                out[f"{name}{z + 1}"][m] = evaluation.spectral_rmse(
                    spec[name][i, z][keep], truth.spectra[f"{name}{z + 1}"][:nk][keep])
    return out


def similarity(run_distances: dict, baseline_distances: dict) -> dict:
    """Similarity scores per metric and member: ``1 - D(run) / D(no closure)``.

    A member that blew up has no climate: its scores are NaN (so are those of a member whose
    no-closure partner blew up).
    """
    out = {}
    for m in METRICS:
        d_run = np.asarray(run_distances[m], dtype=float)
        d_base = np.asarray(baseline_distances[m], dtype=float)
        ok = np.isfinite(d_run) & np.isfinite(d_base)
        score = np.full(d_run.shape, np.nan)
        if ok.any():
            score[ok] = evaluation.similarity_score(d_run[ok], d_base[ok])
        out[m] = score
    return out
