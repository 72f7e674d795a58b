"""benchmark.py end to end on a tiny real measurement: results.json, the tables written
between BENCHMARKS.md's markers (the hand-written text kept), the figures, and
--from-results rebuilding the same tables without measuring. Timing values are not
checked: speed is what the benchmark reports, not what a test asserts."""
import json

import pytest

from helpers import require, script

benchmark = script("tools/benchmark.py")

pytestmark = pytest.mark.xdist_group("pytorch")


def generated(text):
    return text.split(benchmark.MARK_START)[1].split(benchmark.MARK_END)[0]


def test_benchmark_writes_and_rebuilds_its_report(tmp_path, monkeypatch):
    require("pytorch")
    md = tmp_path / "BENCHMARKS.md"
    md.write_text(f"# by hand\n\n{benchmark.MARK_START}\nold\n{benchmark.MARK_END}\n\n## Targets\nkept\n")
    monkeypatch.setattr(benchmark, "OUT_MD", md)
    monkeypatch.setattr(benchmark, "ASSETS", tmp_path / "assets")
    out = tmp_path / "runs"
    benchmark.main(["--quick", "--no-scaling", "--steps", "01_binarization",
                    "--frameworks", "pytorch", "--out", str(out)])

    results = json.loads((out / "results.json").read_text())
    assert results["steps"]["01_binarization"]["pytorch"]["ms"] > 0
    text = md.read_text()
    assert text.startswith("# by hand\n") and text.endswith("## Targets\nkept\n")
    assert "\nold\n" not in text
    assert "| 01_binarization |" in text
    assert (tmp_path / "assets" / "benchmark_steps.png").stat().st_size > 1000

    md.write_text(f"{benchmark.MARK_START}\n{benchmark.MARK_END}\n")
    benchmark.main(["--from-results", str(out / "results.json")])
    assert generated(md.read_text()) == generated(text)

    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SystemExit) as e:
        benchmark.main(["--from-results", str(tmp_path / "bad.json")])
    assert e.value.code == 2
