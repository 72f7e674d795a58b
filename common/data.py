"""Datasets: find the files, load images and masks, resize, batch, augment.

Three folder layouts are read; which one is detected from the root folder.

Exercise layout (the original DeepLearningMugenKnock newt data)::

    <root>/<split>/images/<class>/<name>.jpg|.png      photos
    <root>/<split>/seg_images/<class>/<name>.png       masks, same class folder and name

  A root that holds `images/` and `seg_images/` directly (no split folders, like
  the shared `imori-train` folder) is accepted too: that one folder is then used
  for *whatever split is asked for*, so "train" and "test" are the same images.
  Classes: palette.CLASSES, colours palette.PALETTE, no ignore index.

Pascal VOC layout::

    <root>/JPEGImages/<id>.jpg
    <root>/SegmentationClass/<id>.png
    <root>/ImageSets/Segmentation/train.txt, val.txt   (one id per line)

  Split "test" reads val.txt when there is no test.txt (VOC's test masks are
  not public). Classes: palette.VOC_CLASSES, index 255 = ignore (object borders).

KITTI road layout (the data of the FCN-8s reference text; common/kitti.py)::

    <root>/training/image_2/<cat>_<num>.png        photos (root may be `training` itself)
    <root>/training/gt_image_2/<cat>_road_<num>.png   red = not road, magenta = road,
                                                       black = ignored (index 255)

  KITTI's test masks are private: every 5th training photo is the "test" split.

An exercise-layout folder may carry splits.json (which stems train, which test)
and classes.json (class names and colours, for classes other than the newts';
tools/labelme_to_masks.py writes both).

Every image becomes float32 RGB in [0, 1], NHWC, squashed to size x size (the
aspect ratio is not kept, as in the original exercise) with OpenCV's area
interpolation, in its displayed orientation (an EXIF orientation tag is applied,
to photos and masks alike). Masks become uint8 class indices [N, size, size],
resized with nearest neighbour only (common/masks.py).

No deep-learning framework is imported here; each framework's glue converts.
"""
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from common import REPO
from common import kitti
from common import palette as pal
from common.augment import Augment
from common.errors import UserError, few as _few
from common.masks import resize_mask

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
# Datasets the project holds, by name (--data imori): the original course's 16 photos.
NAMED = {"imori": REPO / "datasets" / "imori"}
SPLITS_FILE = "splits.json"   # in an exercise-layout folder without split folders: which stems
CLASSES_FILE = "classes.json"  # class names and colours (tools/labelme_to_masks.py writes it)


def dataset_path(text: str) -> Path:
    """--data: a dataset folder, or the name of a dataset the project holds (NAMED).

    A folder of that name in the current directory wins over the name."""
    path = Path(text).expanduser()
    if text in NAMED and not path.exists():
        return NAMED[text]
    return path


@dataclass
class Split:
    """One loaded split of a dataset.

    images: float32 [N, size, size, 3] in [0, 1], NHWC
    masks:  uint8 [N, size, size] class indices (ignore_index allowed)
    names:  file stems, in reader order
    """
    images: np.ndarray
    masks: np.ndarray
    names: list[str]
    classes: tuple[str, ...]
    palette: np.ndarray          # uint8 [C, 3]
    ignore_index: int | None
    root: Path

    def __len__(self) -> int:
        return len(self.names)


# --- Images --------------------------------------------------------------------
# Photos are decoded and resized with OpenCV, as in the original course (cv2.imread,
# cv2.resize; the course used cv2.resize's bilinear default, here area when shrinking). Pillow stays where OpenCV cannot do the job: masks (a palette PNG must be
# read by index, OpenCV gives its colours), the EXIF orientation tag (read by Pillow from
# the header only, applied here, so that photo and mask are turned by the same rule), and
# the rare files OpenCV cannot decode (image_to_array).

_SIXTEEN_BIT = {"I", "I;16", "I;16L", "I;16B", "I;16N"}
# Colour (grey is repeated, alpha dropped), 16-bit kept, EXIF applied by us (_TURN).
_CV_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH | cv2.IMREAD_IGNORE_ORIENTATION
# EXIF orientation -> the same transposition as palette._ORIENT, on [H, W, C] arrays.
_TURN = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
         5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1),
         7: lambda a: np.rot90(a, 2).transpose(1, 0, 2), 8: lambda a: np.rot90(a, 1)}


