"""The five --loss choices in Keras 3 (keras.ops, either backend), each loss(logits, y) -> scalar.

Definitions, constants and the choices behind them (smoothing, averaging over
classes, focal's gamma, the ce+dice weight): common/losses.py, the NumPy
reference tests/test_losses.py compares these with. The two cross-entropies
are taught in 01_binarization and 02_multiclass and taken from there.

One argument order in all four frameworks: (logits, y). Keras' model.compile
calls a loss as loss(y_true, y_pred); compile_model in 01_binarization (Q1.5)
swaps the two at that one place. Logits are NHWC, [B, H, W, C]; labels
[B, H, W] (Keras' compiled loss may cast them to float and add or drop a
trailing axis; every loss flattens and casts them back, so none of that
matters). Ignored pixels get weight 0, so shapes stay fixed for either
backend. Every loss computes in its logits' dtype (the parity tests run
Keras in float64).
"""
import keras_setup  # noqa: F401  (first: it picks the Keras backend before keras is imported)

import keras
from keras import ops

from common.losses import EPS, FOCAL_GAMMA, bind, table


def float_dtype(logits) -> str:
    """The dtype the losses compute in: the logits' own ("float32", or "float64" in the parity
    tests). Keras' compiled loss has already cast the logits to its dtype, keras.config.floatx()."""
    return keras.backend.standardize_dtype(logits.dtype)


def labelled(y, ignore_index, dtype="float32"):
    """Labels [N] (int32, ignored pixels set to 0) and weight [N] (1 labelled, 0 ignored) in dtype."""
    labels = ops.cast(ops.reshape(y, (-1,)), "int32")
    if ignore_index is None:
        return labels, ops.ones(ops.shape(labels), dtype)
    keep = ops.not_equal(labels, ignore_index)
    return ops.where(keep, labels, 0), ops.cast(keep, dtype)


def mean_over(per_pixel, w):
    """Mean over labelled pixels (w = 1); 0, with zero gradient, when there are none."""
    return ops.sum(per_pixel * w) / ops.maximum(ops.sum(w), 1.0)



def _pixel_cross_entropy(logits, y, task, ignore_index):
    """-log p_t per pixel [N] (p_t: probability of the true class) and the weight [N]."""
    dtype = float_dtype(logits)
    t, w = labelled(y, ignore_index, dtype)
    if task == "binary":
        # With p = sigmoid(z): -t*log(p) - (1-t)*log(1-p) = softplus(z) - t*z,
        # which never takes the log of 0.
        z = ops.reshape(logits, (-1,))
        return ops.softplus(z) - ops.cast(t, dtype) * z, w
    c = logits.shape[-1]
    flat = ops.reshape(logits, (-1, c))                               # [B*H*W, C]
    log_p = ops.log_softmax(flat, axis=-1)
    return -ops.take_along_axis(log_p, t[:, None], axis=-1)[:, 0], w   # [B*H*W]


def focal_loss(logits, y, task, ignore_index=None, lesson=None, gamma=FOCAL_GAMMA):
    """Focal loss (Lin et al. 2017): mean over labelled pixels of -(1 - p_t)^gamma log p_t.

    p_t is the probability of the pixel's true class; 1 - p_t = -expm1(log p_t),
    exact also when p_t is close to 1. No alpha; gamma = 0 gives ce.
    logits [B,H,W,C] (C = 1: binary, sigmoid), labels [B,H,W].
    """
    ce, w = _pixel_cross_entropy(logits, y, task, ignore_index)
    return mean_over(ops.power(-ops.expm1(-ce), gamma) * ce, w)


def _region_sums(logits, y, task, ignore_index):
    """Per-class sums over the labelled pixels of the whole batch, each [K]:
    I = sum p*t, P = sum p, T = sum t (t one-hot). Binary: K = 1, the foreground."""
    dtype = float_dtype(logits)
    t, w = labelled(y, ignore_index, dtype)
    if task == "binary":
        p = ops.sigmoid(ops.reshape(logits, (-1, 1)))                 # [N, 1]
        t = ops.cast(ops.equal(t, 1), dtype)[:, None]                 # [N, 1]
    else:
        c = logits.shape[-1]
        p = ops.softmax(ops.reshape(logits, (-1, c)), axis=-1)        # [N, C]
        t = ops.one_hot(t, c, dtype=dtype)
    w = w[:, None]                                                # ignored pixels: 0
    return ops.sum(p * t * w, axis=0), ops.sum(p * w, axis=0), ops.sum(t * w, axis=0)


def _mean_over_present(scores, true):
    """Mean of 1 - score over the classes with a true pixel (T > 0); 0 if there is none."""
    present = ops.cast(ops.greater(true, 0), float_dtype(scores))
    return ops.sum((1 - scores) * present) / ops.maximum(ops.sum(present), 1.0)


def dice_loss(logits, y, task, ignore_index=None, lesson=None):
    """Soft Dice loss: 1 - 2 I / max(P + T, EPS) per class, mean over classes present in the batch."""
    i, p, t = _region_sums(logits, y, task, ignore_index)
    return _mean_over_present(2 * i / ops.maximum(p + t, EPS), t)


def jaccard_loss(logits, y, task, ignore_index=None, lesson=None):
    """Soft Jaccard (IoU) loss: 1 - I / max(P + T - I, EPS) per class, mean over classes present."""
    i, p, t = _region_sums(logits, y, task, ignore_index)
    return _mean_over_present(i / ops.maximum(p + t - i, EPS), t)


LOSSES = table("keras", dice_loss, jaccard_loss, focal_loss)   # ce, ce+dice: common/losses.py


def make_loss(name: str, task: str, ignore_index=None, lesson=None):
    """loss(logits, y) for --loss name and the step's task ("binary" or "multiclass")."""
    return bind(LOSSES, name, task, ignore_index, lesson)
