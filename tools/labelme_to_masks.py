"""Turn labelme annotations (JSON) into a dataset in the exercise layout.

    python tools/labelme_to_masks.py my_photos/ --out datasets/mine
    python tools/labelme_to_masks.py a.json b.json --out datasets/mine --test-share 0.25 --seed 0
    python tools/labelme_to_masks.py shots/ --out datasets/pets --classes background,cat,dog
    python tools/labelme_to_masks.py shots/ --out datasets/pets --classes background,cat,dog \\
        --palette colours.json

Draw polygons around the objects in labelme (https://github.com/wkentaro/labelme),
one label per shape, and save: labelme writes one JSON per photo. This tool
reads those JSON files (given one by one, or folders, searched recursively)
and writes into --out:

    images/<class>/<stem>.<ext>      a copy of each photo (stem = the JSON's file name)
    seg_images/<class>/<stem>.png    its mask: a palette ("P") PNG whose index is the class
    splits.json                      which stems are "train" and which "test"
    classes.json                     {"classes": [names], "palette": [[r, g, b], ...]}

which `--data <out>` reads like datasets/imori. The photo is found through the
JSON's imagePath (relative to the JSON's folder); when it is not there but the
JSON embeds it (imageData, labelme's "Save image data"), it is decoded and saved.

Masks: every pixel starts as class 0 (the first of --classes, the background);
polygons, rectangles and circles are then filled with the index of their label
in --classes, in the order they were drawn, so a later shape covers an earlier
one (as labelme's own converters do; Pillow draws them the same way). Lines,
line strips, points and other shape types enclose no area: they are skipped
with a warning naming the file and the shape (labelme's converters would paint
a line 10 pixels wide and a point as a small disc: widths no one chose), as
are labelme's "mask" shapes. group_id (instances) is ignored.
The mask has the photo's size as labelme saw it (imageWidth x imageHeight, the
photo as displayed, EXIF orientation applied); a photo of another size is an
error, since the shapes would not line up.

Class folder: the exercise layout sorts photos into class folders, so each
photo goes into the folder of the class covering most of its mask besides
class 0 (ties: the earlier class in --classes), or "unlabelled" when nothing
but class 0 is drawn. The folder is only for order; the mask is the label.

Colours: the newt classes (the default) get palette.PALETTE, the colours of
datasets/imori; other class lists get the VOC colormap (1 = (128, 0, 0), 2 =
(0, 128, 0), ...), unless --palette FILE gives them: a JSON list of [r, g, b],
one per class, or the classes.json of an earlier conversion.

Split: the stems in name order, shuffled with --seed; the first round(N *
--test-share) go to "test" (at least one photo in each split when there are
two or more), the rest to "train". The same JSON files and seed always give
the same split.

Nothing is overwritten or deleted unless asked: an --out that holds files is
refused, and --overwrite writes over files of the same name and leaves any
other files as they are. Every file is written atomically (a temporary file,
then renamed). All JSON files are checked before the first file is written.

The original course (DeepLearningMugenKnock) made its newt masks with labelme
too: its Dataset folder (seen in a fork of the course) ran labelme's example
converter labelme2voc.py (Dataset/train/mask_png.sh) with a labels.txt of
__ignore__, _background_, akahara, madara. That script writes Pascal-VOC-style
folders (JPEGImages/, SegmentationClass/ as .npy arrays,
SegmentationClassVisualization/), one run per species folder. What differs
here: the output is the exercise layout itself (class folders, palette-PNG
masks paired by name) plus splits.json and classes.json, in one run over all
species; there is no __ignore__ label (the exercise layout has no ignore index,
so every label must be one of --classes); lines and points are skipped, not
painted; a photo whose size differs from the annotation is refused; and where
labelme2voc stops when its output folder exists at all, an empty --out is
fine here and --overwrite writes into a full one.
"""
import argparse
import base64
import binascii
import io
import json
import math
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from common import outdir
from common import palette as pal
from common.data import IMAGE_SUFFIXES, SPLITS_FILE
from common.errors import UserError, few as _few, exit_on_user_error
from common.weights import atomic_write

