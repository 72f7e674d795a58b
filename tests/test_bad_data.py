"""Bad datasets through a real step script: exit 2, the file named, --out untouched."""
import numpy as np
import pytest

from helpers import require, run_step
from test_data import make_exercise, save

pytestmark = pytest.mark.xdist_group("pytorch")
SAMPLES = [("akahara", "a1", 20, 24), ("madara", "m1", 18, 18)]


def dataset(root, defect):
    """A small exercise-layout dataset with one defect; returns the text the error must contain."""
    if defect == "empty":
        root.mkdir()
        return str(root)
    paths = make_exercise(root / "train", SAMPLES)
    if defect != "no test split":
        paths.update({f"t{k}": v for k, v in make_exercise(root / "test", SAMPLES).items()})
    image, mask = paths["a1"]
    if defect == "no test split":
        return "test"
    if defect == "image without mask":
        mask.unlink()
        return str(image)
    if defect == "mask without image":
        image.unlink()
        return str(mask)
    if defect == "truncated image":
        image.write_bytes(image.read_bytes()[:200])
        return str(image)
    if defect == "colour outside palette":
        rgb = np.zeros((20, 24, 3), np.uint8)
        rgb[:5, :5] = (0, 0, 200)
        save(rgb, mask)
        return "(0, 0, 200)"
    if defect == "mask size differs":
        from test_data import save_p
        save_p(np.zeros((10, 10), np.uint8), mask)
        return str(mask)
    raise ValueError(defect)


@pytest.mark.parametrize("defect", ["empty", "no test split", "image without mask",
                                    "mask without image", "truncated image",
                                    "colour outside palette", "mask size differs"])
def test_bad_dataset_is_reported_by_the_script(defect, tmp_path, capsys):
    require("pytorch")
    expect = dataset(tmp_path / "data", defect)
    out = tmp_path / "out"
    out.mkdir()
    (out / "weights.npz").write_bytes(b"earlier run")
    with pytest.raises(SystemExit) as e:
        # --overwrite: the earlier run may go, but only when the new run writes its first file
        run_step("pytorch", "02_multiclass", ["--data", str(tmp_path / "data"),
                                                    "--out", str(out), "--overwrite"])
    err = capsys.readouterr().err
    assert e.value.code == 2
    assert expect in err, err
    assert "Traceback" not in err
    assert [p.name for p in out.iterdir()] == ["weights.npz"]
    assert (out / "weights.npz").read_bytes() == b"earlier run"
