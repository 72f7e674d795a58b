"""Learning tests: a short real training on the embedded data must lower the loss and
segment newts far better than any constant prediction. A network that ignores its input
can only predict one class everywhere, which scores a newt IoU of (at best) the newt's
share of the pixels, and fails.

Binarisation learns in every framework; the multiclass steps 2-10 learn in PyTorch (the
parity tests show the other frameworks compute the same function and the same updates,
so their training repeats PyTorch's to float32 rounding)."""
import numpy as np
import pytest

from helpers import FOLDERS, STEPS, run_step
from common import data, synth

pytestmark = pytest.mark.slow
# 200 iterations of these take 27-48 s each on 2 cores with AVX-512 (twice that without):
# `make test-heavy`. In CI they are covered by parity (the same computation as PyTorch in
# float64) and their dry runs; the course's steps 02-05 learn in CI, and UNet (06, ~50 s
# here) learns in CI on the real photos instead (tests/test_datasets.py).
HEAVY = ("06_unet", "07_fcn8s", "08_segnet", "09_deeplabv3plus")
LEARN_ARGS = ["--size", "32", "--iters", "150"]
MULTICLASS_ARGS = ["--iters", "200"]
# FRRN learns in CI at 48x48: 17 s on 2 cores with AVX-512 (64x64 and 200 iterations: 31 s).
# Measured 2026-12-02, seed 0: newt IoU 0.50 against the 0.30 asked (64x64, 200 it: mIoU 0.61);
# at 32x32 it reached 0.37, too close to the threshold to stand for "learns".
STEP_ARGS = {"10_frrn": ["--size", "48", "--iters", "150"]}


def constant_predictor_best_iou(size):
    """The best newt IoU any constant prediction reaches on the test split."""
    test = data.load_split(synth.ensure_dataset(), "test", size)
    share = float(np.mean(test.masks > 0))
    return max(share, 0.0)   # all-newt: IoU = share; all-background: 0


@pytest.mark.parametrize("framework", [pytest.param(f, marks=pytest.mark.xdist_group(f))
                                       for f in FOLDERS])
def test_binarization_learns(framework, tmp_path):
    m = run_step(framework, "01_binarization", LEARN_ARGS + ["--out", str(tmp_path)])
    curve = np.array(m["loss_curve"])
    assert curve[-10:].mean() < 0.6 * curve[:10].mean(), "loss did not fall"
    newt = m["per_class_iou"]["newt"]
    assert newt > max(0.3, 3 * constant_predictor_best_iou(32)), m["per_class_iou"]
    assert m["test_loss"] < curve[:10].mean()


def newt_iou(m):
    """IoU of "any newt" vs background from a multiclass run's confusion matrix (rows: truth)."""
    c = np.asarray(m["confusion_matrix"], np.float64)
    tp, fn, fp = c[1:, 1:].sum(), c[1:, 0].sum(), c[0, 1:].sum()
    return tp / (tp + fn + fp)


def assert_finds_newts(m, report):
    """A multiclass run at 64x64 halved its loss and found the newts far better than any
    constant prediction could."""
    curve = np.array(m["loss_curve"])
    assert curve[-10:].mean() < 0.5 * curve[:10].mean(), "loss did not fall"
    assert newt_iou(m) > max(0.25, 2 * constant_predictor_best_iou(64)), report


@pytest.mark.xdist_group("pytorch")
@pytest.mark.parametrize("step", [pytest.param(s, marks=[pytest.mark.heavy] if s in HEAVY else [])
                                  for s in STEPS if s != "01_binarization"])
def test_multiclass_step_learns(step, tmp_path):
    """Every multiclass network finds the newts (telling the species apart is the hard part:
    see the gap test). The thresholds are relative to the best constant prediction (newt
    IoU = the newts' share of the test pixels, 0.15 on dataset v3). Measured on dataset v2
    (64x64, 200 iterations, seed 0): newt IoU 0.48 (FCN-8s), 0.34 (DeepLabv3+, the slowest)."""
    m = run_step("pytorch", step, STEP_ARGS.get(step, MULTICLASS_ARGS) + ["--out", str(tmp_path)])
    assert_finds_newts(m, m["per_class_iou"])


def species_accuracy(m):
    """Of the newt pixels a multiclass run found (truth and prediction both a newt),
    the fraction labelled with the right species."""
    c = np.asarray(m["confusion_matrix"], np.float64)
    return (c[1, 1] + c[2, 2]) / c[1:, 1:].sum()


GAP_ITERS = "1000"


@pytest.mark.heavy      # ~6 min on 2 cores (12 without AVX-512): `make test-heavy`, not CI
@pytest.mark.xdist_group("pytorch")
def test_dataset_needs_context_unet_beats_plain_network(tmp_path):
    """The embedded data must be hard: the 13x13-receptive-field network of step 2 is
    clearly worse than UNet at telling the species apart (same data, same schedule).

    Measured (64x64, PyTorch, one thread, 2026-11-21; seed 0 is what runs here, ~5 min):
      iterations, seed   plain mIoU / species   UNet mIoU / species
      1000, 0            0.645 / 0.75           0.820 / 0.96
      1000, 1            0.682 / 0.80           0.805 / 0.94
    UNet needs more than the default 500 iterations to learn to carry the species
    along the body: at the default 500 (`make full`, PyTorch) it leads by 0.085 (0.686 vs 0.600).
    (Steps 2 and 6 also run in test_multiclass_step_learns, 200 iterations, in CI.)"""
    args = ["--iters", GAP_ITERS]
    plain = run_step("pytorch", "02_multiclass", args + ["--out", str(tmp_path / "p")])
    unet = run_step("pytorch", "06_unet", args + ["--out", str(tmp_path / "u")])
    report = {"plain": (plain["per_class_iou"], species_accuracy(plain)),
              "unet": (unet["per_class_iou"], species_accuracy(unet))}
    for m in (plain, unet):   # both found the newts at all (as in test_multiclass_step_learns)
        assert_finds_newts(m, report)
    assert unet["mean_iou"] > 0.7, report
    assert unet["mean_iou"] > plain["mean_iou"] + 0.1, report
    assert species_accuracy(unet) > 0.9, report
    assert species_accuracy(unet) > species_accuracy(plain) + 0.1, report
