"""common.palette: colours <-> class indices, and reading mask files of every kind."""
import numpy as np
import pytest
from PIL import Image

from common.errors import UserError
from common.palette import (CLASSES, IGNORE_COLOUR, PALETTE, VOC_CLASSES, VOC_IGNORE,
                            VOC_PALETTE, index_to_rgb, read_mask, rgb_to_index)

# A 3x4 label map using every newt class.
LABELS = np.array([[0, 1, 2, 0],
                   [1, 1, 2, 2],
                   [0, 0, 0, 1]], np.uint8)


def save_p(labels, path, colours=PALETTE):
    """Save indices as a palette PNG with a full 256-entry colour table.

    (Without a full table Pillow renumbers the used indices when saving.)
    """
    table = np.zeros((256, 3), np.uint8)
    table[: len(colours)] = colours
    img = Image.fromarray(np.asarray(labels, np.uint8), "P")
    img.putpalette(table.ravel().tolist())
    img.save(path)


def test_constants():
    assert len(CLASSES) == len(PALETTE) == 3
    assert PALETTE.dtype == np.uint8 and PALETTE.shape == (3, 3)
    assert len(VOC_CLASSES) == 21 and VOC_PALETTE.shape == (21, 3)
    assert VOC_PALETTE.dtype == np.uint8 and VOC_IGNORE == 255
    # A few well-known VOC colours: aeroplane, person, tvmonitor.
    assert tuple(VOC_PALETTE[1]) == (128, 0, 0)
    assert tuple(VOC_PALETTE[15]) == (192, 128, 128)
    assert tuple(VOC_PALETTE[20]) == (0, 64, 128)
    assert len({tuple(c) for c in VOC_PALETTE}) == 21


def test_exact_colours():
    rgb = PALETTE[LABELS]
    out = rgb_to_index(rgb, PALETTE)
    assert out.dtype == np.uint8 and out.shape == LABELS.shape
    np.testing.assert_array_equal(out, LABELS)


def test_exercise_colours_127_and_data_colours_128_both_accepted():
    exercise = np.array([(0, 0, 0), (127, 0, 0), (0, 127, 0)], np.uint8)
    np.testing.assert_array_equal(rgb_to_index(exercise[LABELS], PALETTE), LABELS)
    # and the other way round: data drawn at 128 against a 127 palette
    np.testing.assert_array_equal(rgb_to_index(PALETTE[LABELS], exercise), LABELS)


def test_tolerance_edge():
    rgb = np.array([[[8, 0, 0], [0, 0, 9]]], np.uint8)
    with pytest.raises(UserError, match=r"\(0, 0, 9\) in 1 pixel"):
        rgb_to_index(rgb, PALETTE)
    np.testing.assert_array_equal(rgb_to_index(rgb, PALETTE, tolerance=9), [[0, 0]])


def test_out_of_palette_message_names_source_colours_counts_and_fix():
    rgb = PALETTE[np.zeros((10, 10), np.uint8)]
    rgb[0, :7] = (255, 255, 255)     # 7 pixels, the most frequent bad colour
    rgb[5, :2] = (60, 60, 200)       # 2 pixels
    with pytest.raises(UserError) as info:
        rgb_to_index(rgb, PALETTE, source="mask /some/where/newt.png")
    message = str(info.value)
    assert "/some/where/newt.png" in message
    assert "(255, 255, 255) in 7 pixels" in message
    assert "(60, 60, 200) in 2 pixels" in message
    assert message.index("(255, 255, 255)") < message.index("(60, 60, 200)")
    assert "akahara (128, 0, 0)" in message and "Repaint" in message


def test_many_bad_colours_are_summarised():
    rgb = np.zeros((1, 20, 3), np.uint8)
    rgb[0, :, 2] = np.arange(20) * 10 + 50          # 20 different far colours
    with pytest.raises(UserError, match=r"and 15 more in 15 pixels"):
        rgb_to_index(rgb, PALETTE)


def test_ignore_colour_maps_to_ignore_index_only_when_asked():
    rgb = VOC_PALETTE[np.array([[0, 15, 20]])]
    rgb[0, 0] = IGNORE_COLOUR
    np.testing.assert_array_equal(rgb_to_index(rgb, VOC_PALETTE, ignore_index=255), [[255, 15, 20]])
    with pytest.raises(UserError):
        rgb_to_index(rgb, VOC_PALETTE)


def test_index_to_rgb_round_trip_and_ignore():
    rgb = index_to_rgb(LABELS, PALETTE)
    assert rgb.dtype == np.uint8 and rgb.shape == LABELS.shape + (3,)
    np.testing.assert_array_equal(rgb_to_index(rgb, PALETTE), LABELS)
    labels = np.arange(21, dtype=np.uint8).reshape(3, 7)
    np.testing.assert_array_equal(rgb_to_index(index_to_rgb(labels, VOC_PALETTE), VOC_PALETTE), labels)
    with_ignore = LABELS.copy()
    with_ignore[0, 0] = 255
    assert tuple(index_to_rgb(with_ignore, PALETTE)[0, 0]) == IGNORE_COLOUR
    assert tuple(index_to_rgb(with_ignore, PALETTE, ignore_colour=(1, 2, 3))[0, 0]) == (1, 2, 3)


