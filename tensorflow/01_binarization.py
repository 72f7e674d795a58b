"""Step 1: binarisation -- is this pixel newt or background?

The smallest segmentation network: six CBR blocks (Conv 3x3, 32 filters ->
ReLU -> BatchNorm) keep the full 64x64 resolution, and a 1x1 convolution
gives ONE number per pixel, a logit. The sigmoid turns it into the
probability that the pixel belongs to a newt, and the loss is binary
cross-entropy averaged over all pixels (tf.nn.sigmoid_cross_entropy_with_logits).
Thresholding the probability at 0.5 gives the mask (the run's
predictions.png shows the probability map next to its threshold).

    x [B, 64, 64, 3] -> trunk (CBR x 6) [B, 64, 64, 32] -> head (1x1) [B, 64, 64, 1]

Every pixel sees only a 13x13 window of the image (six 3x3 convolutions):
enough to tell a newt's skin from leaves, not to see the whole animal.
Labels: every class other than background counts as "newt".
Questions Q1.1-Q1.5: docs/questions/en.md (ja.md in Japanese).
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import tensorflow as tf

from common.driver import main
from common.runner import Step
from tf_layers import Conv2D, Module, Sequential, batch_norm


class CBR(Module):
    """Conv 3x3 (pad 1) -> ReLU -> BatchNorm: the exercise's block, used by steps 01-07.

    The exercise puts BatchNorm after the ReLU; most papers (and ConvBNReLU,
    steps 08-09) put it before. We keep the exercise's order.
    Input [B, H, W, in] -> [B, H, W, out]; names conv.weight, conv.bias, bn.*.
    A tf.Module has no train()/eval() switch: `training` is an argument, and
    BatchNorm reads it.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3):
        super().__init__()
        # >>> Q1.1 a kxk Conv2D `conv` (it pads k//2), and `bn` = batch_norm(out_channels)
        self.conv = Conv2D(in_channels, out_channels, kernel_size)
        self.bn = batch_norm(out_channels)
        # <<< Q1.1

    def __call__(self, x, training=False):
        # >>> Q1.1 convolution, then ReLU, then BatchNorm (pass it `training`)
        return self.bn(tf.nn.relu(self.conv(x)), training)
        # <<< Q1.1


class BinarizationNet(Module):
    def __init__(self, num_outputs: int = 1, width: int = 32):
        super().__init__()
        # >>> Q1.2 `trunk`: Sequential of six CBR (3 -> width, then width -> width); `head`: 1x1 Conv2D
        self.trunk = Sequential(CBR(3, width), *[CBR(width, width) for _ in range(5)])
        self.head = Conv2D(width, num_outputs, kernel_size=1)
        # <<< Q1.2

    def __call__(self, x, training=False):
        # >>> Q1.2 trunk (with `training`), then head; return the logits (no sigmoid: the loss applies it)
        return self.head(self.trunk(x, training))
        # <<< Q1.2


def sigmoid_cross_entropy(logits, y, ignore_index=None):
    """Binary cross-entropy on logits [B,H,W,1] vs 0/1 targets [B,H,W], mean over labelled pixels.

    On the logits, not on sigmoid(logits): log(sigmoid(z)) computed in one
    piece never rounds to log(0). Pixels equal to ignore_index do not count;
    with none labelled the loss is 0 (not NaN). Written for tf.function:
    ignored pixels get weight 0 instead of being dropped, so every tensor
    keeps its shape.
    """
    # >>> Q1.3 tf.nn.sigmoid_cross_entropy_with_logits on logits[..., 0]; weight 0 for ignored pixels; mean over kept ones
    if ignore_index is None:
        t, keep = y, tf.ones(tf.shape(y), logits.dtype)
    else:
        kept = tf.not_equal(y, ignore_index)
        t, keep = tf.where(kept, y, tf.zeros_like(y)), tf.cast(kept, logits.dtype)
    per_pixel = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(t, logits.dtype),
                                                        logits=logits[..., 0])
    return tf.reduce_sum(per_pixel * keep) / tf.maximum(tf.reduce_sum(keep), 1.0)
    # <<< Q1.3


def binarize(logits):
    """The mask [B,H,W] (0/1, uint8) from logits [B,H,W,1]: sigmoid(z) > 0.5, that is z > 0."""
    # >>> Q1.4 compare the logit with 0 (sigmoid(z) > 0.5 exactly when z > 0)
    return tf.cast(logits[..., 0] > 0, tf.uint8)
    # <<< Q1.4


def train_step(model, optimizer, loss_fn, x, y):
    """One SGD step on a batch; returns the loss (a scalar tensor) before the update.

    training=True: BatchNorm normalises with the batch's statistics and updates
    its running ones (evaluation calls the model with training=False). The
    tape records the forward pass; its gradient is d loss / d every trainable
    variable. The Trainer runs this as a graph (tf.function), traced once.
    """
    # >>> Q1.5 under a tf.GradientTape: loss of model(x, training=True); gradients of the trainable variables; optimizer.apply_gradients
    with tf.GradientTape() as tape:
        loss = loss_fn(model(x, training=True), y)
    variables = model.trainable_variables
    gradients = tape.gradient(loss, variables)
    optimizer.apply_gradients(zip(gradients, variables))
    return loss
    # <<< Q1.5


def build(num_outputs, args):
    return BinarizationNet(num_outputs)


def step(args):
    return Step("01_binarization", task="binary")


if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
