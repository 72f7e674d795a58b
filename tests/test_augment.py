"""--augment (common/augment.py): deterministic, the same everywhere, masks never interpolated,
image and mask aligned; --recipe applies its options unless a flag says otherwise."""
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from common import REPO, cli
from common.augment import NAMES, Augment
from common.data import Batches, Split
from common.recipes import RECIPES
from helpers import require, run_step

COLOURS = np.array([(0.05, 0.05, 0.05), (0.9, 0.1, 0.1), (0.1, 0.8, 0.2)], np.float32)


def pattern_split(n=3, size=48):
    """Photos painted in their mask's class colours: an off-centre square (akahara) and
    a bar (madara) on background, different for each photo, nothing symmetric."""
    masks = np.zeros((n, size, size), np.uint8)
    for k in range(n):
        masks[k, 6 + 2 * k:20 + 2 * k, 8:22] = 1
        masks[k, 30:36, 4 + 3 * k:44] = 2
    images = COLOURS[masks].copy()
    return Split(images=images, masks=masks, names=[f"p{k}" for k in range(n)],
                 classes=("background", "akahara", "madara"),
                 palette=np.array([(0, 0, 0), (128, 0, 0), (0, 128, 0)], np.uint8),
                 ignore_index=None, root=REPO)


def digest(x, y) -> str:
    return hashlib.sha256(np.ascontiguousarray(x).tobytes() + np.ascontiguousarray(y).tobytes()).hexdigest()


@pytest.mark.parametrize("name", NAMES)
def test_a_batch_depends_only_on_seed_and_iteration(name):
    split = pattern_split()
    a, b = Batches(split, 4, seed=7, augment=name), Batches(split, 4, seed=7, augment=name)
    for i in (0, 5, 3):                          # any order: a resumed run asks for i first
        np.testing.assert_array_equal(a.batch(i)[0], b.batch(i)[0])
        np.testing.assert_array_equal(a.batch(i)[1], b.batch(i)[1])
    if name != "none":
        other = Batches(split, 4, seed=8, augment=name)
        assert digest(*a.batch(2)) != digest(*other.batch(2))
        assert digest(*a.batch(2)) != digest(*a.batch(3))


def test_photos_are_the_same_in_a_fresh_process():
    """What a run in another framework (another process) gets: the same bytes."""
    code = ("from test_augment import pattern_split, digest;"
            "from common.data import Batches;"
            "b = Batches(pattern_split(), 4, seed=3, augment='photos');"
            "print(digest(*b.batch(11)))")
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests")}      # test_augment, helpers
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    here = Batches(pattern_split(), 4, seed=3, augment="photos")
    assert r.stdout.strip() == digest(*here.batch(11))


def test_photos_never_interpolate_a_mask():
    # Columns alternate background (0) and madara (2): an interpolated mask would show a 1.
    split = pattern_split()
    split.masks[:] = np.tile(np.array([0, 2], np.uint8), (48, 24))
    batches = Batches(split, 4, seed=0, augment="photos")
    moved = 0
    for i in range(25):
        x, y = batches.batch(i)
        assert y.dtype == np.int32 and x.dtype == np.float32
        assert set(np.unique(y)) <= {0, 2}, i
        assert 0.0 <= x.min() and x.max() <= 1.0
        moved += not np.array_equal(y, split.masks[batches.indices(i)])
    assert moved > 20      # the transforms really ran


