"""A trained closure as a self-describing artifact that a compiled host model can load.

An artifact is a folder::

    contract.json    what the network expects and returns (the contract, below)
    model.pt         TorchScript: what LibTorch loads in C++ (the Fortran host, FTorch)
    model.onnx       ONNX: what ONNX Runtime (and many other runtimes) load
    program.pt2      torch.export ExportedProgram: the input of AOTInductor, torch's successor
                     to TorchScript for C++ deployment

The exported network is the closure **per column** with its standardisation inside: it maps
physical features ``(batch, F)`` (the periodic stencils of the input fields, in the order the
contract lists) to the physical output ``(batch, n_out)``. The host only gathers stencils;
it never re-implements the scaling, so a host cannot drift from the training normalisation.
The contract records the constants anyway, so a reader can audit them, and
:func:`load_artifact` checks that they agree with the network's own buffers.

The contract (``CONTRACT_VERSION`` 1) holds: ``format`` and ``contract_version``; ``name``,
``description``; ``inputs`` (name and units of each field, in call order);
``stencil_width`` and ``features`` (the column order of the network's input, e.g.
``q[i-1]``); ``output`` (name and units); ``dtype``; ``shapes`` (``["batch", F]`` in,
``["batch", n_out]`` out); ``normalisation`` (``x_mean``, ``x_std`` per feature,
``y_mean``, ``y_std`` per output); ``grid`` (the resolution the closure was trained at, or
``null``); ``files`` (runtime -> file name) and ``sha256`` (file name -> checksum); ``closure``
(the :meth:`nnparam.closure.Closure.metadata` it came from); ``created_with`` (versions).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import logging
import platform
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import __version__
from ._validate import finite_array, positive, positive_int
from .closure import Closure, stencil_features

FORMAT = "nnparam-closure-artifact"
CONTRACT_VERSION = 1
CONTRACT_FILE = "contract.json"
#: runtime -> file name inside the artifact folder
FILES = {"torchscript": "model.pt", "onnx": "model.onnx", "exported_program": "program.pt2"}
RUNTIMES = tuple(FILES)
DTYPES = ("float32", "float64")


class ContractError(ValueError):
    """An artifact's contract is malformed, or does not match what its user expects."""


# --------------------------------------------------------------------------- the network
class ColumnNetwork(nn.Module):
    """``y = net((x - x_mean) / x_std) * y_std + y_mean``: physical ``(batch, F)`` features to
    the physical output ``(batch, n_out)``, the form every runtime receives.

    The constants are buffers in the network's dtype, so they travel with the weights into
    TorchScript, ONNX and ExportedProgram files.
    """

    def __init__(self, net: nn.Module, x_mean, x_std, y_mean, y_std):
        super().__init__()
        self.net = net
        dtype = next(net.parameters()).dtype
        for name, value in (("x_mean", x_mean), ("x_std", x_std), ("y_mean", y_mean),
                            ("y_std", y_std)):
            self.register_buffer(name, torch.as_tensor(np.atleast_1d(value), dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.x_mean) / self.x_std) * self.y_std + self.y_mean


def column_network(closure: Closure) -> ColumnNetwork:
    """The closure's network with its standardisation, on a detached copy in eval mode.

    Only per-column stencil closures export this way (the host gathers plain stencils); a
    closure on the whole field or with a custom feature function gets a ``ValueError``.
    """
    if not isinstance(closure, Closure):
        raise ValueError(f"closure must be a nnparam.closure.Closure, got "
                         f"{type(closure).__name__}")
    if not closure.per_column or closure._features is not None:
        raise ValueError("only per-column closures on periodic stencils export to a host "
                         "(per_column=True and no custom features)")
    net = copy.deepcopy(closure.module).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    n_feat = len(closure.feature_names)
    x_mean = np.broadcast_to(closure.x_mean, (n_feat,)).copy()
    x_std = np.broadcast_to(closure.x_std, (n_feat,)).copy()
    return ColumnNetwork(net, x_mean, x_std, closure.y_mean, closure.y_std).eval()


