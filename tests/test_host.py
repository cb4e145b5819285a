"""The compiled host model (host/): the same coupled run as Python, and its refusals.

The host is built here with ``make -C host`` if needed (``.ci/run`` builds it first with
``make host``); the tests skip only when gfortran or a C++ compiler is missing and cannot be
installed (not root, no apt-get).
"""

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch

from nnparam import export, host, tracer
from nnparam.closure import Closure

torch.set_num_threads(1)
FACTOR = 16
T_END = 500.0  # hours: 1000 SSP-RK3 steps of 0.5 h
U32 = 2.0**-24  # unit round-off of float32


@pytest.fixture(scope="module")
def built():
    try:
        return host.build(install=True)
    except RuntimeError as err:
        if "build tools are missing" in str(err):
            pytest.skip(f"cannot build the host: {err}")
        raise


@pytest.fixture(scope="module")
def budget():
    return tracer.sgs_dataset(seed=0)


@pytest.fixture(scope="module")
def trained(budget):
    return host.tracer_closure(budget)


@pytest.fixture(scope="module")
def artifact(trained, budget, tmp_path_factory):
    closure, _ = trained
    return export.export_closure(closure, tmp_path_factory.mktemp("host") / "closure",
                                 grid=export.tracer_grid(budget),
                                 runtimes=("torchscript",))


@pytest.fixture(scope="module")
def q0(trained, budget):
    _, blocks = trained
    test = blocks[2]  # held-out states: never start online runs in the training period
    return budget["q"].values[[test.start, test.start + 20, test.start + 40]]


def variant(closure, **kw):
    """The trained network under other contract data (inputs, units, output)."""
    args = dict(inputs=closure.inputs, stencil_width=closure.stencil_width,
                x_mean=closure.x_mean, x_std=closure.x_std, y_mean=closure.y_mean,
                y_std=closure.y_std, output=closure.output, output_units=closure.output_units,
                input_units=closure.input_units)
    module = kw.pop("module", closure.module)
    return Closure(module, **{**args, **kw})


def run_refused(built, budget, q0, folder, code, message, t_end=2.0):
    with pytest.raises(host.HostError, match=message) as info:
        host.run_host(q0, budget, FACTOR, t_end, artifact=folder)
    assert info.value.code == code, info.value  # a clear exit code, never a signal
    return info.value


# ----------------------------------------------------------------------- agreement with Python
def test_host_dynamics_match_python(built, budget, q0):
    run = host.run_host(q0, budget, FACTOR, T_END)
    ref = tracer.run_coarse(q0, budget, FACTOR, T_END)
    assert run.timings["steps"] == 1000 and run.q["q"].shape == ref["q"].shape
    np.testing.assert_array_equal(run.q["time"].values, ref["time"].values)
    # same equations in the same operation order: double round-off only (measured ~1e-15)
    assert np.abs(run.q["q"].values - ref["q"].values).max() < 1e-12
    assert run.timings["network_calls"] == 0 and run.timings["network_s"] == 0


def test_coupled_run_with_the_same_artifact(built, budget, q0, artifact):
    """Both sides evaluate one TorchScript file with LibTorch on the same float32 inputs: the
    runs may differ only by double round-off in the dynamics, and at worst by a rare
    float32 rounding flip of one input; one float32 ulp of the state bounds both."""
    run = host.run_host(q0, budget, FACTOR, T_END, artifact=artifact)
    ref = tracer.run_coarse(q0, budget, FACTOR, T_END, closure=export.load_artifact(artifact))
    free = tracer.run_coarse(q0, budget, FACTOR, T_END)
    q, q_ref = run.q["q"].values, ref["q"].values
    assert np.abs(q - q_ref).max() <= U32 * np.abs(q_ref).max()
    # the closure matters: without it the run is elsewhere by orders of magnitude more
    assert np.abs(free["q"].values - q_ref).max() > 1e-2
    assert run.timings["network_calls"] == 3000 and run.timings["batch"] == 3 * 32