CLASSES_FILE = "classes.json"
UNLABELLED = "unlabelled"          # class folder of a photo with nothing but class 0
AREA_SHAPES = ("polygon", "rectangle", "circle")
DECODED_SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp", "TIFF": ".tif"}
LABELME_FORMAT = ('labelme saves {"shapes": [{"label", "points", "shape_type", ...}, ...], '
                  '"imagePath", "imageData", "imageHeight", "imageWidth"}')


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)




# --- Options -------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sources", nargs="+", type=Path, metavar="SRC_FOLDER_OR_JSON",
                   help="labelme JSON files, or folders searched for *.json")
    p.add_argument("--out", type=Path, required=True, help="dataset folder to write")
    p.add_argument("--classes", default=",".join(pal.CLASSES),
                   help=f"comma-separated class names, index 0 first (the background); "
                        f"default: {','.join(pal.CLASSES)}")
    p.add_argument("--palette", type=Path, default=None,
                   help="JSON file of colours: a list of [r, g, b], one per class, or a "
                        "classes.json (default: the newt colours, else the VOC colormap)")
    p.add_argument("--test-share", type=float, default=0.25,
                   help="share of the photos in the test split, between 0 and 1 (default: 0.25)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split (default: 0)")
    p.add_argument("--overwrite", action="store_true",
                   help="write into an --out that holds files, over files of the same name "
                        "(nothing is deleted)")
    args = p.parse_args(argv)
    args.classes = parse_classes(args.classes)
    if not 0.0 < args.test_share < 1.0:
        raise UserError(f"--test-share {args.test_share}: give a share between 0 and 1 "
                        f"(exclusive), e.g. 0.25 for a quarter of the photos.")
    if args.seed < 0:
        raise UserError(f"--seed {args.seed}: give a whole number >= 0, e.g. 0.")
    return args


def parse_classes(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(","))
    if len(names) < 2 or not all(names):
        raise UserError(f"--classes {text!r}: give two or more comma-separated names, the "
                        f"background first, e.g. --classes {','.join(pal.CLASSES)}.")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"--classes {text!r} names {', '.join(twice)} more than once; "
                        f"give each class once.")
    bad = [n for n in names if n in (".", "..") or any(c in n for c in "/\\:")]
    if bad:
        raise UserError(f"--classes {text!r}: {', '.join(bad)} cannot be a folder name "
                        f"(class names become class folders). Use letters, digits, _ or -.")
    if len(names) > 256:
        raise UserError(f"--classes names {len(names)} classes; a palette PNG holds at most 256.")
    return names


def default_palette(classes) -> np.ndarray:
    if tuple(classes) == pal.CLASSES:
        return pal.PALETTE.copy()
    return pal._voc_colormap(len(classes))


def read_palette(path: Path, classes) -> np.ndarray:
    """--palette FILE: a JSON list of [r, g, b] (one per class), or a classes.json."""
    fix = (f"Write a JSON list of {len(classes)} colours [r, g, b] (0-255), one per class in "
           f"--classes order ({', '.join(classes)}), or pass a classes.json this tool wrote.")
    try:
        content = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"--palette {path} cannot be read as JSON ({exc}). {fix}") from None
    if isinstance(content, dict):
        named = content.get("classes")
        if named is not None and list(named) != list(classes):
            raise UserError(f"--palette {path} is for the classes {', '.join(map(str, named))}, "
                            f"but --classes is {','.join(classes)}. Pass the same classes, "
                            f"or another palette. {fix}")
        content = content.get("palette")
    try:
        colours = np.array(content, np.int64)
    except (TypeError, ValueError, OverflowError):
        colours = np.zeros((0,), np.int64)
    if colours.shape != (len(classes), 3) or colours.min() < 0 or colours.max() > 255:
        raise UserError(f"--palette {path} does not hold {len(classes)} colours [r, g, b] "
                        f"with values 0-255. {fix}")
    if len({tuple(c) for c in colours.tolist()}) < len(classes):
        raise UserError(f"--palette {path} gives two classes the same colour; masks drawn in "
                        f"colours could not tell them apart. {fix}")
    return colours.astype(np.uint8)


