"""Step 8: SegNet (Badrinarayanan, Kendall and Cipolla, 2017) -- unpool where the maximum was.

UNet (step 6) carries whole encoder maps to the decoder; SegNet carries only
WHERE each maximum was. Every 2x2 max pooling of the encoder also returns the
position of the maximum in its window, and the decoder's unpooling puts each
value back there, zeros elsewhere; the convolutions after it fill the sparse
map in. Unpooling has no weights and the decoder keeps no copy of the maps.

    x [B, S, S, 3]
      level i = 0, 1, 2 (side S/2^i; channels 48, 96, 192):
        enc.i (ConvBNReLU x 2) -> pool 2x2, keeping the indices
      [B, S/8, S/8, 192]
      level i = 2, 1, 0:
        unpool with enc.i's indices (side S/2^i) -> dec.i (ConvBN x 2, no ReLU;
        the second one halves the channels, except at level 0)
      [B, S, S, 48] -> head (1x1) [B, S, S, C]            S must be divisible by 8

Encoder Conv -> BatchNorm -> ReLU (the paper's order, not the exercise's CBR:
it makes the pooling's ties harmless), decoder Conv -> BatchNorm without ReLU.
Departures from the paper: 3 levels of two 3x3 convolutions, widths 48 to
192; no ImageNet weights, no bias, a 1x1 head, no class-balanced loss.
Why each choice: docs/lessons/08_segnet.md.
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import keras_setup  # noqa: F401  (before keras: it picks the Keras backend, --backend)

import keras
from keras import layers, ops

from common.driver import main
from common.runner import Step
from keras_layers import batch_norm, conv_bn_relu


class MaxPoolWithIndices(layers.Layer):
    """2x2 max pooling, stride 2, that also returns where each maximum was.

    x [B, H, W, C] -> (pooled [B, H/2, W/2, C], indices int32 [B, H/2, W/2, C]),
    an index 0..3 being the maximum's position in its window, row-major; the
    first maximum wins a tie. H and W must be even.

    Indices, this port's convention: Keras has no pooling-with-indices or
    unpooling layer (tf.nn.max_pool_with_argmax exists on the tensorflow backend
    only), so this layer and MaxUnpool write them with keras.ops, for both
    backends. An index is the position of the maximum inside its own 2x2 window,
    0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right; PyTorch stores the
    flat position h * W + w in the H x W map instead; both name the same
    element, as each pooled value comes from its own window. Ties go to the
    first maximum in that order, as in PyTorch.

    Why true indices, not the shortcut "upsample by nearest neighbour and keep
    the values where the encoder map equals its window maximum": in a tied
    window that mask keeps all four positions, where PyTorch keeps the first
    one. Measured with PyTorch's network (initial weights, uniform-noise input):
    the shortcut leaves the bottom unpooling unchanged and moves the logits by
    up to 3.6. Both layers route gradients as PyTorch's do: a pooled value's
    gradient goes to the chosen position only (a chain of ops.where; ops.max
    would split it among tied values on both backends), an unpooled value's
    gradient is read at its index, and none reaches the encoder through an index.
    """

    def call(self, x):
        corners = [x[:, 0::2, 0::2], x[:, 0::2, 1::2],    # top-left, top-right
                   x[:, 1::2, 0::2], x[:, 1::2, 1::2]]    # bottom-left, bottom-right
        top = ops.maximum(ops.maximum(corners[0], corners[1]),
                          ops.maximum(corners[2], corners[3]))   # only compared, never returned
        # From the last corner to the first, so the first one equal to the maximum wins.
        pooled, indices = corners[3], ops.full_like(top, 3, dtype="int32")
        for k in (2, 1, 0):
            wins = ops.equal(corners[k], top)
            pooled = ops.where(wins, corners[k], pooled)   # gradient to the chosen corner only
            indices = ops.where(wins, k, indices)
        return pooled, indices

    def compute_output_spec(self, x):
        # Stated, not traced: the torch backend traces call() with sides of 83 (odd).
        b, h, w, c = x.shape
        half = (b, None if h is None else h // 2, None if w is None else w // 2, c)
        return keras.KerasTensor(half, x.dtype), keras.KerasTensor(half, "int32")


class MaxUnpool(layers.Layer):
    """x [B, h, w, C] and indices [B, h, w, C] (0..3) -> [B, 2h, 2w, C].

    Each value goes to its index's position in its 2x2 window, zeros elsewhere.
    """

    def call(self, x, indices):
        zero = ops.zeros_like(x)
        tl, tr, bl, br = [ops.where(ops.equal(indices, k), x, zero) for k in range(4)]
        _, h, w, c = ops.shape(x)
        top = ops.reshape(ops.stack([tl, tr], axis=3), (-1, h, 2 * w, c))      # columns interleaved
        bottom = ops.reshape(ops.stack([bl, br], axis=3), (-1, h, 2 * w, c))
        return ops.reshape(ops.stack([top, bottom], axis=2), (-1, 2 * h, 2 * w, c))   # rows too

    def compute_output_spec(self, x, indices):
        b, h, w, c = x.shape
        return keras.KerasTensor((b, None if h is None else 2 * h, None if w is None else 2 * w, c),
                                 x.dtype)


def conv_bn(x, filters, name):
    """Conv 3x3 (no bias) -> BatchNorm, no ReLU: the decoder's layer; <name>-conv, <name>-bn."""
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}-conv")(x)
    return batch_norm(f"{name}-bn")(x)


def encoder_block(x, filters, name):
    """ConvBNReLU x 2, named <name>-0, <name>-1 (neutral <name>.0, <name>.1)."""
    return conv_bn_relu(conv_bn_relu(x, filters, f"{name}-0"), filters, f"{name}-1")


def decoder_block(x, filters, name):
    """ConvBN x 2, the second one to `filters` (the encoder block mirrored)."""
    return conv_bn(conv_bn(x, x.shape[-1], f"{name}-0"), filters, f"{name}-1")


def SegNet(num_classes: int, depth: int = 3, width: int = 48) -> keras.Model:
    # >>> Q8.1 enc blocks, each followed by a max-pool that returns its indices; decoder: unpool with the indices of the same level, then the dec block; head 1x1
    chans = [width * 2 ** i for i in range(depth)]    # 48, 96, 192
    x = inputs = keras.Input(shape=(None, None, 3), name="image")
    indices = []
    for i in range(depth):
        x = encoder_block(x, chans[i], f"enc-{i}")
        x, idx = MaxPoolWithIndices(name=f"pool-{i}")(x)
        indices.append(idx)
    # dec.i works at the side of enc.i and unpools with enc.i's indices
    for i in reversed(range(depth)):
        x = MaxUnpool(name=f"unpool-{i}")(x, indices[i])   # the lesson
        x = decoder_block(x, chans[max(i - 1, 0)], f"dec-{i}")
    logits = layers.Conv2D(num_classes, 1, name="head")(x)
    return keras.Model(inputs, logits, name="segnet")
    # <<< Q8.1


def build(num_outputs, args):
    return SegNet(num_outputs)


def step(args):
    return Step("08_segnet", size_multiple=8)


if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
