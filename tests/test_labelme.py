"""tools/labelme_to_masks.py: labelme JSON -> exercise layout that common.data reads."""
import base64
import io
import json
import re

import numpy as np
import pytest
from PIL import Image

from common import palette as pal
from common.data import load_split
from common.errors import UserError
from helpers import script

tool = script("tools/labelme_to_masks.py")


def shape(label, points, kind="polygon"):
    return {"label": label, "points": points, "group_id": None, "shape_type": kind, "flags": {}}


def labelme(shapes, width, height, image_path, image_data=None):
    return {"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": image_path,
            "imageData": image_data, "imageHeight": height, "imageWidth": width}


def png_bytes(width, height, colour):
    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, "PNG")
    return buf.getvalue()


def make_sources(tmp_path):
    """src/a.json (photo by imagePath, 40x30), src/b.json (imageData only, 24x16),
    src/sub/c.json (photo by imagePath, 20x20)."""
    src = tmp_path / "src"
    (src / "photos").mkdir(parents=True)
    (src / "sub").mkdir()
    Image.new("RGB", (40, 30), (200, 150, 100)).save(src / "photos" / "a.jpg")
    a = labelme([
        shape("akahara", [[2, 2], [20, 2], [20, 20], [2, 20]]),
        shape("madara", [[35, 15], [25, 5]], "rectangle"),           # corners in either order
        shape("madara", [[10, 10], [18, 10], [18, 18], [10, 18]]),   # over the first polygon
        shape("akahara", [[0, 27], [39, 27]], "line"),               # no area: skipped
    ], 40, 30, "photos/a.jpg")
    (src / "a.json").write_text(json.dumps(a))
    b = labelme([shape("madara", [[12, 8], [17, 8]], "circle"),
                 shape("madara", [[1, 1]], "point")],
                24, 16, "not_here/b.png", base64.b64encode(png_bytes(24, 16, (9, 90, 9))).decode())
    (src / "b.json").write_text(json.dumps(b))
    Image.new("RGB", (20, 20), (50, 50, 50)).save(src / "sub" / "c.png")
    c = labelme([shape("akahara", [[0, 0], [19, 0], [19, 19]])], 20, 20, "c.png")
    (src / "sub" / "c.json").write_text(json.dumps(c))
    return src


def read_png(path):
    with Image.open(path) as img:
        return img.mode, img.size, img.getpalette(), np.asarray(img)


def test_masks_are_drawn_in_order_as_palette_pngs(tmp_path, capsys):
    src, out = make_sources(tmp_path), tmp_path / "out"
    result = tool.main([str(src), "--out", str(out)])
    assert result["photos"] == 3 and result["folders"] == {"akahara": 2, "madara": 1}
    err = capsys.readouterr().err
    assert "a.json: shape 4 (line 'akahara') skipped" in err
    assert "b.json: shape 2 (point 'madara') skipped" in err

    mode, size, colours, a = read_png(out / "seg_images" / "akahara" / "a.png")
    assert mode == "P" and size == (40, 30) and a.shape == (30, 40)
    assert colours[:9] == pal.PALETTE.ravel().tolist()
    assert a[5, 5] == 1                     # inside the first polygon: akahara
    assert a[14, 14] == 2                   # where the later polygon covers it: madara
    assert a[10, 30] == 2                   # inside the rectangle
    assert a[27, 5] == 0 and a[28, 38] == 0  # on the skipped line, and outside everything
    assert set(np.unique(a)) == {0, 1, 2}
    assert (out / "images" / "akahara" / "a.jpg").read_bytes() == (src / "photos" / "a.jpg").read_bytes()

    mode, size, _, b = read_png(out / "seg_images" / "madara" / "b.png")   # from imageData
    assert mode == "P" and size == (24, 16)
    assert b[8, 12] == 2 and b[0, 0] == 0 and b[1, 1] == 0
    with Image.open(out / "images" / "madara" / "b.png") as photo:
        assert photo.size == (24, 16) and photo.getpixel((3, 3)) == (9, 90, 9)
    _, size, _, c = read_png(out / "seg_images" / "akahara" / "c.png")
    assert size == (20, 20) and c[1, 15] == 1 and c[15, 1] == 0

    classes = json.loads((out / "classes.json").read_text())
    assert classes["classes"] == list(pal.CLASSES)
    assert classes["palette"] == pal.PALETTE.tolist()