def _torch_dtype(name: str) -> torch.dtype:
    return {"float32": torch.float32, "float64": torch.float64}[name]


def _network_dtype(net: nn.Module) -> str:
    return str(next(net.parameters()).dtype).replace("torch.", "")


# --------------------------------------------------------------------------- the contract
def tracer_grid(ds) -> dict:
    """The coarse grid of a tracer budget (``tracer.sgs_budget``/``sgs_dataset``) as the
    contract's ``grid`` entry: cells, spacing and domain length [km], coarsening factor."""
    from .tracer import setup_of

    setup = setup_of(ds)
    factor = positive_int("factor", ds.attrs.get("factor", 0), minimum=2)
    return {"n_cells": setup.n // factor, "dx": setup.dx * factor, "length": setup.length,
            "units": "km", "factor": factor}


def _check_grid(grid) -> dict | None:
    if grid is None:
        return None
    if not isinstance(grid, dict) or not {"n_cells", "dx"} <= set(grid):
        raise ContractError(f"grid must be a dict with n_cells and dx (and optionally "
                            f"length, units, factor), got {grid!r}")
    out = dict(grid)
    try:
        out["n_cells"] = positive_int("grid n_cells", grid["n_cells"])
        out["dx"] = positive("grid dx", grid["dx"])
    except (TypeError, ValueError) as err:
        raise ContractError(str(err)) from err
    out.setdefault("units", "km")
    return out


def make_contract(closure: Closure, grid: dict | None = None, name: str | None = None,
                  description: str | None = None) -> dict:
    """The contract of ``closure`` (without file checksums: :func:`export_closure` adds them).

    ``grid`` is the resolution the closure was trained at (``{"n_cells": 32, "dx": 62.5,
    "units": "km"}``; :func:`tracer_grid` makes it from a tracer budget): a closure of the
    subgrid tendency belongs to its filter width, and a host on another grid must refuse it.
    """
    net = column_network(closure)
    meta = closure.metadata()
    n_feat = len(meta["feature_names"])
    n_out = int(np.asarray(closure.y_mean).size)
    contract = {
        "format": FORMAT,
        "contract_version": CONTRACT_VERSION,
        "name": meta["name"] if name is None else str(name),
        "description": meta["description"] if description is None else str(description),
        "inputs": [{"name": n, "units": u} for n, u in zip(meta["inputs"],
                                                          meta["input_units"], strict=True)],
        "stencil_width": meta["stencil_width"],
        "features": meta["feature_names"],
        "output": {"name": meta["output"], "units": meta["output_units"]},
        "dtype": _network_dtype(net),
        "shapes": {"input": ["batch", n_feat], "output": ["batch", n_out]},
        "normalisation": {
            "x_mean": net.x_mean.double().tolist(), "x_std": net.x_std.double().tolist(),
            "y_mean": net.y_mean.double().tolist(), "y_std": net.y_std.double().tolist(),
            "applied": "inside the network: y = net((x - x_mean) / x_std) * y_std + y_mean"},
        "grid": _check_grid(grid),
        "files": {},
        "sha256": {},
        "closure": meta,
        "created_with": {"nnparam": __version__, "torch": torch.__version__,
                         "python": platform.python_version()},
    }
    return validate_contract(contract)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ContractError(f"contract: {message}")


