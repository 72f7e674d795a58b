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
    argv = ["--dry-run", "--steps", "01,02", "--frameworks", "pytorch,tensorflow",
            "--out", str(tmp_path)]

    first = compare.main(argv)
    assert first["02_multiclass", "pytorch"]["status"] == "ran"
    assert first["02_multiclass", "tensorflow"]["status"] == "failed"
    assert "boom" in first["02_multiclass", "tensorflow"]["error"]

    md = (tmp_path / "report.md").read_text()
    assert re.search(r"\| 02_multiclass \| pytorch \| \d\.\d{4} \|", md)
    assert "| 02_multiclass | tensorflow | failed: error: boom" in md
    assert "## Failed runs" in md
    for step in ("01_binarization", "02_multiclass"):
        assert (tmp_path / f"{step}_predictions.png").stat().st_size > 1000
        assert (tmp_path / f"{step}_loss.png").stat().st_size > 1000
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4
    assert not re.search(r"(src|href)=[\"']?https?:", page), "report.html must work offline"

    log = tmp_path / "logs" / "pytorch-02_multiclass.log"
    stamp = log.stat().st_mtime_ns
    second = compare.main(argv)
    assert second["02_multiclass", "pytorch"]["status"] == "reused"
    assert log.stat().st_mtime_ns == stamp
    assert second["02_multiclass", "tensorflow"]["status"] == "failed"   # failures are retried
    # A run on an older version of the embedded dataset is not reused, and not replaced
    # unasked: nothing runs, the folder is named, --overwrite replaces it.
    metrics = tmp_path / "runs" / "pytorch" / "01_binarization" / "metrics.json"
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
    assert compare.main(argv + ["--overwrite"])["01_binarization", "pytorch"]["status"] == "ran"
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


def test_unknown_step_or_framework_is_a_clear_error(capsys):
    with pytest.raises(SystemExit) as e:
        compare.main(["--steps", "07_nothing"])
    assert e.value.code == 2 and "unknown step" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        compare.main(["--frameworks", "jax"])
    assert "choose from pytorch" in capsys.readouterr().err
