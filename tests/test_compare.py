"""compare.py on a tiny schedule: runs, a failing run, reuse, the report."""
import json
import re
import sys

import pytest

from helpers import require, script
from common import synth

compare = script("compare.py")

pytestmark = pytest.mark.xdist_group("pytorch")


def test_tiny_comparison_with_a_failing_and_a_reused_run(tmp_path, monkeypatch, capsys):
    require("pytorch")
    real = compare.command

    def command(label, step, args, out):   # "tensorflow" stands for a run that crashes
        if label == "tensorflow":
            return [sys.executable, "-c", "import sys; print('error: boom (simulated)'); sys.exit(2)"]
        return real(label, step, args, out)
    monkeypatch.setattr(compare, "command", command)
    monkeypatch.setattr(compare, "installed", lambda *a: True)
    # one step (each run is a subprocess of a few seconds; the report's code has no per-step case)
    argv = ["--dry-run", "--steps", "02", "--frameworks", "pytorch,tensorflow",
            "--out", str(tmp_path)]

    first = compare.main(argv)
    assert first["02_multiclass", "pytorch"]["status"] == "ran"
    assert first["02_multiclass", "tensorflow"]["status"] == "failed"
    assert "boom" in first["02_multiclass", "tensorflow"]["error"]

    md = (tmp_path / "report.md").read_text()
    assert re.search(r"\| 02_multiclass \| pytorch \| \d\.\d{4} \|", md)
    assert "| 02_multiclass | tensorflow | failed: error: boom" in md
    assert "## Failed runs" in md
    assert (tmp_path / "02_multiclass_predictions.png").stat().st_size > 1000
    assert (tmp_path / "02_multiclass_loss.png").stat().st_size > 1000
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2
    assert not re.search(r"(src|href)=[\"']?https?:", page), "report.html must work offline"

    log = tmp_path / "logs" / "pytorch-02_multiclass.log"
    stamp = log.stat().st_mtime_ns
    second = compare.main(argv)
    assert second["02_multiclass", "pytorch"]["status"] == "reused"
    assert log.stat().st_mtime_ns == stamp
    assert second["02_multiclass", "tensorflow"]["status"] == "failed"   # failures are retried
    # A run on an older version of the embedded dataset is not reused, and not replaced
    # unasked: nothing runs, the folder is named, --overwrite replaces it.
    metrics = tmp_path / "runs" / "pytorch" / "02_multiclass" / "metrics.json"
    m = json.loads(metrics.read_text())
    m["options"]["synth_version"] = synth.VERSION - 1
    metrics.write_text(json.dumps(m))
    old_run = {p.name: p.read_bytes() for p in metrics.parent.iterdir()}
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        compare.main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and str(metrics.parent) in err and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in metrics.parent.iterdir()} == old_run
    assert log.stat().st_mtime_ns == stamp, "a refused comparison runs nothing"
    assert compare.main(argv + ["--overwrite"])["02_multiclass", "pytorch"]["status"] == "ran"
    # An interrupted run with the same options (checkpoint, no metrics.json) is resumed.
    interrupted = tmp_path / "runs" / "pytorch" / "02_multiclass"
    (interrupted / "metrics.json").unlink()
    resumed = compare.main(argv)["02_multiclass", "pytorch"]
    assert resumed["status"] == "ran" and resumed["metrics"]["options"]["resumed_from"] == 2
    third = compare.main(argv + ["--force", "--assets", str(tmp_path / "assets")])
    assert third["02_multiclass", "pytorch"]["status"] == "ran"
    summary = (tmp_path / "assets" / "report.md").read_text()
    assert re.search(r"\| 02_multiclass \| \d\.\d{4} \| — \|", summary), "summary row: IoU, failed"
    assert (tmp_path / "assets" / "02_multiclass_predictions.png").is_file()
    timing = json.loads((tmp_path / "assets" / "timing.json").read_text())
    assert timing["labels"]["pytorch"]["runs"] == 1 and timing["labels"]["pytorch"]["seconds"] > 0
    assert timing["calibration_s"] > 0 and timing["dry_run"] is True


