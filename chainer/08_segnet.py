"""Step 8: SegNet (Badrinarayanan, Kendall and Cipolla, 2017) -- unpool where the maximum was.

UNet (step 6) carries whole encoder maps to the decoder; SegNet carries only
WHERE each maximum was. Every 2x2 max pooling of the encoder also returns the
position of the maximum in its window, and the decoder's unpooling puts each
value back there, zeros elsewhere; the convolutions after it fill the sparse
map in. Unpooling has no weights and the decoder keeps no copy of the maps.

    x [B, 3, S, S]
      level i = 0, 1, 2 (side S/2^i; channels 48, 96, 192):
        enc.i (ConvBNReLU x 2) -> pool 2x2, keeping the indices
      [B, 192, S/8, S/8]
      level i = 2, 1, 0:
        unpool with enc.i's indices (side S/2^i) -> dec.i (ConvBN x 2, no ReLU;
        the second one halves the channels, except at level 0)
      [B, 48, S, S] -> head (1x1) [B, C, S, S]            S must be divisible by 8

Encoder Conv -> BatchNorm -> ReLU (the paper's order, not the exercise's CBR:
it makes the pooling's ties harmless), decoder Conv -> BatchNorm without ReLU.
Departures from the paper: 3 levels of two 3x3 convolutions, widths 48 to
192; no ImageNet weights, no bias, a 1x1 head, no class-balanced loss.
Why each choice: docs/lessons/08_segnet.md.
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
        # Indices, Chainer's convention: F.max_pooling_2d(x, 2, return_indices=True) returns
        # indices shaped like the pooled map [B, C, H/2, W/2], each the position of the maximum
        # WITHIN ITS 2x2 WINDOW, ky * 2 + kx (0 top-left ... 3 bottom-right; a tie goes to the
        # first maximum, as in PyTorch), not PyTorch's flat h * W + w in the whole map:
        # h * W + w = (2i + ky) * W + (2j + kx) for the pooled cell (i, j), ky, kx =
        # divmod(index, 2). F.upsampling_2d(x, indices, 2, outsize=(H, W), cover_all=False)
        # scatters every value back to that window position in a zero map; its gradient reads
        # the output's gradient at the same positions. Pooling and unpooling have no links.
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
