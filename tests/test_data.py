"""common.data: both layouts, every image mode, nearest-neighbour masks, every error, batching."""
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

import common
from common.data import Batches, Split, describe, load_split, read_image, to_nchw, to_nhwc
from common.errors import UserError
from common.palette import PALETTE, VOC_PALETTE, index_to_rgb

IMORI = Path(common.REPO) / "datasets" / "imori"   # the course's 16 photos, in the project


# --- helpers that write small datasets ----------------------------------------------

def save_p(labels, path, colours=PALETTE):
    """Indices as a palette PNG with a full 256-entry table (else Pillow renumbers them)."""
    table = np.zeros((256, 3), np.uint8)
    table[: len(colours)] = colours
    img = Image.fromarray(np.asarray(labels, np.uint8), "P")
    img.putpalette(table.ravel().tolist())
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def save(array, path, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)


def labels_for(h, w, seed=0, classes=(0, 1, 2)):
    return np.random.default_rng(seed).choice(classes, (h, w)).astype(np.uint8)


def photo(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3)).astype(np.uint8)


def make_exercise(base, samples, suffix=".png"):
    """samples: [(class folder or "", stem, h, w)] -> photos in images/, P masks in seg_images/."""
    paths = {}
    for k, (group, stem, h, w) in enumerate(samples):
        image = base / "images" / group / f"{stem}{suffix}"
        mask = base / "seg_images" / group / f"{stem}.png"
        save(photo(h, w, k), image)
        save_p(labels_for(h, w, k), mask)
        paths[stem] = (image, mask)
    return paths


NEWTS = [("madara", "m1", 12, 10), ("akahara", "a2", 8, 16), ("akahara", "a1", 20, 20)]


def make_voc(root):
    ids = {"train": ["2007_000032", "2007_000039"], "val": ["2007_000063"]}
    for stems in ids.values():
        for k, stem in enumerate(stems):
            save(photo(10, 14, k), root / "JPEGImages" / f"{stem}.jpg")
            labels = labels_for(10, 14, k, classes=(0, 15, 20))
            labels[0] = 255                                 # a VOC object border
            save_p(labels, root / "SegmentationClass" / f"{stem}.png", VOC_PALETTE)
    lists = root / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True)
    for split, stems in ids.items():
        (lists / f"{split}.txt").write_text("\n".join(stems) + "\n")
    return ids


# --- layouts ------------------------------------------------------------------------

def test_exercise_layout_with_split_folders(tmp_path):
    paths = make_exercise(tmp_path / "train", NEWTS)
    make_exercise(tmp_path / "test", NEWTS[:1])
    split = load_split(tmp_path, "train", 16)
    assert isinstance(split, Split) and len(split) == 3
    assert split.names == ["a1", "a2", "m1"]            # class folder, then stem
    assert split.images.dtype == np.float32 and split.images.shape == (3, 16, 16, 3)
    assert split.masks.dtype == np.uint8 and split.masks.shape == (3, 16, 16)
    assert 0 <= split.images.min() and split.images.max() <= 1
    assert split.classes == ("background", "akahara", "madara")
    assert split.ignore_index is None and np.array_equal(split.palette, PALETTE)
    # a1 is 20x20 -> 16x16; a2, m1 other sizes: values come from the written files
    np.testing.assert_array_equal(split.images[0], read_image(paths["a1"][0], 16))
    assert set(np.unique(split.masks)) <= {0, 1, 2}
    assert len(load_split(tmp_path, "test", 8)) == 1
    assert len(load_split(tmp_path, "train", 8, limit=2)) == 2


def test_same_size_loads_exactly(tmp_path):
    make_exercise(tmp_path / "train", [("akahara", "a", 6, 6)])
    split = load_split(tmp_path, "train", 6)
    np.testing.assert_array_equal(split.images[0], photo(6, 6, 0) / np.float32(255))
    np.testing.assert_array_equal(split.masks[0], labels_for(6, 6, 0))


def test_root_without_split_folders_serves_every_split(tmp_path):
    make_exercise(tmp_path, NEWTS, suffix=".jpg")
    train = load_split(tmp_path, "train", 8)
    test = load_split(tmp_path, "test", 8)
    assert train.names == test.names == ["a1", "a2", "m1"]
    np.testing.assert_array_equal(train.images, test.images)


