"""The four frameworks compute the same thing.

For every step: the same neutral weights and inputs go into PyTorch,
TensorFlow, Keras (tensorflow backend in-process, torch backend in a
subprocess) and Chainer, all in float32, and each is compared with the exact
result, PyTorch in float64 (parity_probe.py explains why, and how the inputs
avoid max-pool near-ties). We compare parameter counts and shapes,
logits with BatchNorm in inference and training mode, the loss, every
parameter's gradient, the weights and running statistics after one SGD step,
and the loss over 20 more SGD steps. A new step is covered by adding its name
to PARITY_STEPS.
"""
import functools
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, STEPS, require
import parity_probe

PARITY_STEPS = STEPS
OTHERS = ("pytorch", "tensorflow", "keras", "chainer", "keras-torch")
REFERENCE = "pytorch64"
# tolerances (float32): issue #4
LOGITS_ATOL, LOSS_RTOL, GRAD_ATOL, TRAJ_RTOL = 1e-4, 1e-5, 1e-4, 1e-3


@functools.lru_cache(maxsize=None)
def input_seed(step):
    require("pytorch")
    return parity_probe.well_conditioned_seed(step)


@functools.lru_cache(maxsize=None)
def probe(framework, step):
    seed = input_seed(step)
    if framework == "keras-torch":
        require("keras")
        require("pytorch")
        out = f"/tmp/parity-{os.getpid()}-{step}.npz"
        env = {**os.environ, "KERAS_BACKEND": "torch"}
        subprocess.run([sys.executable, str(REPO / "tests" / "parity_probe.py"), "keras", step, out, str(seed)],
                       check=True, env=env, cwd=REPO)
        with np.load(out) as f:
            res = dict(f)
        os.unlink(out)
        return res
    require("pytorch" if framework == REFERENCE else framework)
    return parity_probe.probe(framework, step, seed=seed)


def pair(framework, step):
    return probe(REFERENCE, step), probe(framework, step)


def maxdiff(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def keys(res, prefix):
    return sorted(k for k in res if k.startswith(prefix))


cases = pytest.mark.parametrize("framework,step", [
    pytest.param(f, s, marks=pytest.mark.xdist_group(f)) for s in PARITY_STEPS for f in OTHERS])


@cases
def test_same_parameters(framework, step):
    ref, got = pair(framework, step)
    assert keys(got, "shape/") == keys(ref, "shape/"), "neutral weight names differ"
    for k in keys(ref, "shape/"):
        assert tuple(got[k]) == tuple(ref[k]), k
    assert int(got["params"]) == int(ref["params"])


@cases
def test_same_logits(framework, step):
    ref, got = pair(framework, step)
    assert got["logits_eval"].shape == ref["logits_eval"].shape
    assert maxdiff(got["logits_eval"], ref["logits_eval"]) <= LOGITS_ATOL, "inference-mode BatchNorm"
    assert maxdiff(got["logits_train"], ref["logits_train"]) <= LOGITS_ATOL, "training-mode BatchNorm"
    # the two modes must differ, or one of them is not what it claims
    assert maxdiff(ref["logits_eval"], ref["logits_train"]) > 1e-2


@cases
def test_same_loss_and_gradients(framework, step):
    ref, got = pair(framework, step)
    assert abs(float(got["loss"]) - float(ref["loss"])) <= LOSS_RTOL * abs(float(ref["loss"]))
    assert keys(got, "grad/") == keys(ref, "grad/")
    for k in keys(ref, "grad/"):
        scale = max(1.0, float(np.max(np.abs(ref[k]))))
        assert maxdiff(got[k], ref[k]) <= GRAD_ATOL * scale, k


@cases
def test_same_update_and_running_statistics(framework, step):
    ref, got = pair(framework, step)
    for k in keys(ref, "after/") + keys(ref, "opt/"):
        assert maxdiff(got[k], ref[k]) <= LOGITS_ATOL, k
    assert any(k.endswith(".var") for k in keys(ref, "after/")), "no BatchNorm checked"


@cases
def test_same_trajectory(framework, step):
    ref, got = pair(framework, step)
    rel = np.abs(got["trajectory"] - ref["trajectory"]) / np.abs(ref["trajectory"])
    assert rel.max() <= TRAJ_RTOL, f"losses differ by {rel.max():.2e} (relative) at step {rel.argmax() + 2}"
