"""Step 1: binarisation -- is this pixel newt or background?

The smallest segmentation network: six CBR blocks (Conv 3x3, 32 filters ->
ReLU -> BatchNorm) keep the full 64x64 resolution, and a 1x1 convolution
gives ONE number per pixel, a logit. The sigmoid turns it into the
probability that the pixel belongs to a newt, and the loss is binary
cross-entropy averaged over all pixels. Thresholding the probability at 0.5
gives the mask (the run's predictions.png shows the probability map next to
its threshold).

    x [B, 64, 64, 3] -> trunk (CBR x 6) [B, 64, 64, 32] -> head (1x1) [B, 64, 64, 1]

Every pixel sees only a 13x13 window of the image (six 3x3 convolutions):
enough to tell a newt's skin from leaves, not to see the whole animal.
Labels: every class other than background counts as "newt".
Keras works channels-last (NHWC); keras.Input(shape=(None, None, 3)) accepts
any image size. A block is a function of the functional API: it adds its
layers to the graph and returns their output. Layer "trunk-0-conv" holds the
weights that the other frameworks call trunk.0.conv.weight and .bias
(keras_weights.LAYER_SEP says why "-").
Questions Q1.1-Q1.5: docs/questions/en.md (ja.md in Japanese).
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import keras_setup  # noqa: F401  (before keras: it picks the Keras backend, --backend)

import keras
from keras import layers, ops

from common.driver import main
from common.runner import Step
from keras_layers import batch_norm


def CBR(x, filters: int, name: str, kernel_size: int = 3):
    """Conv kxk ("same" padding) -> ReLU -> BatchNorm: the exercise's block, used by steps 01-06.

    The exercise puts BatchNorm after the ReLU; most papers (and conv_bn_relu,
    steps 08-09) put it before. We keep the exercise's order. Conv2D(activation="relu")
    is the conv and the ReLU in one Keras layer.
    x [B, H, W, in] -> [B, H, W, filters]; layers <name>-conv and <name>-bn.
    """
    # >>> Q1.1 a kxk Conv2D named f"{name}-conv" with "same" padding and the ReLU, then batch_norm(f"{name}-bn")
    x = layers.Conv2D(filters, kernel_size, padding="same", activation="relu", name=f"{name}-conv")(x)
    return batch_norm(f"{name}-bn")(x)
    # <<< Q1.1


def BinarizationNet(num_outputs: int = 1, width: int = 32) -> keras.Model:
    # >>> Q1.2 six CBR named trunk-0 ... trunk-5, then a 1x1 Conv2D "head"; return keras.Model(inputs, logits)
    x = inputs = keras.Input(shape=(None, None, 3), name="image")
    for i in range(6):
        x = CBR(x, width, f"trunk-{i}")
    logits = layers.Conv2D(num_outputs, 1, name="head")(x)   # no sigmoid: the loss applies it
    return keras.Model(inputs, logits, name="binarization")
    # <<< Q1.2


def sigmoid_cross_entropy(logits, y, ignore_index=None):
    """Binary cross-entropy on logits [B,H,W,1] vs 0/1 targets [B,H,W], mean over labelled pixels.

    On the logits, not on sigmoid(logits): with p = sigmoid(z),
    -t*log(p) - (1-t)*log(1-p) = softplus(z) - t*z, which never takes the log
    of 0. Pixels equal to ignore_index do not count; with none labelled the
    loss is 0 (not NaN). Computed in the logits' dtype.
    """
    # >>> Q1.3 flatten logits and labels; softplus(z) - t*z per pixel; average over kept pixels
    dtype = keras.backend.standardize_dtype(logits.dtype)
    z = ops.reshape(logits, (-1,))                                    # [B*H*W]
    t = ops.cast(ops.reshape(y, (-1,)), "int32")
    if ignore_index is None:
        keep = ops.ones(ops.shape(t), dtype)
    else:
        labelled = ops.not_equal(t, ignore_index)
        t, keep = ops.where(labelled, t, 0), ops.cast(labelled, dtype)
    per_pixel = ops.softplus(z) - ops.cast(t, dtype) * z
    return ops.sum(per_pixel * keep) / ops.maximum(ops.sum(keep), 1.0)
    # <<< Q1.3


def binarize(logits):
    """The mask [B,H,W] (0/1, uint8) from logits [B,H,W,1]: sigmoid(z) > 0.5, that is z > 0."""
    # >>> Q1.4 compare the logit with 0 (sigmoid(z) > 0.5 exactly when z > 0)
    return ops.cast(ops.greater(logits[..., 0], 0), "uint8")
    # <<< Q1.4


def compile_model(model, optimizer, loss_fn):
    """Give the model its optimizer and loss, once, before the first train_step.

    Keras calls a compiled loss as loss(y_true, y_pred); the losses of this
    suite take (logits, y) in every framework, so the two swap here.
    """
    # >>> Q1.5 model.compile with the optimizer and the loss (Keras passes y_true first, then the logits)
    model.compile(optimizer=optimizer, loss=lambda y_true, logits: loss_fn(logits, y_true))
    # <<< Q1.5


def train_step(model, x, y):
    """One SGD step on a batch; returns the loss (a float) before the update.

    train_on_batch sets the training mode itself: BatchNorm normalises with
    the batch's statistics and updates its running ones (predict_on_batch,
    in evaluation, uses those instead). Keras 3 resets its metrics on each
    call, so the loss is this batch's, not a running mean.
    """
    # >>> Q1.5 one step of the compiled model on (x, y)
    return model.train_on_batch(x, y)
    # <<< Q1.5


def build(num_outputs, args):
    return BinarizationNet(num_outputs)


def step(args):
    return Step("01_binarization", task="binary")


if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