def image_to_array(img: Image.Image, size: int | None = None) -> np.ndarray:
    """Any Pillow image -> float32 RGB [H, W, 3] in [0, 1] (resize_photo to size x size).

    For the files OpenCV cannot decode. Greyscale is repeated into three channels,
    alpha is dropped (RGBA, LA, PA), palette images are drawn in their colours, CMYK
    is converted. 16-bit greyscale ("I;16", or "I" in older Pillow) is divided by 65535.
    """
    if img.mode in _SIXTEEN_BIT:
        grey = np.clip(np.asarray(img, np.float32) / 65535.0, 0.0, 1.0)
        rgb = np.repeat(grey[:, :, None], 3, axis=2)
    else:
        rgb = np.asarray(img.convert("RGB"), np.float32) / 255.0
    return rgb if size is None else resize_photo(rgb, size)


def resize_photo(rgb: np.ndarray, size: int) -> np.ndarray:
    """float32 [H, W, 3] -> [size, size, 3]: OpenCV's area interpolation when both sides
    shrink (each output pixel the mean of the pixels it covers: no aliasing), else
    bilinear (area would repeat pixels like nearest neighbour along a side that grows). The aspect ratio
    is not kept, as in the original exercise. Masks: masks.resize_mask, nearest only."""
    h, w = rgb.shape[:2]
    if (h, w) == (size, size):
        return rgb
    shrink = size <= h and size <= w
    return cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def exif_orientation(path) -> int:
    """The EXIF orientation tag of an image file (1 = none or unreadable), from its header."""
    try:
        with Image.open(path) as img:
            turn = int(img.getexif().get(pal.ORIENTATION_TAG, 1))
    except Exception:   # damaged EXIF or header: decoding decides whether the file is good
        return 1
    return turn if turn in _TURN else 1


def _decode(path: Path) -> np.ndarray | None:
    """OpenCV's decoding, float32 RGB in [0, 1], or None where OpenCV cannot read the file."""
    raw = np.fromfile(path, np.uint8)     # not cv2.imread: it cannot open non-ASCII paths everywhere
    if raw.size == 0:
        return None
    if path.suffix.lower() in (".jpg", ".jpeg") and bytes(raw[-2:]) != b"\xff\xd9":
        # cut short (libjpeg would fill the rest with grey and only warn), or bytes after
        # the end marker (some cameras): Pillow decides, and names the file if it is damaged
        return None
    quiet = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)   # Pillow gets a second try
    try:
        bgr = cv2.imdecode(raw, _CV_FLAGS)
    finally:
        cv2.utils.logging.setLogLevel(quiet)
    if bgr is None or bgr.ndim != 3:
        return None
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(bgr.dtype, 1.0)
    return np.clip(bgr[..., ::-1].astype(np.float32) / np.float32(scale), 0.0, 1.0)


def read_photo(path) -> np.ndarray:
    """One photo at its own size: float32 RGB [H, W, 3] in [0, 1], as viewers show it.

    An EXIF orientation tag (phone photos usually carry one) is applied, as
    palette.open_image does for masks, so a mask drawn on the displayed photo lines
    up with it. Files OpenCV cannot decode are read by Pillow, whose errors name
    the file (damaged, truncated, not an image).
    """
    path = Path(path)
    rgb = _decode(path) if path.is_file() else None
    if rgb is None:
        return image_to_array(pal.open_image(path, "image"))
    # libtiff turns a TIFF by its Orientation tag itself, even with IMREAD_IGNORE_ORIENTATION
    turn = 1 if path.suffix.lower() in (".tif", ".tiff") else exif_orientation(path)
    return np.ascontiguousarray(_TURN[turn](rgb)) if turn != 1 else rgb


def read_image(path, size: int | None = None) -> np.ndarray:
    """Read one photo: float32 RGB [size, size, 3] in [0, 1] (its own size if size is None)."""
    rgb = read_photo(path)
    return rgb if size is None else resize_photo(rgb, size)


