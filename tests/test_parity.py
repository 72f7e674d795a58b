"""The four frameworks compute the same thing.

For every step: the same neutral weights and inputs go into PyTorch,
TensorFlow, Keras (tensorflow backend in-process, torch backend in a
subprocess) and Chainer, and each is compared with the exact result, PyTorch
in float64 (common/parity.py explains why, and how the inputs avoid ReLU and
max-pool near-ties). We compare parameter counts and shapes, logits with
BatchNorm in inference and training mode, the loss, every parameter's
gradient, the weights and running statistics after one SGD step, and (float64) the loss
over 20 more SGD steps.

Twice, for two different questions:
- float64, every framework but the reference: rounding is no longer the
  question, so the tolerances sit near float64 rounding (F64_TOL). This is the
  proof that the columns are the same computation, on any processor.
- float32, every framework including PyTorch: what the scripts run. Rounding
  differs between frameworks and between processors (summation order, oneDNN
  or Eigen kernels, AVX2 or AVX-512), so the tolerance is MARGIN times the
  measured noise floor, how far PyTorch float32 itself ends from float64 on
  the same kind of inputs (common/parity_floors.json, written by
  tools/measure_parity_floors.py; the table is in docs/framework-differences.md).

A new step is covered by adding its name to PARITY_STEPS and measuring its floor.
"""
import functools
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from common import REPO, parity
from helpers import STEPS, require

PARITY_STEPS = STEPS
FLOAT32 = ("pytorch", "tensorflow", "keras", "chainer", "keras-torch")
FLOAT64 = ("tensorflow", "keras", "chainer", "keras-torch")   # pytorch float64 is the reference
REFERENCE = ("pytorch", "float64")

MARGIN, FLOORS = parity.MARGIN, parity.FLOORS   # float32: MARGIN x the floor (common/parity.py)
# float64: float64 rounding (eps 1.1e-16) grown through ~20 layers and BatchNorm; measured
# maxima over the nine steps and four columns are in docs/framework-differences.md.
F64_TOL = {"logits": 1e-9, "loss": 1e-9, "grads": 1e-9, "update": 1e-9, "trajectory": 1e-7}


def input_seed(step):
    """The first well-conditioned input seed, as tools/measure_parity_floors.py found it (the
    search, up to 14 float64 forward passes a step, would run again in every test process);
    test_the_input_seed_is_well_conditioned checks it still is."""
    return parity.check_seed(step)


# float32 without the 20-step trajectory: over 20 steps float32 rounding grows chaotically
# (07_fcn8s ended 1.12e-3 apart on an AVX2-only CPU), which measures the processor, not the
# framework; float64 proves the same trajectory to 1e-7 on any CPU. Dropping the float32
# trajectories (measured then in tools/measure_parity_floors.py --columns) halves the cost of
# this file, the suite's largest.
STEPS_OF = {"float32": 0, "float64": parity.TRAJECTORY}


@functools.lru_cache(maxsize=None)
def keras_torch_probes() -> Path:
    """Every keras-torch probe, computed in one subprocess (the backend is fixed per process,
    and starting Keras with torch costs seconds): OUT/<step>-<dtype>.npz."""
    require("keras")
    require("pytorch")
    out = Path(tempfile.mkdtemp(prefix="keras-torch-probes-"))
    specs = [f"{s}:{input_seed(s)}:{d}:{STEPS_OF[d]}" for d in STEPS_OF for s in PARITY_STEPS]
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    subprocess.run([sys.executable, str(REPO / "tests" / "parity_probe.py"), "keras", str(out)]
                   + specs, check=True, env=env, cwd=REPO)
    return out


@functools.lru_cache(maxsize=None)
def probe(framework, step, dtype):
    seed = input_seed(step)
    steps = STEPS_OF[dtype] if (framework, dtype) != REFERENCE else parity.TRAJECTORY
    if framework == "keras-torch":
        with np.load(keras_torch_probes() / f"{step}-{dtype}.npz") as f:
            return dict(f)
    require(framework)
    return parity.probe(framework, step, seed=seed, dtype=dtype, trajectory=steps)


def pair(framework, step, dtype):
    return probe(REFERENCE[0], step, REFERENCE[1]), probe(framework, step, dtype)


def tolerance(step, quantity, dtype):
    return F64_TOL[quantity] if dtype == "float64" else parity.tolerance(step, quantity)


def check(framework, step, dtype, quantity):
    ref, got = pair(framework, step, dtype)
    value, where = parity.differences(ref, got, (quantity,))[quantity]
    tol = tolerance(step, quantity, dtype)
    assert value <= tol, (f"{framework} {dtype} {step}: {quantity} differs from PyTorch float64 by "
                          f"{value:.2e} at {where}, more than {tol:.1e}")


def keys(res, prefix):
    return sorted(k for k in res if k.startswith(prefix))


def _cases(dtypes):
    return pytest.mark.parametrize("framework,step,dtype", [
        pytest.param(f, s, d, marks=pytest.mark.xdist_group(f))
        for d in dtypes for s in PARITY_STEPS for f in (FLOAT32 if d == "float32" else FLOAT64)])


cases = _cases(("float32", "float64"))


@_cases(("float32",))
def test_same_parameters(framework, step, dtype):
    ref, got = pair(framework, step, dtype)
    assert keys(got, "shape/") == keys(ref, "shape/"), "neutral weight names differ"
    for k in keys(ref, "shape/"):
        assert tuple(got[k]) == tuple(ref[k]), k
    assert int(got["params"]) == int(ref["params"])


@cases
def test_same_logits(framework, step, dtype):
    ref, got = pair(framework, step, dtype)
    assert got["logits_eval"].shape == ref["logits_eval"].shape
    check(framework, step, dtype, "logits")
    # the two BatchNorm modes must differ, or one of them is not what it claims
    assert np.abs(ref["logits_eval"] - ref["logits_train"]).max() > 1e-2


@cases
def test_same_loss_and_gradients(framework, step, dtype):
    ref, got = pair(framework, step, dtype)
    assert keys(got, "grad/") == keys(ref, "grad/")
    check(framework, step, dtype, "loss")
    check(framework, step, dtype, "grads")


@cases
def test_same_update_and_running_statistics(framework, step, dtype):
    ref, _ = pair(framework, step, dtype)
    assert any(k.endswith(".var") for k in keys(ref, "after/")), "no BatchNorm checked"
    check(framework, step, dtype, "update")


@_cases(("float64",))
def test_same_trajectory(framework, step, dtype):
    check(framework, step, dtype, "trajectory")


@pytest.mark.parametrize("step", PARITY_STEPS)
def test_the_input_seed_is_well_conditioned(step):
    require("pytorch")
    relu_min, gap_min = parity.kink_margins(step, parity.probe_args(step), input_seed(step))
    assert relu_min >= parity.STEP_RELU_MARGIN.get(step, parity.RELU_MARGIN), relu_min
    assert gap_min >= parity.POOL_MARGIN, gap_min


def test_floors_cover_every_step():
    assert sorted(FLOORS) == sorted(PARITY_STEPS), "measure the missing floors: tools/measure_parity_floors.py --write"
    for step, f in FLOORS.items():
        for q in parity.QUANTITIES:
            # a floor of 0 would make the float32 test demand bit-equality; above 1e-2 it tests nothing
            assert 0 < f[q] * MARGIN < 1e-2, (step, q, f[q])
