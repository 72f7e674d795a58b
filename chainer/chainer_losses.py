"""The five --loss choices in Chainer, each loss(logits, y) -> scalar Variable.

Definitions, constants and the choices behind them (smoothing, averaging over
classes, focal's gamma, the ce+dice weight): common/losses.py, the NumPy
reference tests/test_losses.py compares these with. The two cross-entropies
are taught in 01_binarization and 02_multiclass and taken from there.
Chainer's cross-entropies already give 0 (not NaN) when every pixel is ignored.
Labels are plain arrays (NumPy or CuPy), not Variables: nothing is
differentiated with respect to them, so xp does the work.
"""
import chainer_compat  # noqa: F401  (before chainer: restores what NumPy 2 removed)

import chainer
import chainer.functions as F
import numpy as np

from common.losses import EPS, FOCAL_GAMMA, bind, table


def labelled(y, ignore_index, dtype):
    """(labels with ignored pixels set to 0, weight of the same shape: 1 labelled, 0 ignored)."""
    xp = chainer.backend.get_array_module(y)
    if ignore_index is None:
        return y.astype(np.int32), xp.ones(y.shape, dtype)
    keep = y != ignore_index
    return xp.where(keep, y, 0).astype(np.int32), keep.astype(dtype)


def mean_over(per_pixel, w):
    """Mean over labelled pixels (w = 1); 0, with zero gradient, when there are none."""
    return F.sum(per_pixel * w) / max(float(w.sum()), 1.0)



def focal_loss(logits, y, task, ignore_index=None, lesson=None, gamma=FOCAL_GAMMA):
    """Focal loss (Lin et al. 2017): mean over labelled pixels of -(1 - p_t)^gamma log p_t.

    p_t is the probability of the pixel's true class; 1 - p_t = -expm1(log p_t),
    exact also when p_t is close to 1. No alpha; gamma = 0 gives ce.
    logits [B,C,H,W] (C = 1: binary, sigmoid), labels [B,H,W]. reduce="no"
    makes Chainer's cross-entropies return -log p_t per pixel.
    """
    t, w = labelled(y, ignore_index, logits.dtype)
    if task == "binary":
        ce = F.sigmoid_cross_entropy(logits[:, 0], t, reduce="no")
    else:
        ce = F.softmax_cross_entropy(logits, t, reduce="no")        # [B,H,W]
    return mean_over((-F.expm1(-ce)) ** gamma * ce, w)


def _region_sums(logits, y, task, ignore_index):
    """Per-class sums over the labelled pixels of the whole batch, each [K]:
    I = sum p*t, P = sum p (Variables), T = sum t (an array). Binary: K = 1, the foreground."""
    xp = chainer.backend.get_array_module(y)
    t, w = labelled(y, ignore_index, logits.dtype)
    if task == "binary":
        p = F.sigmoid(logits)                                       # [B,1,H,W]
        t = (t == 1).astype(logits.dtype)[:, None]                  # [B,1,H,W]
    else:
        p = F.softmax(logits, axis=1)                               # [B,C,H,W]
        classes = xp.arange(logits.shape[1])[None, :, None, None]
        t = (t[:, None] == classes).astype(logits.dtype)            # one-hot [B,C,H,W]
    w = w[:, None]                                                  # ignored pixels: 0
    axes = (0, 2, 3)                                                # batch and pixels
    return F.sum(p * t * w, axis=axes), F.sum(p * w, axis=axes), (t * w).sum(axis=axes)


def _mean_over_present(scores, true):
    """Mean of 1 - score over the classes with a true pixel (T > 0); 0 if there is none."""
    present = (true > 0).astype(scores.dtype)
    return F.sum((1 - scores) * present) / max(float(present.sum()), 1.0)


def _floor(x, eps):
    """max(x, eps) elementwise; F.maximum wants two operands of the same shape."""
    return F.maximum(x, x.xp.full(x.shape, eps, x.dtype))


def dice_loss(logits, y, task, ignore_index=None, lesson=None):
    """Soft Dice loss: 1 - 2 I / max(P + T, EPS) per class, mean over classes present in the batch."""
    i, p, t = _region_sums(logits, y, task, ignore_index)
    return _mean_over_present(2 * i / _floor(p + t, EPS), t)


def jaccard_loss(logits, y, task, ignore_index=None, lesson=None):
    """Soft Jaccard (IoU) loss: 1 - I / max(P + T - I, EPS) per class, mean over classes present."""
    i, p, t = _region_sums(logits, y, task, ignore_index)
    return _mean_over_present(i / _floor(p + t - i, EPS), t)


LOSSES = table("chainer", dice_loss, jaccard_loss, focal_loss)   # ce, ce+dice: common/losses.py


def make_loss(name: str, task: str, ignore_index=None, lesson=None):
    """loss(logits, y) for --loss name and the step's task ("binary" or "multiclass")."""
    return bind(LOSSES, name, task, ignore_index, lesson)