def test_images_directly_in_images_folder(tmp_path):
    make_exercise(tmp_path / "train", [("", "x", 5, 5), ("akahara", "a", 5, 5)])
    assert load_split(tmp_path, "train", 4).names == ["x", "a"]


def test_voc_layout(tmp_path):
    ids = make_voc(tmp_path)
    train = load_split(tmp_path, "train", 12)
    assert train.names == ids["train"] and train.ignore_index == 255
    assert len(train.classes) == 21 and np.array_equal(train.palette, VOC_PALETTE)
    assert set(np.unique(train.masks)) <= {0, 15, 20, 255} and (train.masks == 255).any()
    test = load_split(tmp_path, "test", 12)               # no test.txt -> val.txt
    assert test.names == ids["val"]
    assert "ignore" in describe(train)


def test_describe(tmp_path):
    make_exercise(tmp_path, NEWTS)
    line = describe(load_split(tmp_path, "train", 8))
    assert "3 images" in line and "akahara" in line and "%" in line and "\n" not in line


# --- image modes ----------------------------------------------------------------------

def _mode_image(mode):
    """(Pillow image, expected float RGB) for a 4x5 image in `mode`."""
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, (4, 5)).astype(np.uint8)
    rgb = rng.integers(0, 256, (4, 5, 3)).astype(np.uint8)
    grey3 = np.repeat(grey[:, :, None], 3, axis=2) / 255
    if mode == "L":
        return Image.fromarray(grey, "L"), grey3
    if mode == "LA":
        return Image.fromarray(np.dstack([grey, 255 - grey]), "LA"), grey3
    if mode == "RGBA":
        return Image.fromarray(np.dstack([rgb, grey]), "RGBA"), rgb / 255
    if mode == "P":
        return Image.fromarray(rgb).quantize(16), None       # colours drawn from the table
    if mode == "1":
        return Image.fromarray(grey > 127), np.repeat((grey > 127)[:, :, None], 3, axis=2) * 1.0
    if mode in ("I;16", "I"):
        deep = rng.integers(0, 65536, (4, 5)).astype(np.uint16 if mode == "I;16" else np.int32)
        return Image.fromarray(deep), np.repeat(deep[:, :, None] / 65535, 3, axis=2)
    if mode == "CMYK":
        return Image.fromarray(rgb).convert("CMYK"), None
    return Image.fromarray(rgb), rgb / 255


@pytest.mark.parametrize("mode, suffix", [("RGB", ".png"), ("RGB", ".jpg"), ("L", ".png"),
                                          ("LA", ".png"), ("RGBA", ".png"), ("P", ".png"),
                                          ("1", ".png"), ("I;16", ".png"), ("I", ".tif"),
                                          ("CMYK", ".jpg")])
def test_every_image_mode_loads_as_float_rgb(tmp_path, mode, suffix):
    img, expected = _mode_image(mode)
    base = tmp_path / "train"
    (base / "images" / "akahara").mkdir(parents=True)
    img.save(base / "images" / "akahara" / f"x{suffix}")
    assert Image.open(base / "images" / "akahara" / f"x{suffix}").mode == mode
    save_p(labels_for(4, 5), base / "seg_images" / "akahara" / "x.png")
    for size in (5, 9):
        split = load_split(tmp_path, "train", size)
        assert split.images.dtype == np.float32 and split.images.shape == (1, size, size, 3)
        assert 0 <= split.images.min() and split.images.max() <= 1
    if expected is not None and suffix != ".jpg":
        # At the stored size the values are exact; a 4x5 image squashed to 5x5 is not.
        np.testing.assert_allclose(read_image(base / "images" / "akahara" / f"x{suffix}"),
                                   expected, atol=1e-6)


def test_sixteen_bit_is_scaled_by_65535(tmp_path):
    save(np.array([[0, 32768], [65535, 65535]], np.uint16), tmp_path / "deep.png")
    out = read_image(tmp_path / "deep.png")
    np.testing.assert_allclose(out[..., 0], [[0, 32768 / 65535], [1, 1]], atol=1e-6)


# --- masks are resized with nearest neighbour -------------------------------------------

