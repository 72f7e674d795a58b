"""The shared runner, driven through PyTorch (the cheapest framework to start):
resume after a real Ctrl-C, divergence, bad input, --init-from, --iters 0."""
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from common import REPO
from common.weights import load_npz
from helpers import load_step, require, run_step

pytestmark = pytest.mark.xdist_group("pytorch")


def script(step):
    return [sys.executable, str(REPO / "pytorch" / f"{step}.py")]


def run_main(step, argv):
    return run_step("pytorch", step, argv)


def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path):
    require("pytorch")
    common = ["--size", "32", "--iters", "150", "--checkpoint-every", "5"]
    a, b = tmp_path / "a", tmp_path / "b"
    proc = subprocess.Popen(script("03_nearest") + common + ["--out", str(a)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (a / "checkpoint.npz").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "--resume" in err and "Traceback" not in err
    done = load_npz(a / "checkpoint.npz")[1]["iteration"]
    assert 5 <= done < 150
    assert not (a / "metrics.json").exists()

    r = subprocess.run(script("03_nearest") + common + ["--out", str(a), "--resume"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    run_main("03_nearest", common + ["--out", str(b)])
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
    assert ma["options"]["resumed_from"] == done
    np.testing.assert_allclose(ma["loss_curve"], mb["loss_curve"], rtol=1e-5)
    wa, wb = load_npz(a / "weights.npz")[0], load_npz(b / "weights.npz")[0]
    for k in wb:
        np.testing.assert_allclose(wa[k], wb[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_resume_with_other_options_is_refused(tmp_path, capsys):
    require("pytorch")
    run_main("02_multiclass", ["--dry-run", "--size", "32", "--out", str(tmp_path)])
    with pytest.raises(SystemExit) as e:
        run_main("02_multiclass", ["--dry-run", "--size", "32", "--lr", "0.1", "--resume",
                                   "--out", str(tmp_path)])
    assert e.value.code == 2
    assert "--lr" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        run_main("02_multiclass", ["--dry-run", "--size", "32", "--perturb-init", "1e-7",
                                   "--resume", "--out", str(tmp_path)])
    assert e.value.code == 2 and "--perturb-init 0.0 (now 1e-07)" in capsys.readouterr().err


def test_perturb_init_starts_a_rounding_error_away(tmp_path):
    """--perturb-init moves the start (compare.py --noise-floor); 0 is the seed's weights."""
    require("pytorch")
    argv = ["--dry-run", "--size", "32", "--iters", "1", "--lr", "1e-9"]   # ~ the start itself
    runs = {eps: run_main("02_multiclass", argv + ["--perturb-init", eps, "--out", str(tmp_path / eps)])
            for eps in ("0", "1e-3")}
    assert runs["1e-3"]["options"]["perturb_init"] == 1e-3
    w0, w1 = (load_npz(tmp_path / eps / "weights.npz")[0] for eps in ("0", "1e-3"))
    k = next(k for k in w0 if k.endswith(".weight"))
    rel = np.abs(w1[k] / w0[k] - 1)
    assert 1e-5 < np.median(rel) < 2e-3, np.median(rel)   # |N(0, 1)| has median 0.67


def test_non_finite_loss_stops_with_advice_and_keeps_checkpoint(tmp_path, capsys, monkeypatch):
    require("pytorch")
    load_step("pytorch", "02_multiclass")
    import torch_trainer
    real = torch_trainer.Trainer.train_step
    calls = []

    def exploding(self, x, y):
        calls.append(1)
        return float("nan") if len(calls) == 4 else real(self, x, y)
    monkeypatch.setattr(torch_trainer.Trainer, "train_step", exploding)
    with pytest.raises(SystemExit) as e:
        run_step("pytorch", "02_multiclass", ["--size", "32", "--iters", "10",
                                              "--checkpoint-every", "2", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert e.value.code == 2
    assert "iteration 4" in err and "--lr 0.001" in err and "iteration 2 is kept" in err
    assert load_npz(tmp_path / "checkpoint.npz")[1]["iteration"] == 2
    assert not (tmp_path / "metrics.json").exists()


def test_a_real_divergence_is_caught(tmp_path, capsys):
    """lr 10 without BatchNorm before the head blows up within a few steps."""
    require("pytorch")
    with pytest.raises(SystemExit) as e:
        run_main("01_binarization", ["--size", "16", "--iters", "200", "--lr", "10",
                                     "--momentum", "0.99", "--out", str(tmp_path)])
    assert e.value.code == 2
    assert "lower learning rate" in capsys.readouterr().err


@pytest.mark.parametrize("argv,expect", [
    # --overwrite: the earlier run may be replaced, but only once the new run writes a file
    (["--data", "/nonexistent/dir", "--overwrite"], "/nonexistent/dir"),
    (["--size", "50", "--overwrite"], "--size 48 or --size 64"),
    (["--lr", "0"], "out of range"),
    (["--lr", "nan"], "not finite"),
    (["--batch-size", "0"], "out of range"),
    (["--iters", "-3"], "out of range"),
    (["--resume"], "no checkpoint"),
    ([], "already holds a finished run"),
    (["--iters", "0", "--overwrite"], "no weights were given"),
])
def test_bad_input_exits_2_and_leaves_out_untouched(argv, expect, tmp_path, capsys):
    require("pytorch")
    (tmp_path / "metrics.json").write_text("earlier run\n")
    with pytest.raises(SystemExit) as e:
        run_main("06_unet", argv + ["--out", str(tmp_path)])
    assert e.value.code == 2
    assert expect in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
    assert (tmp_path / "metrics.json").read_text() == "earlier run\n"


def test_init_from_another_step_lists_the_mismatch(tmp_path, capsys):
    require("pytorch")
    run_main("02_multiclass", ["--dry-run", "--out", str(tmp_path / "s2")])
    with pytest.raises(SystemExit) as e:
        run_main("03_nearest", ["--dry-run", "--init-from", str(tmp_path / "s2" / "weights.npz"),
                                "--out", str(tmp_path / "s3")])
    err = capsys.readouterr().err
    assert e.value.code == 2
    assert "02_multiclass" in err and "missing: dec.0.bn, dec.0.conv" in err and "unexpected: trunk.0.bn" in err


def test_init_from_with_zero_iters_reproduces_predictions(tmp_path):
    require("pytorch")
    a = run_main("04_transposed_conv", ["--dry-run", "--out", str(tmp_path / "a")])
    b = run_main("04_transposed_conv", ["--dry-run", "--iters", "0", "--out", str(tmp_path / "b"),
                                        "--init-from", str(tmp_path / "a" / "weights.npz")])
    pa = np.load(tmp_path / "a" / "predictions.npz")["pred"]
    pb = np.load(tmp_path / "b" / "predictions.npz")["pred"]
    assert b["iters"] == 0 and b["final_loss"] is None
    assert np.array_equal(pa, pb) and a["mean_iou"] == pytest.approx(b["mean_iou"])


def test_script_error_has_no_traceback(tmp_path):
    require("pytorch")
    r = subprocess.run(script("06_unet") + ["--size", "40", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "--size 32 or --size 48" in r.stderr
