"""Step 1: binarisation -- is this pixel newt or background?

The smallest segmentation network: six CBR blocks (Conv 3x3, 32 filters ->
ReLU -> BatchNorm) keep the full 64x64 resolution, and a 1x1 convolution
gives ONE number per pixel, a logit. The sigmoid turns it into the
probability that the pixel belongs to a newt, and the loss is binary
cross-entropy averaged over all pixels (F.sigmoid_cross_entropy, which takes
the logits). Thresholding the probability at 0.5 gives the mask (the run's
predictions.png shows the probability map next to its threshold).

    x [B, 3, 64, 64] -> trunk (CBR x 6) [B, 32, 64, 64] -> head (1x1) [B, 1, 64, 64]

Every pixel sees only a 13x13 window of the image (six 3x3 convolutions):
enough to tell a newt's skin from leaves, not to see the whole animal.
Labels: every class other than background counts as "newt".
Questions Q1.1-Q1.5: docs/questions/en.md (ja.md in Japanese).

Chainer: a network is a chainer.Chain whose links (layers with parameters)
are assigned in `with self.init_scope():`; forward() says how data flows.
Sequential (chainer_layers) numbers its links 0, 1, ... like PyTorch's
nn.Sequential: the weights are trunk.0.conv.weight in both.
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import chainer_compat  # noqa: F401  (before chainer: it makes Chainer importable on NumPy 2)

import chainer
import chainer.functions as F
import chainer.links as L
import numpy as np

from chainer_layers import Sequential, batch_norm
from common.driver import main
from common.runner import Step


class CBR(chainer.Chain):
    """Conv kxk (pad k//2) -> ReLU -> BatchNorm: the exercise's block, used by steps 01-06.

    The exercise puts BatchNorm after the ReLU; most papers (and ConvBNReLU,
    steps 08-09) put it before. We keep the exercise's order.
    Input [B, in, H, W] -> [B, out, H, W]; names conv.weight, conv.bias, bn.*.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3):
        super().__init__()
        # >>> Q1.1 in init_scope: a kxk L.Convolution2D `conv` with pad k//2, and `bn` = batch_norm(out_channels)
        with self.init_scope():   # links assigned here become children named conv, bn
            self.conv = L.Convolution2D(in_channels, out_channels, kernel_size,
                                        pad=kernel_size // 2)
            self.bn = batch_norm(out_channels)
        # <<< Q1.1

    def forward(self, x):
        # >>> Q1.1 convolution, then ReLU, then BatchNorm
        return self.bn(F.relu(self.conv(x)))
        # <<< Q1.1


class BinarizationNet(chainer.Chain):
    def __init__(self, num_outputs: int = 1, width: int = 32):
        super().__init__()
        # >>> Q1.2 in init_scope: `trunk` a Sequential of six CBR (3 -> width, then width -> width); `head`: 1x1 conv
        with self.init_scope():
            self.trunk = Sequential(CBR(3, width), *[CBR(width, width) for _ in range(5)])
            self.head = L.Convolution2D(width, num_outputs, ksize=1)
        # <<< Q1.2

    def forward(self, x):
        # >>> Q1.2 trunk, then head; return the logits (no sigmoid: the loss applies it)
        return self.head(self.trunk(x))
        # <<< Q1.2


def sigmoid_cross_entropy(logits, y, ignore_index=None):
    """Binary cross-entropy on logits [B,1,H,W] vs 0/1 targets [B,H,W], mean over labelled pixels.

    On the logits, not on sigmoid(logits): log(sigmoid(z)) computed in one
    piece never rounds to log(0). F.sigmoid_cross_entropy skips pixels
    labelled -1 (fixed, not configurable), so ignore_index is mapped to -1;
    normalize=True divides by the labelled count (with none labelled the loss
    is 0, not NaN). y is an array (NumPy or CuPy), not a Variable.
    """
    # >>> Q1.3 map ignore_index to -1 (xp.where); F.sigmoid_cross_entropy on logits[:, 0] with normalize=True
    z = logits[:, 0]
    if ignore_index is not None:
        xp = chainer.backend.get_array_module(y)
        y = xp.where(y == ignore_index, -1, y).astype(np.int32)
    return F.sigmoid_cross_entropy(z, y, normalize=True)
    # <<< Q1.3


def binarize(logits):
    """The mask [B,H,W] (0/1) from logits [B,1,H,W] (an array): sigmoid(z) > 0.5, that is z > 0."""
    # >>> Q1.4 compare the logit with 0 (sigmoid(z) > 0.5 exactly when z > 0)
    return (logits[:, 0] > 0).astype(np.uint8)
    # <<< Q1.4


def train_step(model, optimizer, loss_fn, x, y):
    """One SGD step on a batch; returns the loss (an array) before the update.

    chainer.config.train True: BatchNorm normalises with the batch's statistics
    and updates its running ones (evaluation sets it False to use those instead).
    backward() adds to every parameter's .grad, so they are cleared first.
    """
    # >>> Q1.5 with chainer.using_config("train", True): clear the gradients; loss of model(x); backward; optimizer.update()
    with chainer.using_config("train", True):
        model.cleargrads()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.update()
    return loss.array
    # <<< Q1.5


def build(num_outputs, args):
    return BinarizationNet(num_outputs)


def step(args):
    return Step("01_binarization", task="binary")


if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
