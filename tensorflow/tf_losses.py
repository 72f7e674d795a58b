"""The five --loss choices in TensorFlow, each loss(logits, y) -> scalar.

Definitions, constants and the choices behind them (smoothing, averaging over
classes, focal's gamma, the ce+dice weight): common/losses.py, the NumPy
reference tests/test_losses.py compares these with. The two cross-entropies
are taught in 01_binarization and 02_multiclass and taken from there.
Layout: logits NHWC [B, H, W, C], labels [B, H, W]. Written for tf.function:
ignored pixels get weight 0 instead of being dropped, so every tensor keeps
its shape. Every loss keeps its logits' dtype (the parity tests run float64).
"""
import tensorflow as tf

from common.losses import EPS, FOCAL_GAMMA, bind, table


def labelled(y, ignore_index, dtype=tf.float32):
    """(labels with ignored pixels set to 0, weight of the same shape: 1 labelled, 0 ignored)."""
    if ignore_index is None:
        return y, tf.ones(tf.shape(y), dtype)
    keep = tf.not_equal(y, ignore_index)
    return tf.where(keep, y, tf.zeros_like(y)), tf.cast(keep, dtype)


def mean_over(per_pixel, w):
    """Mean over labelled pixels (w = 1); 0, with zero gradient, when there are none."""
    return tf.reduce_sum(per_pixel * w) / tf.maximum(tf.reduce_sum(w), 1.0)



def focal_loss(logits, y, task, ignore_index=None, lesson=None, gamma=FOCAL_GAMMA):
    """Focal loss (Lin et al. 2017): mean over labelled pixels of -(1 - p_t)^gamma log p_t.

    p_t is the probability of the pixel's true class; 1 - p_t = -expm1(log p_t),
    exact also when p_t is close to 1. No alpha; gamma = 0 gives ce.
    logits [B,H,W,C] (C = 1: binary, sigmoid), labels [B,H,W].
    """
    t, w = labelled(y, ignore_index, logits.dtype)
    if task == "binary":
        ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(t, logits.dtype),
                                                     logits=logits[..., 0])
    else:
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=logits)   # [B,H,W]
    return mean_over(tf.pow(-tf.math.expm1(-ce), gamma) * ce, w)


def _region_sums(logits, y, task, ignore_index):
    """Per-class sums over the labelled pixels of the whole batch, each [K]:
    I = sum p*t, P = sum p, T = sum t (t one-hot). Binary: K = 1, the foreground."""
    t, w = labelled(y, ignore_index, logits.dtype)
    if task == "binary":
        p = tf.sigmoid(logits)                                      # [B,H,W,1]
        t = tf.cast(tf.equal(t, 1), logits.dtype)[..., None]        # [B,H,W,1]
    else:
        p = tf.nn.softmax(logits, axis=-1)                          # [B,H,W,C]
        t = tf.one_hot(t, tf.shape(logits)[-1], dtype=logits.dtype)  # [B,H,W,C]
    w = w[..., None]                                                # ignored pixels: 0
    axes = [0, 1, 2]                                                # batch and pixels
    return (tf.reduce_sum(p * t * w, axes), tf.reduce_sum(p * w, axes),
            tf.reduce_sum(t * w, axes))


def _mean_over_present(scores, true):
    """Mean of 1 - score over the classes with a true pixel (T > 0); 0 if there is none."""
    present = tf.cast(true > 0, scores.dtype)
    return tf.reduce_sum((1 - scores) * present) / tf.maximum(tf.reduce_sum(present), 1.0)


def dice_loss(logits, y, task, ignore_index=None, lesson=None):
    """Soft Dice loss: 1 - 2 I / max(P + T, EPS) per class, mean over classes present in the batch."""
    i, p, t = _region_sums(logits, y, task, ignore_index)
    return _mean_over_present(2 * i / tf.maximum(p + t, EPS), t)


def jaccard_loss(logits, y, task, ignore_index=None, lesson=None):
    """Soft Jaccard (IoU) loss: 1 - I / max(P + T - I, EPS) per class, mean over classes present."""
    i, p, t = _region_sums(logits, y, task, ignore_index)
    return _mean_over_present(i / tf.maximum(p + t - i, EPS), t)


LOSSES = table("tensorflow", dice_loss, jaccard_loss, focal_loss)   # ce, ce+dice: common/losses.py


def make_loss(name: str, task: str, ignore_index=None, lesson=None):
    """loss(logits, y) for --loss name and the step's task ("binary" or "multiclass")."""
    return bind(LOSSES, name, task, ignore_index, lesson)
