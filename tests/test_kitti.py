"""common/kitti.py: the KITTI road layout, its fixed split and its colour masks."""
import numpy as np
import pytest
from PIL import Image

from common import kitti
from common.errors import UserError

RED, MAGENTA, BLACK = (255, 0, 0), (255, 0, 255), (0, 0, 0)
STEMS = ["um_000000", "um_000001", "um_000002", "uu_000000", "uu_000001", "uu_000002"]


def road_mask() -> np.ndarray:
    """12x20: black top rows (don't care), red sides, magenta road in the middle."""
    rgb = np.zeros((12, 20, 3), np.uint8)
    rgb[3:] = RED
    rgb[6:, 5:15] = MAGENTA
    return rgb


def make_kitti(tmp_path):
    root = tmp_path / "data_road"
    images, gts = root / "training" / "image_2", root / "training" / "gt_image_2"
    images.mkdir(parents=True)
    gts.mkdir(parents=True)
    (root / "testing" / "image_2").mkdir(parents=True)
    Image.new("RGB", (20, 12), (9, 9, 9)).save(root / "testing" / "image_2" / "um_000099.png")
    for stem in STEMS:
        cat, num = stem.split("_")
        Image.new("RGB", (20, 12), (90, 90, 90)).save(images / f"{stem}.png")
        Image.fromarray(road_mask()).save(gts / f"{cat}_road_{num}.png")
    Image.fromarray(np.full((12, 20, 3), 77, np.uint8)).save(gts / "um_lane_000000.png")
    return root


def test_is_kitti(tmp_path):
    root = make_kitti(tmp_path)
    assert kitti.is_kitti(root) and kitti.is_kitti(root / "training")
    (tmp_path / "other" / "images").mkdir(parents=True)
    assert not kitti.is_kitti(tmp_path / "other")


def test_every_fifth_photo_is_test_and_lane_masks_are_ignored(tmp_path):
    root = make_kitti(tmp_path)
    train = kitti.kitti_pairs(root, "train")
    test = kitti.kitti_pairs(root, "test")
    assert [s for s, _, _ in test] == ["uu_000001"]          # sorted position 4
    assert [s for s, _, _ in train] == [s for s in STEMS if s != "uu_000001"]
    assert {s for s, _, _ in train} | {s for s, _, _ in test} == set(STEMS)
    for stem, image, mask in train + test:
        assert image.name == f"{stem}.png" and "_road_" in mask.name
        assert mask.parent.name == "gt_image_2" and image.parts[-3] == "training"
    # the training folder itself as root gives the same pairs
    assert kitti.kitti_pairs(root / "training", "test") == test


def test_a_larger_split_holds_out_positions_4_9_14(tmp_path):
    root = make_kitti(tmp_path)
    images, gts = root / "training" / "image_2", root / "training" / "gt_image_2"
    for num in range(3, 12):                                # um_000000 .. um_000011, uu_...
        Image.new("RGB", (20, 12)).save(images / f"um_{num:06d}.png")
        Image.fromarray(road_mask()).save(gts / f"um_road_{num:06d}.png")
    names = sorted(p.stem for p in images.iterdir())
    test = [s for s, _, _ in kitti.kitti_pairs(root, "test")]
    train = [s for s, _, _ in kitti.kitti_pairs(root, "train")]
    assert test == [names[4], names[9], names[14]]
    assert not set(test) & set(train) and sorted(test + train) == names


def test_mask_colours_become_indices_and_black_is_ignored(tmp_path):
    root = make_kitti(tmp_path)
    mask = kitti.read_kitti_mask(root / "training" / "gt_image_2" / "um_road_000000.png")
    assert mask.dtype == np.uint8 and mask.shape == (12, 20)
    assert mask[0, 0] == kitti.IGNORE == 255            # black: don't care
    assert mask[4, 0] == 0 and mask[11, 0] == 0          # red: not road
    assert mask[8, 10] == 1                              # magenta: road
    assert set(np.unique(mask)) == {0, 1, 255}
    # within the tolerance of 8 per channel (a lossy edit): still the same classes
    rgb = road_mask().astype(np.int16) + np.array([-7, 6, -5], np.int16)
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(tmp_path / "shifted.png")
    assert np.array_equal(kitti.read_kitti_mask(tmp_path / "shifted.png"), mask)
    assert kitti.CLASSES == ("not road", "road")
    assert kitti.PALETTE.tolist() == [[255, 0, 0], [255, 0, 255]]


def test_an_unknown_colour_names_the_file(tmp_path):
    rgb = road_mask()
    rgb[0, 0] = (0, 255, 0)
    Image.fromarray(rgb).save(tmp_path / "um_road_000007.png")
    with pytest.raises(UserError, match=r"um_road_000007\.png.*\(0, 255, 0\)"):
        kitti.read_kitti_mask(tmp_path / "um_road_000007.png")


def test_missing_folders_and_unpaired_photos_are_named(tmp_path):
    root = make_kitti(tmp_path)
    gts = root / "training" / "gt_image_2"
    (gts / "uu_road_000002.png").unlink()
    with pytest.raises(UserError, match=r"uu_000002\.png \(expected mask .*uu_road_000002\.png\)"):
        kitti.kitti_pairs(root, "train")
    Image.fromarray(road_mask()).save(gts / "uu_road_000002.png")
    (root / "training" / "image_2" / "um_000001.png").unlink()
    with pytest.raises(UserError, match=r"1 road mask\(s\) have no photo .*um_road_000001\.png"):
        kitti.kitti_pairs(root, "test")
    for mask in gts.iterdir():
        mask.unlink()
    gts.rmdir()
    with pytest.raises(UserError, match=r"gt_image_2 is missing"):
        kitti.kitti_pairs(root, "train")
    with pytest.raises(UserError, match=r"testing.*no masks"):
        kitti.kitti_pairs(root / "testing", "train")
    with pytest.raises(UserError, match=r"choose train or test"):
        kitti.kitti_pairs(root, "val")


def test_the_reader_and_a_step_script_take_the_kitti_layout(tmp_path):
    """--data data_road: two classes, black ignored, a dry run of a step trains and scores."""
    from common.data import load_split
    from helpers import require, run_step
    root = make_kitti(tmp_path)
    train, test = load_split(root, "train", 16), load_split(root, "test", 16)
    assert train.classes == ("not road", "road") and train.ignore_index == 255
    assert len(train) == 5 and test.names == ["uu_000001"]
    assert set(np.unique(train.masks)) == {0, 1, 255}
    require("pytorch")
    m = run_step("pytorch", "02_multiclass", ["--data", str(root), "--dry-run", "--size", "16",
                                              "--out", str(tmp_path / "run")])
    assert m["classes"] == ["not road", "road"] and m["ignore_index"] == 255
    assert np.asarray(m["confusion_matrix"]).shape == (2, 2)