def interior(mask, k):
    """Pixels of class k whose 5x5 neighbourhood is all class k (away from blended borders)."""
    inside = mask == k
    h, w = mask.shape
    out = inside.copy()
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            shifted = np.zeros_like(inside)
            shifted[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
                inside[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
            out &= shifted
    return out


def test_photos_keep_image_and_mask_aligned():
    """After scale, shift, rotation, flips and colour, every pixel deep inside a mask region
    still shows that class's (jittered) colour: one colour per class, distinct classes."""
    split = pattern_split()
    batches = Batches(split, 3, seed=1, augment="photos")
    checked = 0
    for i in range(12):
        x, y = batches.batch(i)
        for img, mask in zip(x, y):
            means = []
            for k in range(3):
                px = img[interior(mask, k)]
                if len(px) < 4:
                    continue
                # Colour jitter acts on colours alone: one input colour -> one output colour.
                assert px.std(axis=0).max() < 0.02, (i, k, px.std(axis=0))
                means.append(px.mean(axis=0))
                checked += 1
            for a in range(len(means)):
                for b in range(a + 1, len(means)):
                    assert np.abs(means[a] - means[b]).max() > 0.1
    assert checked > 60


def test_a_misaligned_mask_would_be_caught():
    """The alignment check above fails when the mask does not follow the image."""
    split = pattern_split()
    x, y = Batches(split, 3, seed=1, augment="photos").batch(0)
    y = np.rot90(y, 1, axes=(1, 2))
    worst = max(x[j][interior(y[j], k)].std(axis=0).max() for j in range(3) for k in range(3)
                if interior(y[j], k).sum() >= 4)
    assert worst >= 0.02


def test_flip_is_the_exercise_default_and_no_flip_is_none():
    assert cli.parse_args("06_unet", "pytorch", []).augment == "flip"
    assert cli.parse_args("06_unet", "pytorch", ["--no-flip"]).augment == "none"
    split = pattern_split()
    plain = Batches(split, 4, seed=2, flip=False)
    np.testing.assert_array_equal(plain.batch(1)[0], split.images[plain.indices(1)])
    with pytest.raises(SystemExit):
        cli.parse_args("06_unet", "pytorch", ["--no-flip", "--augment", "photos"])
    with pytest.raises(ValueError):
        Augment("mixup")


def old_flips(split, batches, i):
    """Batches.batch before --augment existed (common/data.py at 95b5085), written out."""
    idx = batches.indices(i)
    x, y = split.images[idx], split.masks[idx].astype(np.int32)
    rng = np.random.default_rng([batches.seed, i, 1])
    left_right, up_down = rng.random(len(idx)) < 0.5, rng.random(len(idx)) < 0.5
    x[left_right], y[left_right] = x[left_right, :, ::-1], y[left_right, :, ::-1]
    x[up_down], y[up_down] = x[up_down, ::-1], y[up_down, ::-1]
    return x, y


def test_flip_is_bit_for_bit_the_flips_of_earlier_runs():
    split = pattern_split(5)
    batches = Batches(split, 4, seed=9)
    for i in range(6):
        for new, old in zip(batches.batch(i), old_flips(split, batches, i)):
            np.testing.assert_array_equal(new, old)


def test_recipe_fills_in_only_what_is_not_given():
    photos = RECIPES["photos"]
    args = cli.parse_args("06_unet", "pytorch", ["--recipe", "photos"])
    for k, v in photos.items():
        assert getattr(args, k) == v, k
    args = cli.parse_args("06_unet", "pytorch", ["--recipe", "photos", "--iters", "7",
                                                 "--augment", "flip"])
    assert args.iters == 7 and args.augment == "flip"
    assert cli.parse_args("06_unet", "pytorch", []).recipe is None


def test_recipe_and_augment_are_recorded_and_resume_checks_them(tmp_path, capsys):
    require("pytorch")
    out = tmp_path / "run"
    m = run_step("pytorch", "02_multiclass", ["--dry-run", "--size", "32", "--recipe", "photos",
                                              "--out", str(out)])
    assert m["options"]["recipe"] == "photos" and m["options"]["augment"] == "photos"
    with pytest.raises(SystemExit) as e:
        run_step("pytorch", "02_multiclass", ["--dry-run", "--size", "32", "--recipe", "photos",
                                              "--augment", "flip", "--resume", "--out", str(out)])
    assert e.value.code == 2
    assert "--augment photos (now flip)" in capsys.readouterr().err


# PyTorch (eval()/train() switches) and Keras (predict_on_batch); TensorFlow and Chainer pass
# training=False / chainer.config.train explicitly: make test-heavy runs them too.
@pytest.mark.parametrize("framework", ["pytorch", "keras",
                                       pytest.param("tensorflow", marks=pytest.mark.heavy),
                                       pytest.param("chainer", marks=pytest.mark.heavy)])
def test_eval_every_changes_nothing_in_the_training(framework, tmp_path):
    """Scoring the test split between steps (BatchNorm in inference mode) leaves the weights,
    the running statistics and so the rest of the training as they were."""
    from common.weights import load_npz
    require(framework)
    common_args = ["--dry-run", "--size", "32", "--augment", "photos"]
    a = run_step(framework, "02_multiclass", common_args + ["--eval-every", "1",
                                                            "--out", str(tmp_path / "a")])
    b = run_step(framework, "02_multiclass", common_args + ["--out", str(tmp_path / "b")])
    assert [e[0] for e in a["eval_curve"]] == [1, 2] and b["eval_curve"] == []
    assert a["eval_curve"][-1][1] == pytest.approx(a["mean_iou"])
    assert a["loss_curve"] == b["loss_curve"]
    wa, wb = load_npz(tmp_path / "a" / "weights.npz")[0], load_npz(tmp_path / "b" / "weights.npz")[0]
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k], err_msg=k)
    assert (tmp_path / "a" / "eval_iou.png").is_file()