def validate_contract(contract) -> dict:
    """Check that ``contract`` is complete and consistent; return it, or raise
    :class:`ContractError` naming the field that is wrong."""
    _require(isinstance(contract, dict), f"must be a JSON object, got {type(contract).__name__}")
    missing = [k for k in ("format", "contract_version", "inputs", "stencil_width", "features",
                           "output", "dtype", "shapes", "normalisation", "files")
               if k not in contract]
    _require(not missing, f"missing fields {missing}")
    _require(contract["format"] == FORMAT, f"format is {contract['format']!r}, expected {FORMAT!r}")
    _require(contract["contract_version"] == CONTRACT_VERSION,
             f"contract_version {contract['contract_version']!r}; this reader understands "
             f"version {CONTRACT_VERSION}")
    inputs = contract["inputs"]
    _require(isinstance(inputs, list) and len(inputs) > 0
             and all(isinstance(i, dict) and isinstance(i.get("name"), str) and i["name"]
                     and isinstance(i.get("units"), str) for i in inputs),
             "inputs must be a non-empty list of {'name': str, 'units': str}")
    names = [i["name"] for i in inputs]
    _require(len(set(names)) == len(names), f"input names repeat: {names}")
    width = contract["stencil_width"]
    _require(isinstance(width, int) and not isinstance(width, bool) and width >= 0,
             f"stencil_width must be an integer >= 0, got {width!r}")
    n_feat = len(names) * (2 * width + 1)
    feats = contract["features"]
    _require(isinstance(feats, list) and len(feats) == n_feat,
             f"features must list {n_feat} columns ({len(names)} inputs x stencil of "
             f"{2 * width + 1}), got {feats if not isinstance(feats, list) else len(feats)}")
    offsets = [f"[i{o:+d}]" if o else "[i]" for o in range(-width, width + 1)]
    expected = [n + o for n in names for o in offsets]
    _require(feats == expected, f"features {feats} are not the stencils of the inputs in order; "
                                f"expected {expected}")
    out = contract["output"]
    _require(isinstance(out, dict) and isinstance(out.get("name"), str) and out["name"]
             and isinstance(out.get("units"), str),
             "output must be {'name': str, 'units': str}")
    _require(contract["dtype"] in DTYPES, f"dtype must be one of {DTYPES}, got "
                                          f"{contract['dtype']!r}")
    norm = contract["normalisation"]
    _require(isinstance(norm, dict), "normalisation must be an object with x_mean, x_std, "
                                     "y_mean, y_std")
    n_out = None
    for key, size in (("x_mean", n_feat), ("x_std", n_feat), ("y_mean", None), ("y_std", None)):
        _require(key in norm, f"normalisation.{key} is missing (the constants the network was "
                              f"trained with)")
        try:
            arr = np.asarray(norm[key], dtype=float)
        except (TypeError, ValueError):
            arr = np.array([np.nan])
        _require(arr.ndim == 1 and arr.size > 0 and np.all(np.isfinite(arr)),
                 f"normalisation.{key} must be a list of finite numbers")
        if size is not None:
            _require(arr.size == size, f"normalisation.{key} has {arr.size} values, expected "
                                       f"one per feature ({size})")
        elif n_out is None:
            n_out = arr.size
        else:
            _require(arr.size == n_out, "normalisation.y_mean and y_std differ in length")
        if key.endswith("std"):
            _require(np.all(arr > 0), f"normalisation.{key} must be positive")
    shapes = contract["shapes"]
    _require(isinstance(shapes, dict) and shapes.get("input") == ["batch", n_feat]
             and shapes.get("output") == ["batch", n_out],
             f"shapes must be {{'input': ['batch', {n_feat}], 'output': ['batch', {n_out}]}}, "
             f"got {shapes!r}")
    files = contract["files"]
    _require(isinstance(files, dict) and set(files) <= set(RUNTIMES)
             and all(isinstance(v, str) and v and "/" not in v for v in files.values()),
             f"files must map runtimes {RUNTIMES} to file names in the artifact folder")
    sums = contract.get("sha256", {})
    _require(isinstance(sums, dict), "sha256 must map file names to checksums")
    grid = contract.get("grid")
    if grid is not None:
        _check_grid(grid)
    return contract


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- writing
def example_features(contract_or_closure, n: int = 64, seed: int = 0, spread: float = 1.0
                     ) -> np.ndarray:
    """Random physical features ``(n, F)`` around the training distribution:
    ``x_mean + spread * x_std * N(0, 1)`` (``spread > 1`` reaches beyond the data)."""
    if isinstance(contract_or_closure, Closure):
        norm = make_contract(contract_or_closure)["normalisation"]
    else:
        norm = validate_contract(contract_or_closure)["normalisation"]
    mean, std = np.asarray(norm["x_mean"]), np.asarray(norm["x_std"])
    rng = np.random.default_rng(seed)
    return mean + positive("spread", spread) * std * rng.standard_normal((positive_int("n", n),
                                                                           mean.size))