def test_mask_resize_never_invents_a_label(tmp_path):
    # Columns alternate background (0) and madara (2): averaging them would give 1, akahara.
    labels = np.tile(np.array([0, 2], np.uint8), (8, 4))            # 8 x 8
    assert 1 in np.asarray(Image.fromarray(labels, "L").resize((5, 5), Image.BILINEAR))
    base = tmp_path / "train"
    save(photo(8, 8), base / "images" / "madara" / "m.png")
    save_p(labels, base / "seg_images" / "madara" / "m.png")
    for size in (3, 5, 13, 32):
        masks = load_split(tmp_path, "train", size).masks
        assert set(np.unique(masks)) == {0, 2}, size


# --- errors: each names the offending file or folder ------------------------------------

def message_of(call, *args, **kwargs):
    with pytest.raises(UserError) as info:
        call(*args, **kwargs)
    return str(info.value)


def test_error_root_missing(tmp_path):
    assert str(tmp_path / "nope") in message_of(load_split, tmp_path / "nope", "train", 8)
    (tmp_path / "file.txt").write_text("x")
    assert "not a folder" in message_of(load_split, tmp_path / "file.txt", "train", 8)


def test_error_neither_layout(tmp_path):
    (tmp_path / "photos").mkdir()
    make_exercise(tmp_path / "deeper" / "newts", NEWTS[:1])
    message = message_of(load_split, tmp_path, "train", 8)
    assert str(tmp_path) in message and "JPEGImages" in message and "seg_images" in message
    assert "photos/" in message and str(tmp_path / "deeper" / "newts") in message   # the hint


def test_error_split_folder_missing_lists_splits(tmp_path):
    make_exercise(tmp_path / "train", NEWTS[:1])
    make_exercise(tmp_path / "val", NEWTS[:1])
    message = message_of(load_split, tmp_path, "test", 8)
    assert str(tmp_path / "test") in message and "train, val" in message
    make_voc(tmp_path / "voc")
    message = message_of(load_split, tmp_path / "voc", "trainval", 8)
    assert "trainval.txt" in message and "train, val" in message


def test_error_empty_split(tmp_path):
    (tmp_path / "train" / "images" / "akahara").mkdir(parents=True)
    (tmp_path / "train" / "seg_images" / "akahara").mkdir(parents=True)
    assert str(tmp_path / "train") in message_of(load_split, tmp_path, "train", 8)
    make_voc(tmp_path / "voc")
    (tmp_path / "voc" / "ImageSets" / "Segmentation" / "train.txt").write_text("\n")
    assert "train.txt" in message_of(load_split, tmp_path / "voc", "train", 8)


def test_error_seg_images_folder_missing(tmp_path):
    save(photo(4, 4), tmp_path / "images" / "akahara" / "a.png")
    assert str(tmp_path / "seg_images") in message_of(load_split, tmp_path, "train", 8)


def test_error_image_without_mask_and_mask_without_image(tmp_path):
    paths = make_exercise(tmp_path, NEWTS)
    paths["a2"][1].unlink()
    orphan = tmp_path / "seg_images" / "madara" / "lost.png"
    save_p(labels_for(3, 3), orphan)
    message = message_of(load_split, tmp_path, "train", 8)
    assert str(paths["a2"][0]) in message and str(paths["a2"][1]) in message
    assert str(orphan) in message and "1 image(s)" in message and "1 mask(s)" in message


def test_error_many_unpaired_are_counted(tmp_path):
    make_exercise(tmp_path, [("akahara", f"a{k}", 3, 3) for k in range(8)])
    for mask in (tmp_path / "seg_images" / "akahara").iterdir():
        mask.unlink()
    message = message_of(load_split, tmp_path, "train", 8)
    assert "8 image(s)" in message and "(8 in all)" in message


def test_error_voc_unpaired(tmp_path):
    ids = make_voc(tmp_path)
    (tmp_path / "SegmentationClass" / f"{ids['train'][0]}.png").unlink()
    (tmp_path / "JPEGImages" / f"{ids['train'][1]}.jpg").unlink()
    message = message_of(load_split, tmp_path, "train", 8)
    assert str(tmp_path / "SegmentationClass" / f"{ids['train'][0]}.png") in message
    assert str(tmp_path / "SegmentationClass" / f"{ids['train'][1]}.png") in message
    (tmp_path / "SegmentationClass" / f"{ids['train'][1]}.png").unlink()
    message = message_of(load_split, tmp_path, "train", 8)
    assert "train.txt" in message and ids["train"][1] in message and "neither" in message