def test_rgb_to_index_is_fast_enough_for_500x500():
    import time
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 21, (500, 500)).astype(np.uint8)
    start = time.perf_counter()
    out = rgb_to_index(index_to_rgb(labels, VOC_PALETTE), VOC_PALETTE)
    assert time.perf_counter() - start < 1.0
    np.testing.assert_array_equal(out, labels)


# --- read_mask -------------------------------------------------------------------

def test_p_mode_is_read_by_index_not_colour(tmp_path):
    # Unusual colours: index 0 green, 1 blue, 2 white; the index still decides.
    save_p(LABELS, tmp_path / "m.png", [(10, 200, 30), (0, 0, 255), (255, 255, 255)])
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png", PALETTE), LABELS)


def test_p_mode_index_outside_palette(tmp_path):
    labels = LABELS.copy()
    labels[0, :2] = 7
    save_p(labels, tmp_path / "bad.png")
    with pytest.raises(UserError) as info:
        read_mask(tmp_path / "bad.png", PALETTE)
    message = str(info.value)
    assert str(tmp_path / "bad.png") in message and "7 in 2 pixels" in message
    # 255 is allowed only when it is the ignore index
    labels[0, :2] = 255
    save_p(labels, tmp_path / "ign.png", VOC_PALETTE)
    assert read_mask(tmp_path / "ign.png", VOC_PALETTE, ignore_index=255)[0, 0] == 255
    with pytest.raises(UserError, match="255 in 2 pixels"):
        read_mask(tmp_path / "ign.png", VOC_PALETTE)


@pytest.mark.parametrize("dtype, suffix, mode", [(np.uint8, ".png", "L"),
                                                   (np.uint16, ".png", "I;16"),
                                                   (np.int32, ".tif", "I")])
def test_greyscale_values_are_indices(tmp_path, dtype, suffix, mode):
    Image.fromarray(LABELS.astype(dtype)).save(tmp_path / f"g{suffix}")
    assert Image.open(tmp_path / f"g{suffix}").mode == mode
    np.testing.assert_array_equal(read_mask(tmp_path / f"g{suffix}", PALETTE), LABELS)
    big = LABELS.astype(dtype)
    big[1, 1] = 40
    Image.fromarray(big).save(tmp_path / f"big{suffix}")
    with pytest.raises(UserError, match=r"big\..*40 in 1 pixel"):
        read_mask(tmp_path / f"big{suffix}", PALETTE)


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_colour_masks(tmp_path, mode):
    rgb = PALETTE[LABELS]
    if mode == "RGBA":
        alpha = np.where(LABELS == 0, 0, 255).astype(np.uint8)   # alpha must not matter
        rgb = np.dstack([rgb, alpha])
    Image.fromarray(rgb, mode).save(tmp_path / "c.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "c.png", PALETTE), LABELS)


def test_la_mask_is_colour_matched(tmp_path):
    grey = np.where(LABELS == 0, 0, 250).astype(np.uint8)
    Image.fromarray(np.dstack([grey, np.full_like(grey, 255)]), "LA").save(tmp_path / "la.png")
    with pytest.raises(UserError, match=r"\(250, 250, 250\)"):
        read_mask(tmp_path / "la.png", PALETTE)
    zeros = np.zeros((3, 4, 2), np.uint8)
    Image.fromarray(zeros, "LA").save(tmp_path / "la0.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "la0.png", PALETTE), np.zeros((3, 4)))


def test_rgb_mask_with_stray_colour_names_file_colour_count(tmp_path):
    rgb = PALETTE[LABELS]
    rgb[2, 1:3] = (200, 100, 50)
    Image.fromarray(rgb).save(tmp_path / "stray.png")
    with pytest.raises(UserError) as info:
        read_mask(tmp_path / "stray.png", PALETTE)
    message = str(info.value)
    assert str(tmp_path / "stray.png") in message
    assert "(200, 100, 50) in 2 pixels" in message


def test_voc_rgb_mask_border_colour_is_ignore(tmp_path):
    labels = np.array([[0, 15, 255]], np.uint8)
    Image.fromarray(index_to_rgb(labels, VOC_PALETTE)).save(tmp_path / "voc.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "voc.png", VOC_PALETTE, 255), labels)


def test_unreadable_and_truncated_and_missing_masks(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"this is not a png")
    with pytest.raises(UserError, match="junk.png"):
        read_mask(tmp_path / "junk.png", PALETTE)
    save_p(np.random.default_rng(0).integers(0, 3, (64, 64)), tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="cut.png"):
        read_mask(tmp_path / "cut.png", PALETTE)
    with pytest.raises(UserError, match="absent.png"):
        read_mask(tmp_path / "absent.png", PALETTE)
