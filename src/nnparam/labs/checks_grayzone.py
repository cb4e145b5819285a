"""Checks for the lab "Make it scale-aware" (lab 04): each names the typical mistake it catches."""

from __future__ import annotations

import numpy as np

from .. import grayzone as gz
from .feedback import LabCheckError, as_array, passed, require


def subgrid_share(share, part: gz.Partition) -> bool:
    """The subgrid share of the domain-mean flux, computed by hand from a :class:`Partition`."""
    value = float(as_array("share", share, shape=()))
    truth = part.subgrid / part.total
    require(abs(value - (1 - truth)) > 1e-6 or abs(truth - 0.5) < 1e-6,
            "`share` equals the RESOLVED share resolved/total; the subgrid share is the rest, "
            "mean(subgrid_flux)/total.")
    require(0 <= value <= 1, f"`share` = {value:.3g} is not a fraction between 0 and 1: divide "
            "the subgrid flux by the TOTAL flux (resolved + subgrid).")
    require(abs(value - part.subgrid / (part.total + part.subgrid)) > 1e-9,
            "you divided by total + subgrid: `total` already contains the subgrid part.")
    require(abs(value - truth) < 1e-6,
            f"`share` = {value:.4f} but the subgrid share is not that. Resolved flux: "
            "mean(w_bar * phi_bar); subgrid flux: mean(subgrid_flux); share = subgrid / "
            "(resolved + subgrid).")
    return passed(f"subgrid share at dx = {part.dx_km:g} km: {value:.3f}")


def split(train: dict, test: dict, held_out_dx: float) -> bool:
    """Training and test samples: held-out resolution and fields must not leak into training."""
    for name, data in (("train", train), ("test", test)):
        if not isinstance(data, dict) or not {"dx_km", "seed", "flux"} <= set(data):
            raise LabCheckError(f"`{name}` should be the dict returned by gz.samples(...)")
    train_dx = np.unique(as_array("train['dx_km']", train["dx_km"]))
    test_dx = np.unique(as_array("test['dx_km']", test["dx_km"]))
    require(not np.any(np.isclose(train_dx, held_out_dx)),
            f"the held-out resolution {held_out_dx:g} km is in the training set: the split leaks "
            "it, so the test no longer measures skill at an UNSEEN resolution.")
    require(np.allclose(test_dx, held_out_dx),
            f"the test set should hold only dx = {held_out_dx:g} km, got {test_dx.tolist()}")
    require(train_dx.size >= 3, f"train on at least 3 resolutions, got {train_dx.tolist()}")
    require(train_dx.min() < held_out_dx < train_dx.max(),
            f"{held_out_dx:g} km should lie INSIDE the training range "
            f"[{train_dx.min():g}, {train_dx.max():g}] km for an interpolation test.")
    shared = set(np.unique(train["seed"]).tolist()) & set(np.unique(test["seed"]).tolist())
    require(not shared, f"fields (seeds) {sorted(shared)} are in both training and test sets: "
            "the test cells are then views of plumes the network has already seen.")
    return passed(f"train on {train_dx.tolist()} km, test on unseen {held_out_dx:g} km "
                  "and unseen fields")


def features(make_features) -> bool:
    """``make_features(data)`` must return the scale-aware inputs with a normalised ``dx``."""
    if not callable(make_features):
        raise LabCheckError("`make_features` should be a function of the samples dict")
    probe = gz.samples([2.0, 10.0], seeds=(0,))
    got = as_array("make_features(data)", make_features(probe))
    want = gz.features(probe)
    require(got.shape == want.shape, f"expected shape {want.shape} (w_bar, phi_bar, dx), "
            f"got {got.shape}")
    if np.allclose(got[:, 2], probe["dx_km"]):
        raise LabCheckError("the dx column holds raw kilometres. The network is trained on "
                            "log(dx / L_c) (gz.dx_feature); raw km puts 25 km cells far outside "
                            "the range the other inputs live in.")
    require(np.allclose(got[:, :2], want[:, :2]),
            "the first two columns should be asinh(w_bar / 0.05) and asinh(phi_bar / 0.05), "
            "as gz.features builds them.")
    require(np.allclose(got[:, 2], want[:, 2]),
            "the dx column should be gz.dx_feature(data['dx_km']) = log(dx / L_c).")
    return passed("features: resolved state plus log(dx / L_c)")


def skill(r2_aware, r2_unaware) -> bool:
    """Scale-aware closure must beat the 25 km closure at the held-out resolution."""
    a = float(as_array("r2_aware", r2_aware, shape=()))
    u = float(as_array("r2_unaware", r2_unaware, shape=()))
    require(a > 0.5, f"r2_aware = {a:.2f}: the scale-aware closure should explain more than half "
            "the variance at the held-out dx. Did you standardise the test inputs with the "
            "TRAINING statistics and decode the prediction with gz.decode_flux?")
    require(a > u, f"r2_aware = {a:.2f} is not above r2_unaware = {u:.2f}; check that the "
            "unaware closure was trained at 25 km only and without the dx column.")
    return passed(f"R^2 at the unseen resolution: scale-aware {a:.2f} vs trained at 25 km {u:.2f}")
