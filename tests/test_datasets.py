"""The original course's photos inside the project (--data imori), with their fixed split."""
import json
import shutil

import numpy as np
import pytest

from common import REPO, data
from common.errors import UserError
from helpers import require, run_step

IMORI = REPO / "datasets" / "imori"


def test_imori_by_name_and_its_documented_split():
    assert data.dataset_path("imori") == IMORI
    train = data.load_split(data.dataset_path("imori"), "train", 32)
    test = data.load_split(data.dataset_path("imori"), "test", 32)
    assert len(train) == 12 and len(test) == 4
    assert not set(train.names) & set(test.names), "a photo in both splits"
    for split in (train, test):   # both species in each split
        assert {n.split("_")[0] for n in split.names} == {"akahara", "madara"}
        assert set(np.unique(split.masks)) == {0, 1, 2}
    listed = json.loads((IMORI / "splits.json").read_text())
    assert sorted(test.names) == sorted(listed["test"])
    assert (IMORI / "LICENSE").exists() and "Nagaoka" in (IMORI / "LICENSE").read_text()


def test_a_folder_of_that_name_wins_over_the_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "imori").mkdir()
    assert data.dataset_path("imori").resolve() == (tmp_path / "imori").resolve()


def test_bad_split_lists_are_named(tmp_path):
    root = tmp_path / "mine"
    shutil.copytree(IMORI, root)
    (root / "splits.json").write_text(json.dumps({"train": ["akahara_0001", "nope_0009"]}))
    with pytest.raises(UserError, match=r"nope_0009"):
        data.load_split(root, "train", 16)
    with pytest.raises(UserError, match=r"no split 'test'; it lists train"):
        data.load_split(root, "test", 16)
    (root / "splits.json").write_text("{not json")
    with pytest.raises(UserError, match=r"cannot be read as JSON"):
        data.load_split(root, "train", 16)


@pytest.mark.xdist_group("pytorch")
def test_a_step_trains_on_the_real_photos(tmp_path):
    require("pytorch")
    m = run_step("pytorch", "02_multiclass", ["--data", "imori", "--dry-run", "--size", "32",
                                              "--out", str(tmp_path)])
    assert m["iters"] == 2 and str(IMORI) in json.dumps(m["options"])


# Measured (PyTorch, AMD EPYC, 2026-12-02), seeds 0-3 of this run: newt IoU 0.495, 0.549,
# 0.590, 0.574 (the all-newt constant: 0.306). Another CPU or thread count rounds float32
# otherwise and moves the run like another seed would, so the floor sits one seed spread
# (0.095) below the lowest of the four. Telling the species apart takes longer: the mean
# IoU after 150 iterations was 0.58-0.65 with two threads and 0.41 with one (make test),
# too spread to test here; the recipe's 4000-iteration runs show it (README). The training
# loss, last 10 iterations over the first 10: 0.19-0.23 measured; 0.7 leaves a factor 3.
LEARN_ON_PHOTOS = ["--data", "imori", "--size", "32", "--iters", "150"]
NEWT_FLOOR = 0.40


def test_unet_learns_on_the_real_photos(tmp_path):
    """A short PyTorch run on the 12 training photos finds the newts on the 4 it never saw
    far better than chance: a constant prediction scores a newt IoU of at most the newts'
    share of the pixels (all newt)."""
    require("pytorch")
    m = run_step("pytorch", "06_unet", LEARN_ON_PHOTOS + ["--out", str(tmp_path)])
    c = np.asarray(m["confusion_matrix"], np.float64)           # rows: truth
    share = c[1:].sum() / c.sum()
    newt = c[1:, 1:].sum() / (c[1:].sum() + c[0, 1:].sum())     # any newt vs background
    assert share < NEWT_FLOOR < newt, (newt, share, m["per_class_iou"])
    curve = np.array(m["loss_curve"])
    assert curve[-10:].mean() < 0.7 * curve[:10].mean(), "the training loss did not fall"
