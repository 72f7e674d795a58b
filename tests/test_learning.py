"""Learning tests: a short real training on the embedded data must lower the loss and
segment newts far better than any constant prediction. A network that ignores its input
can only predict one class everywhere, which scores a newt IoU of (at best) the newt's
share of the pixels, and fails.

Binarisation learns in every framework; the multiclass steps 2-9 learn in PyTorch (the
parity tests show the other frameworks compute the same function and the same updates,
so their training repeats PyTorch's to float32 rounding)."""
import numpy as np
import pytest

from conftest import FOLDERS, STEPS, load_step
from common import data, synth

pytestmark = pytest.mark.slow
LEARN_ARGS = ["--size", "32", "--iters", "150"]


def constant_predictor_best_iou(size):
    """The best newt IoU any constant prediction reaches on the test split."""
    test = data.load_split(synth.ensure_dataset(), "test", size)
    share = float(np.mean(test.masks > 0))
    return max(share, 0.0)   # all-newt: IoU = share; all-background: 0


@pytest.mark.parametrize("framework", [pytest.param(f, marks=pytest.mark.xdist_group(f))
                                       for f in FOLDERS])
def test_binarization_learns(framework, tmp_path):
    m = load_step(framework, "01_binarization").main(LEARN_ARGS + ["--out", str(tmp_path)])
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


@pytest.mark.xdist_group("pytorch")
@pytest.mark.parametrize("step", [s for s in STEPS if s != "01_binarization"])
def test_multiclass_step_learns(step, tmp_path):
    """Every multiclass network finds the newts (telling the species apart is the hard part:
    see the gap test). Measured at 64x64, 200 iterations, seed 0 (2026-11-21): newt IoU 0.48
    (FCN-8s) and 0.34 (DeepLabv3+, the slowest starter); at 400: 0.57 (step 2), 0.64 (UNet)."""
    m = load_step("pytorch", step).main(["--iters", "200", "--out", str(tmp_path)])
    curve = np.array(m["loss_curve"])
    assert curve[-10:].mean() < 0.5 * curve[:10].mean(), "loss did not fall"
    assert newt_iou(m) > max(0.25, 2 * constant_predictor_best_iou(64)), m["per_class_iou"]


@pytest.mark.xdist_group("pytorch")
@pytest.mark.xfail(run=False, reason="issue #2 open: on synthetic data v2 at 400 iterations "
                   "UNet 0.476 vs plain 0.437 mean IoU (measured 2026-11-21); neither tells the "
                   "species apart yet (0.56 vs 0.52 of found newt pixels)")
def test_dataset_needs_context_unet_beats_plain_network(tmp_path):
    """The embedded data must be hard: the 13x13-receptive-field network of step 2 is
    clearly worse than UNet at telling the species apart (same data, same schedule)."""
    args = ["--iters", "400"]
    plain = load_step("pytorch", "02_multiclass").main(args + ["--out", str(tmp_path / "p")])
    unet = load_step("pytorch", "06_unet").main(args + ["--out", str(tmp_path / "u")])
    assert unet["mean_iou"] > 0.5, unet["per_class_iou"]
    assert unet["mean_iou"] > plain["mean_iou"] + 0.15, (plain["per_class_iou"],
                                                         unet["per_class_iou"])
