"""The checker of Part 0 (workshop/00_masks.py): the same arrays as common/masks.py on real masks.

The masks are the embedded dataset's palette PNGs (read by the answer's
reader), drawn as RGB with off-by-a-few colours (127, 0, 0) like a paint
program's, with an ignore border (255) and colours that are no class.
"""
from pathlib import Path

import numpy as np

from common import exercises, masks, synth
from common.checker import Report, Result, explain_exception, load_learner
from common.palette import PALETTE, read_mask

IGNORE = 255


def real_masks(n: int = 3) -> list:
    root = synth.ensure_dataset()
    files = sorted((Path(root) / "train" / "seg_images").rglob("*.png"))[:n]
    return [read_mask(f, PALETTE) for f in files]


def _shape(a) -> str:
    return "[" + ", ".join(str(d) for d in np.shape(a)) + "]"


def _same(got, exp, what) -> str | None:
    """None if equal, else what differs, in the learner's terms."""
    got = np.asarray(got)
    if got.shape != exp.shape:
        hint = ""
        if got.ndim == 3 and exp.ndim == 3 and got.shape == exp.shape[::-1][:1] + exp.shape[:2]:
            hint = ": channels first? the colours go last, [H, W, 3]"
        return f"{what} is {_shape(got)}, expected {_shape(exp)}{hint}"
    if got.dtype != exp.dtype:
        return f"{what} is {got.dtype}, expected {exp.dtype}"
    if not np.array_equal(got, exp):
        bad = np.argwhere(got != exp)[0]
        return (f"{what} differs at {int((got != exp).sum())} places, first at "
                f"{tuple(int(i) for i in bad)}: {got[tuple(bad)]} instead of {exp[tuple(bad)]}")
    return None


def _q01(learner):
    for y in real_masks():
        y = y.copy()
        y[0, :] = IGNORE
        for ignore in (None, IGNORE):
            err = _same(learner.to_binary(y, ignore), masks.to_binary(y, ignore),
                        f"to_binary(mask, ignore_index={ignore})")
            if err:
                if ignore == IGNORE and np.any(np.asarray(learner.to_binary(y, ignore))[0] == 1):
                    err += ("; the ignored pixels (255) became 1: put ignore_index back "
                            "after the comparison")
                return err
    return None


def _q02(learner):
    rng = np.random.default_rng(0)
    for y in real_masks():
        rgb = masks.index_to_rgb(y, PALETTE).astype(np.int32)
        rgb = np.clip(rgb + rng.integers(-3, 4, rgb.shape), 0, 255).astype(np.uint8)  # (127, 0, 0)
        rgb[:2, :2] = (60, 200, 90)                                                     # no class
        got = learner.nearest_class(rgb, PALETTE, 8)
        exp = masks.nearest_class(rgb, PALETTE, 8)
        for g, e, what in zip(got, exp, ("the class index", "matched")):
            err = _same(g, e, f"nearest_class(...): {what}")
            if err:
                if what == "the class index" and np.asarray(g).shape == e.shape:
                    err += ("; are the differences computed in uint8? 0 - 128 wraps around to 128: "
                            "cast to a signed integer type first")
                return err
        for size in (32, 100):
            got_r = learner.resize_mask(y, size)
            err = _same(got_r, masks.resize_mask(y, size), f"resize_mask(mask, {size})")
            if err:
                if _interpolated(y, size, got_r) or set(np.unique(got_r)) - set(np.unique(y)):
                    err += ("; it was interpolated (between the labels 0 and 2 an interpolation "
                            "invents a 1). Masks are resized with nearest neighbour only")
                elif _shifted_nearest(y, size, got_r):
                    err += ("; that is cv2.INTER_NEAREST, which samples half a pixel off the "
                            "pixel centres and so shifts the mask against its photo: use "
                            "cv2.INTER_NEAREST_EXACT")
                return err
    return None


def _q03(learner):
    for y in real_masks():
        y = y.copy()
        y[-1, :] = IGNORE
        err = _same(learner.index_to_rgb(y, PALETTE), masks.index_to_rgb(y, PALETTE),
                    "index_to_rgb(index, PALETTE)")
        if err:
            return err
    return None


def _interpolated(y, size, got) -> bool:
    """True if `got` is what one of OpenCV's or Pillow's interpolating filters makes of y."""
    import cv2
    from PIL import Image
    y = np.ascontiguousarray(y, np.uint8)
    if any(np.array_equal(cv2.resize(y, (size, size), interpolation=f), got)
           for f in (cv2.INTER_LINEAR, cv2.INTER_AREA, cv2.INTER_CUBIC, cv2.INTER_LANCZOS4)):
        return True
    img = Image.fromarray(y, "L")
    filters = (Image.BILINEAR, Image.BICUBIC, Image.BOX, Image.HAMMING, Image.LANCZOS)
    return any(np.array_equal(np.asarray(img.resize((size, size), f)), got) for f in filters)


def _shifted_nearest(y, size, got) -> bool:
    import cv2
    return np.array_equal(cv2.resize(np.ascontiguousarray(y, np.uint8), (size, size),
                                     interpolation=cv2.INTER_NEAREST), got)


CHECKS = {"Q0.1": _q01, "Q0.2": _q02, "Q0.3": _q03}


def check(path) -> Report:
    path = Path(path)
    report = Report(None, "00_masks", str(path))
    qids = list(CHECKS)
    if not path.exists():
        report.results = [Result(q, "not checked", f"{path} does not exist; run "
                                 "`python workshop.py start`") for q in qids]
        return report
    text = path.read_text()
    try:
        learner = load_learner(path, "numpy", "00_masks")
    except Exception as exc:   # noqa: BLE001 -- the learner's code may raise anything
        _, msg = explain_exception(exc, path, text)
        report.results = [Result(q, "fail", msg) for q in qids]
        return report
    for q in qids:
        if q in exercises.questions(text) and exercises.untouched(text, q):
            report.results.append(Result(q, "todo", "not done yet: the blank still raises "
                                         "NotImplementedError"))
            continue
        try:
            err = CHECKS[q](learner)
        except Exception as exc:   # noqa: BLE001
            _, err = explain_exception(exc, path, text)
        report.results.append(Result(q, "fail", err) if err else Result(q, "pass"))
    return report
