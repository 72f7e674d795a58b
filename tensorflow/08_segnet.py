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
TensorFlow has no unpooling op: unpool() below writes nn.MaxUnpool2d out.
Departures from the paper: 3 levels of two 3x3 convolutions, widths 48 to
192; no ImageNet weights, no bias, a 1x1 head, no class-balanced loss.
Why each choice: docs/lessons/08_segnet.md.
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import tensorflow as tf

from common.driver import main
from common.runner import Step
from tf_layers import Conv2D, ConvBNReLU, Module, Sequential, batch_norm


class ConvBN(Module):
    """Conv 3x3 (no bias) -> BatchNorm, no ReLU: the decoder's layer; <block>.conv, <block>.bn."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = Conv2D(in_channels, out_channels, 3, bias=False)
        self.bn = batch_norm(out_channels)

    def __call__(self, x, training=False):
        return self.bn(self.conv(x), training)


def encoder_block(in_channels, out_channels):
    """ConvBNReLU x 2, the first one to out_channels; named <block>.0, <block>.1."""
    return Sequential(ConvBNReLU(in_channels, out_channels),
                      ConvBNReLU(out_channels, out_channels))


def decoder_block(in_channels, out_channels):
    """ConvBN x 2, the second one to out_channels (the encoder block mirrored)."""
    return Sequential(ConvBN(in_channels, in_channels), ConvBN(in_channels, out_channels))


def pool(x):
    """2x2 max pooling -> (pooled [B, H/2, W/2, C], int64 indices (h*W + w)*C + c per sample).

    Indices, TensorFlow's convention: tf.nn.max_pool_with_argmax(include_batch_in_index=False)
    returns them shaped like its output, each the flat position (h * W + w) * C + c of the
    maximum in the H x W x C map of the same sample (NHWC, channels included; with
    include_batch_in_index=True the sample counts too). PyTorch's index is h * W + w per
    sample AND channel: TF's = PyTorch's * C + c. A tie goes to the first maximum in
    row-major order, as in PyTorch (on a tensor full of exact ties, inside tf.function, the
    indices were PyTorch's * C + c everywhere; TF's documentation does not promise it).
    The gradient goes to the argmax (TF's registered gradient uses the same indices).
    """
    return tf.nn.max_pool_with_argmax(x, 2, 2, "VALID", include_batch_in_index=False)


def unpool(x, indices, shape):
    """Each value of x [B, h, w, C] to its index in a zero map of `shape` [B, H, W, C].

    nn.MaxUnpool2d written out: a scatter into H * W * C zeros per sample, the batch index
    added as a first coordinate, reshaped to [B, H, W, C]. The scatter's gradient gathers
    from the same positions, so both directions route exactly as in PyTorch.
    """
    b = tf.shape(x)[0]
    flat = tf.reshape(indices, [b, -1])                                  # [B, h*w*C]
    sample = tf.broadcast_to(tf.range(b, dtype=flat.dtype)[:, None], tf.shape(flat))
    where = tf.stack([sample, flat], axis=-1)                            # [B, h*w*C, 2]
    size = tf.cast(tf.stack([b, shape[1] * shape[2] * shape[3]]), flat.dtype)
    # windows do not overlap, so no two values share an index (scatter_nd would sum them)
    out = tf.scatter_nd(where, tf.reshape(x, [b, -1]), size)             # [B, H*W*C]
    return tf.reshape(out, shape)


class SegNet(Module):
    def __init__(self, num_classes: int, depth: int = 3, width: int = 48):
        super().__init__()
        # >>> Q8.1 enc blocks, dec blocks mirrored, head 1x1 (pool() and unpool() above keep and use the indices)
        chans = [width * 2 ** i for i in range(depth)]    # 48, 96, 192
        ins = [3] + chans[:-1]
        self.enc = [encoder_block(ins[i], chans[i]) for i in range(depth)]
        # dec.i works at the side of enc.i and unpools with enc.i's indices
        self.dec = [decoder_block(chans[i], chans[max(i - 1, 0)]) for i in range(depth)]
        self.head = Conv2D(chans[0], num_classes, kernel_size=1)
        # <<< Q8.1

    def __call__(self, x, training=False):
        # >>> Q8.1 pool keeping indices; decoder: unpool with the indices of the same level, then the dec block
        indices, shapes = [], []
        for enc in self.enc:
            x = enc(x, training)
            shapes.append(tf.shape(x))
            x, idx = pool(x)               # idx: flat (h * W + w) * C + c per sample
            indices.append(idx)
        for i in reversed(range(len(self.dec))):
            x = unpool(x, indices[i], shapes[i])   # the lesson
            x = self.dec[i](x, training)
        return self.head(x)
        # <<< Q8.1


def build(num_outputs, args):
    return SegNet(num_outputs)


def step(args):
    return Step("08_segnet", size_multiple=8)


if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