def test_unknown_step_or_framework_is_a_clear_error(capsys):
    with pytest.raises(SystemExit) as e:
        compare.main(["--steps", "07_nothing"])
    assert e.value.code == 2 and "unknown step" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        compare.main(["--frameworks", "jax"])
    assert "choose from pytorch" in capsys.readouterr().err


def fake(mean_iou):
    """A finished run as run_all() records it, with what the report reads."""
    return {"status": "ran", "metrics": {"mean_iou": mean_iou, "per_class_iou": {},
                                         "pixel_accuracy": 0.9, "params": 1, "ms_per_iter": None,
                                         "seconds": 1}}


def test_the_best_is_marked_only_beyond_the_noise():
    """Three seeds and the noise floor: a lead smaller than either is 'within noise', unbolded."""
    args = compare.parse_args(["--seeds", "0,1,2", "--noise-floor", "--steps", "02,03",
                               "--frameworks", "pytorch,keras"])
    results = {}
    for step, torch_s, keras_s, perturbed in (
            ("02_multiclass", [0.60, 0.61, 0.62], [0.70, 0.71, 0.69], (0.605, 0.695)),
            ("03_nearest", [0.60, 0.61, 0.62], [0.615, 0.62, 0.625], (0.64, 0.62))):
        for label, s, p in (("pytorch", torch_s, perturbed[0]), ("keras", keras_s, perturbed[1])):
            results[step, label] = fake(s[0])
            results[step, label, "seed", 1], results[step, label, "seed", 2] = fake(s[1]), fake(s[2])
            results[step, label, "perturbed"] = fake(p)
    assert compare.noise_floor(args, results, "02_multiclass") == pytest.approx(0.005)
    assert compare.leader(args, results, "02_multiclass")[0] == "keras"
    best, words = compare.leader(args, results, "03_nearest")   # lead 0.01 < floor 0.04
    assert best is None and words.startswith("within noise") and "noise floor 0.0400" in words
    lines = compare.summary_table(args, results, compare.table_rows(args, results))
    row02 = next(ln for ln in lines if ln.startswith("| 02_multiclass"))
    row03 = next(ln for ln in lines if ln.startswith("| 03_nearest"))
    assert "| 0.6100 ± 0.0100 | **0.7000 ± 0.0100** | 0.0050 | keras leads by 0.0900 |" in row02
    assert "**" not in row03 and "within noise" in row03
    # one seed missing: its cell says how many there are
    del results["03_nearest", "keras", "seed", 2]
    assert compare.summary_cell(args, results, "03_nearest", "keras").endswith("(n=2)")


def test_other_seeds_and_perturbed_runs_have_their_own_folders_and_flags(tmp_path):
    args = compare.parse_args(["--seeds", "3,4", "--noise-floor", "--steps", "01",
                               "--frameworks", "pytorch", "--out", str(tmp_path)])
    assert args.seed == 3
    plan = {sub: (seed, eps) for _, seed, eps, sub in compare.variants(args)}
    assert plan == {"": (3, 0.0), "seed-4": (4, 0.0), "perturbed": (3, compare.PERTURB)}
    cmd = compare.command("pytorch", "01_binarization", compare.for_run(args, 3, compare.PERTURB),
                          tmp_path)
    assert cmd[cmd.index("--seed") + 1] == "3" and cmd[cmd.index("--perturb-init") + 1] == "1e-07"
    assert "--perturb-init" not in compare.command("pytorch", "01_binarization",
                                                   compare.for_run(args, 4, 0.0), tmp_path)
    # a perturbed run is never reused for an unperturbed one, nor the other way round
    opts = {"iters": args.iters, "seed": 3, "dry_run": False, "recipe": None, "data": "None",
            "init_from": None, "synth_version": synth.version_for(None), "perturb_init": 1e-7}
    (tmp_path / "metrics.json").write_text(json.dumps({"options": opts}))
    assert compare.finished(tmp_path, compare.for_run(args, 3, 1e-7)) is not None
    assert compare.finished(tmp_path, compare.for_run(args, 3, 0.0)) is None
    with pytest.raises(SystemExit):
        compare.parse_args(["--seeds", "0,0"])


