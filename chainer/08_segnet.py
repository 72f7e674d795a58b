"""Step 8: SegNet (Badrinarayanan, Kendall and Cipolla, 2017) -- unpool where the maximum was.

UNet (step 6) carries whole encoder maps to the decoder and concatenates
them. SegNet carries only WHERE each maximum was: every 2x2 max pooling of the
encoder also returns the position of the maximum in its window, and the
decoder's unpooling puts each value back at that position and zeros in the
other three. The result is sparse; the convolutions after it fill it in.
Unpooling has no weights, and the decoder needs no copy of the encoder's
maps, only one index per pooled value: SegNet's memory argument.

    x [B, 3, S, S]
      level i = 0, 1, 2 (side S/2^i; channels 48, 96, 192):
        enc.i (ConvBNReLU x 2) -> pool 2x2, keeping the indices
      [B, 192, S/8, S/8]
      level i = 2, 1, 0:
        unpool with enc.i's indices (side S/2^i) -> dec.i (ConvBN x 2, no
        ReLU; the second one halves the channels, except at level 0)
      [B, 48, S, S] -> head (1x1) [B, C, S, S]            S must be divisible by 8

    S = 64: pooled maps 32, 16, 8; a bottom cell sees 36x36 input pixels, an
    output pixel 64x64.

Indices, Chainer's convention: F.max_pooling_2d(x, 2, return_indices=True)
returns indices shaped like its output, [B, C, H/2, W/2], but each is the
position of the maximum WITHIN ITS 2x2 WINDOW, ky * kw + kx (0 top-left,
1 top-right, 2 bottom-left, 3 bottom-right; the argmax over the window's
im2col column), not an index into the whole map. F.upsampling_2d(x, indices,
2, outsize=(H, W), cover_all=False) scatters every value back to that window
position in a zero map; its gradient reads the output's gradient at the same
positions. PyTorch's nn.MaxPool2d(2, return_indices=True) instead stores the
flat position h * W + w in the H x W map of the same sample and channel;
for the pooled cell (i, j) the two are related by
    h * W + w = (2i + ky) * W + (2j + kx),   ky, kx = divmod(index, 2).
Both put the value in the same place; only the bookkeeping differs (and
TensorFlow, for one, also flattens the channel axis into the index, NHWC).

Encoder order: Conv -> BatchNorm -> ReLU, the paper's order, NOT the
exercise's Conv -> ReLU -> BatchNorm, and here the order matters beyond
style: ties. Where a 2x2 window has four negative pre-activations, the
exercise's order gives four ReLU zeros that BatchNorm then maps to four
EQUAL values: a tie, whose value is in general not zero. Which of the four
positions wins a tie is an implementation choice (Chainer's argmax, like
PyTorch, keeps the first maximum in row-major order: top-left, top-right,
bottom-left, bottom-right), so frameworks could unpool the same value to
different places. With BatchNorm before the ReLU the tied values are ReLU
zeros: the pooled value is 0 whichever wins, and its gradient, wherever it is
routed, meets a ReLU that passes none. (At the start of training about a third
of the first level's windows are such all-zero ties.) Where the unpooling then
puts a value still depends on which position won: at the bottom that value is
the pooled zero, but levels 1 and 0 unpool the DECODER's values (ConvBN
outputs, not zero), so every framework must break ties the same way, and all
four keep the first maximum (checked on tensors of exact ties). Ties between positive values need equal pre-activations,
which only an input that is constant over the whole receptive field gives.

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
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import chainer_compat  # noqa: F401  (before chainer: it makes Chainer importable on NumPy 2)

import chainer
import chainer.functions as F
import chainer.links as L

from chainer_layers import ConvBNReLU, Sequential, batch_norm
from common.driver import main
from common.runner import Step


class ConvBN(chainer.Chain):
    """Conv 3x3 (no bias) -> BatchNorm, no ReLU: the decoder's layer; <block>.conv, <block>.bn."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        with self.init_scope():
            self.conv = L.Convolution2D(in_channels, out_channels, 3, pad=1, nobias=True)
            self.bn = batch_norm(out_channels)

    def forward(self, x):
        return self.bn(self.conv(x))


def encoder_block(in_channels, out_channels):
    """ConvBNReLU x 2, the first one to out_channels; named <block>.0, <block>.1."""
    return Sequential(ConvBNReLU(in_channels, out_channels),
                      ConvBNReLU(out_channels, out_channels))


def decoder_block(in_channels, out_channels):
    """ConvBN x 2, the second one to out_channels (the encoder block mirrored)."""
    return Sequential(ConvBN(in_channels, in_channels), ConvBN(in_channels, out_channels))


class SegNet(chainer.Chain):
    def __init__(self, num_classes: int, depth: int = 3, width: int = 48):
        super().__init__()
        # >>> Q8.1 enc blocks, dec blocks mirrored (ChainLists), head 1x1; pooling that returns its indices and unpooling have no links
        chans = [width * 2 ** i for i in range(depth)]    # 48, 96, 192
        ins = [3] + chans[:-1]
        with self.init_scope():
            self.enc = chainer.ChainList(*[encoder_block(ins[i], chans[i]) for i in range(depth)])
            # dec.i works at the side of enc.i and unpools with enc.i's indices
            self.dec = chainer.ChainList(*[decoder_block(chans[i], chans[max(i - 1, 0)])
                                           for i in range(depth)])
            self.head = L.Convolution2D(chans[0], num_classes, ksize=1)
        # <<< Q8.1

    def forward(self, x):
        # >>> Q8.1 pool keeping indices (return_indices=True); decoder: unpool (F.upsampling_2d) with the indices of the same level, then the dec block
        indices, sizes = [], []
        for enc in self.enc:
            x = enc(x)
            sizes.append(x.shape[-2:])
            # idx: ky * 2 + kx within each 2x2 window (numpy int array, not a Variable)
            x, idx = F.max_pooling_2d(x, 2, stride=2, cover_all=False, return_indices=True)
            indices.append(idx)
        for i in reversed(range(len(self.dec))):
            x = F.upsampling_2d(x, indices[i], 2, stride=2, outsize=sizes[i],
                                cover_all=False)   # the lesson
            x = self.dec[i](x)
        return self.head(x)
        # <<< Q8.1


def build(num_outputs, args):
    return SegNet(num_outputs)


def step(args):
    return Step("08_segnet", size_multiple=8)


if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
