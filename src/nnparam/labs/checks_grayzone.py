"""Checks for the lab "Make it scale-aware" (lab 04).

``subgrid_share`` and ``make_features`` are called on inputs the check makes (partitions that
hold only the cell fields; sample dicts of other resolutions and random values);
``predict_flux`` on random inputs against the trained closures, and the reported scores are
recomputed from it; the split is verified resolution by resolution and field by field.
"""

from __future__ import annotations

import types

import numpy as np

from .. import grayzone as gz
from .. import metrics, nn
from .feedback import (LabCheckError, as_array, as_mapping, as_ndarray, as_scalar, call,
                       lab_check, passed, require)

_SAMPLE_KEYS = ("w_bar", "phi_bar", "dx_km", "flux", "seed")


def _probe_partitions():
    """Partitions holding only the per-cell fields (no precomputed domain means)."""
    rng = np.random.default_rng(8)
    probes = []
    for n, scale in ((6, 1.0), (10, 0.3), (3, 2.0)):
        w = rng.normal(0, scale, (n, n))
        phi = 0.5 * w + rng.normal(0, 0.5 * scale, (n, n))
        probes.append(types.SimpleNamespace(
            dx_km=float(rng.uniform(1, 30)), w_bar=w - w.mean(), phi_bar=phi - phi.mean(),
            subgrid_flux=rng.uniform(0.0, 0.5, (n, n)) * scale**2,
            updraft_area=rng.uniform(0, 1, (n, n))))
    field = gz.plume_field(2.0, seed=3)
    for dx in (1.5, 12.0):
        part = gz.coarse_grain(field, dx)
        probes.append(types.SimpleNamespace(dx_km=dx, w_bar=part.w_bar, phi_bar=part.phi_bar,
                                            subgrid_flux=part.subgrid_flux,
                                            updraft_area=part.updraft_area))
    return probes


@lab_check
def subgrid_share(func) -> bool:
    """``func(part)``: mean(subgrid_flux) / (mean(w_bar * phi_bar) + mean(subgrid_flux)), a
    float, computed from the cell fields of a :class:`~nnparam.grayzone.Partition`."""
    for part in _probe_partitions():
        inputs = f"a {part.w_bar.shape[0]}x{part.w_bar.shape[1]} grid of {part.dx_km:.3g} km"
        try:
            out = call("subgrid_share", func, part, inputs=inputs)
        except LabCheckError as err:
            if "AttributeError" in str(err):
                raise LabCheckError(f"{err}. Compute the share from the cell fields w_bar, "
                                    f"phi_bar and subgrid_flux, not from the partition's "
                                    f"precomputed totals") from None
            raise
        value = as_scalar("subgrid_share(part)", out)
        resolved = float(np.mean(part.w_bar * part.phi_bar))
        subgrid = float(np.mean(part.subgrid_flux))
        total = resolved + subgrid
        want = subgrid / total
        if np.isclose(value, want, rtol=1e-9):
            continue
        variants = {
            "that is the RESOLVED share resolved/total; the subgrid share is "
            "mean(subgrid_flux) / total": resolved / total,
            "the resolved flux is the mean of the product w_bar * phi_bar, not the product "
            "of the means (which vanishes for anomalies)":
                subgrid / (float(np.mean(part.w_bar) * np.mean(part.phi_bar)) + subgrid),
            "you divided by the subgrid flux alone: divide by the TOTAL (resolved + subgrid)":
                1.0,
            "that is the ratio subgrid / resolved; divide by the total, resolved + subgrid":
                subgrid / resolved,
            "that is the mean of the cell-by-cell ratios; divide the domain means instead":
                float(np.mean(part.subgrid_flux / (part.w_bar * part.phi_bar
                                                   + part.subgrid_flux))),
            "you divided by total + subgrid: the total already contains the subgrid part":
                subgrid / (total + subgrid),
            "that is a percentage: return the fraction": 100 * want,
        }
        for hint, variant in variants.items():
            if np.isfinite(variant) and np.isclose(value, variant, rtol=1e-9):
                raise LabCheckError(f"for {inputs} your share is {value:.4g}: {hint}")
        raise LabCheckError(f"for {inputs} your share is {value:.4g}, expected {want:.4g}: "
                            f"resolved flux mean(w_bar * phi_bar), subgrid flux "
                            f"mean(subgrid_flux), share = subgrid / (resolved + subgrid)")
    return passed("subgrid_share computes the share from the cell fields")