# --- Reading labelme's JSON ----------------------------------------------------

@dataclass
class Shape:
    number: int          # position in the JSON's shapes, from 1 (for messages)
    label: str
    kind: str            # polygon, rectangle, circle
    points: list         # [(x, y), ...]


@dataclass
class Annotation:
    json_path: Path
    stem: str
    shapes: list         # [Shape], drawing order
    width: int
    height: int
    photo: Path | None   # the photo file, or None when decoded from imageData
    data: bytes | None   # the decoded imageData, when photo is None
    suffix: str          # of the copy written


def collect_json(sources, out: Path) -> list[Path]:
    """The JSON files named or found (recursively, hidden folders and --out left out)."""
    found, seen = [], set()
    out = out.resolve()
    for src in sources:
        if not src.exists():
            raise UserError(f"{src} does not exist. Give labelme JSON files or folders that "
                            f"hold them (a relative path starts from the current folder).")
        if src.is_dir():
            files = [p for p in sorted(src.rglob("*.json"))
                     if p.is_file()
                     and not any(part.startswith(".") for part in p.relative_to(src).parts)
                     and out not in p.resolve().parents]
            if not files:
                raise UserError(f"folder {src} holds no .json files. Give the folder where "
                                f"labelme saved its annotations, or the JSON files themselves.")
        else:
            files = [src]
        for path in files:
            if path.resolve() not in seen:
                seen.add(path.resolve())
                found.append(path)
    return found


def _not_labelme(path: Path, why: str) -> UserError:
    return UserError(f"{path} is not a labelme annotation: {why}. {LABELME_FORMAT}; pass only "
                     f"labelme's JSON files, or folders holding only those.")


def _points(path: Path, shape: dict, number: int) -> list:
    points = shape.get("points")
    try:
        xy = [(float(x), float(y)) for x, y in points]
    except (TypeError, ValueError):
        raise _not_labelme(path, f"shape {number} ({shape.get('label')!r}) has points "
                                 f"{str(points)[:60]}, not a list of [x, y]") from None
    if not all(math.isfinite(v) for p in xy for v in p):
        raise _not_labelme(path, f"shape {number} ({shape.get('label')!r}) has a point "
                                 f"that is not a finite number")
    return xy


def _read_json(path: Path) -> dict:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise _not_labelme(path, "it is not UTF-8 text") from None
    except OSError as exc:
        raise UserError(f"{path} cannot be read ({exc.strerror or exc}). Check its "
                        f"permissions.") from None
    except ValueError as exc:
        raise _not_labelme(path, f"it is not valid JSON ({exc})") from None
    if not isinstance(content, dict):
        raise _not_labelme(path, f"it holds a JSON {type(content).__name__}, not an object")
    if not isinstance(content.get("shapes"), list):
        raise _not_labelme(path, 'it has no list "shapes"')
    if "imagePath" not in content and "imageData" not in content:
        raise _not_labelme(path, 'it has neither "imagePath" nor "imageData"')
    return content


