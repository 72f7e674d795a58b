"""Weights trained in any framework, loaded with --init-from into any other, predict the same.

Each framework trains the step briefly (its own weights.npz: trained
convolutions, transposed convolutions, BatchNorm running statistics); every
other framework then evaluates those weights with --iters 0. Predictions must
agree on at least 99.9% of the test pixels and the metrics to 1e-3 (issue #4).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from common import REPO
from helpers import require, run_step

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("exchange")]
LABELS = ("pytorch", "tensorflow", "keras", "chainer", "keras-torch")
EXCHANGE_STEPS = ("05_concat",)   # conv + bias, transposed conv, BatchNorm, concat
ARGS = ["--dry-run", "--size", "32"]


def run(label, step, argv):
    """Run a step script's main() (keras-torch: in a subprocess); return metrics.json."""
    if label == "keras-torch":
        require("keras")
        require("pytorch")
        out = argv[argv.index("--out") + 1]
        r = subprocess.run([sys.executable, str(REPO / "keras" / f"{step}.py"), "--backend", "torch",
                            *argv], capture_output=True, text=True, timeout=900,
                           env={**os.environ, "KERAS_BACKEND": "torch"})
        assert r.returncode == 0, r.stderr[-2000:]
        return json.loads((REPO / out / "metrics.json").read_text())
    return run_step(label, step, argv)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(label, step) -> the run directory of a 20-iteration training, made on first use."""
    cache = {}

    def get(label, step):
        if (label, step) not in cache:
            out = tmp_path_factory.mktemp(f"{label}-{step}")
            run(label, step, ARGS + ["--iters", "20", "--out", str(out)])
            cache[label, step] = out
        return cache[label, step]
    return get


@pytest.mark.parametrize("step", EXCHANGE_STEPS)
@pytest.mark.parametrize("source", LABELS)
def test_weights_round_trip_through_every_other_framework(source, step, trained, tmp_path):
    src = trained(source, step)
    want = json.loads((src / "metrics.json").read_text())
    pred = np.load(src / "predictions.npz")["pred"]
    assert len(np.unique(pred)) > 1, "the source run predicts one class: the check would be weak"
    for target in LABELS:
        if target == source:
            continue
        out = tmp_path / target
        got = run(target, step, ARGS + ["--iters", "0", "--init-from", str(src / "weights.npz"),
                                        "--out", str(out)])
        same = float(np.mean(np.load(out / "predictions.npz")["pred"] == pred))
        assert same >= 0.999, f"{source} -> {target}: only {same:.4%} of pixels agree"
        assert got["mean_iou"] == pytest.approx(want["mean_iou"], abs=1e-3), (source, target)
        assert got["pixel_accuracy"] == pytest.approx(want["pixel_accuracy"], abs=1e-3)