@pytest.mark.parametrize("damage", ["garbage", "truncated_jpeg", "truncated_png", "empty"])
def test_error_unreadable_or_truncated_image(tmp_path, damage):
    suffix = ".png" if damage == "truncated_png" else ".jpg"
    paths = make_exercise(tmp_path, [("akahara", "a", 32, 32)], suffix=suffix)
    image = paths["a"][0]
    data = image.read_bytes()
    # A JPEG missing its last 20 bytes, a PNG cut inside its pixel data. (A PNG that
    # only lost its closing checksum still has every pixel and loads; that is fine.)
    image.write_bytes({"garbage": b"not an image at all", "empty": b"",
                       "truncated_jpeg": data[: len(data) - 20],
                       "truncated_png": data[: len(data) // 2]}[damage])
    assert str(image) in message_of(load_split, tmp_path, "train", 8)


def test_error_mask_size_differs(tmp_path):
    paths = make_exercise(tmp_path, [("akahara", "a", 10, 12)])
    save_p(labels_for(12, 10), paths["a"][1])                      # transposed: 10x12 vs 12x10
    message = message_of(load_split, tmp_path, "train", 8)
    assert str(paths["a"][1]) in message and str(paths["a"][0]) in message
    assert "12x10" in message and "10x12" in message


def test_error_mask_colour_outside_palette(tmp_path):
    paths = make_exercise(tmp_path, [("akahara", "a", 6, 6)])
    rgb = index_to_rgb(labels_for(6, 6), PALETTE)
    rgb[0, :3] = (255, 255, 0)
    save(rgb, paths["a"][1])
    message = message_of(load_split, tmp_path, "train", 8)
    assert str(paths["a"][1]) in message and "(255, 255, 0) in 3 pixels" in message


def test_error_bad_size_and_limit(tmp_path):
    make_exercise(tmp_path, NEWTS)
    assert "0" in message_of(load_split, tmp_path, "train", 0)
    assert "limit" in message_of(load_split, tmp_path, "train", 8, limit=-1)


# --- batching ---------------------------------------------------------------------------

def fake_split(n, size=6, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.random((n, size, size, 3), dtype=np.float32)
    masks = (images[..., 0] > 0.5).astype(np.uint8)   # the mask is a thresholded channel
    return Split(images=images, masks=masks, names=[f"s{k}" for k in range(n)],
                 classes=("background", "thing"), palette=PALETTE[:2], ignore_index=None,
                 root=Path("/fake"))


def test_batches_deterministic_and_seed_dependent():
    split = fake_split(10)
    a, b, c = Batches(split, 4, seed=0), Batches(split, 4, seed=0), Batches(split, 4, seed=1)
    for i in range(6):
        xa, ya = a.batch(i)
        xb, yb = b.batch(i)
        assert xa.dtype == np.float32 and xa.shape == (4, 6, 6, 3)
        assert ya.dtype == np.int32 and ya.shape == (4, 6, 6)
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert any(not np.array_equal(a.batch(i)[0], c.batch(i)[0]) for i in range(6))


def test_batch_i_independent_of_call_order():
    split = fake_split(7)
    forward = [Batches(split, 3, seed=5).batch(i) for i in range(10)]
    resumed = Batches(split, 3, seed=5)
    for i in [9, 4, 0, 7, 4]:
        np.testing.assert_array_equal(resumed.batch(i)[0], forward[i][0])
        np.testing.assert_array_equal(resumed.batch(i)[1], forward[i][1])


def test_epochs_visit_every_sample_once_and_wrap():
    split = fake_split(10)
    batches = Batches(split, 4, seed=3, flip=False)
    stream = np.concatenate([batches.indices(i) for i in range(5)])        # 20 = two epochs
    assert sorted(stream[:10]) == list(range(10)) and sorted(stream[10:]) == list(range(10))
    assert batches.epoch(2) == 0 and batches.epoch(3) == 1                 # batch 2 spans both
    np.testing.assert_array_equal(stream[:10], np.random.default_rng([3, 0]).permutation(10))
    np.testing.assert_array_equal(stream[10:], np.random.default_rng([3, 1]).permutation(10))
    x, y = batches.batch(1)
    np.testing.assert_array_equal(x, split.images[stream[4:8]])            # no flip: as stored


def test_batch_larger_than_split_repeats_samples():
    split = fake_split(3)
    x, y = Batches(split, 8, seed=0).batch(0)
    assert x.shape == (8, 6, 6, 3) and y.shape == (8, 6, 6)


def test_flips_keep_image_and_mask_aligned():
    split = fake_split(5, size=7)
    batches = Batches(split, 5, seed=0, flip=True)
    changed = 0
    for i in range(20):
        x, y = batches.batch(i)
        np.testing.assert_array_equal(y, (x[..., 0] > 0.5).astype(np.int32))
        idx = batches.indices(i)
        changed += int(not np.array_equal(x, split.images[idx]))
        for k in range(5):     # each sample is its original, possibly mirrored either way
            originals = [split.images[idx[k]], split.images[idx[k], :, ::-1],
                         split.images[idx[k], ::-1], split.images[idx[k], ::-1, ::-1]]
            assert any(np.array_equal(x[k], o) for o in originals)
    assert changed > 10
    np.testing.assert_array_equal(split.masks, (split.images[..., 0] > 0.5))   # split untouched


def test_batches_bad_arguments():
    with pytest.raises(UserError, match="batch size"):
        Batches(fake_split(3), 0, seed=0)
    with pytest.raises(UserError, match="seed"):
        Batches(fake_split(3), 2, seed=-1)


def test_layout_conversion():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)       # B, H, W, C
    nchw = to_nchw(x)
    assert nchw.shape == (2, 5, 3, 4) and nchw.flags["C_CONTIGUOUS"]
    assert nchw[1, 4, 2, 3] == x[1, 2, 3, 4]
    back = to_nhwc(nchw)
    assert back.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(back, x)


# --- the real newt photos -------------------------------------------------------------

def test_real_imori_photos():
    # both splits of splits.json together: every photo, one species each
    train, test = load_split(IMORI, "train", 64), load_split(IMORI, "test", 64)
    assert len(train) + len(test) == 16 and train.images.shape[1:] == (64, 64, 3)
    for split in (train, test):
        check_species(split)


def check_species(split):
    assert set(np.unique(split.masks)) == {0, 1, 2}
    # one species per photo: akahara photos hold label 1 only, madara photos label 2 only
    for name, mask in zip(split.names, split.masks):
        assert set(np.unique(mask)) == {0, 1 if name.startswith("akahara") else 2}


# --- property: any generated sample either loads correctly or raises a UserError --------

NEWT_COLOURS = np.array(PALETTE, np.int32)


def _far(colour) -> bool:
    return np.abs(NEWT_COLOURS - np.array(colour)).max(axis=1).min() > 8


# Any colour; one near a class colour gets blue 200, which no newt colour has.
far_colours = st.tuples(*[st.integers(0, 255)] * 3).map(
    lambda c: c if _far(c) else (c[0], c[1], 200))


@st.composite
def samples(draw):
    h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    return dict(
        h=h, w=w, size=draw(st.integers(1, 16)), seed=draw(st.integers(0, 2**16)),
        image_mode=draw(st.sampled_from(["RGB", "L", "RGBA", "P", "I;16"])),
        mask_mode=draw(st.sampled_from(["RGB", "RGBA", "P", "L", "I;16"])),
        kind=draw(st.sampled_from(["exact", "near", "exact", "near", "far"])),
        far_colour=draw(far_colours),
        far_index=draw(st.integers(3, 255)),
        mask_shape=draw(st.sampled_from(["same"] * 5 + ["other"])),
        damage=draw(st.sampled_from([None] * 9 + ["truncate"])),
    )


def _write_sample(base, s):
    """Write one image + mask; return (image path, mask path, labels, expected error file)."""
    rng = np.random.default_rng(s["seed"])
    h, w = s["h"], s["w"]
    rgb = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    image = {"RGB": lambda: Image.fromarray(rgb),
             "L": lambda: Image.fromarray(rgb[..., 0]),
             "RGBA": lambda: Image.fromarray(np.dstack([rgb, rgb[..., 1]])),
             "P": lambda: Image.fromarray(rgb).quantize(8),
             "I;16": lambda: Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)}[s["image_mode"]]()
    image_path = base / "images" / "akahara" / "newt.png"
    image_path.parent.mkdir(parents=True)
    image.save(image_path)
    error_file = None
    if s["damage"]:
        data = image_path.read_bytes()
        image_path.write_bytes(data[: len(data) // 2])
        error_file = image_path

    mh, mw = (h, w) if s["mask_shape"] == "same" else (h + 1, w)
    labels = rng.integers(0, 3, (mh, mw)).astype(np.uint8)
    bad = np.zeros((mh, mw), bool)
    if s["kind"] == "far":
        bad.flat[rng.integers(0, bad.size)] = True
    mask_path = base / "seg_images" / "akahara" / "newt.png"
    mask_path.parent.mkdir(parents=True)
    if s["mask_mode"] in ("RGB", "RGBA"):
        colours = PALETTE[labels].astype(np.int32)
        if s["kind"] == "near":
            colours += rng.integers(-8, 9, colours.shape)
        colours[bad] = s["far_colour"]
        colours = np.clip(colours, 0, 255).astype(np.uint8)
        if s["mask_mode"] == "RGBA":
            colours = np.dstack([colours, rng.integers(0, 256, (mh, mw)).astype(np.uint8)])
        Image.fromarray(colours).save(mask_path)
    else:
        values = labels.astype(np.int32)
        values[bad] = s["far_index"]
        if s["mask_mode"] == "P":
            save_p(values, mask_path)
        else:
            dtype = np.uint8 if s["mask_mode"] == "L" else np.uint16
            Image.fromarray(values.astype(dtype)).save(mask_path)
    if error_file is None and (bad.any() or (mh, mw) != (h, w)):
        error_file = mask_path
    return labels, error_file


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(samples())
def test_property_load_or_user_error(s):
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        labels, error_file = _write_sample(base, s)
        try:
            split = load_split(base, "train", s["size"])
        except UserError as exc:
            assert error_file is not None, f"unexpected UserError: {exc}"
            assert str(error_file) in str(exc)
            event(f"UserError about {error_file.parent.parent.name}/")   # images/ or seg_images/
            return
        event("loaded")
        assert error_file is None, f"expected a UserError about {error_file}"
        size = s["size"]
        assert split.images.shape == (1, size, size, 3) and split.images.dtype == np.float32
        assert 0 <= split.images.min() and split.images.max() <= 1
        assert split.masks.shape == (1, size, size) and split.masks.dtype == np.uint8
        assert set(np.unique(split.masks)) <= set(np.unique(labels))
        # Every colour/index was read as its true label: compare with the labels resized
        # the one correct way (nearest neighbour).
        expected = Image.fromarray(labels, "L").resize((size, size), Image.NEAREST)
        np.testing.assert_array_equal(split.masks[0], np.asarray(expected))


@pytest.mark.parametrize("suffix", [".tif", ".png", ".jpg"])
@pytest.mark.parametrize("turn", [3, 6])
def test_photos_are_read_as_pillow_shows_them_for_every_format(tmp_path, suffix, turn):
    """OpenCV decodes, the EXIF orientation is applied once: libtiff already turns a TIFF
    itself, and a second turn would misalign it with its mask."""
    from common import palette as pal
    from common.data import read_photo
    rgb = np.zeros((6, 10, 3), np.uint8)
    rgb[:2, :3] = (250, 10, 10)                     # a red corner: any turn moves it
    img = Image.fromarray(rgb)
    path = tmp_path / f"p{suffix}"
    if suffix == ".tif":
        img.save(path, tiffinfo={pal.ORIENTATION_TAG: turn})
    else:
        exif = Image.Exif()
        exif[pal.ORIENTATION_TAG] = turn
        img.save(path, exif=exif, **({"quality": 100} if suffix == ".jpg" else {}))
    shown = np.asarray(pal.open_image(path).convert("RGB"), np.float32) / 255
    got = read_photo(path)
    assert got.shape == shown.shape
    np.testing.assert_allclose(got, shown, atol=0.05 if suffix == ".jpg" else 1e-6)
