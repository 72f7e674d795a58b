"""Step 2: multiclass -- background, akahara or madara, for every pixel.

The network of step 1 with three output channels instead of one: a logit per
class per pixel. Softmax over the channel axis gives class probabilities and
the loss is softmax cross-entropy, where every pixel is one sample: the
logits [B, H, W, C] are read as [B*H*W, C] rows and the labels [B, H, W] as
[B*H*W] class indices (tf.nn.sparse_softmax_cross_entropy_with_logits).
The prediction is the argmax over channels, coloured with the class palette.

    x [B, 64, 64, 3] -> trunk (CBR x 6) [B, 64, 64, 32] -> head (1x1) [B, 64, 64, 3]

Telling the species apart needs their skin pattern, and a 13x13 window often
sees too little of it: this network is the baseline the next steps beat.
Questions Q2.1-Q2.3: docs/questions/en.md (ja.md in Japanese).
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import tensorflow as tf

from common.driver import main
# CBR: Conv -> ReLU -> BatchNorm, taught in 01_binarization
from tf_layers import CBR, Conv2D, Module, Sequential


class MulticlassNet(Module):
    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()
        # >>> Q2.1 as step 1: `trunk` of six CBR, `head` a 1x1 Conv2D to num_classes channels
        self.trunk = Sequential(CBR(3, width), *[CBR(width, width) for _ in range(5)])
        self.head = Conv2D(width, num_classes, kernel_size=1)
        # <<< Q2.1

    def __call__(self, x, training=False):
        # >>> Q2.1 trunk (with `training`), then head; return the logits (softmax is inside the loss)
        return self.head(self.trunk(x, training))
        # <<< Q2.1


def softmax_cross_entropy(logits, y, ignore_index=None):
    """Softmax cross-entropy over pixels: logits [B,H,W,C], labels [B,H,W] -> mean over labelled.

    Every pixel is one classification sample: logits become [B*H*W, C] rows
    and labels [B*H*W]. In NHWC the classes are already the last axis, so a
    reshape is enough (PyTorch's NCHW needs a permute first). TF's sparse
    cross-entropy has no ignore_index: ignored pixels get label 0 and weight
    0, and the sum is divided by the labelled count floored at 1 (0, not NaN,
    when every pixel is ignored).
    """
    # >>> Q2.2 reshape logits to [B*H*W, C] and labels to [B*H*W]; tf.nn.sparse_softmax_cross_entropy_with_logits; weight 0 for ignored pixels
    c = logits.shape[-1]
    flat = tf.reshape(logits, [-1, c])
    labels = tf.reshape(y, [-1])
    if ignore_index is None:
        keep = tf.ones(tf.shape(labels), logits.dtype)
    else:
        kept = tf.not_equal(labels, ignore_index)
        labels, keep = tf.where(kept, labels, tf.zeros_like(labels)), tf.cast(kept, logits.dtype)
    per_pixel = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=flat)
    return tf.reduce_sum(per_pixel * keep) / tf.maximum(tf.reduce_sum(keep), 1.0)
    # <<< Q2.2


def to_classes(logits):
    """Class indices [B,H,W] (uint8) from logits [B,H,W,C]: the most likely class of every pixel."""
    # >>> Q2.3 argmax over the channel axis, the last in NHWC (softmax keeps the order: not needed)
    return tf.cast(tf.argmax(logits, axis=-1), tf.uint8)
    # <<< Q2.3


def build(num_outputs, args):
    return MulticlassNet(num_outputs)


if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