def _shapes(path: Path, content: dict) -> list[Shape]:
    """The shapes that enclose an area, in drawing order; the others are skipped with a warning."""
    shapes = []
    for number, shape in enumerate(content["shapes"], 1):
        if not isinstance(shape, dict) or not isinstance(shape.get("label"), str):
            raise _not_labelme(path, f"shape {number} is not an object with a text \"label\"")
        label = shape["label"]
        kind = shape.get("shape_type") or "polygon"   # labelme 3 wrote no shape_type: polygons
        xy = _points(path, shape, number)
        where = f"{path}: shape {number} ({kind} {label!r})"
        if kind not in AREA_SHAPES:
            warn(f"{where} skipped: a {kind} encloses no area; only "
                 f"{', '.join(AREA_SHAPES)} are drawn into the mask.")
            continue
        need = {"polygon": 3, "rectangle": 2, "circle": 2}[kind]
        if len(xy) < need or (kind == "circle" and len(xy) != 2):
            warn(f"{where} skipped: it has {len(xy)} point(s); a {kind} needs "
                 f"{'exactly' if kind == 'circle' else 'at least'} {need}.")
            continue
        shapes.append(Shape(number, label, kind, xy))
    return shapes


def _size_field(path: Path, content: dict, key: str):
    value = content.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _not_labelme(path, f"{key} is {value!r}, not a positive whole number")
    return value


def _displayed_size(img: Image.Image) -> tuple[int, int]:
    """(width, height) as shown: an EXIF orientation of 5-8 swaps them."""
    try:
        orientation = int(img.getexif().get(pal.ORIENTATION_TAG, 1))
    except Exception:
        orientation = 1
    w, h = img.size
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def _photo(path: Path, content: dict):
    """(photo path or None, decoded bytes or None, suffix, (width, height) as displayed)."""
    image_path = content.get("imagePath")
    candidate = None
    if isinstance(image_path, str) and image_path:
        candidate = path.parent / image_path.replace("\\", "/")   # labelme on Windows writes \
        if candidate.is_file():
            if candidate.suffix.lower() not in IMAGE_SUFFIXES:
                raise UserError(f"photo {candidate} of {path} is a {candidate.suffix} file; the "
                                f"dataset readers take {', '.join(IMAGE_SUFFIXES)}. Convert the "
                                f"photo to one of those (e.g. .png) and set imagePath to it.")
            img = pal.open_image(candidate, "photo")
            return candidate, None, candidate.suffix.lower(), img.size
    data = content.get("imageData")
    if isinstance(data, str) and data:
        try:
            raw = base64.b64decode(data, validate=True)
            with Image.open(io.BytesIO(raw)) as img:
                img.load()
                size, fmt = _displayed_size(img), img.format
        except (binascii.Error, ValueError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
            raise UserError(f"{path}: its imageData (the embedded photo) cannot be decoded "
                            f"({type(exc).__name__}: {exc}). Open the photo in labelme and save "
                            f"the annotation again, or put the photo at imagePath.") from None
        suffix = DECODED_SUFFIX.get(fmt)
        if suffix is None:                         # e.g. GIF, WebP: stored as PNG
            buf = io.BytesIO()
            with Image.open(io.BytesIO(raw)) as img:
                img.convert("RGB").save(buf, "PNG")
            raw, suffix = buf.getvalue(), ".png"
        return None, raw, suffix, size
    expected = f"at {candidate}" if candidate else "(imagePath is empty)"
    raise UserError(f"the photo of {path} cannot be found: imagePath {image_path!r} points "
                    f"{expected}, which is not a file, and the JSON embeds no imageData. Put "
                    f"the photo there, correct imagePath, or save the annotation in labelme "
                    f"with 'Save image data' on.")


def read_annotation(path: Path) -> Annotation:
    content = _read_json(path)
    width, height = _size_field(path, content, "imageWidth"), _size_field(path, content, "imageHeight")
    shapes = _shapes(path, content)
    photo, data, suffix, (pw, ph) = _photo(path, content)
    where = photo if photo is not None else "its embedded imageData"
    if (width is not None and width != pw) or (height is not None and height != ph):
        raise UserError(f"{path} was drawn on a photo of {width}x{height} (imageWidth x "
                        f"imageHeight) but its photo {where} is {pw}x{ph} (as displayed). The "
                        f"shapes would not line up: use the photo it was drawn on, or open this "
                        f"photo in labelme and draw it again. Do not resize the mask.")
    return Annotation(path, path.stem, shapes, pw, ph, photo, data, suffix)


def check_labels(annotations, classes) -> None:
    """UserError naming every label that is not a class, and the files that use it."""
    unknown: dict[str, list[Path]] = {}
    for ann in annotations:
        for shape in ann.shapes:
            if shape.label not in classes:
                files = unknown.setdefault(shape.label, [])
                if ann.json_path not in files:
                    files.append(ann.json_path)
    if unknown:
        listed = "; ".join(f"{label!r} in {_few(files)}" for label, files in unknown.items())
        extended = ",".join(list(classes) + list(unknown))
        raise UserError(f"label(s) not in --classes: {listed}. Known classes: "
                        f"{', '.join(classes)}. Add them to --classes (e.g. --classes "
                        f"{extended}), or correct the label in labelme.")


def check_stems(annotations) -> None:
    by_stem: dict[str, list[Path]] = {}
    for ann in annotations:
        by_stem.setdefault(ann.stem, []).append(ann.json_path)
    twins = [paths for paths in by_stem.values() if len(paths) > 1]
    if twins:
        raise UserError(f"JSON files with the same name would write the same photo and mask: "
                        f"{_few(p for paths in twins for p in paths)}. Rename one of each "
                        f"(the file name becomes the sample's name).")


# --- Drawing -------------------------------------------------------------------

def draw_mask(ann: Annotation, classes) -> np.ndarray:
    """Class indices uint8 [height, width]: 0, then every shape filled in drawing order."""
    canvas = Image.new("L", (ann.width, ann.height), 0)
    draw = ImageDraw.Draw(canvas)
    for shape in ann.shapes:
        index = classes.index(shape.label)
        xy = shape.points
        if shape.kind == "polygon":
            draw.polygon(xy, fill=index, outline=index)
        elif shape.kind == "rectangle":           # two corners, in any order
            xs, ys = [p[0] for p in xy], [p[1] for p in xy]
            draw.rectangle([min(xs), min(ys), max(xs), max(ys)], fill=index, outline=index)
        else:                                     # circle: centre, then a point on the edge
            (cx, cy), (px, py) = xy
            r = math.hypot(px - cx, py - cy)
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=index, outline=index)
    return np.asarray(canvas, np.uint8)