@contextlib.contextmanager
def _quiet():
    """Silence the exporters' progress prints, deprecation notices and registry warnings."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch._dynamo", "torch.export",
                                               "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def write_torchscript(net: nn.Module, path, example: torch.Tensor) -> Path:
    """Trace ``net`` on ``example`` ``(batch, F)`` and save TorchScript (``torch.jit``).

    TorchScript is deprecated in torch 2.13 (``torch.jit.trace`` and ``torch.jit.save`` warn
    so); it is what LibTorch's ``torch::jit::load`` and FTorch read today.
    """
    path = Path(path)
    with _quiet():
        traced = torch.jit.trace(net, (example,), check_trace=True)
        traced.save(str(path))
    return path


def _batch_dim():
    return torch.export.Dim("batch", min=1, max=1 << 20)


def write_exported_program(net: nn.Module, path, example: torch.Tensor) -> Path:
    """``torch.export`` the network with a dynamic batch and save the ExportedProgram."""
    path = Path(path)
    with _quiet():
        program = torch.export.export(net, (example,), dynamic_shapes=({0: _batch_dim()},))
        torch.export.save(program, str(path))
    return path


def write_onnx(net: nn.Module, path, example: torch.Tensor) -> Path:
    """Export ONNX through ``torch.onnx.export(..., dynamo=True)``, dynamic batch, one file."""
    path = Path(path)
    with _quiet():
        program = torch.onnx.export(net, (example,), dynamo=True, input_names=["features"],
                                    output_names=["output"], verbose=False,
                                    dynamic_shapes=({0: _batch_dim()},))
        program.save(str(path), external_data=False)
    import onnx

    onnx.checker.check_model(str(path))
    return path


_WRITERS = {"torchscript": write_torchscript, "onnx": write_onnx,
            "exported_program": write_exported_program}


def export_closure(closure: Closure, path, *, grid: dict | None = None,
                   runtimes: Sequence[str] = RUNTIMES, name: str | None = None,
                   description: str | None = None) -> Path:
    """Write ``closure`` as an artifact folder at ``path``; return the folder.

    ``runtimes`` picks the network files (default: TorchScript, ONNX and ExportedProgram);
    ``grid`` records the training resolution (see :func:`make_contract`). Existing artifact
    files in the folder are replaced. The contract is also embedded in the TorchScript
    archive (``extra_files``), so a ``model.pt`` travelling alone still says what it is.
    """
    runtimes = tuple(runtimes)
    unknown = [r for r in runtimes if r not in RUNTIMES]
    if not runtimes or unknown:
        raise ValueError(f"runtimes must be a non-empty subset of {RUNTIMES}, got {runtimes}")
    contract = make_contract(closure, grid=grid, name=name, description=description)
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"path must be a folder (or not exist yet), got the file {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    net = column_network(closure)
    example = torch.as_tensor(example_features(contract, n=8), dtype=_torch_dtype(
        contract["dtype"]))
    for runtime in runtimes:
        file = folder / FILES[runtime]
        _WRITERS[runtime](net, file, example)
        contract["files"][runtime] = file.name
    if "torchscript" in runtimes:  # embed the contract (without the archive's own checksum)
        file = folder / FILES["torchscript"]
        with _quiet():
            traced = torch.jit.load(str(file))
            torch.jit.save(traced, str(file),
                           _extra_files={CONTRACT_FILE: json.dumps(contract, indent=1)})
    contract["sha256"] = {f: _sha256(folder / f) for f in contract["files"].values()}
    (folder / CONTRACT_FILE).write_text(json.dumps(validate_contract(contract), indent=1) + "\n")
    return folder


def write_contract(contract: dict, path) -> Path:
    """Validate ``contract`` and write it as JSON to ``path`` (a folder or a ``.json`` file)."""
    path = Path(path)
    if path.is_dir():
        path = path / CONTRACT_FILE
    path.write_text(json.dumps(validate_contract(contract), indent=1) + "\n")
    return path


def read_contract(path) -> dict:
    """The contract of an artifact folder (or a ``contract.json`` path), validated."""
    path = Path(path)
    file = path / CONTRACT_FILE if path.is_dir() else path
    if not file.is_file():
        raise ContractError(f"no contract at {file}: an artifact folder holds {CONTRACT_FILE}")
    try:
        contract = json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise ContractError(f"contract {file} is not valid JSON: {err}") from err
    return validate_contract(contract)


# --------------------------------------------------------------------------- loading
class Artifact:
    """A loaded artifact: a closure-like callable on numpy fields, run by one runtime.

    ``artifact(q, u_face)`` takes the contract's input fields (cells on the last axis,
    leading axes kept), gathers their periodic stencils, runs the network in the contract's
    dtype and returns float64 ``(..., n)`` (or ``(..., n, n_out)``), like
    :class:`nnparam.closure.Closure`. :meth:`network` runs the raw ``(batch, F)`` map.
    """

    def __init__(self, folder: Path, contract: dict, runtime: str, session):
        self.folder, self.contract, self.runtime = folder, contract, runtime
        self._session = session
        self.inputs = tuple(i["name"] for i in contract["inputs"])
        self.stencil_width = int(contract["stencil_width"])
        self.dtype = np.dtype(contract["dtype"])
        self.n_features = len(contract["features"])
        self.n_out = int(contract["shapes"]["output"][1])

    def network(self, x) -> np.ndarray:
        """Physical features ``(batch, F)`` -> physical output ``(batch, n_out)`` (numpy, in
        the contract's dtype)."""
        x = np.ascontiguousarray(x, dtype=self.dtype)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"x must have shape (batch, {self.n_features}), got {x.shape}")
        if self.runtime == "onnx":
            return self._session.run(None, {self._session.get_inputs()[0].name: x})[0]
        with torch.inference_mode():
            return self._session(torch.from_numpy(x)).numpy()

    def features(self, *fields) -> np.ndarray:
        """The stencil features ``(..., n, F)`` of the input fields, in the contract's order."""
        if len(fields) != len(self.inputs):
            raise ValueError(f"the artifact takes the fields {self.inputs}, got {len(fields)} "
                             f"arrays")
        arrays = np.broadcast_arrays(*[np.asarray(f, dtype=float) for f in fields])
        return stencil_features(*arrays, width=self.stencil_width)

    def __call__(self, *fields) -> np.ndarray:
        feats = self.features(*fields)
        out = np.asarray(self.network(feats.reshape(-1, self.n_features)), dtype=float)
        if self.n_out == 1:
            return out[:, 0].reshape(feats.shape[:-1])
        return out.reshape(feats.shape[:-1] + (self.n_out,))

    def __repr__(self) -> str:
        return (f"Artifact({self.contract['name'] or self.folder.name}: {self.inputs} -> "
                f"{self.contract['output']['name']} [{self.contract['output']['units']}], "
                f"{self.contract['dtype']}, runtime {self.runtime})")