def _samples(name: str, data) -> dict:
    data = as_mapping(name, data, _SAMPLE_KEYS)
    sizes = {k: np.size(data[k]) for k in _SAMPLE_KEYS}
    require(len(set(sizes.values())) == 1 and sizes["flux"] > 0,
            f"`{name}` should be the dict returned by gz.samples(...): its arrays have "
            f"lengths {sizes}")
    return data


@lab_check
def split(train, test, held_out_dx: float) -> bool:
    """Training and test samples: held-out resolution and fields must not leak into training."""
    train, test = _samples("train", train), _samples("test", test)
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
    train_seeds = set(np.unique(train["seed"]).tolist())
    shared = train_seeds & set(np.unique(test["seed"]).tolist())
    require(not shared, f"fields (seeds) {sorted(shared)} are in both training and test sets: "
            "the test cells are then views of plumes the network has already seen.")
    require(len(train_seeds) >= 2,
            f"train on at least two fields (seeds), got {sorted(train_seeds)}: the cell below "
            f"keeps the last training field for validation")
    return passed(f"train on {train_dx.tolist()} km, test on unseen {held_out_dx:g} km "
                  "and unseen fields")


def _feature_probes(radius):
    rng = np.random.default_rng(9)
    probes = [gz.samples([2.0, 10.0], seeds=(0,), plume_radius_km=radius),
              gz.samples([40.0], seeds=(5,), plume_radius_km=radius)]
    n = 7
    probes.append({"w_bar": rng.normal(0, 0.3, n), "phi_bar": rng.normal(0, 0.2, n),
                   "dx_km": rng.uniform(0.5, 60, n), "flux": rng.uniform(0, 0.1, n),
                   "seed": np.zeros(n, int)})
    probes.append({k: v[:1] for k, v in probes[-1].items()})  # a single sample
    return probes


@lab_check
def features(make_features, plume_radius_km: float = 2.0) -> bool:
    """``make_features(data)``: the (n, 3) scale-aware inputs asinh(w_bar / 0.05),
    asinh(phi_bar / 0.05) and log(dx / L_c), as a numpy array, for any samples dict."""
    for probe in _feature_probes(plume_radius_km):
        n = probe["flux"].size
        inputs = f"a samples dict of {n} cell(s)"
        got = as_ndarray("make_features(data)",
                         call("make_features", make_features, probe, inputs=inputs))
        want = gz.features(probe, plume_radius_km=plume_radius_km)
        if got.shape == want.shape[::-1] and n > 1:
            raise LabCheckError(f"make_features returns shape {got.shape}: one row per cell, "
                                f"shape (n, 3) (np.column_stack, not np.stack)")
        require(got.shape == want.shape, f"for {inputs} expected shape {want.shape} "
                                         f"(w_bar, phi_bar, dx), got {got.shape}")
        got = got.astype(float)
        dx = probe["dx_km"]
        if not np.allclose(got[:, 2], want[:, 2]):
            variants = {
                "the dx column holds raw kilometres. The network is trained on log(dx / L_c) "
                "(gz.dx_feature); raw km puts 25 km cells far outside the range the other "
                "inputs live in": dx,
                "the dx column is log(dx) in km: divide by the plume radius L_c first, "
                "log(dx / L_c), so that the input is dimensionless": np.log(dx),
                "the dx column is dx / L_c: take its logarithm, log(dx / L_c)":
                    dx / plume_radius_km,
                "use the natural logarithm, as gz.dx_feature does": np.log10(
                    dx / plume_radius_km),
            }
            for hint, variant in variants.items():
                if np.allclose(got[:, 2], variant):
                    raise LabCheckError(hint)
            raise LabCheckError("the dx column should be gz.dx_feature(data['dx_km']) = "
                                "log(dx / L_c)")
        if not np.allclose(got[:, :2], want[:, :2]):
            raw = np.column_stack([probe["w_bar"], probe["phi_bar"]])
            if np.allclose(got[:, :2], want[:, 1::-1]):
                raise LabCheckError("the first two columns are swapped: w_bar first, then "
                                    "phi_bar")
            if np.allclose(got[:, :2], raw):
                raise LabCheckError("the first two columns hold the raw anomalies: transform "
                                    "them with asinh(value / 0.05)")
            if np.allclose(got[:, :2], np.arcsinh(raw)):
                raise LabCheckError("divide by the scale 0.05 inside the asinh: "
                                    "asinh(w_bar / 0.05), asinh(phi_bar / 0.05)")
            raise LabCheckError("the first two columns should be asinh(w_bar / 0.05) and "
                                "asinh(phi_bar / 0.05), as gz.features builds them.")
    return passed("features: resolved state plus log(dx / L_c), for any samples")