def class_folder(mask: np.ndarray, classes) -> str:
    """The class covering most of the mask besides class 0; ties go to the earlier class."""
    counts = np.bincount(mask.ravel(), minlength=len(classes))[1:]
    return classes[1 + int(np.argmax(counts))] if counts.any() else UNLABELLED


def split_stems(stems, share: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, test), each sorted: round(N * share) stems to test, at least 1 each when N >= 2."""
    stems = sorted(stems)
    n = len(stems)
    n_test = int(math.floor(n * share + 0.5))
    n_test = min(max(n_test, 1), n - 1) if n >= 2 else 0
    order = np.random.default_rng(seed).permutation(n)
    test = {stems[i] for i in order[:n_test]}
    return [s for s in stems if s not in test], sorted(test)


# --- Writing -------------------------------------------------------------------

def existing_files(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if not p.is_dir()) if out.is_dir() else []


def check_out(out: Path, overwrite: bool) -> list[Path]:
    outdir.check_writable(out)
    held = existing_files(out)
    if held and not overwrite:
        raise UserError(f"--out {out} already holds {len(held)} file(s): {_few(held)}. Choose "
                        f"a new or empty folder, or pass --overwrite to write over files of "
                        f"the same name (nothing is deleted; other files stay).")
    return held


def check_stale_twins(out: Path, planned: dict[str, str], suffixes: dict[str, str]) -> None:
    """With --overwrite: a photo or mask of the same stem in another class folder (or with
    another suffix) would make the readers see the sample twice; refuse, naming them."""
    stale = []
    for sub in ("images", "seg_images"):
        top = out / sub
        if not top.is_dir():
            continue
        for path in sorted(top.rglob("*")):
            if not path.is_file() or path.stem not in planned:
                continue
            folder = path.parent.relative_to(top).as_posix()
            suffix = suffixes[path.stem] if sub == "images" else ".png"
            if folder != planned[path.stem] or path.suffix.lower() != suffix:
                stale.append(path)
    if stale:
        raise UserError(f"--out {out} already holds files of the same name(s) in another class "
                        f"folder or with another suffix: {_few(stale)}. The dataset readers "
                        f"would find each such photo twice. Remove them (this tool deletes "
                        f"nothing), or choose an empty --out.")


def save_mask(path: Path, mask: np.ndarray, palette: np.ndarray) -> None:
    img = Image.fromarray(np.ascontiguousarray(mask, np.uint8))
    img.putpalette(palette.astype(np.uint8).ravel().tolist())    # "L" -> "P": index = class
    atomic_write(path, lambda tmp: img.save(tmp, format="PNG"))


def save_photo(path: Path, ann: Annotation) -> None:
    if ann.photo is not None:
        atomic_write(path, lambda tmp: shutil.copyfile(ann.photo, tmp))
    else:
        atomic_write(path, lambda tmp: tmp.write_bytes(ann.data))


def save_json(path: Path, content) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(content, indent=1) + "\n"))


def convert(args) -> dict:
    """Check everything, then write. Returns {"photos", "folders", "train", "test"}."""
    classes = args.classes
    palette = read_palette(args.palette, classes) if args.palette else default_palette(classes)
    held = check_out(args.out, args.overwrite)
    files = collect_json(args.sources, args.out)

    annotations = [read_annotation(path) for path in files]
    check_labels(annotations, classes)
    check_stems(annotations)
    folders = {ann.stem: class_folder(draw_mask(ann, classes), classes) for ann in annotations}
    if held:
        check_stale_twins(args.out, folders, {a.stem: a.suffix for a in annotations})

    written = set()
    for ann in annotations:
        folder = folders[ann.stem]
        photo = args.out / "images" / folder / f"{ann.stem}{ann.suffix}"
        mask = args.out / "seg_images" / folder / f"{ann.stem}.png"
        save_photo(photo, ann)
        save_mask(mask, draw_mask(ann, classes), palette)
        written |= {photo, mask}

    train, test = split_stems(folders, args.test_share, args.seed)
    if not test:
        warn(f"only {len(train)} photo: the test split is empty. Annotate two or more photos "
             f"to have one to test on.")
    save_json(args.out / SPLITS_FILE, {
        "about": f"Written by tools/labelme_to_masks.py: --test-share {args.test_share}, "
                 f"--seed {args.seed}, {len(train)} photos to train on, {len(test)} to test.",
        "train": train, "test": test})
    save_json(args.out / CLASSES_FILE, {
        "about": "Class index = position in classes; palette = the colour of each class "
                 "(the masks are palette PNGs whose index is the class).",
        "classes": list(classes), "palette": palette.tolist()})
    written |= {args.out / SPLITS_FILE, args.out / CLASSES_FILE}

    untouched = [p for p in held if p not in written]
    if untouched:
        warn(f"{len(untouched)} file(s) already in --out {args.out} were left as they are: "
             f"{_few(untouched)}. splits.json lists only the photos of this conversion.")
    counts = {}
    for folder in folders.values():
        counts[folder] = counts.get(folder, 0) + 1
    return {"photos": len(annotations), "folders": counts, "train": train, "test": test}


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    result = convert(args)
    folders = ", ".join(f"{name} {n}" for name, n in sorted(result["folders"].items()))
    print(f"{result['photos']} photo(s) ({folders}) -> {args.out}: {len(result['train'])} to "
          f"train, {len(result['test'])} to test (splits.json), classes "
          f"{', '.join(args.classes)} (classes.json)", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
