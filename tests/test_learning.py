"""Learning tests: a short real training on the embedded data must lower the loss and
segment newts far better than any constant prediction. A network that ignores its input
can only predict one class everywhere, which scores a newt IoU of (at best) the newt's
share of the pixels, and fails."""
import numpy as np
import pytest

from conftest import FOLDERS, load_step
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


@pytest.mark.xdist_group("pytorch")
@pytest.mark.xfail(strict=False, reason="synthetic data still being calibrated for this gap "
                   "(issue #2); not yet measured at 400 iterations")
def test_dataset_needs_context_unet_beats_plain_network(tmp_path):
    """The embedded data must be hard: the 13x13-receptive-field network of step 2 is
    clearly worse than UNet at telling the species apart (same data, same schedule)."""
    args = ["--iters", "400"]
    plain = load_step("pytorch", "02_multiclass").main(args + ["--out", str(tmp_path / "p")])
    unet = load_step("pytorch", "06_unet").main(args + ["--out", str(tmp_path / "u")])
    assert unet["mean_iou"] > 0.5, unet["per_class_iou"]
    assert unet["mean_iou"] > plain["mean_iou"] + 0.15, (plain["per_class_iou"],
                                                         unet["per_class_iou"])
