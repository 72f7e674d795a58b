"""Every step in every framework: same files, runs end to end, writes its outputs,
evaluates with BatchNorm in inference mode, and is deterministic."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from common import REPO
from common.driver import make_trainer
from common.parity import random_weights
from common.runner import DRY_RUN, OUTPUT_KEYS
from helpers import FOLDERS, STEPS, require, run_step

FRAMEWORKS = FOLDERS
ALL = [pytest.param(f, s, marks=pytest.mark.xdist_group(f)) for f in FRAMEWORKS for s in STEPS]


def test_framework_folders_hold_the_same_steps():
    names = {f: sorted(p.name for p in (REPO / f).glob("[0-9][0-9]_*.py")) for f in FRAMEWORKS}
    assert names["pytorch"] == [f"{s}.py" for s in STEPS]
    for f in FRAMEWORKS:
        assert names[f] == names["pytorch"], f"{f}/ differs from pytorch/"


def test_framework_folders_are_not_packages():
    for f in ("tensorflow", "keras", "chainer"):
        assert not (REPO / f / "__init__.py").exists(), f"{f}/__init__.py would shadow the package"


def check_outputs(out, framework, step, n_test):
    m = json.loads((out / "metrics.json").read_text())
    for key in OUTPUT_KEYS:
        assert key in m, key
    assert m["framework"] == framework and m["step"] == step
    assert 0.0 <= m["pixel_accuracy"] <= 1.0
    assert m["params"] > 0 and m["seconds"] > 0
    with np.load(out / "predictions.npz", allow_pickle=False) as p:
        pred = p["pred"]
    assert pred.dtype == np.uint8 and pred.shape == (n_test, 64, 64)
    with np.load(out / "weights.npz", allow_pickle=False) as w:
        assert any(k.endswith(".weight") for k in w.files)
    for png in ("predictions.png", "loss.png"):
        assert (out / png).stat().st_size > 1000
    return m


@pytest.mark.parametrize("framework,step", ALL)
def test_dry_run_writes_outputs(framework, step, tmp_path):
    m = run_step(framework, step, ["--dry-run", "--out", str(tmp_path)])
    check_outputs(tmp_path, framework, step, DRY_RUN["test_images"])
    assert m["iters"] == DRY_RUN["iters"] and len(m["loss_curve"]) == DRY_RUN["iters"]


@pytest.mark.parametrize("framework,step", ALL)
def test_evaluation_uses_inference_batchnorm(framework, step):
    """In inference mode an image's logits do not depend on the rest of the batch;
    with batch statistics (training mode) they do."""
    require(framework)
    trainer, _ = make_trainer(framework, step)
    trainer.set_weights(random_weights({k: v.shape for k, v in trainer.get_weights().items()}))
    rng = np.random.default_rng(0)
    x = rng.random((3, 32, 32, 3), dtype=np.float32)
    x = x.transpose(0, 3, 1, 2).copy() if trainer.layout == "NCHW" else x
    y = np.zeros((3, 32, 32), np.int32)
    alone, _ = trainer.eval_batch(x[:1], y[:1])
    together, _ = trainer.eval_batch(x, y)
    np.testing.assert_allclose(alone[0], together[0], atol=1e-4)
    train_alone = trainer.forward(x[:1], training=True)
    train_together = trainer.forward(x, training=True)
    assert np.abs(train_alone[0] - train_together[0]).max() > 1e-3


@pytest.mark.parametrize("framework", [pytest.param(f, marks=pytest.mark.xdist_group(f))
                                       for f in FRAMEWORKS])
def test_same_seed_same_loss_curve(framework, tmp_path):
    argv = ["--dry-run", "--iters", "2", "--size", "32"]
    a = run_step(framework, "05_concat", argv + ["--out", str(tmp_path / "a")])
    b = run_step(framework, "05_concat", argv + ["--out", str(tmp_path / "b")])
    c = run_step(framework, "05_concat", argv + ["--out", str(tmp_path / "c"), "--seed", "1"])
    assert a["loss_curve"] == b["loss_curve"]
    assert a["loss_curve"] != c["loss_curve"]


@pytest.mark.parametrize("step", ["01_binarization", "06_unet"])
def test_keras_torch_backend_dry_run(step, tmp_path):
    require("keras")
    require("pytorch")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}   # the flag must win over the variable
    r = subprocess.run([sys.executable, str(REPO / "keras" / f"{step}.py"), "--backend", "torch",
                        "--dry-run", "--out", str(tmp_path)], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    m = check_outputs(tmp_path, "keras", step, DRY_RUN["test_images"])
    assert m["label"] == "keras-torch"
