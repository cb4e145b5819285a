"""Checks of the lab "Ship it" (exporting a closure with its contract).

Every check evaluates what the student built on inputs it makes itself (random tracer
states and winds around the training data, several members), compares with the trained
closure, and names the typical mistake: inputs in the other order, the normalisation left
out (in or out), a float64 network behind a float32 contract, a vacuous equivalence report.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import export
from ..closure import Closure, stencil_features
from .feedback import LabCheckError, as_mapping, lab_check, passed, require

#: max-norm relative difference tolerated between an export and the closure itself: the
#: runtimes round the physical inputs to float32 (u ~ 40 km/h moves by up to 2.4e-6 km/h),
#: the closure standardises in float64 first (about 2e-6 relative, see the chapter)
TOL = 2e-5
EQUIVALENCE = 1e-6  # the bar between eager torch and each runtime


def _closure(closure) -> Closure:
    if not isinstance(closure, Closure):
        raise LabCheckError(f"pass the trained closure (a nnparam Closure), got "
                            f"{type(closure).__name__}")
    return closure


def _fields(closure: Closure, seed: int = 11, members: int = 4):
    """Fresh states ``q`` and winds ``u`` (members, n) around the training data."""
    rng = np.random.default_rng(seed)
    width = 2 * closure.stencil_width + 1
    q_mean, u_mean = closure.x_mean[0], closure.x_mean[min(width, closure.x_mean.size - 1)]
    q_std, u_std = closure.x_std[0], closure.x_std[min(width, closure.x_std.size - 1)]
    q = q_mean + q_std * rng.standard_normal((members, 32))
    u = u_mean + u_std * rng.standard_normal((members, 32))
    return q, u


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _bare(closure: Closure, z: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return closure.module(torch.as_tensor(z, dtype=closure.dtype)).double().numpy()[:, 0]


def _diagnose(evaluate, closure: Closure, what: str, order_hint: str) -> float:
    """Compare ``evaluate(q, u) -> (..., n)`` with the closure; raise on a known mistake."""
    q, u = _fields(closure)
    ref = closure(q, u)
    out = np.asarray(evaluate(q, u), dtype=float)
    require(out.size == ref.size, f"{what} returns {out.size} values for {ref.size} cells: "
                                  f"one tendency per cell (shape (batch, 1))")
    require(np.all(np.isfinite(out)), f"{what} returns NaN or inf on ordinary inputs")
    diff = _rel(out, ref)
    if diff <= TOL:
        return diff
    if _rel(evaluate(u, q), ref) <= TOL:
        raise LabCheckError(f"{what} reads the inputs in the other order: {order_hint}")
    x = stencil_features(q, u, width=closure.stencil_width).reshape(-1, len(
        closure.feature_names))
    z = (x - closure.x_mean) / closure.x_std
    if _rel(out, _bare(closure, x)) <= TOL:
        raise LabCheckError(f"{what} applies the network to physical values and returns "
                            f"standardised ones: the normalisation is missing at both ends "
                            f"(z = (x - x_mean) / x_std in, y = o * y_std + y_mean out)")
    if _rel(out, _bare(closure, x) * closure.y_std + closure.y_mean) <= TOL:
        raise LabCheckError(f"{what} skips the input normalisation: the network receives "
                            f"physical values; standardise with (x - x_mean) / x_std inside "
                            f"the exported module")
    if _rel(out, _bare(closure, z)) <= TOL:
        raise LabCheckError(f"{what} returns the standardised output: scale it back with "
                            f"o * y_std + y_mean inside the exported module")
    if _rel(out, _bare(closure, (x - closure.x_std) / closure.x_mean) * closure.y_std
            + closure.y_mean) <= TOL:
        raise LabCheckError(f"{what} swaps x_mean and x_std: z = (x - x_mean) / x_std")
    raise LabCheckError(f"{what} differs from the closure by {diff:.1e} (relative, max "
                        f"norm; at most {TOL:g} expected): check the weights, the "
                        f"normalisation constants and the feature order "
                        f"{list(closure.feature_names)}")


@lab_check
def shipped_module(module, closure) -> bool:
    """The module maps physical float32 features ``(batch, F)`` to the physical tendency
    ``(batch, 1)``, in float32, as the closure does."""
    closure = _closure(closure)
    if not isinstance(module, torch.nn.Module):
        raise LabCheckError(f"`shipped` should be a torch.nn.Module (an instance of your "
                            f"class), got {type(module).__name__}")
    n_feat = len(closure.feature_names)

    def evaluate(q, u):
        x = stencil_features(q, u, width=closure.stencil_width).reshape(-1, n_feat)
        try:
            with torch.no_grad():
                out = module(torch.as_tensor(x, dtype=torch.float32))
        except RuntimeError as err:
            if "dtype" in str(err) or "Double" in str(err):
                raise LabCheckError("your module computes in float64 (its weights are double)"
                                    " but receives float32 features, as the contract "
                                    "promises: call .float() on the network") from err
            raise LabCheckError(f"your module failed on a float32 batch of shape (batch, "
                                f"{n_feat}): {str(err).splitlines()[0]}") from err
        require(isinstance(out, torch.Tensor), "forward should return a torch tensor")
        if out.dtype != torch.float32:
            raise LabCheckError(f"your module returns {out.dtype} for float32 input: a "
                                f"float64 weight or buffer promotes the computation; keep "
                                f"every weight and constant in float32")
        require(out.ndim == 2 and out.shape[1] == 1,
                f"forward should return shape (batch, 1), got {tuple(out.shape)}")
        return out.numpy()

    diff = _diagnose(evaluate, closure, "your module",
                     "the columns are q[i-2..i+2] first, then u_face[i-2..i+2]")
    return passed(f"the shipped module reproduces the closure (relative difference "
                  f"{diff:.1e}, float32 inputs)")


@lab_check
def contract(contract, closure, grid) -> bool:
    """The contract is complete and says what the closure actually needs."""
    closure = _closure(closure)
    require(isinstance(contract, dict), f"`contract` should be a dict (your my_contract's "
                                        f"result), got {type(contract).__name__}")
    names = [i.get("name") for i in contract.get("inputs", []) if isinstance(i, dict)]
    if sorted(names) == sorted(closure.inputs) and names != list(closure.inputs):
        raise LabCheckError(f"the contract lists the inputs as {names}, but the closure "
                            f"reads {list(closure.inputs)}: the order of the contract is the "
                            f"order of the network's columns")
    norm = contract.get("normalisation")
    if not isinstance(norm, dict) or not {"x_mean", "x_std", "y_mean", "y_std"} <= set(norm):
        raise LabCheckError("the contract has no complete normalisation: record x_mean, "
                            "x_std (one per feature), y_mean and y_std, the constants the "
                            "network was trained with")
    try:
        export.validate_contract(contract)
    except export.ContractError as err:
        raise LabCheckError(str(err)) from err
    net_dtype = str(next(closure.module.parameters()).dtype).replace("torch.", "")
    require(contract["dtype"] == net_dtype,
            f"the contract says {contract['dtype']} but the network's weights are "
            f"{net_dtype}: a float64/float32 mismatch; the host passes what the contract says")
    units = [i["units"] for i in contract["inputs"]]
    require(units == list(closure.input_units),
            f"input units {units} differ from the closure's {list(closure.input_units)}")
    require(contract["output"] == {"name": closure.output, "units": closure.output_units},
            f"output should be {{'name': {closure.output!r}, 'units': "
            f"{closure.output_units!r}}}")
    n_feat = len(closure.feature_names)
    for key, value, size in (("x_mean", closure.x_mean, n_feat),
                             ("x_std", closure.x_std, n_feat),
                             ("y_mean", closure.y_mean, None), ("y_std", closure.y_std, None)):
        want = np.broadcast_to(value, (size,) if size else np.shape(value))
        have = np.asarray(contract["normalisation"][key], dtype=float)
        require(have.shape == want.shape and np.allclose(have, want, rtol=1e-6, atol=0),
                f"normalisation.{key} is not the closure's {key}: record the training "
                f"constants (closure.{key}), not defaults or statistics of other data")
    expected_grid = export.tracer_grid(grid) if not isinstance(grid, dict) else grid
    have_grid = contract.get("grid") or {}
    require(have_grid.get("n_cells") == expected_grid["n_cells"]
            and np.isclose(have_grid.get("dx", np.nan), expected_grid["dx"]),
            f"grid should record the training grid: {expected_grid['n_cells']} cells of "
            f"{expected_grid['dx']:g} km (export.tracer_grid(budget))")
    require({"torchscript", "onnx"} <= set(contract["files"]),
            "files should name the TorchScript and the ONNX file")
    return passed("the contract is complete and matches the closure")


@lab_check
def artifact(folder, closure) -> bool:
    """Both runtimes load the folder and reproduce the closure on fresh inputs, in the
    order the contract declares."""
    closure = _closure(closure)
    try:
        found = export.read_contract(folder)
    except export.ContractError as err:
        raise LabCheckError(f"{err} (write contract.json into the artifact folder)") from err
    except TypeError as err:
        raise LabCheckError(f"pass the artifact folder (a path), got {type(folder).__name__}"
                            ) from err
    names = [i["name"] for i in found["inputs"]]
    require(sorted(names) == sorted(closure.inputs),
            f"the contract's inputs {names} should be the closure's fields "
            f"{list(closure.inputs)}")
    runtimes = [r for r in ("torchscript", "onnx") if r in found["files"]]
    require(len(runtimes) == 2, "the folder should hold a TorchScript and an ONNX file, "
                                "both listed under files")
    results = []
    for runtime in runtimes:
        try:
            art = export.load_artifact(folder, runtime)
        except export.ContractError as err:
            raise LabCheckError(f"{runtime}: {err}") from err

        def evaluate(q, u, art=art):
            fields = dict(zip(closure.inputs, (q, u), strict=True))
            return art(*(fields[n] for n in names))  # the order the contract declares

        hint = (f"the contract declares {names}, the network reads them the other way "
                f"round; make the two agree (the closure's order is {list(closure.inputs)})")
        results.append((runtime, _diagnose(evaluate, closure, f"the {runtime} file", hint)))
    summary = ", ".join(f"{r} {d:.1e}" for r, d in results)
    return passed(f"both runtimes reproduce the closure on fresh inputs ({summary})")


@lab_check
def equivalence(report, folder, closure) -> bool:
    """The report gives max-norm relative differences of each runtime against eager torch
    on held-out and random inputs, all at most 1e-6, and of the right size."""
    closure = _closure(closure)
    as_mapping("my_report", report, ("test", "random"))
    mine = export.equivalence(closure, folder, n_random=2048, spread=3.0, seed=5)["random"]
    for kind in ("test", "random"):
        row = as_mapping(f"my_report[{kind!r}]", report[kind], ("torchscript", "onnx"))
        for runtime in ("torchscript", "onnx"):
            try:
                value = float(row[runtime])
            except (TypeError, ValueError) as err:
                raise LabCheckError(f"my_report[{kind!r}][{runtime!r}] should be a number"
                                    ) from err
            require(np.isfinite(value) and value >= 0,
                    f"my_report[{kind!r}][{runtime!r}] should be a non-negative number")
            if value > 1e-5 and mine[runtime] <= EQUIVALENCE:
                raise LabCheckError(f"my_report[{kind!r}][{runtime!r}] = {value:.1e}, but the "
                                    f"check measures {mine[runtime]:.1e}: element-wise ratios "
                                    f"explode where the tendency is near zero; use "
                                    f"max|a - b| / max|b| over all samples")
            require(value <= EQUIVALENCE,
                    f"my_report[{kind!r}][{runtime!r}] = {value:.1e} exceeds {EQUIVALENCE:g}")
        if float(row["onnx"]) == 0.0:
            raise LabCheckError("ONNX Runtime never matches eager torch bit for bit (other "
                                "kernels, other summation order): did you compare a runtime "
                                "with itself instead of with the eager module?")
        if float(row["onnx"]) < 0.3 * mine["onnx"]:  # a mean is ~5x below the max
            raise LabCheckError(f"my_report[{kind!r}]['onnx'] = {float(row['onnx']):.1e} is "
                                f"far below what the check measures ({mine['onnx']:.1e}): "
                                f"take the largest difference over all samples, not the mean")
    return passed(f"equivalence proven: every runtime within {EQUIVALENCE:g} of eager torch "
                  f"(the check measures ONNX {mine['onnx']:.1e}, TorchScript "
                  f"{mine['torchscript']:.1e})")
