"""Step 2: multiclass -- background, akahara or madara, for every pixel.

The network of step 1 with three output channels instead of one: a logit per
class per pixel. Softmax over the channel axis gives class probabilities and
the loss is softmax cross-entropy, where every pixel is one sample: the
logits [B, C, H, W] are read as [B*H*W, C] rows and the labels [B, H, W] as
[B*H*W] class indices (softmax_cross_entropy below: F.transpose and F.reshape
before F.softmax_cross_entropy). The prediction is the argmax over channels,
coloured with the class palette.

    x [B, 3, 64, 64] -> trunk (CBR x 6) [B, 32, 64, 64] -> head (1x1) [B, 3, 64, 64]

Telling the species apart needs their skin pattern, and a 13x13 window often
sees too little of it: this network is the baseline the next steps beat.
Questions Q2.1-Q2.3: docs/questions/en.md (ja.md in Japanese).
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import chainer_compat  # noqa: F401  (before chainer: it makes Chainer importable on NumPy 2)

import chainer
import chainer.functions as F
import chainer.links as L
import numpy as np

from chainer_layers import CBR, Sequential   # CBR: Conv -> ReLU -> BatchNorm, taught in 01_binarization
from common.driver import main


class MulticlassNet(chainer.Chain):
    def __init__(self, num_classes: int, width: int = 32):
        super().__init__()
        # >>> Q2.1 as step 1: `trunk` a Sequential of six CBR, `head` a 1x1 conv to num_classes channels
        with self.init_scope():
            self.trunk = Sequential(CBR(3, width), *[CBR(width, width) for _ in range(5)])
            self.head = L.Convolution2D(width, num_classes, ksize=1)
        # <<< Q2.1

    def forward(self, x):
        # >>> Q2.1 trunk, then head; return the logits (softmax is inside the loss)
        return self.head(self.trunk(x))
        # <<< Q2.1


def softmax_cross_entropy(logits, y, ignore_index=None):
    """Softmax cross-entropy over pixels: logits [B,C,H,W], labels [B,H,W] -> mean over labelled.

    Every pixel is one classification sample: logits become [B*H*W, C] rows
    (channels moved last first, or the rows would mix pixels and classes) and
    labels [B*H*W]. (F.softmax_cross_entropy also accepts [B,C,H,W] directly;
    the reshape is the lesson.) Its ignore_label drops those pixels from the
    mean, and with every pixel ignored the loss is 0, not NaN.
    """
    # >>> Q2.2 F.transpose to [B,H,W,C], F.reshape to [B*H*W, C]; F.softmax_cross_entropy with ignore_label
    c = logits.shape[1]
    flat = F.reshape(F.transpose(logits, (0, 2, 3, 1)), (-1, c))
    labels = y.reshape(-1)
    ignore = -1 if ignore_index is None else ignore_index
    return F.softmax_cross_entropy(flat, labels, ignore_label=ignore)
    # <<< Q2.2


def to_classes(logits):
    """Class indices [B,H,W] (uint8) from logits [B,C,H,W] (an array): the most likely class of every pixel."""
    # >>> Q2.3 argmax over the channel axis (softmax keeps the order: not needed)
    return logits.argmax(axis=1).astype(np.uint8)
    # <<< Q2.3


def build(num_outputs, args):
    return MulticlassNet(num_outputs)


if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