def _open(runtime: str, file: Path):
    if runtime == "torchscript":
        with _quiet():  # torch 2.13: "`torch.jit.load` is deprecated"
            return torch.jit.load(str(file)).eval()
    if runtime == "exported_program":
        with _quiet():
            return torch.export.load(str(file)).module()
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])


def _check_expected(contract: dict, inputs, units, grid) -> None:
    names = [i["name"] for i in contract["inputs"]]
    if inputs is not None and list(inputs) != names:
        same = sorted(inputs) == sorted(names)
        raise ContractError(f"the artifact reads the inputs {names}, the caller provides "
                            f"{list(inputs)}" + (" (same fields, different order: the network "
                                                 "would read one field as the other)"
                                                 if same else ""))
    if units is not None:
        have = [i["units"] for i in contract["inputs"]]
        if list(units) != have:
            raise ContractError(f"input units differ: the artifact expects {have}, the caller "
                                f"provides {list(units)}")
    if grid is not None:
        mine, theirs = _check_grid(grid), contract.get("grid")
        if theirs is None:
            raise ContractError("the caller requires a grid but the contract records none")
        if mine["n_cells"] != theirs["n_cells"] or not np.isclose(mine["dx"], theirs["dx"]):
            raise ContractError(f"grid mismatch: the closure was trained on {theirs['n_cells']} "
                                f"cells of {theirs['dx']:g} {theirs.get('units', '')}, the "
                                f"caller runs {mine['n_cells']} cells of {mine['dx']:g} "
                                f"{mine.get('units', '')}")


