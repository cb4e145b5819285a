"""The checks of lab 10 ("Ship it") accept the solution and reject typical mistakes."""

import contextlib
import copy
import hashlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from nnparam import export, host, labs, tracer
from nnparam.labs import STUB, make_lab
from nnparam.labs import checks_export as check
from nnparam.labs.feedback import LabCheckError

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
LAB = "lab10_ship_it.ipynb"


class Shipped(torch.nn.Module):
    """The solution's module; the flags make the typical wrong versions."""

    def __init__(self, closure, scale_in=True, scale_out=True, swap=False, swap_stats=False):
        super().__init__()
        self.net = copy.deepcopy(closure.module).float().eval()
        n = len(closure.feature_names)
        mean, std = np.broadcast_to(closure.x_mean, (n,)), np.broadcast_to(closure.x_std, (n,))
        if swap_stats:
            mean, std = std, mean
        for name, value in (("x_mean", mean), ("x_std", std), ("y_mean", closure.y_mean),
                            ("y_std", closure.y_std)):
            self.register_buffer(name, torch.tensor(np.array(value), dtype=torch.float32))
        self.scale_in, self.scale_out, self.swap = scale_in, scale_out, swap

    def forward(self, x):
        if self.swap:  # a module that expects the wind's stencil first
            x = torch.cat([x[:, 5:], x[:, :5]], dim=1)
        z = (x - self.x_mean) / self.x_std if self.scale_in else x
        out = self.net(z)
        return out * self.y_std + self.y_mean if self.scale_out else out


def solution_contract(closure, budget):
    meta = closure.metadata()
    n = len(meta["feature_names"])
    return {"format": export.FORMAT, "contract_version": export.CONTRACT_VERSION,
            "name": meta["name"],
            "inputs": [{"name": a, "units": b} for a, b in zip(meta["inputs"],
                                                                meta["input_units"],
                                                                strict=True)],
            "stencil_width": meta["stencil_width"], "features": meta["feature_names"],
            "output": {"name": meta["output"], "units": meta["output_units"]},
            "dtype": meta["dtype"], "shapes": {"input": ["batch", n], "output": ["batch", 1]},
            "normalisation": {"x_mean": np.broadcast_to(meta["x_mean"], (n,)).tolist(),
                              "x_std": np.broadcast_to(meta["x_std"], (n,)).tolist(),
                              "y_mean": meta["y_mean"], "y_std": meta["y_std"]},
            "grid": export.tracer_grid(budget),
            "files": {"torchscript": "model.pt", "onnx": "model.onnx"}, "sha256": {}}


def write_artifact(module, contract, folder, dtype=torch.float32):
    folder.mkdir(parents=True, exist_ok=True)
    example = torch.as_tensor(export.example_features(contract, n=8), dtype=dtype)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.jit.trace(module, (example,)).save(str(folder / "model.pt"))
        program = torch.onnx.export(module, (example,), dynamo=True, dynamic_shapes=(
            {0: torch.export.Dim("batch", min=1, max=4096)},))
        program.save(str(folder / "model.onnx"))
    contract = copy.deepcopy(contract)
    contract["sha256"] = {n: hashlib.sha256((folder / n).read_bytes()).hexdigest()
                          for n in contract["files"].values()}
    (folder / "contract.json").write_text(json.dumps(contract))
    return folder


@pytest.fixture(scope="module")
def budget():
    return tracer.sgs_dataset(seed=0)


@pytest.fixture(scope="module")
def closure(budget):
    return host.tracer_closure(budget, epochs=80)[0]


@pytest.fixture(scope="module")
def good(closure, budget, tmp_path_factory):
    return write_artifact(Shipped(closure).eval(), solution_contract(closure, budget),
                          tmp_path_factory.mktemp("lab10") / "good")


# ------------------------------------------------------------------ exercise 1: the module
def test_shipped_module_accepts_the_solution(closure, capsys):
    assert check.shipped_module(Shipped(closure).eval(), closure)
    assert "[ok]" in capsys.readouterr().out


@pytest.mark.parametrize("kw, message", [
    (dict(swap=True), "reads the inputs in the other order"),
    (dict(scale_in=False), "skips the input normalisation"),
    (dict(scale_in=False, scale_out=False), "missing at both ends"),
    (dict(scale_out=False), "returns the standardised output"),
    (dict(swap_stats=True), "swaps x_mean and x_std"),
])
def test_shipped_module_rejects_typical_mistakes(closure, kw, message):
    with pytest.raises(LabCheckError, match=message):
        check.shipped_module(Shipped(closure, **kw).eval(), closure)