def test_the_split_is_seeded_and_the_folder_loads(tmp_path):
    src = make_sources(tmp_path)
    tool.main([str(src), "--out", str(tmp_path / "one"), "--seed", "3"])
    tool.main([str(src / "sub" / "c.json"), str(src / "a.json"), str(src / "b.json"),
               "--out", str(tmp_path / "two"), "--seed", "3"])
    splits = json.loads((tmp_path / "one" / "splits.json").read_text())
    assert splits == json.loads((tmp_path / "two" / "splits.json").read_text())
    assert len(splits["test"]) == 1 and len(splits["train"]) == 2      # round(3 * 0.25) = 1
    assert sorted(splits["train"] + splits["test"]) == ["a", "b", "c"]
    seeds = {tuple(tool.split_stems("abcdefgh", 0.25, seed)[1]) for seed in range(6)}
    assert len(seeds) > 1, "--seed does not change the split"
    assert tool.split_stems(["x", "y"], 0.01, 0) in ((["x"], ["y"]), (["y"], ["x"]))

    train = load_split(tmp_path / "one", "train", 16)
    test = load_split(tmp_path / "one", "test", 16)
    assert train.classes == pal.CLASSES and train.ignore_index is None
    assert sorted(train.names) == sorted(splits["train"]) and test.names == splits["test"]
    assert train.masks.shape == (2, 16, 16)
    both = np.concatenate([train.masks, test.masks])
    assert set(np.unique(both)) == {0, 1, 2}


def test_other_classes_get_the_voc_colours(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    Image.new("RGB", (10, 10)).save(src / "p.png")
    (src / "p.json").write_text(json.dumps(labelme(
        [shape("dog", [[0, 0], [9, 0], [9, 9], [0, 9]])], 10, 10, "p.png")))
    tool.main([str(src), "--out", str(tmp_path / "out"), "--classes", "background,cat,dog"])
    _, _, colours, mask = read_png(tmp_path / "out" / "seg_images" / "dog" / "p.png")
    assert mask[5, 5] == 2 and colours[:9] == [0, 0, 0, 128, 0, 0, 0, 128, 0]
    assert json.loads((tmp_path / "out" / "classes.json").read_text())["classes"] == \
        ["background", "cat", "dog"]


def test_an_unknown_label_names_the_label_and_the_file_and_writes_nothing(tmp_path, capsys):
    src, out = make_sources(tmp_path), tmp_path / "out"
    bad = json.loads((src / "b.json").read_text())
    bad["shapes"][0]["label"] = "imori"
    (src / "b.json").write_text(json.dumps(bad))
    with pytest.raises(SystemExit) as e:
        tool.main([str(src), "--out", str(out)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "'imori' in" in err and "b.json" in err and "Add them to --classes" in err
    assert "background, akahara, madara" in err
    assert not out.exists() or not any(out.iterdir()), "files written before the check"


def test_a_full_out_folder_is_refused_unless_overwrite(tmp_path, capsys):
    src, out = make_sources(tmp_path), tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit) as e:
        tool.main([str(src), "--out", str(out)])
    assert e.value.code == 2 and "already holds 1 file(s)" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    tool.main([str(src), "--out", str(out), "--overwrite"])
    assert (out / "notes.txt").read_text() == "mine"                 # never deleted
    assert (out / "seg_images" / "akahara" / "a.png").is_file()
    assert re.search(r"1 file\(s\) already in --out .* left as they are: \S*notes\.txt",
                     capsys.readouterr().err)
    # a photo now sorted into another class folder would be read twice: refused
    (out / "images" / "madara" / "c.png").write_bytes((out / "images" / "akahara" / "c.png").read_bytes())
    with pytest.raises(UserError, match=r"madara/c\.png"):
        tool.convert(tool.parse_args([str(src), "--out", str(out), "--overwrite"]))


@pytest.mark.parametrize("change, message", [
    (lambda d: {"not": "labelme"}, r"a\.json is not a labelme annotation"),
    (lambda d: {**d, "imagePath": "gone.jpg"}, r"photo of .*a\.json cannot be found.*gone\.jpg"),
    (lambda d: {**d, "imageWidth": 41}, r"a\.json was drawn on a photo of 41x30.*is 40x30"),
])
def test_bad_annotations_are_named(tmp_path, change, message):
    src = make_sources(tmp_path)
    (src / "a.json").write_text(json.dumps(change(json.loads((src / "a.json").read_text()))))
    with pytest.raises(UserError, match=message):
        tool.convert(tool.parse_args([str(src), "--out", str(tmp_path / "out")]))


def test_palette_file_colours_the_masks(tmp_path):
    src = make_sources(tmp_path)
    colours = tmp_path / "colours.json"
    colours.write_text(json.dumps([[1, 2, 3], [200, 0, 0], [0, 0, 200]]))
    tool.main([str(src), "--out", str(tmp_path / "one"), "--palette", str(colours)])
    _, _, written, _ = read_png(tmp_path / "one" / "seg_images" / "madara" / "b.png")
    assert written[:9] == [1, 2, 3, 200, 0, 0, 0, 0, 200]
    # the classes.json of that conversion serves as --palette for the next one
    tool.main([str(src), "--out", str(tmp_path / "two"), "--palette",
               str(tmp_path / "one" / "classes.json")])
    assert json.loads((tmp_path / "two" / "classes.json").read_text())["palette"][2] == [0, 0, 200]
    colours.write_text(json.dumps([[0, 0, 0], [9, 9, 9]]))           # one colour short
    with pytest.raises(UserError, match=r"colours\.json does not hold 3 colours"):
        tool.convert(tool.parse_args([str(src), "--out", str(tmp_path / "x"),
                                      "--palette", str(colours)]))