_ONNX_TYPES = {"float32": "tensor(float)", "float64": "tensor(double)"}


def _check_dtype(runtime: str, session, contract: dict) -> None:
    """The network computes in the contract's dtype (weights, or the ONNX input type)."""
    want = contract["dtype"]
    if runtime == "onnx":
        have = session.get_inputs()[0].type
        if have != _ONNX_TYPES[want]:
            raise ContractError(f"the ONNX graph takes {have}, but the contract says {want}")
        return
    for name, tensor in list(session.named_parameters()) + list(session.named_buffers()):
        have = str(tensor.dtype).replace("torch.", "")
        if tensor.is_floating_point() and have != want:
            raise ContractError(f"the network's weights are {have} ({name}) but the contract "
                                f"says {want}: convert the module (.float() or .double()) "
                                f"before exporting, or fix the contract")


def _check_buffers(module, contract: dict) -> None:
    """The normalisation inside a torch network equals the contract's (when it is visible)."""
    try:
        buffers = dict(module.named_buffers())
    except (AttributeError, RuntimeError):
        return
    norm = contract["normalisation"]
    for key in ("x_mean", "x_std", "y_mean", "y_std"):
        if key in buffers:
            inside = buffers[key].detach().double().numpy().ravel()
            if inside.shape != np.shape(norm[key]) or not np.allclose(
                    inside, norm[key], rtol=1e-6, atol=0):
                raise ContractError(f"normalisation.{key} in the contract differs from the "
                                    f"constants inside the network")