def test_shipped_module_rejects_float64(closure):
    with pytest.raises(LabCheckError, match="returns torch.float64 for float32 input"):
        check.shipped_module(Shipped(closure).double(), closure)
    with pytest.raises(LabCheckError, match="computes in float64 .* call .float()"):
        check.shipped_module(copy.deepcopy(closure.module).double(), closure)
    promoted = Shipped(closure)
    promoted.y_std = promoted.y_std.double()  # one float64 constant promotes the output
    with pytest.raises(LabCheckError, match="returns torch.float64"):
        check.shipped_module(promoted, closure)


def test_shipped_module_rejects_other_objects(closure):
    with pytest.raises(LabCheckError, match="torch.nn.Module"):
        check.shipped_module(closure, closure)
    with pytest.raises(LabCheckError, match="trained closure"):
        check.shipped_module(Shipped(closure), closure.module)

    class Flat(Shipped):
        def forward(self, x):
            return super().forward(x)[:, 0]

    with pytest.raises(LabCheckError, match=r"shape \(batch, 1\)"):
        check.shipped_module(Flat(closure), closure)


# ------------------------------------------------------------------ exercise 2: the contract
def test_contract_accepts_the_solution(closure, budget):
    assert check.contract(solution_contract(closure, budget), closure, budget)


def edited(closure, budget, change):
    c = solution_contract(closure, budget)
    change(c)
    return c


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(inputs=c["inputs"][::-1]), "lists the inputs as \\['u_face', 'q'\\]"),
    (lambda c: c.pop("normalisation"), "no complete normalisation"),
    (lambda c: c["normalisation"].pop("y_std"), "no complete normalisation"),
    (lambda c: c.update(dtype="float64"), "float64/float32 mismatch"),
    (lambda c: c["normalisation"].update(x_mean=[0.0] * 10, x_std=[1.0] * 10),
     "not the closure's x_mean"),
    (lambda c: c.update(grid={"n_cells": 64, "dx": 31.25}), "training grid: 32 cells"),
    (lambda c: c.update(grid=None), "training grid"),
    (lambda c: c.update(inputs=[{"name": "q", "units": "1"},
                                {"name": "u_face", "units": "m/s"}]), "input units"),
    (lambda c: c.update(features=c["features"][::-1]), "not the stencils of the inputs"),
    (lambda c: c.update(files={"torchscript": "model.pt"}), "TorchScript and the ONNX"),
    (lambda c: c.update(output={"name": "sgs", "units": "1/h"}), "output should be"),
])
def test_contract_rejects_typical_mistakes(closure, budget, change, message):
    with pytest.raises(LabCheckError, match=message):
        check.contract(edited(closure, budget, change), closure, budget)
    with pytest.raises(LabCheckError, match="should be a dict"):
        check.contract(json.dumps(solution_contract(closure, budget)), closure, budget)


# ------------------------------------------------------------------ exercise 3: the artifact
def test_artifact_accepts_the_solution(good, closure):
    assert check.artifact(good, closure)


def test_artifact_rejects_a_swapped_contract(good, closure, budget, tmp_path):
    folder = tmp_path / "swapped"
    folder.mkdir()
    for name in ("model.pt", "model.onnx"):
        (folder / name).write_bytes((good / name).read_bytes())
    contract = json.loads((good / "contract.json").read_text())
    contract["inputs"] = contract["inputs"][::-1]  # the network still reads q first
    contract["features"] = contract["features"][5:] + contract["features"][:5]
    (folder / "contract.json").write_text(json.dumps(contract))
    with pytest.raises(LabCheckError, match="other order: the contract declares "
                                            "\\['u_face', 'q'\\]"):
        check.artifact(folder, closure)


def test_artifact_rejects_missing_normalisation(closure, budget, tmp_path):
    folder = write_artifact(Shipped(closure, scale_in=False).eval(),
                            solution_contract(closure, budget), tmp_path / "raw")
    with pytest.raises(LabCheckError, match="skips the input normalisation"):
        check.artifact(folder, closure)


def test_artifact_rejects_float64_behind_a_float32_contract(closure, budget, tmp_path):
    folder = write_artifact(Shipped(closure).double().eval(),
                            solution_contract(closure, budget), tmp_path / "f64",
                            dtype=torch.float64)
    with pytest.raises(LabCheckError, match="weights are float64 .* contract says float32"):
        check.artifact(folder, closure)


