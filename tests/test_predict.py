"""--predict: your own photos of any size, weights of any framework, no training."""
import json

import numpy as np
import pytest
from PIL import Image

from common import palette as pal
from common.weights import load_npz
from helpers import require, run_step


def photo(h, w, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((h, w, 3)) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Weights of a short PyTorch run of 02_multiclass (any framework's would do)."""
    require("pytorch")
    out = tmp_path_factory.mktemp("trained")
    run_step("pytorch", "02_multiclass", ["--dry-run", "--size", "32", "--out", str(out)])
    return out / "weights.npz"


def test_predict_writes_photo_sized_masks_overlays_and_npz(tmp_path, weights):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(photo(37, 53)).save(photos / "odd.jpg")
    Image.fromarray(photo(20, 11, 1)).save(photos / "tall.png")
    (photos / "notes.txt").write_text("not a photo: skipped in a folder")
    out = tmp_path / "seen"
    preds = run_step("pytorch", "02_multiclass", ["--init-from", str(weights), "--predict",
                                                  str(photos), "--out", str(out)])
    assert sorted(preds) == ["odd", "tall"]
    arrays, meta = load_npz(out / "predictions.npz")
    assert list(arrays["names"]) == ["odd", "tall"] and meta["size"] == 32   # the weights' size
    for name, (h, w) in {"odd": (37, 53), "tall": (20, 11)}.items():
        mask = Image.open(out / f"{name}_mask.png")
        assert mask.mode == "P" and mask.size == (w, h)
        # read back by index, as the suite reads masks, it is the prediction
        index = pal.read_mask(out / f"{name}_mask.png", pal.PALETTE)
        np.testing.assert_array_equal(index, arrays[f"pred/{name}"])
        assert arrays[f"pred/{name}"].shape == (h, w) and index.max() <= 2
        assert Image.open(out / f"{name}_overlay.png").size == (w, h)
    assert not (out / "metrics.json").exists() and not (out / "weights.npz").exists()


def test_predict_with_weights_of_another_framework_gives_the_same_classes(tmp_path, weights):
    require("chainer")
    Image.fromarray(photo(40, 30, 2)).save(tmp_path / "p.png")
    got = {}
    for fw in ("pytorch", "chainer"):
        got[fw] = run_step(fw, "02_multiclass", ["--init-from", str(weights), "--predict",
                                                 str(tmp_path / "p.png"), "--out",
                                                 str(tmp_path / fw)])["p"]
    # float32 logits differ in the last bits between frameworks; an argmax may flip only on a tie
    assert (got["pytorch"] == got["chainer"]).mean() > 0.999


def test_predict_refuses_to_replace_files_and_bad_input(tmp_path, weights, capsys):
    Image.fromarray(photo(16, 16)).save(tmp_path / "a.png")
    out = tmp_path / "seen"
    args = ["--init-from", str(weights), "--predict", str(tmp_path / "a.png"), "--out", str(out)]
    run_step("pytorch", "02_multiclass", args)
    before = (out / "a_mask.png").read_bytes()
    cases = {
        "already holds": args,
        "needs --init-from": ["--predict", str(tmp_path / "a.png"), "--out", str(tmp_path / "x")],
        "no such file": ["--init-from", str(weights), "--predict", str(tmp_path / "nope.jpg"),
                         "--out", str(tmp_path / "x")],
    }
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg at all")
    cases["broken.jpg"] = ["--init-from", str(weights), "--predict", str(tmp_path / "broken.jpg"),
                           "--out", str(tmp_path / "y")]
    for expected, argv in cases.items():
        with pytest.raises(SystemExit) as e:
            run_step("pytorch", "02_multiclass", argv)
        assert e.value.code == 2
        assert expected in capsys.readouterr().err, expected
    assert (out / "a_mask.png").read_bytes() == before
    run_step("pytorch", "02_multiclass", args + ["--overwrite"])


def test_predict_refuses_weights_of_another_step(tmp_path, weights, capsys):
    Image.fromarray(photo(16, 16)).save(tmp_path / "a.png")
    with pytest.raises(SystemExit) as e:
        run_step("pytorch", "06_unet", ["--init-from", str(weights), "--predict",
                                        str(tmp_path / "a.png"), "--out", str(tmp_path / "o")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "saved by step 02_multiclass" in err and "06_unet" in err
    assert not (tmp_path / "o").exists()


def test_binary_step_draws_black_and_white(tmp_path):
    require("pytorch")
    run_step("pytorch", "01_binarization", ["--dry-run", "--size", "32", "--out",
                                            str(tmp_path / "run")])
    Image.fromarray(photo(21, 17)).save(tmp_path / "a.png")
    pred = run_step("pytorch", "01_binarization", [
        "--init-from", str(tmp_path / "run" / "weights.npz"), "--predict", str(tmp_path / "a.png"),
        "--out", str(tmp_path / "o")])["a"]
    assert pred.shape == (21, 17) and set(np.unique(pred)) <= {0, 1}
    assert Image.open(tmp_path / "o" / "a_mask.png").getpalette()[:6] == [0, 0, 0, 255, 255, 255]
    assert json.loads(json.dumps(load_npz(tmp_path / "o" / "predictions.npz")[1]))["classes"] == \
        ["background", "newt"]
