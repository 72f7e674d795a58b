"""Issue #15, through the step scripts' command line (PyTorch, the cheapest to start):
a run never replaces another run unless asked, an unwritable --out is refused before
any work, photos are read as displayed (EXIF orientation), a bad --init-from file is
named for what it is, and Ctrl-C at any moment ends with one line and exit 130.
Each refusal is checked for its exit status, its message, and the earlier run's
files byte for byte."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from common import REPO
from helpers import FOLDERS, STEPS, require, run_step
from common import data, palette
from common.errors import UserError
from common.weights import load_npz
from test_data import save_p

pytestmark = pytest.mark.xdist_group("pytorch")
SMALL = ["--dry-run", "--size", "32"]


def script(step="02_multiclass", framework="pytorch"):
    return [sys.executable, str(REPO / framework / f"{step}.py")]


def cli(argv, step="02_multiclass", timeout=300):
    """Run the script as a user would: (exit status, stderr)."""
    r = subprocess.run(script(step) + argv, capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    return r.returncode, r.stderr


def run_main(argv, step="02_multiclass"):
    return run_step("pytorch", step, argv)


def files(folder):
    """{name: bytes} of every file in folder: the byte-for-byte snapshot."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def one_paragraph(err):
    """The error paragraph, whatever progress lines came before it."""
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished dry run of 02_multiclass; tests copy it, never change it."""
    require("pytorch")
    out = tmp_path_factory.mktemp("finished") / "run"
    run_main(SMALL + ["--out", str(out)])
    return out


def copy_run(src, dst):
    dst.mkdir(parents=True)
    for name, blob in files(src).items():
        (dst / name).write_bytes(blob)
    return dst


# --- 1. a run never replaces another run unless asked ------------------------------------

def test_evaluate_only_without_weights_is_refused_and_the_trained_run_kept(finished_run, tmp_path):
    out = copy_run(finished_run, tmp_path / "run")
    before = files(out)
    rc, err = cli(SMALL + ["--iters", "0", "--out", str(out)])
    msg = one_paragraph(err)
    assert rc == 2
    assert "no weights were given" in msg and f"--init-from {out / 'weights.npz'}" in msg
    assert files(out) == before
    # The way the message gives evaluates the trained weights, into another folder.
    again = run_main(SMALL + ["--iters", "0", "--init-from", str(out / "weights.npz"),
                              "--out", str(tmp_path / "eval")])
    trained = json.loads((out / "metrics.json").read_text())
    assert again["mean_iou"] == pytest.approx(trained["mean_iou"])
    assert files(out) == before


@pytest.mark.parametrize("extra", [[], ["--iters", "0", "--init-from", "WEIGHTS"]])
def test_a_new_run_into_a_finished_run_is_refused(finished_run, tmp_path, extra):
    out = copy_run(finished_run, tmp_path / "run")
    before = files(out)
    extra = [str(out / "weights.npz") if a == "WEIGHTS" else a for a in extra]
    rc, err = cli(SMALL + extra + ["--out", str(out)])
    msg = one_paragraph(err)
    assert rc == 2
    assert f"--out {out} already holds a finished run" in msg
    assert "--overwrite" in msg and f"--out {out}-2" in msg
    assert "--resume" not in msg          # a finished run has nothing to continue
    assert files(out) == before


def test_a_new_run_into_an_interrupted_run_is_refused_and_resume_still_works(finished_run, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.npz").write_bytes((finished_run / "checkpoint.npz").read_bytes())
    before = files(out)
    rc, err = cli(SMALL + ["--out", str(out)])
    msg = one_paragraph(err)
    assert rc == 2
    assert "already holds an interrupted run" in msg and "checkpoint at iteration 2" in msg
    assert "--resume" in msg and "--overwrite" in msg
    assert files(out) == before
    m = run_main(SMALL + ["--out", str(out), "--resume"])
    assert m["options"]["resumed_from"] == 2


def test_overwrite_replaces_every_file_of_the_old_run_and_nothing_else(finished_run, tmp_path):
    out = copy_run(finished_run, tmp_path / "run")
    (out / "notes.txt").write_text("mine\n")
    old = files(out)
    # An evaluation writes no loss.png and no checkpoint: the old ones must not stay behind.
    m = run_main(SMALL + ["--iters", "0", "--init-from", str(finished_run / "weights.npz"),
                          "--out", str(out), "--overwrite"])
    now = files(out)
    assert sorted(now) == ["metrics.json", "notes.txt", "predictions.npz", "predictions.png",
                           "weights.npz"]
    assert now["notes.txt"] == b"mine\n"
    assert json.loads(now["metrics.json"])["iters"] == 0 and m["loss_curve"] == []
    assert now["metrics.json"] != old["metrics.json"]


def test_resume_and_overwrite_exclude_each_other(finished_run, tmp_path, capsys):
    out = copy_run(finished_run, tmp_path / "run")
    before = files(out)
    with pytest.raises(SystemExit) as e:
        run_main(SMALL + ["--out", str(out), "--resume", "--overwrite"])
    assert e.value.code == 2 and "exclude each other" in capsys.readouterr().err
    assert files(out) == before


# --- 2. an unwritable --out is found before any work -------------------------------------

@pytest.mark.parametrize("case", ["regular file", "under a file", "/proc"])
def test_unwritable_out_is_refused_before_the_data_is_read(case, tmp_path):
    require("pytorch")
    blocker = tmp_path / "taken.txt"
    blocker.write_text("not a folder\n")
    out = {"regular file": blocker, "under a file": blocker / "run",
           "/proc": "/proc/segmentation-test-out"}[case]
    # A --data that does not exist: had the data been read first, its error would show.
    rc, err = cli(["--data", str(tmp_path / "no-such-data"), "--out", str(out)])
    msg = one_paragraph(err)
    assert rc == 2
    assert f"--out {out}" in msg and "no-such-data" not in msg
    assert {"regular file": "is a file, not a folder", "under a file": "is a file, not a folder",
            "/proc": "cannot be written"}[case] in msg
    assert blocker.read_text() == "not a folder\n"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root writes into a 0o555 folder; the /proc case covers a folder "
                           "that cannot be written")
def test_read_only_out_folder_is_refused(tmp_path, capsys):
    require("pytorch")
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        with pytest.raises(SystemExit) as e:
            run_main(["--out", str(out)])
    finally:
        out.chmod(0o755)
    assert e.value.code == 2 and "cannot be written" in capsys.readouterr().err


# --- 3. photos are read as displayed -----------------------------------------------------

COLOURS = np.array([(0, 0, 0), (200, 0, 0), (0, 200, 0)], np.uint8)
# EXIF orientation -> the stored pixels of a displayed array (viewers undo this).
STORED = {3: lambda a: np.rot90(a, 2), 6: lambda a: np.rot90(a, 1), 8: lambda a: np.rot90(a, -1)}


def rotated_sample(base, stem, h, w, orientation, seed, mask_as_stored=False):
    """A photo stored turned with an EXIF tag; its mask drawn on the displayed photo.

    The displayed photo is the mask in colours (class 1 red, 2 green), so a photo
    and mask that line up have the same class everywhere.
    """
    labels = np.random.default_rng(seed).choice(3, (h, w)).astype(np.uint8)
    labels[0, :] = 0
    labels[0, 0] = 1                                  # an asymmetric corner
    image = base / "images" / "akahara" / f"{stem}.png"
    image.parent.mkdir(parents=True, exist_ok=True)
    exif = Image.Exif()
    exif[palette.ORIENTATION_TAG] = orientation
    Image.fromarray(np.ascontiguousarray(STORED[orientation](COLOURS[labels]))).save(image, exif=exif)
    mask = STORED[orientation](labels) if mask_as_stored else labels
    save_p(np.ascontiguousarray(mask), base / "seg_images" / "akahara" / f"{stem}.png")
    return labels, image


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_photos_are_read_in_their_displayed_orientation(orientation, tmp_path):
    square, _ = rotated_sample(tmp_path / "train", "square", 12, 12, orientation, 0)
    wide, wide_path = rotated_sample(tmp_path / "train", "wide", 10, 16, orientation, 1)
    split = data.load_split(tmp_path, "train", 12)
    # The square one at its own size: every pixel's colour is its mask's class colour.
    k = split.names.index("square")
    np.testing.assert_array_equal(np.round(split.images[k] * 255).astype(np.uint8),
                                  COLOURS[split.masks[k]])
    np.testing.assert_array_equal(split.masks[k], square)
    # The non-square one is accepted (its mask fits the displayed photo) and read as shown.
    np.testing.assert_array_equal(np.round(data.read_image(wide_path) * 255).astype(np.uint8),
                                  COLOURS[wide])


def test_a_mask_carrying_the_tag_is_turned_too(tmp_path):
    labels = np.random.default_rng(3).choice(3, (6, 9)).astype(np.uint8)
    table = np.zeros((256, 3), np.uint8)
    table[:3] = palette.PALETTE
    img = Image.fromarray(np.ascontiguousarray(np.rot90(labels, 1)), "P")
    img.putpalette(table.ravel().tolist())
    exif = Image.Exif()
    exif[palette.ORIENTATION_TAG] = 6
    img.save(tmp_path / "m.png", exif=exif)
    np.testing.assert_array_equal(palette.read_mask(tmp_path / "m.png", palette.PALETTE), labels)


def test_rotated_photos_train_through_the_script(tmp_path):
    require("pytorch")
    for split in ("train", "test"):
        rotated_sample(tmp_path / "data" / split, "square", 12, 12, 6, 0)
        rotated_sample(tmp_path / "data" / split, "wide", 10, 16, 6, 1)
    rc, err = cli(SMALL + ["--data", str(tmp_path / "data"), "--out", str(tmp_path / "out")])
    assert rc == 0, err[-2000:]
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["train_images"] == 2


def test_a_mask_drawn_on_the_stored_photo_gets_the_orientation_explained(tmp_path, capsys):
    require("pytorch")
    for split in ("train", "test"):
        rotated_sample(tmp_path / "data" / split, "wide", 10, 16, 6, 1, mask_as_stored=True)
    with pytest.raises(SystemExit) as e:
        run_main(SMALL + ["--data", str(tmp_path / "data"), "--out", str(tmp_path / "out")])
    msg = one_paragraph(capsys.readouterr().err)
    assert e.value.code == 2
    assert "EXIF orientation tag (6: rotated 90 degrees clockwise)" in msg
    assert "Do not resize the mask" in msg
    assert not (tmp_path / "out").exists()


# --- 4. messages about the file the user gave --------------------------------------------

def bad_weights(kind, folder):
    path = folder / f"{kind.replace(' ', '-')}.npz"
    if kind == "text file":
        path.write_text("these are not weights\n")
    elif kind == "npy file":
        np.save(folder / "a.npy", np.zeros(3))
        (folder / "a.npy").rename(path)
    elif kind == "empty file":
        path.write_bytes(b"")
    elif kind == "object array":
        np.savez(path, w=np.array([{"x": 1}], dtype=object))
    elif kind == "broken link":
        path.symlink_to(folder / "gone.npz")
    return path


@pytest.mark.parametrize("kind,expect", [
    ("text file", "is not a NumPy .npz archive"),
    ("npy file", "is a single-array .npy file"),
    ("empty file", "it is empty"),
    ("object array", "holds Python objects (pickled arrays), which are never loaded"),
    ("broken link", "is a broken symbolic link"),
])
def test_init_from_a_file_that_is_no_weights_says_what_it_is(kind, expect, tmp_path, capsys):
    require("pytorch")
    path = bad_weights(kind, tmp_path)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        run_main(["--init-from", str(path), "--out", str(out), "--data", str(tmp_path / "none")])
    msg = one_paragraph(capsys.readouterr().err)
    assert e.value.code == 2
    assert str(path) in msg and expect in msg
    assert "allow_pickle" not in msg and "unsafe" not in msg
    assert not out.exists()


def test_init_from_a_text_file_through_the_script(tmp_path):
    require("pytorch")
    path = bad_weights("text file", tmp_path)
    rc, err = cli(["--init-from", str(path), "--out", str(tmp_path / "out")])
    assert rc == 2 and "is not a NumPy .npz archive" in one_paragraph(err)
    assert "allow_pickle" not in err


def test_a_broken_link_as_data_is_named(tmp_path, capsys):
    require("pytorch")
    (tmp_path / "data").symlink_to(tmp_path / "moved-away")
    with pytest.raises(SystemExit) as e:
        run_main(["--data", str(tmp_path / "data"), "--out", str(tmp_path / "out")])
    assert e.value.code == 2 and "is a broken symbolic link" in capsys.readouterr().err


def test_a_broken_link_among_the_photos_is_named(tmp_path):
    base = tmp_path / "train"
    rotated_sample(base, "a", 6, 6, 3, 0)
    (base / "images" / "akahara" / "b.png").symlink_to(tmp_path / "gone.png")
    with pytest.raises(UserError, match="broken symbolic link.*b.png"):
        data.load_split(tmp_path, "train", 6)


# --- 5. Ctrl-C at any moment: one line, exit 130 -----------------------------------------

# Runs a step script as the program, with Ctrl-C (a real SIGINT to itself) delivered at a
# chosen moment: "import:<module>" the moment that module starts being imported (before
# the framework finished loading), "call:<function>" when common.runner.<function> is called.
DRIVER = r'''
import os, runpy, signal, sys
script, when, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
kind, _, name = when.partition(":")
def ctrl_c(*_):
    os.kill(os.getpid(), signal.SIGINT)
if kind == "import":
    class Hook:
        def find_spec(self, fullname, path=None, target=None):
            if fullname == name:
                ctrl_c()
            return None
    sys.meta_path.insert(0, Hook())
else:
    from common import runner
    real = getattr(runner, name)
    def patched(*a, **k):
        ctrl_c()
        return real(*a, **k)
    setattr(runner, name, patched)
sys.argv = [script] + argv
sys.path.insert(0, os.path.dirname(os.path.abspath(script)))   # what `python script.py` does
runpy.run_path(script, run_name="__main__")
'''


def ctrl_c_at(when, argv, tmp_path, framework="pytorch", step="02_multiclass"):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    r = subprocess.run([sys.executable, str(driver), str(REPO / framework / f"{step}.py"), when]
                       + argv, capture_output=True, text=True, timeout=300)
    return r.returncode, r.stderr


FRAMEWORK_MODULE = {"pytorch": "torch", "tensorflow": "tensorflow", "keras": "keras",
                    "chainer": "chainer"}


@pytest.mark.parametrize("framework", FOLDERS)
def test_ctrl_c_while_the_framework_is_imported(framework, tmp_path):
    require(framework)
    rc, err = ctrl_c_at(f"import:{FRAMEWORK_MODULE[framework]}", ["--out", str(tmp_path / "o")],
                        tmp_path, framework)
    assert rc == 130, err[-2000:]
    assert "Traceback" not in err
    assert err.strip() == "interrupted (Ctrl-C); nothing was written."
    assert not (tmp_path / "o").exists()


def test_ctrl_c_while_the_data_is_read_leaves_the_earlier_run_whole(finished_run, tmp_path):
    out = copy_run(finished_run, tmp_path / "run")
    before = files(out)
    rc, err = ctrl_c_at("call:load_data", SMALL + ["--out", str(out), "--overwrite"], tmp_path)
    assert rc == 130 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"interrupted (Ctrl-C); {out} is as it was."
    assert files(out) == before


def test_ctrl_c_while_the_outputs_are_written_keeps_the_checkpoint(tmp_path):
    require("pytorch")
    out = tmp_path / "run"
    rc, err = ctrl_c_at("call:write_outputs", SMALL + ["--out", str(out)], tmp_path)
    assert rc == 130 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted (Ctrl-C); training finished") and "--resume" in last
    assert sorted(files(out)) == ["checkpoint.npz"]
    assert load_npz(out / "checkpoint.npz")[1]["iteration"] == 2
    rc, err = cli(SMALL + ["--out", str(out), "--resume"])
    assert rc == 0, err[-2000:]
    assert json.loads((out / "metrics.json").read_text())["options"]["resumed_from"] == 2


def test_every_step_script_installs_the_ctrl_c_handler_first():
    for f in FOLDERS:
        for s in STEPS:
            lines = (REPO / f / f"{s}.py").read_text().splitlines()
            first = next(ln for ln in lines if ln.startswith(("import ", "from ")))
            assert first.startswith("import common.ctrl_c"), f"{f}/{s}.py imports {first!r} first"


def test_keyboard_interrupt_reaching_main_is_one_line_only_in_a_program(capsys):
    from common.errors import exit_on_user_error

    def main():
        raise KeyboardInterrupt
    main.__module__ = "__main__"          # as when the script is the running program
    with pytest.raises(SystemExit) as e:
        exit_on_user_error(main)()
    assert e.value.code == 130 and "interrupted (Ctrl-C)" in capsys.readouterr().err
    main.__module__ = "some_test_module"  # imported: the caller's Ctrl-C handling stays
    with pytest.raises(KeyboardInterrupt):
        exit_on_user_error(main)()