def test_artifact_rejects_broken_folders(good, closure, tmp_path):
    with pytest.raises(LabCheckError, match="write contract.json"):
        check.artifact(tmp_path, closure)
    with pytest.raises(LabCheckError, match="a path"):
        check.artifact(None, closure)
    folder = tmp_path / "stale"
    folder.mkdir()
    for name in ("model.pt", "model.onnx", "contract.json"):
        (folder / name).write_bytes((good / name).read_bytes())
    (folder / "model.onnx").write_bytes((good / "model.onnx").read_bytes() + b"\0")
    with pytest.raises(LabCheckError, match="checksum"):
        check.artifact(folder, closure)


# ------------------------------------------------------------------ exercise 4: equivalence
def report_of(good, closure, budget, reduce=np.max, elementwise=False, reference=None):
    x = export.example_features(closure, n=4096, seed=1, spread=3.0)
    module = Shipped(closure).eval()
    with torch.inference_mode():
        eager = module(torch.as_tensor(x, dtype=torch.float32)).double().numpy()
    out = {}
    for r in ("torchscript", "onnx"):
        a = export.load_artifact(good, r).network(x)
        b = eager if reference is None else reference(r, x)
        if elementwise:
            out[r] = float(np.max(np.abs(a - b) / np.abs(b)))
        else:
            out[r] = float(reduce(np.abs(a - b)) / np.abs(b).max())
    return {"test": out, "random": dict(out)}


def test_equivalence_accepts_the_solution(good, closure, budget):
    assert check.equivalence(report_of(good, closure, budget), good, closure)


def test_equivalence_rejects_typical_mistakes(good, closure, budget):
    itself = report_of(good, closure, budget,
                       reference=lambda r, x: export.load_artifact(good, r).network(x))
    with pytest.raises(LabCheckError, match="compare a runtime with itself"):
        check.equivalence(itself, good, closure)
    with pytest.raises(LabCheckError, match="not the mean"):
        check.equivalence(report_of(good, closure, budget, reduce=np.mean), good, closure)
    with pytest.raises(LabCheckError, match="element-wise ratios"):
        check.equivalence(report_of(good, closure, budget, elementwise=True), good, closure)
    big = {"test": {"torchscript": 0.0, "onnx": 5e-6}, "random": {"torchscript": 0.0,
                                                                  "onnx": 3e-7}}
    with pytest.raises(LabCheckError, match="exceeds 1e-06"):
        check.equivalence(big, good, closure)
    with pytest.raises(LabCheckError, match="lacks the key"):
        check.equivalence({"torchscript": 0.0}, good, closure)
    with pytest.raises(LabCheckError, match="should be a number"):
        check.equivalence({"test": {"torchscript": "x", "onnx": 1e-7},
                           "random": {"torchscript": 0.0, "onnx": 1e-7}}, good, closure)


# ------------------------------------------------------------------ the generated lab
def test_lab_is_generated_with_stubs():
    solution = json.loads((ROOT / "solutions" / LAB).read_text())
    lab = json.loads((ROOT / "labs" / LAB).read_text())
    assert make_lab(solution)["cells"][0]["source"] and labs.generate(
        ROOT / "solutions", ROOT / "labs", check=True) == []  # committed lab is current
    sources = ["".join(c["source"]) for c in lab["cells"] if c["cell_type"] == "code"]
    assert sum(s.count(STUB) for s in sources) == 5  # two in the module, one per other
    assert not any("### BEGIN SOLUTION" in s for s in sources)
    checks = [s for s in sources if s.startswith("check.")]
    assert [s.split("(")[0] for s in checks] == ["check.shipped_module", "check.contract",
                                                 "check.artifact", "check.equivalence"]


# ------------------------------------------------------------------ valid alternatives pass
def test_valid_alternatives_pass(closure, budget, tmp_path):
    # the engine's own wrapper is a valid shipped module
    assert check.shipped_module(export.column_network(closure), closure)
    # a contract written by the engine (with its extra keys) and an engine-written artifact
    engine = export.make_contract(closure, grid=export.tracer_grid(budget))
    engine["files"] = {"torchscript": "model.pt", "onnx": "model.onnx"}
    assert check.contract(engine, closure, budget)
    folder = export.export_closure(closure, tmp_path / "engine", grid=export.tracer_grid(
        budget))  # with a third runtime, the exported program
    assert check.artifact(folder, closure)
    report = export.equivalence(closure, folder, n_random=1024, seed=3)
    mine = {kind: {r: row[r] for r in ("torchscript", "onnx")} for kind, row in
            {"test": report["random"], "random": report["random"]}.items()}
    assert check.equivalence(mine, folder, closure)