def _resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Class indices [H, W] -> [size, size], nearest neighbour (the course's Q0.2: common/masks.py)."""
    return resize_mask(mask, size)


# --- Finding the files ---------------------------------------------------------

def _is_image_file(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES


def _check_pairs(no_mask: list[tuple[Path, Path]], no_image: list[Path], image_dir: Path) -> None:
    """UserError when some images have no mask or some masks have no image."""
    if not no_mask and not no_image:
        return
    parts = []
    if no_mask:
        parts.append(f"{len(no_mask)} image(s) have no mask: "
                     + _few(f"{img} (expected mask {mask})" for img, mask in no_mask))
    if no_image:
        parts.append(f"{len(no_image)} mask(s) have no image in {image_dir}: " + _few(no_image))
    raise UserError("; ".join(parts) + ". Every image needs a mask with the same name (.png) "
                    "and the same class folder, and every mask an image. Add the missing "
                    "files, or remove the unpaired ones.")


def _exercise_pairs(base: Path) -> list[tuple[str, Path, Path]]:
    """(stem, image, mask) of an exercise-layout folder holding images/ and seg_images/.

    Images may sit in class folders (images/akahara/...) or directly in images/.
    Order: class folder, then stem (sorted, so every run reads the same order).
    """
    image_dir, mask_dir = base / "images", base / "seg_images"
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise UserError(f"{folder} is missing: the exercise layout keeps the photos in "
                            f"{base}/images/<class>/ and their masks, with the same names, in "
                            f"{base}/seg_images/<class>/. Create it or point to another folder.")

    def listing(top: Path, accept) -> dict[tuple[str, str], list[Path]]:
        found: dict[tuple[str, str], list[Path]] = {}
        folders = [top] + sorted(p for p in top.iterdir() if p.is_dir() and not p.name.startswith("."))
        for folder in folders:
            group = "" if folder == top else folder.name
            for path in sorted(folder.iterdir()):
                if accept(path):
                    found.setdefault((group, path.stem), []).append(path)
        return found

    images = listing(image_dir, _is_image_file)
    masks = listing(mask_dir, lambda p: _is_image_file(p) and p.suffix.lower() == ".png")
    broken = [p for p in sorted(image_dir.rglob("*")) + sorted(mask_dir.rglob("*"))
              if p.is_symlink() and not p.exists() and p.suffix.lower() in IMAGE_SUFFIXES]
    if broken:
        raise UserError(f"{len(broken)} file(s) are broken symbolic links (their target does not "
                        f"exist): {_few(broken)}. Restore the files they point to, or remove "
                        f"the links.")

    twins = [paths for paths in images.values() if len(paths) > 1]
    if twins:
        raise UserError(f"images with the same name but different suffixes share one mask: "
                        f"{_few(p for paths in twins for p in paths)}. Rename or remove one of each.")

    no_mask, pairs = [], []
    for (group, stem), (image,) in sorted(images.items()):
        if (group, stem) in masks:
            pairs.append((stem, image, masks[(group, stem)][0]))
        else:
            no_mask.append((image, mask_dir / group / f"{stem}.png"))
    no_image = [paths[0] for key, paths in sorted(masks.items()) if key not in images]
    _check_pairs(no_mask, no_image, image_dir)
    return pairs


def _voc_pairs(root: Path, split: str) -> list[tuple[str, Path, Path]]:
    """(id, image, mask) for the ids listed in ImageSets/Segmentation/<split>.txt, in file order."""
    lists = root / "ImageSets" / "Segmentation"
    list_file = lists / f"{split}.txt"
    if split == "test" and not list_file.is_file():
        list_file = lists / "val.txt"          # VOC publishes no test masks
    if not list_file.is_file():
        found = sorted(p.stem for p in lists.glob("*.txt")) if lists.is_dir() else []
        raise UserError(f"split list {list_file} does not exist (Pascal VOC layout). Splits "
                        f"found in {lists}: {', '.join(found) or 'none'}. Choose one of those, "
                        f"or write the file with one image id (file name without .jpg) per line.")
    ids = [line.split()[0] for line in list_file.read_text().splitlines() if line.strip()]
    no_mask, no_image, neither, pairs = [], [], [], []
    for stem in ids:
        image = root / "JPEGImages" / f"{stem}.jpg"
        mask = root / "SegmentationClass" / f"{stem}.png"
        if image.is_file() and mask.is_file():
            pairs.append((stem, image, mask))
        elif image.is_file():
            no_mask.append((image, mask))
        elif mask.is_file():
            no_image.append(mask)
        else:
            neither.append(stem)
    if neither:
        raise UserError(f"split list {list_file} names {len(neither)} id(s) with neither an image "
                        f"in {root / 'JPEGImages'} nor a mask in {root / 'SegmentationClass'}: "
                        f"{_few(neither)}. Remove those lines, or add the files.")
    _check_pairs(no_mask, no_image, root / "JPEGImages")
    if not pairs:
        raise UserError(f"split list {list_file} lists no image ids. Write one id per line, "
                        f"or choose another split.")
    return pairs


def _listed_pairs(pairs, split_file: Path, split: str):
    """The pairs whose stems splits.json lists for `split`, in reader order."""
    try:
        lists = json.loads(split_file.read_text())
        wanted = lists[split]
    except (OSError, ValueError) as exc:
        raise UserError(f"{split_file} cannot be read as JSON ({exc}). It lists the file names "
                        f"(without suffix) of each split: {{\"train\": [...], \"test\": [...]}}.") from None
    except KeyError:
        found = [k for k, v in lists.items() if isinstance(v, list)]
        raise UserError(f"{split_file} has no split {split!r}; it lists {', '.join(found) or 'none'}. "
                        f"Add a list of file names for {split!r}.") from None
    have = {stem for stem, _, _ in pairs}
    missing = [stem for stem in wanted if stem not in have]
    if missing:
        raise UserError(f"{split_file} lists for {split!r} {len(missing)} name(s) with no photo "
                        f"and mask in {split_file.parent}: {_few(missing)}. Fix the names or add "
                        f"the files.")
    wanted = set(wanted)
    return [p for p in pairs if p[0] in wanted]


def _is_voc(folder: Path) -> bool:
    return any((folder / name).is_dir() for name in ("JPEGImages", "SegmentationClass", "ImageSets"))


def _is_exercise(folder: Path) -> bool:
    """True when `folder` holds images/ or seg_images/, or a split folder that does."""
    def holds(f: Path) -> bool:
        return (f / "images").is_dir() or (f / "seg_images").is_dir()
    return holds(folder) or any(holds(child) for child in folder.iterdir() if child.is_dir())


def _layout_error(root: Path) -> UserError:
    """Say which layouts we read, what the root holds, and any subfolder that would work."""
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())
    candidates = [p for p in sorted(root.glob("*")) + sorted(root.glob("*/*"))
                  if p.is_dir() and (_is_voc(p) or (p / "images").is_dir())]
    hint = f" Did you mean {candidates[0]}?" if candidates else ""
    return UserError(
        f"dataset folder {root} matches no layout. Expected the exercise layout "
        f"{root}/<split>/images/<class>/*.jpg with masks {root}/<split>/seg_images/<class>/*.png "
        f"(or images/ and seg_images/ directly in {root}), the Pascal VOC layout "
        f"{root}/JPEGImages/*.jpg, {root}/SegmentationClass/*.png, "
        f"{root}/ImageSets/Segmentation/<split>.txt, or KITTI road's "
        f"{root}/training/image_2/*.png with {root}/training/gt_image_2/*_road_*.png. It holds: "
        f"{', '.join(entries[:10]) or 'nothing'}{' ...' if len(entries) > 10 else ''}.{hint}")


def find_samples(root, split: str):
    """Detect the layout and pair the files of one split.

    Returns (pairs, classes, palette, ignore_index), pairs = [(stem, image path, mask path)].
    """
    root = Path(root).expanduser()
    if root.is_symlink() and not root.exists():
        raise UserError(f"dataset folder {root} is a broken symbolic link (to {root.readlink()}, "
                        f"which does not exist). Point the link at the dataset, or give the "
                        f"dataset's own path.")
    if not root.exists():
        raise UserError(f"dataset folder {root} does not exist. Check the dataset path "
                        f"(a relative path starts from the current folder).")
    if not root.is_dir():
        raise UserError(f"dataset path {root} is a file, not a folder. Point to the folder "
                        f"that holds the images.")
    if _is_voc(root):
        return _voc_pairs(root, split), pal.VOC_CLASSES, pal.VOC_PALETTE, pal.VOC_IGNORE
    if kitti.is_kitti(root):
        return kitti.kitti_pairs(root, split), kitti.CLASSES, kitti.PALETTE, kitti.IGNORE
    if not _is_exercise(root):
        raise _layout_error(root)
    if (root / "images").is_dir() or (root / "seg_images").is_dir():
        base = root                             # no split folders: this folder is every split
    else:
        base = root / split
        if not (base / "images").is_dir() and not (base / "seg_images").is_dir():
            found = sorted(c.name for c in root.iterdir()
                           if (c / "images").is_dir() or (c / "seg_images").is_dir())
            raise UserError(f"split folder {base} does not exist or holds no images/ folder. "
                            f"Splits found in {root}: {', '.join(found)}. Choose one of those "
                            f"as the split, or, for a folder that holds images/ and "
                            f"seg_images/ itself, give that folder as the dataset path.")
    pairs = _exercise_pairs(base)
    if base == root and (root / SPLITS_FILE).is_file():
        pairs = _listed_pairs(pairs, root / SPLITS_FILE, split)
    if not pairs:
        raise UserError(f"split folder {base} holds no images ({', '.join(IMAGE_SUFFIXES)}) in "
                        f"{base / 'images'}. Put the photos in {base}/images/<class>/ and their "
                        f"masks in {base}/seg_images/<class>/.")
    for folder in (base, root):
        if (folder / CLASSES_FILE).is_file():
            return pairs, *_read_classes_file(folder / CLASSES_FILE), None
    return pairs, pal.CLASSES, pal.PALETTE, None


def _read_classes_file(path: Path):
    """classes.json {"classes": [names], "palette": [[r, g, b], ...]} -> (names, uint8 [C, 3])."""
    fix = ("It lists the class names, index 0 first, and one colour each: "
           '{"classes": ["background", ...], "palette": [[0, 0, 0], ...]} '
           "(tools/labelme_to_masks.py writes it). Correct it, or remove it to use the newt classes.")
    try:
        content = json.loads(path.read_text())
        names, colours = content["classes"], np.array(content["palette"], np.int64)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise UserError(f"{path} cannot be read as a class list ({type(exc).__name__}: {exc}). "
                        f"{fix}") from None
    if (not isinstance(names, list) or len(names) < 2
            or not all(isinstance(n, str) and n for n in names)
            or colours.shape != (len(names), 3) or colours.min() < 0 or colours.max() > 255):
        raise UserError(f"{path} must list two or more class names and as many colours "
                        f"[r, g, b] (0-255). {fix}")
    return tuple(names), colours.astype(np.uint8)


# --- Loading -------------------------------------------------------------------

def load_split(root, split: str, size: int, limit: int | None = None) -> Split:
    """Load one split: every image resized to size x size, masks as class indices.

    limit: keep only the first `limit` samples (for --dry-run); the pairing of
    all files is still checked.
    Bad input (missing folders, unpaired or unreadable files, a mask whose size
    differs from its image, a mask colour outside the palette) raises UserError.
    """
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise UserError(f"image size {size!r} is not a positive whole number; use e.g. 64.")
    if limit is not None and (not isinstance(limit, (int, np.integer)) or limit < 1):
        raise UserError(f"limit {limit!r} must be a positive whole number (or None for all).")
    pairs, classes, palette, ignore_index = find_samples(root, split)
    if limit is not None:
        pairs = pairs[:limit]

    images = np.empty((len(pairs), size, size, 3), np.float32)
    masks = np.empty((len(pairs), size, size), np.uint8)
    road = palette is kitti.PALETTE    # find_samples chose KITTI: colour masks, black = ignore
    for k, (_, image_path, mask_path) in enumerate(pairs):
        photo = read_photo(image_path)
        mask = (kitti.read_kitti_mask(mask_path) if road
                else pal.read_mask(mask_path, palette, ignore_index))
        if mask.shape != photo.shape[:2]:
            turned = exif_orientation(image_path)
            stored = photo.shape[:2] if turned in (1, 2, 3, 4) else photo.shape[1::-1]
            if turned != 1 and mask.shape == stored:
                raise UserError(
                    f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} (width x height): it "
                    f"fits its image {image_path} as stored, but that photo's EXIF orientation "
                    f"tag ({turned}: {pal.ORIENTATION_WORDS[turned]}) turns it to "
                    f"{photo.shape[1]}x{photo.shape[0]} on display, and photos are read as displayed "
                    f"(as labelling tools show them). Turn the mask the same way, or save the "
                    f"photo turned and without the tag. Do not resize the mask: that would "
                    f"scramble its labels.")
            raise UserError(
                f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} (width x height) but its "
                f"image {image_path} is {photo.shape[1]}x{photo.shape[0]}. A mask must cover its image "
                f"pixel for pixel: redraw or re-export it at the image's size (resize with "
                f"nearest neighbour so no new colours appear).")
        images[k] = resize_photo(photo, size)
        masks[k] = _resize_mask(mask, size)
    return Split(images=images, masks=masks, names=[stem for stem, _, _ in pairs],
                 classes=tuple(classes), palette=palette, ignore_index=ignore_index,
                 root=Path(root))


