"""nnparam.export: the artifact (TorchScript, ONNX, ExportedProgram + JSON contract), its
validation, and the equivalence of every runtime with eager torch."""

import copy
import json
import shutil

import numpy as np
import pytest
import torch

from nnparam import export, host, tracer
from nnparam.closure import Closure, stencil_features

torch.set_num_threads(1)
TOL = 1e-6  # the equivalence bar: max relative difference, float32


@pytest.fixture(scope="module")
def budget():
    return tracer.sgs_dataset(seed=0)


@pytest.fixture(scope="module")
def trained(budget):
    closure, blocks = host.tracer_closure(budget, epochs=80)
    return closure, blocks


@pytest.fixture(scope="module")
def artifact(trained, budget, tmp_path_factory):
    closure, _ = trained
    return export.export_closure(closure, tmp_path_factory.mktemp("art") / "closure",
                                 grid=export.tracer_grid(budget))


def fresh_copy(artifact, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(artifact, target)
    return target


def edit_contract(folder, **changes):
    path = folder / export.CONTRACT_FILE
    contract = json.loads(path.read_text())
    contract.update(changes)
    path.write_text(json.dumps(contract))
    return contract


def test_contract_describes_the_closure(trained, artifact):
    closure, _ = trained
    contract = export.read_contract(artifact)
    assert contract["inputs"] == [{"name": "q", "units": "1"},
                                  {"name": "u_face", "units": "km/h"}]
    assert contract["features"][:5] == ["q[i-2]", "q[i-1]", "q[i]", "q[i+1]", "q[i+2]"]
    assert contract["features"][5] == "u_face[i-2]" and contract["stencil_width"] == 2
    assert contract["output"] == {"name": "sgs_tendency", "units": "1/h"}
    assert contract["dtype"] == "float32"
    assert contract["shapes"] == {"input": ["batch", 10], "output": ["batch", 1]}
    assert contract["grid"]["n_cells"] == 32 and contract["grid"]["dx"] == 62.5
    np.testing.assert_allclose(contract["normalisation"]["x_mean"], closure.x_mean, rtol=1e-7)
    np.testing.assert_allclose(contract["normalisation"]["y_std"], closure.y_std, rtol=1e-7)
    assert set(contract["files"]) == set(export.RUNTIMES)
    for name in contract["files"].values():
        assert contract["sha256"][name] == export._sha256(artifact / name)
    assert contract["closure"] == closure.metadata()
    # the TorchScript archive carries the contract too (without its own checksum)
    extra = {export.CONTRACT_FILE: ""}
    with pytest.warns(DeprecationWarning, match="torch.jit.load` is deprecated"):
        torch.jit.load(str(artifact / "model.pt"), _extra_files=extra)
    embedded = json.loads(extra[export.CONTRACT_FILE])
    assert embedded["normalisation"] == contract["normalisation"]
    assert embedded["inputs"] == contract["inputs"]


def test_every_runtime_matches_eager_torch(trained, artifact, budget):
    closure, blocks = trained
    test = blocks[2]
    x_test = stencil_features(budget["q"].values[test], budget["u_face"].values[test],
                              width=2).reshape(-1, 10)
    report = export.equivalence(closure, artifact, x=x_test, n_random=2048, spread=3.0)
    assert set(report) == {"test", "random"}
    for kind, row in report.items():
        for runtime in export.RUNTIMES:
            assert row[runtime] <= TOL, (kind, runtime, row[runtime])
        # the closure standardises in float64 before rounding to float32; the artifact
        # rounds its physical inputs first: u ~ 40 km/h loses 40 * 2**-24 ~ 2.4e-6 km/h
        assert row["closure"] < 2e-5, (kind, row["closure"])
    # the comparison is not vacuous: a perturbed network breaks the bar
    other = copy.deepcopy(closure)
    with torch.no_grad():
        other.module[0].bias.add_(1e-4)
    assert export.equivalence(other, artifact, n_random=256)["random"]["torchscript"] > TOL


@pytest.mark.parametrize("runtime", export.RUNTIMES)
@pytest.mark.parametrize("batch", [1, 37])
def test_dynamic_batch(artifact, runtime, batch):
    art = export.load_artifact(artifact, runtime)
    x = export.example_features(art.contract, n=batch, seed=batch)
    out = art.network(x)
    assert out.shape == (batch, 1) and out.dtype == np.float32
    ref = export.load_artifact(artifact, "torchscript").network(x)
    # one sample may sit near zero: measure against the target's spread, not |ref|
    y_std = art.contract["normalisation"]["y_std"][0]
    assert export.relative_difference(out, ref, scale=y_std) <= TOL


def test_artifact_is_a_closure_for_online_runs(trained, artifact, budget):
    closure, blocks = trained
    art = export.load_artifact(artifact, "onnx", inputs=("q", "u_face"), units=("1", "km/h"),
                               grid=export.tracer_grid(budget))
    q = budget["q"].values[blocks[2]][:6]
    u = budget["u_face"].values[0]  # one wind row broadcast beside six states
    out = art(q, u)
    assert out.shape == q.shape
    assert export.relative_difference(out, closure(q, u)) < 2e-5
    run = tracer.run_coarse(q[0], budget, 16, 5.0, closure=art)
    ref = tracer.run_coarse(q[0], budget, 16, 5.0, closure=closure)
    assert np.abs(run["q"].values - ref["q"].values).max() < 1e-6
    assert "onnx" in repr(art)


def test_float64_closure_exports_float64(trained, tmp_path):
    closure, _ = trained
    net64 = copy.deepcopy(closure.module).double()
    c64 = Closure(net64, inputs=closure.inputs, stencil_width=2, x_mean=closure.x_mean,
                  x_std=closure.x_std, y_mean=closure.y_mean, y_std=closure.y_std)
    path = export.export_closure(c64, tmp_path / "f64", runtimes=("torchscript", "onnx"))
    art = export.load_artifact(path, "onnx")
    assert art.contract["dtype"] == "float64" and art.contract["grid"] is None
    x = export.example_features(c64, n=64)
    assert art.network(x).dtype == np.float64
    report = export.equivalence(c64, path, n_random=512)
    assert max(report["random"][r] for r in ("torchscript", "onnx")) < 1e-12
    assert report["random"]["closure"] < 1e-12  # float64 throughout: no input rounding


# ----------------------------------------------------------------- what load_artifact refuses
def test_refuses_a_caller_that_disagrees(artifact):
    with pytest.raises(export.ContractError, match="different order"):
        export.load_artifact(artifact, inputs=("u_face", "q"))
    with pytest.raises(export.ContractError, match="the caller provides"):
        export.load_artifact(artifact, inputs=("q", "wind"))
    with pytest.raises(export.ContractError, match="input units differ"):
        export.load_artifact(artifact, units=("1", "m/s"))
    with pytest.raises(export.ContractError, match="grid mismatch: the closure was trained on "
                                                   "32 cells of 62.5 km"):
        export.load_artifact(artifact, grid={"n_cells": 64, "dx": 31.25})
    with pytest.raises(ValueError, match="runtime must be one of"):
        export.load_artifact(artifact, "tflite")


def test_refuses_broken_artifacts(artifact, trained, tmp_path):
    closure, _ = trained
    folder = fresh_copy(artifact, tmp_path)
    (folder / "model.onnx").unlink()
    with pytest.raises(export.ContractError, match="model.onnx for onnx, but it is missing"):
        export.load_artifact(folder, "onnx")
    # another export's network under this contract
    other = copy.deepcopy(closure)
    with torch.no_grad():
        other.module[0].bias.add_(0.1)
    elsewhere = export.export_closure(other, tmp_path / "other", runtimes=("torchscript",))
    shutil.copy(elsewhere / "model.pt", folder / "model.pt")
    with pytest.raises(export.ContractError, match="checksum"):
        export.load_artifact(folder)
    with pytest.raises(export.ContractError, match="differs from the constants inside"):
        edit_contract(elsewhere, normalisation={
            **export.read_contract(elsewhere)["normalisation"], "x_mean": [0.0] * 10})
        export.load_artifact(elsewhere)
    (folder / "model.pt").write_bytes(b"not a TorchScript archive")
    edit_contract(folder, sha256={**export.read_contract(folder)["sha256"],
                                  "model.pt": export._sha256(folder / "model.pt")})
    with pytest.raises(export.ContractError, match="torchscript could not load model.pt"):
        export.load_artifact(folder)
    with pytest.raises(export.ContractError, match="no contract"):
        export.load_artifact(tmp_path / "nowhere")
    (folder / export.CONTRACT_FILE).write_text("{not json")
    with pytest.raises(export.ContractError, match="not valid JSON"):
        export.load_artifact(folder)


def test_refuses_a_network_whose_dtype_is_not_the_contracts(trained, tmp_path):
    closure, _ = trained
    net64 = copy.deepcopy(closure.module).double()
    c64 = Closure(net64, inputs=closure.inputs, stencil_width=2, x_mean=closure.x_mean,
                  x_std=closure.x_std, y_mean=closure.y_mean, y_std=closure.y_std)
    folder = export.export_closure(c64, tmp_path / "lies", runtimes=("torchscript", "onnx"))
    edit_contract(folder, dtype="float32")  # the contract lies about the network
    with pytest.raises(export.ContractError, match="weights are float64 .* contract says "
                                                   "float32"):
        export.load_artifact(folder)
    with pytest.raises(export.ContractError, match="ONNX graph takes tensor\\(double\\)"):
        export.load_artifact(folder, "onnx")


@pytest.mark.parametrize("field, value, message", [
    ("format", "something-else", "format is"),
    ("contract_version", 2, "this reader understands version 1"),
    ("inputs", [], "non-empty list"),
    ("inputs", [{"name": "q", "units": "1"}, {"name": "q", "units": "1"}], "repeat"),
    ("stencil_width", -1, "stencil_width must be an integer"),
    ("stencil_width", 1, "features must list 6 columns"),
    ("dtype", "float16", "dtype must be one of"),
    ("output", {"name": "sgs_tendency"}, "output must be"),
    ("shapes", {"input": ["batch", 9], "output": ["batch", 1]}, "shapes must be"),
    ("files", {"tflite": "model.tflite"}, "files must map runtimes"),
    ("grid", {"n_cells": 0, "dx": 62.5}, "grid n_cells"),
])
def test_validate_contract_names_the_bad_field(artifact, field, value, message):
    contract = export.read_contract(artifact)
    contract[field] = value
    with pytest.raises(export.ContractError, match=message):
        export.validate_contract(contract)


@pytest.mark.parametrize("change, message", [
    (lambda c: c["features"].reverse(), "not the stencils of the inputs in order"),
    (lambda c: c["normalisation"].pop("x_std"), "normalisation.x_std is missing"),
    (lambda c: c["normalisation"].update(x_mean=[0.0] * 9), "one per feature"),
    (lambda c: c["normalisation"].update(y_std=[-1.0]), "must be positive"),
    (lambda c: c["normalisation"].update(y_mean=[0.0, 1.0]), "differ in length"),
    (lambda c: c["normalisation"].update(x_std=["a"] * 10), "finite numbers"),
    (lambda c: c.pop("dtype"), "missing fields"),
])
def test_validate_contract_catches_inconsistencies(artifact, change, message):
    contract = export.read_contract(artifact)
    change(contract)
    with pytest.raises(export.ContractError, match=message):
        export.validate_contract(contract)
    with pytest.raises(export.ContractError, match="must be a JSON object"):
        export.validate_contract([contract])


def test_write_contract_roundtrip(artifact, tmp_path):
    contract = export.read_contract(artifact)
    path = export.write_contract(contract, tmp_path)
    assert export.read_contract(path) == contract
    contract["dtype"] = "int8"
    with pytest.raises(export.ContractError):
        export.write_contract(contract, tmp_path / "bad.json")


def test_bad_arguments(trained, tmp_path):
    closure, _ = trained
    with pytest.raises(ValueError, match="runtimes must be"):
        export.export_closure(closure, tmp_path / "x", runtimes=("tflite",))
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="path must be a folder"):
        export.export_closure(closure, tmp_path / "file")
    with pytest.raises(ValueError, match="Closure"):
        export.column_network(closure.module)
    whole = Closure(closure.module, inputs=("q",), per_column=False)
    with pytest.raises(ValueError, match="per-column"):
        export.make_contract(whole)
    with pytest.raises(export.ContractError, match="grid must be a dict"):
        export.make_contract(closure, grid={"cells": 32})
    with pytest.raises(ValueError, match="one shape"):
        export.relative_difference(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="zero everywhere"):
        export.relative_difference(np.ones(3), np.zeros(3))
    assert export.relative_difference([1.0, 2.0], [1.0, 4.0]) == pytest.approx(0.5)
    art = export.load_artifact(export.export_closure(closure, tmp_path / "ok",
                                                     runtimes=("torchscript",)))
    with pytest.raises(ValueError, match="shape \\(batch, 10\\)"):
        art.network(np.zeros((3, 6)))
    with pytest.raises(ValueError, match="takes the fields"):
        art(np.zeros(32))
    with pytest.raises(export.ContractError, match="no onnx file"):
        export.load_artifact(tmp_path / "ok", "onnx")
    with pytest.raises(ValueError, match="spread"):
        export.example_features(closure, spread=0)
