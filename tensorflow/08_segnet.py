"""Step 8: SegNet (Badrinarayanan, Kendall and Cipolla, 2017) -- unpool where the maximum was.

UNet (step 6) carries whole encoder maps to the decoder and concatenates
them. SegNet carries only WHERE each maximum was: every 2x2 max pooling of the
encoder also returns the position of the maximum in its window, and the
decoder's unpooling puts each value back at that position and zeros in the
other three. The result is sparse; the convolutions after it fill it in.
Unpooling has no weights, and the decoder needs no copy of the encoder's
maps, only one index per pooled value: SegNet's memory argument.

    x [B, S, S, 3]
      level i = 0, 1, 2 (side S/2^i; channels 48, 96, 192):
        enc.i (ConvBNReLU x 2) -> pool 2x2, keeping the indices
      [B, S/8, S/8, 192]
      level i = 2, 1, 0:
        unpool with enc.i's indices (side S/2^i) -> dec.i (ConvBN x 2, no
        ReLU; the second one halves the channels, except at level 0)
      [B, S, S, 48] -> head (1x1) [B, S, S, C]            S must be divisible by 8

    S = 64: pooled maps 32, 16, 8; a bottom cell sees 36x36 input pixels, an
    output pixel 64x64.

Indices, TensorFlow's convention: tf.nn.max_pool_with_argmax(x, 2, 2,
include_batch_in_index=False) returns int64 indices shaped like its output,
[B, H/2, W/2, C]; each is the position of the maximum as a flat index
(h * W + w) * C + c into the H x W x C map of the same sample (the pooling's
input, NHWC), channels included. (With include_batch_in_index=True the
sample is counted in too: ((b * H + h) * W + w) * C + c.) PyTorch's index is
h * W + w, per sample AND channel; TF's index = PyTorch's * C + c. unpool()
below scatters every value to its index in a zero map of H * W * C values
per sample, the batch index added as a first coordinate, and reshapes that
to [B, H, W, C]: nn.MaxUnpool2d written out. Gradients: max_pool_with_argmax
sends each output's gradient to its argmax (TF's registered gradient uses
the same indices), and the scatter's gradient gathers from the same
positions, so both directions route exactly as in PyTorch.

Encoder order: Conv -> BatchNorm -> ReLU, the paper's order, NOT the
exercise's Conv -> ReLU -> BatchNorm, and here the order matters beyond
style: ties. Where a 2x2 window has four negative pre-activations, the
exercise's order gives four ReLU zeros that BatchNorm then maps to four
EQUAL values: a tie, whose value is in general not zero. Which of the four positions
wins a tie is an implementation choice, so frameworks could unpool the same
value to different places. (PyTorch keeps the first maximum in row-major
order: top-left, top-right, bottom-left, bottom-right. TensorFlow's CPU
kernel happens to as well: on a tensor full of exact ties, inside
tf.function, its indices were PyTorch's * C + c everywhere; nothing in its
documentation promises that.) With BatchNorm before the ReLU the tied values
are ReLU zeros: the pooled value is 0 whichever wins, and its gradient,
wherever it is routed, meets a ReLU that passes none. (At the start of
training about a third of the first level's windows are such all-zero ties.)
Where the unpooling then puts a value still depends on which position won: at
the bottom that value is the pooled zero, but levels 1 and 0 unpool the
DECODER's values (ConvBN outputs, not zero), so every framework must break
ties the same way, and all four keep the first maximum (checked on tensors of
exact ties). Ties between positive
values need equal pre-activations, which only an input that is constant
over the whole receptive field gives.

Decoder order: Conv -> BatchNorm without a ReLU (ConvBN), as in the paper's
SegNet-Basic. An unpooled ReLU output is a grid of zeros with non-negative
values at the argmax positions, and the convolution after it responds mostly
to that pattern of positions (our reading). With a ReLU in the decoder as
well, every unpooling sees such a map, and the network learned markedly
slower: a 4-level version could not fit even a single batch in 60
iterations, where UNet could. Now only the bottom unpooling does.

Departures from the paper: 3 levels of two 3x3 convolutions, widths 48 to 192
(SegNet: VGG16's 5 levels of 2-2-3-3-3 convolutions, 64 to 512 channels,
ReLU in the decoder; SegNet-Basic: 4 levels of one 7x7 convolution, 64
channels). With 4 levels a 4x4 bottom map carries all the decoder gets
besides the indices; 3 levels learned a little faster here. No ImageNet
weights; no bias in the convolutions (BatchNorm follows each one and cancels
a bias); the last decoder level keeps 48 channels and a 1x1 head gives the
classes, like every step of this suite; no class-balanced loss (the paper
weights classes by median frequency).
"""
import ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import tensorflow as tf

