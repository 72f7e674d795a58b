"""The KITTI road layout: the data the FCN-8s reference trains on.

KITTI's road benchmark (data_road.zip) unpacks to::

    data_road/training/image_2/<cat>_<num>.png            photos, cat = um, umm or uu
    data_road/training/gt_image_2/<cat>_road_<num>.png    road masks, drawn in colours
    data_road/training/gt_image_2/um_lane_<num>.png       lane masks (um only): not read
    data_road/testing/image_2/...                         photos without masks: not read

The root may be `data_road` or its `training` folder. A road mask is an RGB
PNG: red (255, 0, 0) = not road, magenta (255, 0, 255) = road, black (0, 0, 0)
= "don't care" (outside the area KITTI labelled). read_kitti_mask turns them
into 0, 1 and IGNORE (255), with the per-channel tolerance of
palette.rgb_to_index (8); any other colour is an error naming the file.

Splits: KITTI keeps the masks of its test photos private (a server scores
them), so the labelled data is the training folder alone and validation has to
come out of it. The split is fixed so every run and every framework holds out
the same photos without a file to carry: in sorted name order (um_..., then
umm_..., then uu_...), every 5th photo, at positions 4, 9, 14, ..., is "test"
(20%, spread over the three categories), the rest "train". Neighbouring
numbers may show the same stretch of road, so a score on this split is
probably a little optimistic compared with KITTI's own test set.
"""
import re
from pathlib import Path

import numpy as np

from common import palette as pal
from common.errors import UserError, few as _few

CLASSES = ("not road", "road")
PALETTE = np.array([(255, 0, 0), (255, 0, 255)], np.uint8)   # KITTI's red and magenta
IGNORE = 255                 # KITTI's black: "don't care", left out of loss and scores
IGNORE_COLOUR = (0, 0, 0)
TOLERANCE = 8                # per channel, as palette.rgb_to_index
TEST_EVERY = 5               # every 5th photo in sorted name order is "test"
SPLITS = ("train", "test")
CATEGORIES = ("um", "umm", "uu")

_PHOTO = re.compile(r"^(um|umm|uu)_(\d+)$")


def _training(root: Path) -> Path:
    """The folder holding image_2 and gt_image_2: root/training, or root itself."""
    root = Path(root)
    if (root / "image_2").is_dir() or (root / "gt_image_2").is_dir():
        return root
    return root / "training"


def is_kitti(root: Path) -> bool:
    """True when root looks like KITTI road: data_road (training/ or testing/ holding
    image_2 or gt_image_2), or one of those folders itself."""
    root = Path(root)
    folders = [root, root / "training", root / "testing"]
    return any((f / "image_2").is_dir() or (f / "gt_image_2").is_dir() for f in folders)


def _photos(image_dir: Path) -> list[Path]:
    """The photos of image_2, sorted by name; other non-hidden files are an error."""
    photos, strangers = [], []
    for path in sorted(image_dir.iterdir()):
        if path.name.startswith("."):
            continue
        if path.suffix == ".png" and _PHOTO.match(path.stem) and path.is_file():
            photos.append(path)
        else:
            strangers.append(path)
    if strangers:
        raise UserError(f"{image_dir} holds {len(strangers)} file(s) that are not KITTI road "
                        f"photos (<cat>_<number>.png, cat one of {', '.join(CATEGORIES)}): "
                        f"{_few(strangers)}. Move them out of the folder.")
    return photos


def kitti_pairs(root: Path, split: str) -> list[tuple[str, Path, Path]]:
    """(stem, photo, road mask) of one split, in sorted name order.

    split "test" = every TEST_EVERY-th photo (positions 4, 9, 14, ...), "train" = the rest.
    """
    if split not in SPLITS:
        raise UserError(f"split {split!r} does not exist for KITTI road; choose train or test "
                        f"(test = every {TEST_EVERY}th training photo in name order, because "
                        f"KITTI's own test masks are not public).")
    root = Path(root)
    base = _training(root)
    if not base.is_dir():
        hint = (f" {root / 'testing'} exists, but KITTI publishes no masks for it."
                if (root / "testing").is_dir() else "")
        raise UserError(f"KITTI road folder {base} is missing: the photos must be in "
                        f"{base / 'image_2'} and their road masks in {base / 'gt_image_2'}.{hint} "
                        f"Point to the data_road folder (or its training folder) of "
                        f"KITTI's data_road.zip.")
    image_dir, mask_dir = base / "image_2", base / "gt_image_2"
    for folder, what in ((image_dir, "photos (<cat>_<number>.png)"),
                         (mask_dir, "road masks (<cat>_road_<number>.png)")):
        if not folder.is_dir():
            hint = (" The testing folder has no masks (KITTI keeps them private): use the "
                    "training folder." if base.name == "testing" else "")
            raise UserError(f"KITTI road folder {folder} is missing: it holds the {what}.{hint} "
                            f"Unpack data_road.zip completely, or point to the data_road folder.")

    photos = _photos(image_dir)
    if not photos:
        raise UserError(f"{image_dir} holds no KITTI road photos (<cat>_<number>.png, cat one "
                        f"of {', '.join(CATEGORIES)}). Unpack data_road.zip into it.")
    pairs, no_mask = [], []
    for photo in photos:
        cat, num = _PHOTO.match(photo.stem).groups()
        mask = mask_dir / f"{cat}_road_{num}.png"
        if mask.is_file():
            pairs.append((photo.stem, photo, mask))
        else:
            no_mask.append(f"{photo} (expected mask {mask})")
    have = {p.stem for p in photos}
    no_photo = [m for m in sorted(mask_dir.glob("*_road_*.png"))
                if m.stem.replace("_road_", "_", 1) not in have]
    if no_mask or no_photo:
        parts = []
        if no_mask:
            parts.append(f"{len(no_mask)} photo(s) have no road mask: {_few(no_mask)}")
        if no_photo:
            parts.append(f"{len(no_photo)} road mask(s) have no photo in {image_dir}: "
                         f"{_few(no_photo)}")
        raise UserError("; ".join(parts) + ". Every photo <cat>_<number>.png needs the mask "
                        "<cat>_road_<number>.png (lane masks do not count), and every road mask "
                        "a photo. Restore the missing files from data_road.zip, or remove the "
                        "unpaired ones.")
    held_out = split == "test"
    return [p for k, p in enumerate(pairs) if (k % TEST_EVERY == TEST_EVERY - 1) == held_out]


def read_kitti_mask(path) -> np.ndarray:
    """A KITTI road mask as uint8 [H, W]: red -> 0, magenta -> 1, black -> IGNORE (255).

    Colours count within TOLERANCE per channel; any other colour raises UserError naming the file.
    """
    img = pal.open_image(path, "KITTI road mask")
    rgb = np.asarray(img.convert("RGB"))
    try:
        return pal.rgb_to_index(rgb, PALETTE, TOLERANCE, source=f"KITTI road mask {path}",
                                ignore_index=IGNORE, ignore_colour=IGNORE_COLOUR)
    except UserError as exc:
        raise UserError(f"{exc} (In KITTI road masks red (255, 0, 0) = not road, magenta "
                        f"(255, 0, 255) = road, black (0, 0, 0) = don't care.)") from None