def load_artifact(path, runtime: str = "torchscript", *, inputs: Sequence[str] | None = None,
                  units: Sequence[str] | None = None, grid: dict | None = None,
                  verify_checksums: bool = True) -> Artifact:
    """Load an artifact folder with one runtime and validate it; return an :class:`Artifact`.

    Checks, each failing with a :class:`ContractError` that says what is wrong: the contract
    is complete and consistent; the runtime's file is listed, present and (by default) has
    the checksum the contract records; the network's normalisation buffers equal the
    contract's; a probe batch of the contract's dtype and width gives an output of the
    contract's shape and dtype. With ``inputs``, ``units`` or ``grid`` the caller states what
    it will provide, and a mismatch (another order, other units, another resolution) is
    refused before any number is computed.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    folder = Path(path)
    folder = folder.parent if folder.is_file() else folder
    contract = read_contract(folder)
    _check_expected(contract, inputs, units, grid)
    if runtime not in contract["files"]:
        raise ContractError(f"the artifact has no {runtime} file (it holds "
                            f"{sorted(contract['files'])})")
    file = folder / contract["files"][runtime]
    if not file.is_file():
        raise ContractError(f"the contract names {file.name} for {runtime}, but it is missing")
    if verify_checksums:
        expected = contract.get("sha256", {}).get(file.name)
        if expected is None or _sha256(file) != expected:
            raise ContractError(f"{file.name} does not match the checksum in the contract: the "
                                f"file was replaced or the contract belongs to another export")
    try:
        session = _open(runtime, file)
    except Exception as err:  # a corrupt or foreign file: say which and why
        raise ContractError(f"{runtime} could not load {file.name}: {err}") from err
    _check_dtype(runtime, session, contract)
    if runtime != "onnx":
        _check_buffers(session, contract)
    artifact = Artifact(folder, contract, runtime, session)
    probe = example_features(contract, n=3)
    try:
        out = artifact.network(probe)
    except Exception as err:
        raise ContractError(f"the network rejects a {contract['dtype']} batch of shape "
                            f"(3, {artifact.n_features}) as the contract promises: "
                            f"{str(err).strip().splitlines()[-1]}") from err
    if out.shape != (3, artifact.n_out) or out.dtype != artifact.dtype:
        raise ContractError(f"the network returns {out.dtype} of shape {out.shape} for a probe "
                            f"batch; the contract promises {contract['dtype']} (3, "
                            f"{artifact.n_out})")
    return artifact


# --------------------------------------------------------------------------- equivalence
def relative_difference(a, b, scale: float | None = None) -> float:
    """``max |a - b| / max |b|``: the max-norm difference relative to the reference ``b``
    (element-wise ratios explode where ``b`` crosses zero). ``scale`` replaces ``max |b|``
    for a few samples whose values may all be small (e.g. the target's ``y_std``)."""
    a = finite_array("a", a)
    b = finite_array("b", b)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have one shape, got {a.shape} and {b.shape}")
    if scale is None:
        scale = float(np.max(np.abs(b))) if b.size else 0.0
    else:
        scale = positive("scale", scale)
    if scale == 0:
        raise ValueError("b is zero everywhere: a relative difference is undefined")
    return float(np.max(np.abs(a - b)) / scale)


def equivalence(closure: Closure, path, x=None, n_random: int = 4096, spread: float = 3.0,
                seed: int = 0) -> dict:
    """Max relative differences of every runtime in the artifact against eager torch.

    ``x`` are physical test features ``(batch, F)`` (e.g. held-out stencils); random inputs
    are ``n_random`` draws of :func:`example_features` with ``spread`` standard deviations
    (beyond the training data on purpose). Returns ``{"test": {runtime: diff}, "random":
    {...}}``, each entry ``relative_difference(runtime, eager)``; ``"closure"`` compares the
    closure's own numpy path (which standardises in float64) with the same eager reference.
    """
    net = column_network(closure)
    contract = read_contract(path)
    dtype = _torch_dtype(contract["dtype"])
    sets = {"random": example_features(contract, n=n_random, seed=seed, spread=spread)}
    if x is not None:
        x = finite_array("x", x, ndim=2)
        if x.shape[1] != len(contract["features"]):
            raise ValueError(f"x must have shape (batch, {len(contract['features'])}), got "
                             f"{x.shape}")
        sets = {"test": x, **sets}
    loaded = {r: load_artifact(path, r) for r in contract["files"]}
    report = {}
    for kind, feats in sets.items():
        with torch.inference_mode():
            eager = net(torch.as_tensor(feats, dtype=dtype)).double().numpy()
        row = {r: relative_difference(a.network(feats), eager) for r, a in loaded.items()}
        z = (feats - closure.x_mean) / closure.x_std
        own = closure._run_numpy(z) * closure.y_std + closure.y_mean
        row["closure"] = relative_difference(np.asarray(own, dtype=float), eager)
        report[kind] = row
    return report