# Chainer keeps its momentum scaled by lr (the case that can go wrong); PyTorch in make test-heavy
@pytest.mark.parametrize("framework", ["chainer", pytest.param("pytorch", marks=pytest.mark.heavy)])
def test_a_poly_run_interrupted_and_resumed_equals_one_run(framework, tmp_path, monkeypatch):
    """Ctrl-C after iteration 2 of 5 under --lr-schedule poly, then --resume: the same
    learning rates and momentum (Chainer keeps it scaled by lr) as one uninterrupted run."""
    import os
    import signal
    from common import driver
    from common.weights import load_npz
    require(framework)
    argv = ["--size", "32", "--iters", "5", "--lr-schedule", "poly", "--augment", "photos"]
    whole = run_step(framework, "02_multiclass", argv + ["--out", str(tmp_path / "whole")])
    engine = driver.engine(framework)
    real, calls = engine.Trainer.train_step, []

    def interrupted(self, x, y):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)      # StopOnSigint: stop after this iteration
        return real(self, x, y)
    monkeypatch.setattr(engine.Trainer, "train_step", interrupted)
    with pytest.raises(SystemExit) as e:
        run_step(framework, "02_multiclass", argv + ["--out", str(tmp_path / "split")])
    assert e.value.code == 130
    monkeypatch.setattr(engine.Trainer, "train_step", real)
    resumed = run_step(framework, "02_multiclass", argv + ["--out", str(tmp_path / "split"),
                                                           "--resume"])
    assert resumed["options"]["resumed_from"] == 2
    np.testing.assert_allclose(resumed["loss_curve"], whole["loss_curve"], rtol=1e-6)
    wa = load_npz(tmp_path / "whole" / "weights.npz")[0]
    wb = load_npz(tmp_path / "split" / "weights.npz")[0]
    for k in wa:
        np.testing.assert_allclose(wb[k], wa[k], rtol=1e-5, atol=1e-7, err_msg=k)


def test_compare_reuses_a_recipe_run_only_with_what_the_recipe_means_today(tmp_path):
    """A run recorded as --recipe photos is reused only if its options are the recipe's
    today (the recipe changed once: poly, then constant lr)."""
    import argparse
    import json
    from common import runs, synth
    args = argparse.Namespace(iters=4000, seed=0, dry_run=False, recipe="photos", data=None)
    base = {"iters": 4000, "seed": 0, "dry_run": False, "recipe": "photos", "data": "None",
            "init_from": None, "synth_version": synth.version_for(None),
            **{k: v for k, v in RECIPES["photos"].items() if k != "iters"}}
    cases = {"as today": ({}, True), "recorded before lr_schedule existed": ({}, True),
             "poly": ({"lr_schedule": "poly"}, False), "flips only": ({"augment": "flip"}, False),
             "no recipe": ({"recipe": None}, False)}
    for name, (change, reused) in cases.items():
        out = tmp_path / name.replace(" ", "_")
        out.mkdir()
        options = {**base, **change}
        if name == "as today":
            options["lr_schedule"] = "constant"
        (out / "metrics.json").write_text(json.dumps({"options": options}))
        assert (runs.finished(out, args) is not None) == reused, name