def test_coupled_run_matches_the_python_closure(built, budget, q0, trained, artifact):
    """Fortran (LibTorch float32) against Python with the trained closure itself (numpy
    float32 twin, standardised in float64): two float32 evaluations of one network. Their
    per-call differences from the float64 network, summed over the run and amplified as much
    as the coupled model amplifies a perturbation, bound the drift (host.float32_tolerance)."""
    closure, _ = trained
    run = host.run_host(q0, budget, FACTOR, T_END, artifact=artifact)
    ref = tracer.run_coarse(q0, budget, FACTOR, T_END, closure=closure)
    growth = host.perturbation_growth(q0, budget, FACTOR, T_END, closure)
    assert growth > 1  # the closure sharpens: perturbations grow (the free model damps them)
    bound = host.float32_tolerance(ref, budget, FACTOR, closure,
                                   export.load_artifact(artifact), amplification=growth)
    gap = np.abs(run.q["q"].values - ref["q"].values).max()
    assert gap <= bound["tolerance"], (gap, bound)
    assert 0 < bound["dP"][0] < 1e-6 and 0 < bound["dP"][1] < 1e-6  # float32-sized, not 0
    # and far below what the closure changes in the run
    free = tracer.run_coarse(q0, budget, FACTOR, T_END)["q"].values
    assert gap < 1e-3 * np.abs(free - ref["q"].values).max()


def test_timings_add_up(built, budget, q0, artifact):
    run = host.run_host(q0[0], budget, FACTOR, 20.0, artifact=artifact)
    t = run.timings
    parts = t["dynamics_s"] + t["marshalling_s"] + t["network_s"] + t["io_s"]
    assert parts == pytest.approx(t["loop_s"], rel=1e-9)
    assert min(t["dynamics_s"], t["marshalling_s"], t["network_s"]) > 0
    assert set(run.per_step()) == {"dynamics", "marshalling", "network"}
    assert run.per_call() == pytest.approx(t["network_s"] / 120)
    assert t["network_best_call_s"] == 0  # 40 steps: no complete block of 100 steps
    long = host.run_host(q0[0], budget, FACTOR, 100.0, artifact=artifact)
    assert 0 < long.per_call(best=True) <= long.per_call() * (1 + 1e-12)
    assert run.q["q"].dims == ("time", "x") and "tracer_host: 40 steps" in run.stdout
    with pytest.raises(ValueError, match="no closure"):
        host.run_host(q0[0], budget, FACTOR, 2.0).per_call()


# ----------------------------------------------------------------------- refusals
def test_refuses_another_grid(built, budget, q0, trained, tmp_path):
    closure, _ = trained
    folder = export.export_closure(closure, tmp_path / "fine",
                                   grid={"n_cells": 64, "dx": 31.25, "units": "km"},
                                   runtimes=("torchscript",))
    run_refused(built, budget, q0, folder, 2, "grid mismatch: the closure was trained on 64 "
                                              "cells of 31.25 km, this host runs 32 cells of "
                                              "62.5 km")
    folder = export.export_closure(closure, tmp_path / "nogrid", runtimes=("torchscript",))
    run_refused(built, budget, q0, folder, 2, "records no training grid")


@pytest.mark.parametrize("kw, message", [
    (dict(inputs=("u_face", "q"), input_units=("km/h", "1")),
     r"reads the inputs \[u_face, q\], this host provides \[q, u_face\] \(same fields, "
     r"other order\)"),
    (dict(inputs=("q", "wind")), r"reads the inputs \[q, wind\], this host provides"),
    (dict(input_units=("1", "m/s")), r"input units differ: the artifact expects \[1, m/s\]"),
    (dict(output="eddy_flux", output_units="km/h"), "returns eddy_flux, this host adds "
                                                    "sgs_tendency"),
    (dict(output_units="1/s"), "output is in 1/s"),
])
def test_refuses_other_variables(built, budget, q0, trained, tmp_path, kw, message):
    closure, _ = trained
    folder = export.export_closure(variant(closure, **kw), tmp_path / "v",
                                   grid=export.tracer_grid(budget), runtimes=("torchscript",))
    run_refused(built, budget, q0, folder, 2, message)