def _trained(name: str, trained):
    import torch

    require(isinstance(trained, tuple | list) and len(trained) == 3,
            f"`{name}` should be the (model, x-scaler, y-scaler) triple train_closure returns")
    model, sx, sy = trained
    require(isinstance(model, torch.nn.Module), f"`{name}[0]` should be the trained network")
    return model, sx, sy


def _reference(trained, x):
    model, sx, sy = trained
    return gz.decode_flux(sy.inverse(nn.predict(model, sx.transform(x)))[:, 0])


@lab_check
def skill(predict_flux, aware_net, unaware_net, test, r2_aware, r2_unaware,
          plume_radius_km: float = 2.0) -> bool:
    """``predict_flux(trained, x)`` must return the decoded flux (K m/s, shape (n,)); the two
    scores are recomputed from it on ``test``; the scale-aware closure must beat the 25 km one
    and explain more than half of the variance at the held-out resolution."""
    aware = _trained("aware_net", aware_net)
    unaware = _trained("unaware_net", unaware_net)
    test = _samples("test", test)
    rng = np.random.default_rng(10)
    x = np.column_stack([rng.normal(0, 2, 9), rng.normal(0, 2, 9), rng.uniform(-1, 3, 9)])
    got = as_array("predict_flux(aware_net, x)",
                   call("predict_flux", predict_flux, aware, x, inputs="9 random inputs"))
    want = _reference(aware, x)
    if got.size == want.size:
        got = got.reshape(want.shape)
    require(got.shape == want.shape,
            f"predict_flux should return one flux per input, shape {want.shape}, got "
            f"{got.shape}")
    model, sx, sy = aware
    if not np.allclose(got, want, rtol=1e-6, atol=1e-12):
        variants = {
            "the prediction is still encoded: decode it with gz.decode_flux":
                sy.inverse(nn.predict(model, sx.transform(x)))[:, 0],
            "undo the target standardisation with sy.inverse before decoding":
                gz.decode_flux(nn.predict(model, sx.transform(x))[:, 0]),
            "standardise the inputs with sx.transform before predicting":
                gz.decode_flux(sy.inverse(nn.predict(model, x))[:, 0]),
            "decode once: gz.decode_flux was applied twice":
                gz.decode_flux(gz.decode_flux(sy.inverse(nn.predict(model, sx.transform(x)))
                                              [:, 0])),
        }
        for hint, variant in variants.items():
            if np.allclose(got, variant, rtol=1e-6, atol=1e-12):
                raise LabCheckError(f"predict_flux: {hint}")
        raise LabCheckError("predict_flux does not return what the trained closure predicts: "
                            "standardise with sx, nnp.predict, sy.inverse, gz.decode_flux")
    x_test = gz.features(test, plume_radius_km=plume_radius_km)
    scores = {"r2_aware": (r2_aware, _reference(aware, x_test)),
              "r2_unaware": (r2_unaware, _reference(unaware, x_test[:, :2]))}
    values = {}
    for name, (reported, pred) in scores.items():
        value = as_scalar(name, reported)
        want_r2 = metrics.r2_score(test["flux"], pred)
        if not np.isclose(value, want_r2, rtol=1e-6, atol=1e-9):
            encoded = metrics.r2_score(gz.encode_flux(test["flux"]), gz.encode_flux(pred))
            if np.isclose(value, encoded, rtol=1e-6):
                raise LabCheckError(f"{name} = {value:.3f} is the R^2 of the ENCODED flux; "
                                    f"score the flux in K m/s: r2_score(test['flux'], "
                                    f"predict_flux(...))")
            other = "r2_unaware" if name == "r2_aware" else "r2_aware"
            if np.isclose(value, metrics.r2_score(test["flux"], scores[other][1]), rtol=1e-6):
                raise LabCheckError(f"{name} holds the score of the other closure: the two "
                                    f"are swapped")
            raise LabCheckError(f"{name} = {value:.3f}, but that closure scores "
                                f"{want_r2:.3f} on `test` with your predict_flux: evaluate on "
                                f"the test samples (unaware: without the dx column)")
        values[name] = value
    a, u = values["r2_aware"], values["r2_unaware"]
    require(a > 0.5, f"r2_aware = {a:.2f}: the scale-aware closure should explain more than half "
            "the variance at the held-out dx. Did you standardise the test inputs with the "
            "TRAINING statistics and decode the prediction with gz.decode_flux?")
    require(a > u, f"r2_aware = {a:.2f} is not above r2_unaware = {u:.2f}; check that the "
            "unaware closure was trained at 25 km only and without the dx column.")
    return passed(f"R^2 at the unseen resolution: scale-aware {a:.2f} vs trained at 25 km {u:.2f}")
