"""Step 2: multiclass -- background, akahara or madara, for every pixel.

The network of step 1 with three output channels instead of one: a logit per
class per pixel. Softmax over the channel axis gives class probabilities and
the loss is softmax cross-entropy, where every pixel is one sample: the
logits [B, H, W, C] are read as [B*H*W, C] rows and the labels [B, H, W] as
[B*H*W] class indices. The prediction is the argmax over channels, coloured
with the class palette.

    x [B, 64, 64, 3] -> trunk (CBR x 6) [B, 64, 64, 32] -> head (1x1) [B, 64, 64, 3]

Telling the species apart needs their skin pattern, and a 13x13 window often
sees too little of it: this network is the baseline the next steps beat.
Questions Q2.1-Q2.3: docs/questions/en.md (ja.md in Japanese).
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import keras_setup  # noqa: F401  (before keras: it picks the Keras backend, --backend)

import keras
from keras import layers, ops

from common.driver import main
from keras_layers import CBR   # CBR: Conv -> ReLU -> BatchNorm, taught in 01_binarization


def MulticlassNet(num_classes: int, width: int = 32) -> keras.Model:
    # >>> Q2.1 as step 1: six CBR named trunk-0 ... trunk-5, a 1x1 Conv2D "head" to num_classes channels
    x = inputs = keras.Input(shape=(None, None, 3), name="image")
    for i in range(6):
        x = CBR(x, width, f"trunk-{i}")
    logits = layers.Conv2D(num_classes, 1, name="head")(x)   # softmax is inside the loss
    return keras.Model(inputs, logits, name="multiclass")
    # <<< Q2.1


def softmax_cross_entropy(logits, y, ignore_index=None):
    """Softmax cross-entropy over pixels: logits [B,H,W,C], labels [B,H,W] -> mean over labelled.

    Every pixel is one classification sample: logits become [B*H*W, C] rows
    and labels [B*H*W]; the loss is the mean of -log softmax(row)[label] over
    the labelled pixels. In NHWC the class axis is already last, so a reshape
    is enough (PyTorch's NCHW needs a permute first). The sum is divided by
    the labelled count floored at 1, so that all pixels ignored give 0, not NaN.
    """
    # >>> Q2.2 reshape to [B*H*W, C]; log_softmax; pick each row's label (take_along_axis); mean over kept pixels
    dtype = keras.backend.standardize_dtype(logits.dtype)
    c = logits.shape[-1]
    flat = ops.reshape(logits, (-1, c))                               # [B*H*W, C]
    t = ops.cast(ops.reshape(y, (-1,)), "int32")                      # [B*H*W]
    if ignore_index is None:
        keep = ops.ones(ops.shape(t), dtype)
    else:
        labelled = ops.not_equal(t, ignore_index)
        t, keep = ops.where(labelled, t, 0), ops.cast(labelled, dtype)
    log_p = ops.log_softmax(flat, axis=-1)
    per_pixel = -ops.take_along_axis(log_p, t[:, None], axis=-1)[:, 0]
    return ops.sum(per_pixel * keep) / ops.maximum(ops.sum(keep), 1.0)
    # <<< Q2.2


def to_classes(logits):
    """Class indices [B,H,W] (uint8) from logits [B,H,W,C]: the most likely class of every pixel."""
    # >>> Q2.3 argmax over the channel axis, the last in NHWC (softmax keeps the order: not needed)
    return ops.cast(ops.argmax(logits, axis=-1), "uint8")
    # <<< Q2.3


def build(num_outputs, args):
    return MulticlassNet(num_outputs)


if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
