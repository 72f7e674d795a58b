"""Step 6: UNet (Ronneberger, Fischer and Brox, 2015).

Steps 3-5 repeated: an encoder of `depth` levels, each a double convolution
followed by 2x2 max pooling (channels double as the resolution halves), a
bottleneck, and a decoder that at every level upsamples with a 2x2 transposed
convolution (halving the channels), concatenates the encoder's map of the
same size, and applies another double convolution. A 1x1 convolution gives
the class logits. With depth 4 the bottleneck sees the whole 64x64 image.

    x [B, 3, S, S] -> enc.0 [B, w, S, S] -> pool -> enc.1 [B, 2w, S/2, S/2] -> ...
      -> enc.depth (bottleneck) [B, w*2^depth, S/2^depth, S/2^depth]
      -> for i = 0..depth-1: up.i (transposed conv 2x2 s2) -> concat [skip, up] -> dec.i
      -> head (1x1) [B, C, S, S]              S must be divisible by 2^depth

Departures from the paper, as in most re-implementations: "same" padding, so
the output has the input's size and no cropping is needed (the paper used
unpadded convolutions: 572 -> 388); BatchNorm in every double convolution (in
the exercise's CBR order, Conv -> ReLU -> BN); base width 32 instead of 64,
to fit a laptop CPU (--width 64 gives the paper's channels).

Chainer: chainer.ChainList holds a list of links and names them 0, 1, ...
(PyTorch's nn.ModuleList), so enc.0.1.conv.bias is the same name in both.
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import chainer_compat  # noqa: F401  (before chainer: it makes Chainer importable on NumPy 2)

import chainer
import chainer.functions as F
import chainer.links as L

from chainer_layers import CBR, Sequential   # CBR: Conv -> ReLU -> BatchNorm, taught in 01_binarization
from common.driver import main
from common.runner import Step


def double_conv(in_channels, out_channels):
    """(Conv 3x3 -> ReLU -> BN) x 2, named <block>.0 and <block>.1."""
    # >>> Q6.1 two CBR 3x3 in a Sequential, the first to out_channels
    return Sequential(CBR(in_channels, out_channels), CBR(out_channels, out_channels))
    # <<< Q6.1


class UNet(chainer.Chain):
    def __init__(self, num_classes: int, depth: int = 4, width: int = 32):
        super().__init__()
        # >>> Q6.2 enc: depth+1 double_conv, widths doubling; up: transposed conv 2x2 stride 2 halving; dec: double_conv (ChainLists)
        chans = [width * 2 ** i for i in range(depth + 1)]   # 32, 64, 128, 256, 512
        with self.init_scope():
            self.enc = chainer.ChainList(double_conv(3, chans[0]),
                                         *[double_conv(chans[i], chans[i + 1])
                                           for i in range(depth)])
            # decoder, deepest level first
            self.up = chainer.ChainList(*[L.Deconvolution2D(chans[i + 1], chans[i], 2, stride=2)
                                          for i in reversed(range(depth))])
            self.dec = chainer.ChainList(*[double_conv(2 * chans[i], chans[i])
                                           for i in reversed(range(depth))])
            self.head = L.Convolution2D(chans[0], num_classes, ksize=1)
        # <<< Q6.2

    def forward(self, x):
        # >>> Q6.2 keep each encoder output; decoder: concatenate [skip, up(x)], then dec
        skips = []
        for i, block in enumerate(self.enc):
            x = block(x if i == 0 else F.max_pooling_2d(x, 2, cover_all=False))
            skips.append(x)
        skips.pop()   # the bottleneck's output is x itself
        for up, dec in zip(self.up, self.dec):
            x = dec(F.concat([skips.pop(), up(x)], axis=1))
        return self.head(x)
        # <<< Q6.2


def add_arguments(parser):
    parser.add_argument("--depth", type=int, choices=range(1, 7), default=4,
                        help="poolings in the encoder (default: 4)")
    parser.add_argument("--width", type=int, choices=(8, 16, 32, 64), default=32,
                        help="channels of the first level, doubled at each (default: 32)")


def build(num_outputs, args):
    return UNet(num_outputs, depth=args.depth, width=args.width)


def step(args):
    return Step("06_unet", size_multiple=2 ** args.depth,
                extra={"depth": args.depth, "width": args.width})


if __name__ == "__main__":
    main(__name__)   # common/driver.py: command line, training, evaluation, outputs