def describe(split: Split) -> str:
    """One line for logs: '16 images 64x64, 3 classes, pixels: background 71.0%, ...'."""
    n, size = len(split), split.images.shape[1]
    counts = np.bincount(split.masks.ravel(), minlength=256).astype(np.float64)
    total = max(counts.sum(), 1.0)
    shares = [f"{name} {100 * counts[i] / total:.1f}%" for i, name in enumerate(split.classes)]
    if split.ignore_index is not None:
        shares.append(f"ignore {100 * counts[split.ignore_index] / total:.1f}%")
    return (f"{n} images {size}x{size} from {split.root}, {len(split.classes)} classes, "
            f"pixels: {', '.join(shares)}")


# --- Batching ------------------------------------------------------------------

class Batches:
    """Deterministic, resumable batching: batch(i) depends only on (seed, i).

    The samples are read in epochs; epoch e visits them in the order
    default_rng([seed, e]).permutation(N). Batch i holds positions
    i*batch_size ... i*batch_size + batch_size - 1 of that endless stream, so a
    batch may run over into the next epoch, and batch_size > N simply repeats
    samples. Because nothing is carried from one call to the next, a run
    resumed at step i gets exactly the batches it would have got.

    Augmentation (common/augment.py, --augment): "flip" (the default) flips each
    sample left-right and upside down, each with probability 0.5, drawn from
    (seed, i); "photos" adds albumentations' scale, shift, rotation and colour,
    drawn from (seed, i, sample); "none" leaves the batch as read. Image and mask
    always get the same transform. flip=False (the older keyword) means "none".
    """

    def __init__(self, split: Split, batch_size: int, seed: int, flip: bool = True,
                 augment: str | None = None):
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise UserError(f"batch size {batch_size!r} must be a positive whole number, e.g. 4.")
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise UserError(f"seed {seed!r} must be a whole number >= 0, e.g. 0.")
        if len(split) == 0:
            raise UserError(f"the split loaded from {split.root} is empty; there is nothing to batch.")
        self.split = split
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.augment = Augment(augment if augment is not None else ("flip" if flip else "none"))
        self.flip = self.augment.name != "none"

    def epoch(self, i: int) -> int:
        """The epoch in which batch i starts."""
        return (i * self.batch_size) // len(self.split)

    def indices(self, i: int) -> np.ndarray:
        """Sample indices of batch i: int64 [batch_size]."""
        if not isinstance(i, (int, np.integer)) or i < 0:
            raise ValueError(f"batch index must be an int >= 0, got {i!r}")
        n = len(self.split)
        positions = i * self.batch_size + np.arange(self.batch_size)
        epochs, within = positions // n, positions % n
        out = np.empty(self.batch_size, np.int64)
        for e in np.unique(epochs):             # usually one epoch, two at a boundary
            order = np.random.default_rng([self.seed, int(e)]).permutation(n)
            out[epochs == e] = order[within[epochs == e]]
        return out

    def batch(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch i: x float32 [B, H, W, 3] (NHWC), y int32 [B, H, W] class indices."""
        idx = self.indices(i)
        x = self.split.images[idx]               # fancy indexing copies: the split stays untouched
        y = self.split.masks[idx].astype(np.int32)
        return self.augment(x, y, self.seed, i)


# --- Layouts -------------------------------------------------------------------

def to_nchw(x: np.ndarray) -> np.ndarray:
    """[B, H, W, C] -> [B, C, H, W] (PyTorch, Chainer), as a contiguous copy."""
    if np.ndim(x) != 4:
        raise ValueError(f"to_nchw expects [B, H, W, C], got shape {np.shape(x)}")
    return np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2)))


def to_nhwc(x: np.ndarray) -> np.ndarray:
    """[B, C, H, W] -> [B, H, W, C] (TensorFlow, Keras), as a contiguous copy."""
    if np.ndim(x) != 4:
        raise ValueError(f"to_nhwc expects [B, C, H, W], got shape {np.shape(x)}")
    return np.ascontiguousarray(np.transpose(x, (0, 2, 3, 1)))