def test_refuses_float64(built, budget, q0, trained, tmp_path):
    closure, _ = trained
    c64 = host.float64_twin(closure)
    folder = export.export_closure(c64, tmp_path / "f64", grid=export.tracer_grid(budget),
                                   runtimes=("torchscript",))
    run_refused(built, budget, q0, folder, 2, "dtype is float64, this host passes float32")
    # a contract that lies about its network's dtype is caught after loading
    path = folder / export.CONTRACT_FILE
    path.write_text(path.read_text().replace('"dtype": "float64"', '"dtype": "float32"'))
    run_refused(built, budget, q0, folder, 2, "weights are float64 but the contract says "
                                              "float32")


def test_refuses_missing_and_corrupt_files(built, budget, q0, artifact, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(artifact, folder)
    (folder / "model.pt").write_bytes(b"\x00garbage")
    run_refused(built, budget, q0, folder, 4, "LibTorch could not load")
    (folder / "model.pt").unlink()
    run_refused(built, budget, q0, folder, 2, "names model.pt for TorchScript, but .* is "
                                              "missing")
    run_refused(built, budget, q0, tmp_path / "nowhere" / "contract.json", 2,
                "cannot open the contract")
    (folder / export.CONTRACT_FILE).write_text('{"format": ')
    run_refused(built, budget, q0, folder, 2, "not valid JSON")


@pytest.mark.parametrize("edit, code, message", [
    (lambda c: c.update(stencil_width="two"), 2, "malformed contract"),
    (lambda c: c.update(contract_version=2), 2, "this host understands version 1"),
    (lambda c: c.update(format="keras"), 2, "format is not nnparam-closure-artifact"),
    (lambda c: c.pop("inputs"), 2, "lists no inputs"),
    # consistent with width 1, but the network reads ten features: the probe catches it
    (lambda c: c.update(stencil_width=1, features=c["features"][1:4] + c["features"][6:9],
                        shapes={"input": ["batch", 6], "output": ["batch", 1]},
                        normalisation={**c["normalisation"],
                                       "x_mean": c["normalisation"]["x_mean"][:6],
                                       "x_std": c["normalisation"]["x_std"][:6]}),
     2, "rejects a probe batch"),
])
def test_refuses_inconsistent_contracts(built, budget, q0, artifact, tmp_path, edit, code,
                                        message):
    folder = tmp_path / "copy"
    shutil.copytree(artifact, folder)
    path = folder / export.CONTRACT_FILE
    contract = json.loads(path.read_text())
    edit(contract)
    path.write_text(json.dumps(contract))
    run_refused(built, budget, q0, folder, code, message)


def test_refuses_a_wrong_initial_state(built, budget, q0, tmp_path):
    nml = host.write_config(tmp_path, tracer.setup_of(budget), FACTOR, q0, 4, 0.5)
    (tmp_path / "q0.bin").write_bytes(np.zeros(31).tobytes())
    proc = subprocess.run([str(built), str(nml)], capture_output=True, text=True)
    assert proc.returncode == 2 and "holds 31 values, expected 3 members x 32 cells" in \
        proc.stderr
    proc = subprocess.run([str(built)], capture_output=True, text=True)
    assert proc.returncode == 2 and "usage" in proc.stderr
    with pytest.raises(ValueError, match="q0 must have shape"):
        host.write_config(tmp_path, tracer.setup_of(budget), FACTOR, np.zeros(31), 4, 0.5)


class TripWire(torch.nn.Module):
    """The trained network, but NaN wherever the standardised wind at the cell exceeds
    ``level`` (feature 7 is u_face[i] for a stencil of half width 2)."""

    def __init__(self, net, level):
        super().__init__()
        self.net = net
        self.register_buffer("level", torch.tensor(level, dtype=torch.float32))

    def forward(self, z):
        out = self.net(z)
        return torch.where(z[:, 7:8] > self.level, torch.full_like(out, float("nan")), out)


class Tripped(Exception):
    pass


def first_nan(artifact, budget, q0, n_steps):
    """(step, stage) of the first non-finite network output in a Python SSP-RK3 loop that
    calls the artifact where the host does (tracer.run_coarse's stages)."""
    setup = tracer.setup_of(budget)
    wind = tracer.Wind(setup)
    x_fine = (np.arange(setup.n) + 0.5) * setup.dx
    dx = setup.dx * FACTOR
    h, _, _ = host.time_stepping(setup, FACTOR, 1.0)

    def rhs(state, when, stage):
        u = tracer.coarse_face_wind(wind(x_fine, when), FACTOR)
        p = artifact(state, np.broadcast_to(u, state.shape))
        if not np.all(np.isfinite(p)):
            raise Tripped(step, stage)
        return tracer.tendency(state, u, dx, setup.lam, setup.alpha) + p

    q, t = np.array(q0, dtype=float), 0.0
    try:
        for step in range(1, n_steps + 1):  # noqa: B007 (read by rhs)
            q1 = q + h * rhs(q, t, 1)
            q2 = 0.75 * q + 0.25 * (q1 + h * rhs(q1, t + h, 2))
            q = q / 3.0 + 2.0 / 3.0 * (q2 + h * rhs(q2, t + 0.5 * h, 3))
            t += h
    except Tripped as where:
        return where.args
    return None


def test_reports_nan_from_the_network_with_its_step(built, budget, q0, trained, tmp_path):
    closure, _ = trained
    z_wind = (tracer.coarse_face_wind(tracer.Wind(tracer.setup_of(budget))(
        (np.arange(512) + 0.5) * 2000.0 / 512, np.arange(0.0, 30.0, 0.25)), FACTOR)
        - closure.x_mean[7]) / closure.x_std[7]
    trip = variant(closure, module=TripWire(closure.module, float(z_wind.max())))
    folder = export.export_closure(trip, tmp_path / "trip", grid=export.tracer_grid(budget),
                                   runtimes=("torchscript",))
    expected = first_nan(export.load_artifact(folder), budget, q0, 1000)
    assert expected is not None and expected[0] > 20, expected  # trips mid-run, not at once
    step, stage = expected
    err = run_refused(built, budget, q0, folder, 3,
                      f"network returned NaN or inf at step {step}, RK stage {stage} ",
                      t_end=T_END)
    assert "member" in err.message and "cell" in err.message


def test_host_reports_a_blow_up_like_python(built, budget, q0, tmp_path):
    """A closure of half width 1 is unstable online. Python notices at the next save time
    ("blew up before t = ..."); the host notices at the first stage whose network output is
    not finite, inside the same save interval, and names the step."""
    narrow, _ = host.tracer_closure(budget, width=1)
    folder = export.export_closure(narrow, tmp_path / "narrow",
                                   grid=export.tracer_grid(budget), runtimes=("torchscript",))
    with pytest.raises(FloatingPointError, match=r"blew up before t = \d+\.\d h") as py, \
            np.errstate(all="ignore"):
        tracer.run_coarse(q0[0], budget, FACTOR, T_END, closure=export.load_artifact(folder))
    hour = float(re.search(r"t = (\d+\.\d) h", str(py.value)).group(1))
    assert 10 < hour < 150
    err = run_refused(built, budget, q0[0], folder, 3, "network returned NaN or inf at step",
                      t_end=T_END)
    step, t_host = re.search(r"at step (\d+), RK stage \d \(t = (\d+\.\d+) h\)",
                             err.message).groups()
    assert hour - 1.0 <= float(t_host) < hour, (hour, err.message)
    assert int(step) == int(float(t_host) / 0.5) + 1  # t is the step's start
    assert "floating-point exceptions" not in err.message  # a clean message


# ----------------------------------------------------------------------- the chapter's asserts
CHAPTER = "book/hands-on/deploying.ipynb"


@pytest.mark.slow
@pytest.mark.parametrize("mutation, message", [
    ({"closure(q_test, u_test / 3.6)": "closure(q_test, u_test / 1.0)"},
     "wind in m/s: a broken contract makes the closure useless"),
    ({"x32 = x_heldout.astype(np.float32).astype(float)": "x32 = x_heldout"},
     "input rounding explains the gap"),
    ({'"python artifact": artifact,': '"python artifact": host.float64_twin(closure),'},
     "one artifact, two languages: agreement to round-off"),
])
def test_chapter_asserts_can_fail(built, mutation, message):
    """Each mutation breaks one claim of the chapter; its own assert must then stop it."""
    from mutation import assert_mutation_fails

    assert_mutation_fails(CHAPTER, mutation, message)
