"""Training augmentation (--augment), the same numbers for the four frameworks.

    none    the batches as read
    flip    the exercise's default: each photo flipped left-right with probability 0.5 and,
            independently, upside down with probability 0.5 (NumPy; the labels are unchanged)
    photos  for a small set of real photos (16 newts): albumentations, see PHOTOS

Every transform is applied to the image and its mask together, so they stay aligned;
masks are moved with nearest neighbour only (mask_interpolation=INTER_NEAREST), so no
label is ever averaged into another. What sample k of batch i gets depends only on
(seed, i, k): a run resumed at iteration i, and the same run in another framework, sees
exactly the same pixels. The data pipeline is NumPy/OpenCV in common/, before any
framework sees a batch, so the four columns cannot differ here.

`flip` stays NumPy, bit for bit what the suite did before --augment existed, so earlier
runs, their checkpoints and the parity measurements keep holding.
"""
import os

import cv2
import numpy as np

NAMES = ("none", "flip", "photos")

# What each transform of `photos` does for 16 photos (the lesson text, docs/lessons/augment.md):
#   flips        a newt seen from above has no "up": 4 poses of every photo for free
#   Affine       scale 0.75-1.33, shift up to 10 %, rotate up to 30 degrees: newts of other
#                sizes and poses than the 12 training ones; the border is mirrored
#                (BORDER_REFLECT_101), so no black corners teach "black = background"
#   ColorJitter  brightness, contrast, saturation +-30 %, hue +-5 %: other light and
#                cameras; the red belly of akahara stays red (hue moves little)
PHOTOS = dict(scale=(0.75, 1.33), translate_percent=(-0.1, 0.1), rotate=(-30, 30),
              colour=dict(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05))


def _photos():
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")   # no version check over the network
    import albumentations as A
    return A.Compose([
        A.HorizontalFlip(p=0.5),
        A.VerticalFlip(p=0.5),
        A.Affine(scale=PHOTOS["scale"], translate_percent=PHOTOS["translate_percent"],
                 rotate=PHOTOS["rotate"], interpolation=cv2.INTER_LINEAR,
                 mask_interpolation=cv2.INTER_NEAREST, border_mode=cv2.BORDER_REFLECT_101,
                 p=0.9),
        A.ColorJitter(**PHOTOS["colour"], p=0.8),
    ], seed=0)


class Augment:
    """augment(x, y, seed, i): batch i's images float32 [B, H, W, 3] and masks int [B, H, W],
    augmented in place of copies (the split is never touched)."""

    def __init__(self, name: str = "flip"):
        if name not in NAMES:
            raise ValueError(f"augmentation {name!r} is not one of {', '.join(NAMES)}")
        self.name = name
        self._compose = _photos() if name == "photos" else None

    def __call__(self, x: np.ndarray, y: np.ndarray, seed: int, i: int):
        if self.name == "flip":
            rng = np.random.default_rng([seed, i, 1])
            left_right = rng.random(len(x)) < 0.5
            up_down = rng.random(len(x)) < 0.5
            x[left_right] = x[left_right, :, ::-1]   # axis 2 of [B, H, W, C] is the width
            y[left_right] = y[left_right, :, ::-1]
            x[up_down] = x[up_down, ::-1]            # axis 1 is the height
            y[up_down] = y[up_down, ::-1]
        elif self.name == "photos":
            for k in range(len(x)):
                # one seed per sample from (seed, i, k): the same draw wherever it runs
                self._compose.set_random_seed(
                    int(np.random.default_rng([seed, i, 2, k]).integers(2**31 - 1)))
                out = self._compose(image=np.ascontiguousarray(x[k]),
                                    mask=np.ascontiguousarray(y[k], np.uint8))
                x[k] = np.clip(out["image"], 0.0, 1.0)
                y[k] = out["mask"]
        return x, y
