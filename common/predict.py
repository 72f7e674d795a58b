"""--predict: segment your own photos with trained weights, no training.

    python pytorch/06_unet.py --init-from runs/keras/06_unet/weights.npz --predict photos/ --out seen/

The weights may come from any framework's run of the same step (they are neutral,
common/weights.py). Each photo, of any size, is read as the training photos are
(OpenCV, EXIF orientation applied), squashed to --size x --size (the size the
weights were trained at, unless --size is given), and the network's logits are
resized back to the photo's own size (bilinear) before the lesson's own
binarize/to_classes picks the classes, so borders are not blocky. Into --out go,
per photo:

    <name>_mask.png      the class of every pixel, photo-sized palette PNG: shown in the
                         class colours, read back by index (common/palette.read_mask)
    <name>_overlay.png   the photo with the class colours blended over it
and
    predictions.npz      names: the photos' stems; pred/<name>: uint8 [H, W] class indices

No file already in --out is replaced without --overwrite; every file is written atomically.
"""
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from common import data, palette as pal, viz
from common.errors import UserError, few
from common.runner import BINARY_CLASSES, check_size, to_layout
from common.weights import atomic_write, check_compatible, load_npz, save_npz

BINARY_PALETTE = np.array([[0, 0, 0], [255, 255, 255]], np.uint8)


def photos_in(path: Path) -> list[Path]:
    """The photos of --predict: one file, or the image files of a folder (not its sub-folders)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"--predict {path}: no such file or folder. Give a photo or a folder of "
                        f"photos ({', '.join(data.IMAGE_SUFFIXES)}).")
    if path.is_file():
        return [path]
    found = sorted(p for p in path.iterdir() if data._is_image_file(p))
    if not found:
        raise UserError(f"--predict {path}: the folder holds no photos "
                        f"({', '.join(data.IMAGE_SUFFIXES)}; sub-folders are not searched).")
    stems = [p.stem for p in found]
    twins = sorted({s for s in stems if stems.count(s) > 1})
    if twins:
        raise UserError(f"--predict {path}: several photos share a name ({', '.join(twins)}, "
                        f"e.g. .jpg and .png): their outputs would overwrite each other. Rename one.")
    return found


def palette_for(classes) -> np.ndarray:
    """The colours to draw these classes in (the weights remember the class names)."""
    classes = tuple(classes)
    if classes == tuple(BINARY_CLASSES):
        return BINARY_PALETTE
    for names, colours in ((pal.CLASSES, pal.PALETTE), (pal.VOC_CLASSES, pal.VOC_PALETTE)):
        if classes == tuple(names):
            return colours
    return pal._voc_colormap(len(classes))


def segment(trainer, photo: np.ndarray, size: int) -> np.ndarray:
    """Class indices uint8 [H, W] of one photo float32 [H, W, 3], at the photo's own size."""
    h, w = photo.shape[:2]
    x = data.resize_photo(photo, size)[None]
    logits = np.asarray(trainer.forward(to_layout(x, trainer.layout), training=False), np.float32)
    hwc = np.ascontiguousarray(logits[0].transpose(1, 2, 0))
    # cv2.resize takes at most 128 channels at once (OpenCV 5.0): classes in chunks of 64
    up = np.concatenate([cv2.resize(np.ascontiguousarray(hwc[..., c:c + 64]), (w, h),
                                    interpolation=cv2.INTER_LINEAR).reshape(h, w, -1)
                         for c in range(0, hwc.shape[-1], 64)], axis=-1)
    return trainer.classes(up.transpose(2, 0, 1)[None])[0]


def _outputs(out: Path, stems) -> list[Path]:
    return ([out / f"{s}_mask.png" for s in stems] + [out / f"{s}_overlay.png" for s in stems]
            + [out / "predictions.npz"])


def run(args, step, make_trainer, framework: str, label: str | None = None) -> dict:
    """Segment the photos of args.predict with args.init_from; returns {name: indices}."""
    if not args.init_from:
        raise UserError("--predict needs --init-from WEIGHTS.npz: the weights.npz of a run of this "
                        f"step ({step.name}) in any framework, e.g. --init-from "
                        f"runs/{framework}/{step.name}/weights.npz.")
    if args.resume:
        raise UserError("--predict trains nothing, so --resume has nothing to continue: leave it out.")
    photos = photos_in(args.predict)
    weights, meta = load_npz(args.init_from)
    saved = meta.get("options", {})
    if "size" in saved and "size" not in getattr(args, "given_options", ()):
        args.size = int(saved["size"])           # the size the weights were trained at
    check_size(args.size, step.size_multiple, f"step {step.name}")
    classes = meta.get("classes") or (BINARY_CLASSES if step.task == "binary" else pal.CLASSES)
    num_outputs = 1 if step.task == "binary" else len(classes)
    if step.task == "binary":
        classes = BINARY_CLASSES
    colours = (np.array(meta["palette"], np.uint8) if meta.get("palette") and step.task != "binary"
               else palette_for(classes))

    out = Path(args.out)
    stems = [p.stem for p in photos]
    there = [p for p in _outputs(out, stems) if p.exists()]
    if there and not getattr(args, "overwrite", False):
        raise UserError(f"{out} already holds {len(there)} of this prediction's files "
                        f"({few(there)}). Choose another --out, or add --overwrite to "
                        f"replace them (other files in {out} are left alone).")

    trainer = make_trainer(num_outputs, meta.get("ignore_index"))
    check_compatible(trainer.get_weights(), weights, args.init_from, step.name, meta)
    trainer.set_weights(weights)

    read = {path: data.read_photo(path) for path in photos}   # a bad file: UserError, nothing written
    preds = {}
    for path, photo in read.items():
        preds[path.stem] = segment(trainer, photo, args.size)
        mask = Image.fromarray(preds[path.stem], "P")
        flat = np.zeros((256, 3), np.uint8)
        flat[:len(colours)] = colours
        mask.putpalette(flat.ravel().tolist())
        atomic_write(out / f"{path.stem}_mask.png", lambda tmp, m=mask: m.save(tmp, format="PNG"))
        blended = viz.overlay(photo, preds[path.stem], colours)
        atomic_write(out / f"{path.stem}_overlay.png",
                     lambda tmp, b=blended: Image.fromarray(b).save(tmp, format="PNG"))
        shares = np.bincount(preds[path.stem].ravel(), minlength=len(classes)) / preds[path.stem].size
        print(f"{path}: {photo.shape[1]}x{photo.shape[0]}, "
              + ", ".join(f"{c} {100 * f:.1f}%" for c, f in zip(classes, shares)), file=sys.stderr)
    save_npz(out / "predictions.npz",
             {"names": np.array(stems), **{f"pred/{s}": p for s, p in preds.items()}},
             {"step": step.name, "framework": framework, "weights": str(args.init_from),
              "weights_framework": meta.get("framework"), "size": args.size,
              "classes": list(classes), "photos": [str(p) for p in photos]})
    print(f"{label or framework} {step.name}: {len(photos)} photo(s) segmented with "
          f"{args.init_from} -> {out}", file=sys.stderr)
    return preds