def test_the_runs_of_a_framework_share_one_process_with_the_same_results(tmp_path):
    """compare.py's default (common/batch.py) against one process a run: the same numbers."""
    require("pytorch")
    argv = ["--dry-run", "--steps", "01,02", "--frameworks", "pytorch"]
    shared = compare.main(argv + ["--out", str(tmp_path / "a")])
    alone = compare.main(argv + ["--out", str(tmp_path / "b"), "--one-process-per-run"])
    assert (tmp_path / "a" / "logs" / "batch-pytorch.json").exists()
    assert not (tmp_path / "b" / "logs" / "batch-pytorch.json").exists()
    for step in ("01_binarization", "02_multiclass"):
        a, b = shared[step, "pytorch"], alone[step, "pytorch"]
        assert a["status"] == b["status"] == "ran"
        assert a["metrics"]["loss_curve"] == b["metrics"]["loss_curve"]
        assert a["metrics"]["mean_iou"] == b["metrics"]["mean_iou"]
        log = (tmp_path / "a" / "logs" / f"pytorch-{step}.log").read_text()
        assert log.startswith("$ ") and f"pytorch {step}: mean IoU" in log   # its own output


def test_a_failing_job_of_a_batch_is_logged_and_the_next_runs(tmp_path, capsys):
    require("pytorch")
    batch = script("common/batch.py")
    jobs = [{"framework": "pytorch", "step": "02_multiclass", "log": str(tmp_path / "bad.log"),
             "argv": ["--iters", "0", "--out", str(tmp_path / "bad")]},   # nothing to evaluate
            {"framework": "pytorch", "step": "02_multiclass", "log": str(tmp_path / "good.log"),
             "argv": ["--dry-run", "--size", "32", "--out", str(tmp_path / "good")]}]
    (tmp_path / "jobs.json").write_text(json.dumps({"jobs": jobs}))
    batch.main([str(tmp_path / "jobs.json")])
    done = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert [d["rc"] for d in done] == [2, 0]
    assert "error: " in (tmp_path / "bad.log").read_text()
    assert (tmp_path / "good" / "metrics.json").exists()


def test_the_expected_duration_is_scaled_from_the_published_timing(tmp_path, monkeypatch, capsys):
    ref = {"date": "2026-12-02", "machine": "Reference CPU", "calibration_s": 0.5, "iters": 60,
           "dry_run": False, "labels": {"pytorch": {"seconds": 120.0, "runs": 10}}}
    (tmp_path / "assets" / "compare-quick").mkdir(parents=True)
    (tmp_path / "assets" / "compare-quick" / "timing.json").write_text(json.dumps(ref))
    monkeypatch.setattr(compare, "REPO", tmp_path)
    monkeypatch.setattr(compare, "calibrate", lambda: 1.0)         # this CPU: twice as slow
    args = compare.parse_args(["--quick"])
    todo = [(("02_multiclass", "pytorch"),)] * 5 + [(("02_multiclass", "chainer"),)]
    compare.announce(args, todo)
    out = capsys.readouterr().out
    # 5 runs x 12 s x 2 = 2 min; chainer has no reference
    assert "about 2 min on this machine for 6 runs" in out and "Reference CPU" in out
    assert "x2.00 as slow" in out and "no reference for chainer" in out
    compare.announce(compare.parse_args(["--iters", "500"]), todo)   # another schedule: silent
    assert capsys.readouterr().out == ""
