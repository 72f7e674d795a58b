"""Part 0 of the course: masks as class indices (NumPy only, the same for every framework).

Questions Q0.1-Q0.3 (docs/questions/en.md). The suite itself runs on these
functions: common/runner.py makes step 01's targets with to_binary,
common/palette.py reads RGB masks with nearest_class and draws predictions
with index_to_rgb, common/data.py resizes masks with resize_mask.
"""
import cv2
import numpy as np


def to_binary(y: np.ndarray, ignore_index=None) -> np.ndarray:
    """Class indices [H, W] -> step 01's targets int32 [H, W]: 1 newt (any class but 0), 0 background.

    The ignore index (Pascal VOC's 255, unlabelled borders) stays as it is: it must not become 1.
    """
    # >>> Q0.1 (y > 0) as int32, then put ignore_index back where y == ignore_index
    t = (y > 0).astype(np.int32)
    if ignore_index is not None:
        t[y == ignore_index] = ignore_index
    return t
    # <<< Q0.1


def nearest_class(rgb: np.ndarray, palette: np.ndarray, tolerance: int = 8):
    """Colours uint8 [H, W, 3] -> (class index uint8 [H, W], matched bool [H, W]).

    Each pixel gets the index of the palette colour nearest to it, where the
    distance is the largest difference over the three channels; `matched` is
    False where even the nearest is more than `tolerance` away (palette.rgb_to_index
    turns those into an error that names the file and the colours).
    """
    # >>> Q0.2 distances [H, W, C] = max over channels of |rgb - palette[c]| (as int, not uint8!); argmin
    distance = np.abs(rgb[..., None, :].astype(np.int32)
                      - np.asarray(palette, np.int32)[None, None]).max(axis=-1)
    index = distance.argmin(axis=-1)
    matched = np.take_along_axis(distance, index[..., None], axis=-1)[..., 0] <= tolerance
    return index.astype(np.uint8), matched
    # <<< Q0.2


def resize_mask(index: np.ndarray, size: int) -> np.ndarray:
    """Class indices uint8 [H, W] -> [size, size], nearest neighbour.

    Never bilinear: averaging the labels 0 and 2 at a border would invent the
    label 1, a class that is not there. OpenCV's INTER_NEAREST_EXACT samples
    at pixel centres, as photos are resized (and as Pillow's NEAREST does);
    plain INTER_NEAREST, which the original course used, samples at pixel
    corners and is shifted by up to half an output pixel against the photo.
    """
    # >>> Q0.2 OpenCV: cv2.resize(index, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)
    return cv2.resize(np.ascontiguousarray(index, np.uint8), (size, size),
                      interpolation=cv2.INTER_NEAREST_EXACT)
    # <<< Q0.2


def index_to_rgb(index: np.ndarray, palette: np.ndarray, ignore_colour=(224, 224, 192)) -> np.ndarray:
    """Class indices [H, W] (or any shape) drawn in the palette's colours: uint8 [..., 3].

    Indices outside the palette (such as VOC's 255 "ignore") are drawn in `ignore_colour`.
    """
    # >>> Q0.3 start from ignore_colour everywhere; palette[index] where 0 <= index < len(palette)
    index = np.asarray(index)
    palette = np.asarray(palette, np.uint8).reshape(-1, 3)
    inside = (index >= 0) & (index < len(palette))
    out = np.empty(index.shape + (3,), np.uint8)
    out[...] = np.asarray(ignore_colour, np.uint8)
    out[inside] = palette[index[inside].astype(np.intp)]
    return out
    # <<< Q0.3