import seg_tf as lab


class ConvBN(lab.Module):
    """Conv 3x3 (no bias) -> BatchNorm, no ReLU: the decoder's layer; <block>.conv, <block>.bn."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = lab.Conv2D(in_channels, out_channels, 3, bias=False)
        self.bn = lab.batch_norm(out_channels)

    def __call__(self, x, training=False):
        return self.bn(self.conv(x), training)


def encoder_block(in_channels, out_channels):
    """ConvBNReLU x 2, the first one to out_channels; named <block>.0, <block>.1."""
    return lab.Sequential(lab.ConvBNReLU(in_channels, out_channels),
                          lab.ConvBNReLU(out_channels, out_channels))


def decoder_block(in_channels, out_channels):
    """ConvBN x 2, the second one to out_channels (the encoder block mirrored)."""
    return lab.Sequential(ConvBN(in_channels, in_channels), ConvBN(in_channels, out_channels))


def pool(x):
    """2x2 max pooling -> (pooled [B, H/2, W/2, C], int64 indices (h*W + w)*C + c per sample)."""
    return tf.nn.max_pool_with_argmax(x, 2, 2, "VALID", include_batch_in_index=False)


def unpool(x, indices, shape):
    """Each value of x [B, h, w, C] to its index in a zero map of `shape` [B, H, W, C]."""
    b = tf.shape(x)[0]
    flat = tf.reshape(indices, [b, -1])                                  # [B, h*w*C]
    sample = tf.broadcast_to(tf.range(b, dtype=flat.dtype)[:, None], tf.shape(flat))
    where = tf.stack([sample, flat], axis=-1)                            # [B, h*w*C, 2]
    size = tf.cast(tf.stack([b, shape[1] * shape[2] * shape[3]]), flat.dtype)
    # windows do not overlap, so no two values share an index (scatter_nd would sum them)
    out = tf.scatter_nd(where, tf.reshape(x, [b, -1]), size)             # [B, H*W*C]
    return tf.reshape(out, shape)


class SegNet(lab.Module):
    def __init__(self, num_classes: int, depth: int = 3, width: int = 48):
        super().__init__()
        chans = [width * 2 ** i for i in range(depth)]    # 48, 96, 192
        ins = [3] + chans[:-1]
        self.enc = [encoder_block(ins[i], chans[i]) for i in range(depth)]
        # dec.i works at the side of enc.i and unpools with enc.i's indices
        self.dec = [decoder_block(chans[i], chans[max(i - 1, 0)]) for i in range(depth)]
        self.head = lab.Conv2D(chans[0], num_classes, kernel_size=1)

    def __call__(self, x, training=False):
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


def build(num_outputs, args):
    return SegNet(num_outputs)


def step(args):
    return lab.Step(lab.step_name(__file__), size_multiple=8)


@lab.exit_on_user_error
def main(argv=None):
    args = lab.parse_args(__file__, __doc__, argv)
    return lab.run(args, step(args), lambda n: build(n, args))


if __name__ == "__main__":
    main()
