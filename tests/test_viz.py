"""common.viz: exact colours on tiny inputs, and every picture is a real, non-blank PNG."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common import viz

REPO = Path(__file__).resolve().parents[1]
PALETTE = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255]], dtype=np.uint8)
NAMES = ["background", "newt", "rock"]


def toy_batch(n=2, h=16, w=20, seed=0):
    """images float [N, H, W, 3], truth/pred uint8 [N, H, W] (truth has a 255 border), probs [N, H, W]."""
    rng = np.random.default_rng(seed)
    images = rng.random((n, h, w, 3))
    truth = rng.integers(0, 3, size=(n, h, w)).astype(np.uint8)
    truth[:, 0, :] = 255
    pred = np.where(rng.random((n, h, w)) < 0.7, truth, rng.integers(0, 3, size=(n, h, w))).astype(np.uint8)
    pred[pred == 255] = 0
    probs = rng.random((n, h, w))
    return images, truth, pred, probs


def open_png(path):
    """Open path as a PNG; check it is not empty and not one flat colour; return RGB array."""
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.width > 0 and img.height > 0
        rgb = np.asarray(img.convert("RGB"))
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 1, f"{path} is a single colour"
    return rgb


# --- exact pixel values ------------------------------------------------------

def test_overlay_uint8_exact():
    image = np.full((2, 2, 3), 100, dtype=np.uint8)
    index = np.array([[0, 1], [2, 0]])
    out = viz.overlay(image, index, PALETTE, alpha=0.25)
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)
    # background untouched; class c: 0.75 * 100 + 0.25 * colour -> 75 or 75 + 63.75 = 138.75 -> 139
    np.testing.assert_array_equal(out, [[[100, 100, 100], [139, 75, 75]],
                                        [[75, 75, 139], [100, 100, 100]]])


def test_overlay_float_image_and_unlabelled_pixels():
    image = np.full((1, 3, 3), 0.2)  # 0.2 * 255 = 51
    index = np.array([[0, 1, 255]])
    out = viz.overlay(image, index, PALETTE, alpha=0.25)
    # 255 is outside the palette (unlabelled): left as is, like background.
    # class 1: 0.75 * 51 + 0.25 * 255 = 38.25 + 63.75 = 102 (red), 38.25 -> 38 (green, blue)
    np.testing.assert_array_equal(out, [[[51, 51, 51], [102, 38, 38], [51, 51, 51]]])


def test_overlay_alpha_extremes():
    image = np.full((1, 2, 3), 0.5)
    index = np.array([[0, 2]])
    np.testing.assert_array_equal(viz.overlay(image, index, PALETTE, alpha=1.0), [[[128, 128, 128], [0, 0, 255]]])
    np.testing.assert_array_equal(viz.overlay(image, index, PALETTE, alpha=0.0), [[[128, 128, 128]] * 2])


def test_error_map_exact():
    truth = np.array([[0, 1], [255, 2]])
    pred = np.array([[0, 0], [1, 2]])
    out = viz.error_map(truth, pred, ignore_index=255)
    C, W, I = viz.CORRECT_COLOUR, viz.WRONG_COLOUR, viz.IGNORE_COLOUR
    np.testing.assert_array_equal(out, [[C, W], [I, C]])
    assert out.dtype == np.uint8
    assert W == (255, 0, 0) and max(C) < 64 and min(I) > 160  # red, dark grey, light grey


def test_ema():
    assert viz.ema([3.0, 1.0, 2.0], 0) == [3.0, 1.0, 2.0]
    assert viz.ema([0.0, 10.0], 0.9) == pytest.approx([0.0, 1.0])
    assert viz.ema([2.0, float("nan"), 4.0], 0.5) == pytest.approx([2.0, 2.0, 3.0])  # NaN skipped
    with pytest.raises(ValueError):
        viz.ema([1.0], 1.0)


# --- files -------------------------------------------------------------------

def test_prediction_grid_png(tmp_path):
    images, truth, pred, _ = toy_batch()
    out = viz.save_prediction_grid(tmp_path / "grid.png", images, truth, pred, PALETTE, NAMES,
                                   title="toy", ignore_index=255)
    rgb = open_png(out)
    assert rgb.shape[1] > rgb.shape[0]  # 5 columns, 2 rows
    assert os.listdir(tmp_path) == ["grid.png"]  # no temporary file left


def test_probs_add_two_columns(tmp_path):
    images, truth, pred, probs = toy_batch()
    without = open_png(viz.save_prediction_grid(tmp_path / "a.png", images, truth, pred, PALETTE, NAMES,
                                                 ignore_index=255))
    with_probs = open_png(viz.save_prediction_grid(tmp_path / "b.png", images, truth, pred, PALETTE, NAMES,
                                                   probs=probs, ignore_index=255))
    extra = with_probs.shape[1] - without.shape[1]
    assert extra >= 2 * viz.CELL_INCHES * viz.DPI  # two more picture columns
    assert sorted(os.listdir(tmp_path)) == ["a.png", "b.png"]


def test_max_rows_limits_rows(tmp_path):
    images, truth, pred, _ = toy_batch(n=3)
    one = open_png(viz.save_prediction_grid(tmp_path / "one.png", images, truth, pred, PALETTE, NAMES,
                                            max_rows=1, ignore_index=255))
    three = open_png(viz.save_prediction_grid(tmp_path / "three.png", images, truth, pred, PALETTE, NAMES,
                                              ignore_index=255))
    assert three.shape[0] > one.shape[0]
    assert three.shape[1] == one.shape[1]


def test_comparison_grid_png(tmp_path):
    images, truth, pred, _ = toy_batch()
    preds = {"pytorch": pred, "tensorflow": np.roll(pred, 1, axis=2), "keras": pred, "chainer": pred}
    out = viz.save_comparison_grid(tmp_path / "cmp.png", images, truth, preds, PALETTE, NAMES,
                                   max_rows=2, ignore_index=255)
    open_png(out)
    assert os.listdir(tmp_path) == ["cmp.png"]


def test_curves_png(tmp_path):
    xs = list(range(0, 100, 10))
    curves = {"pytorch": (xs, [1.0 / (1 + x) for x in xs]), "keras": (xs, [1.2 / (1 + x) for x in xs])}
    open_png(viz.save_curves(tmp_path / "plain.png", curves, title="loss"))
    open_png(viz.save_curves(tmp_path / "smooth.png", curves, logy=True, smooth=0.6))
    assert sorted(os.listdir(tmp_path)) == ["plain.png", "smooth.png"]
    with pytest.raises(ValueError, match="iterations"):
        viz.save_curves(tmp_path / "bad.png", {"x": ([0, 1], [1.0])})


def test_bar_chart_png(tmp_path):
    values = {"cross-entropy": {"background": 0.97, "newt": 0.71, "rock": None},
              "dice": {"background": 0.95, "newt": 0.78}}
    open_png(viz.save_bar_chart(tmp_path / "bars.png", values, "IoU", title="per-class IoU"))
    assert os.listdir(tmp_path) == ["bars.png"]


def test_creates_missing_folder(tmp_path):
    images, truth, pred, _ = toy_batch(n=1)
    out = viz.save_prediction_grid(tmp_path / "run" / "epoch1" / "grid.png", images, truth, pred,
                                   PALETTE, NAMES, ignore_index=255)
    open_png(out)


def test_figures_are_closed_even_on_error(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt
    images, truth, pred, _ = toy_batch(n=1)
    viz.save_prediction_grid(tmp_path / "ok.png", images, truth, pred, PALETTE, NAMES, ignore_index=255)
    assert plt.get_fignums() == []
    # images outside [0, 1]: fails while drawing, after the figure exists
    with pytest.raises(ValueError, match="normalisation"):
        viz.save_prediction_grid(tmp_path / "bad.png", images * 3, truth, pred, PALETTE, NAMES)
    assert plt.get_fignums() == []

    def failing_replace(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(viz.os, "replace", failing_replace)
    with pytest.raises(OSError):
        viz.save_curves(tmp_path / "curves.png", {"a": ([0, 1], [1.0, 0.5])})
    assert plt.get_fignums() == []
    assert sorted(os.listdir(tmp_path)) == ["ok.png"]  # the failed write left no temp file


def test_bad_grid_inputs_raise(tmp_path):
    images, truth, pred, probs = toy_batch()
    with pytest.raises(ValueError, match="channels last"):
        viz.save_prediction_grid(tmp_path / "x.png", images.transpose(0, 3, 1, 2), truth, pred, PALETTE, NAMES)
    with pytest.raises(ValueError, match="probs"):
        viz.save_prediction_grid(tmp_path / "x.png", images, truth, pred, PALETTE, NAMES, probs=probs[:, :4])
    with pytest.raises(ValueError, match="normalisation"):
        viz.overlay(images[0] * 2 - 1, pred[0], PALETTE)


def test_works_with_mplbackend_unset(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = str(REPO)
    code = ("import sys, matplotlib; from common import viz; "
            "assert matplotlib.get_backend().lower() == 'agg', matplotlib.get_backend(); "
            "viz.save_curves(sys.argv[1], {'a': ([0, 1, 2], [3.0, 2.0, 1.0])})")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "c.png")], env=env, check=True, timeout=120)
    open_png(tmp_path / "c.png")
