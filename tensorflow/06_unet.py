"""Step 6: UNet (Ronneberger, Fischer and Brox, 2015).

Steps 3-5 repeated: an encoder of `depth` levels, each a double convolution
followed by 2x2 max pooling (channels double as the resolution halves), a
bottleneck, and a decoder that at every level upsamples with a 2x2 transposed
convolution (halving the channels), concatenates the encoder's map of the
same size, and applies another double convolution. A 1x1 convolution gives
the class logits. With depth 4 the bottleneck sees the whole 64x64 image.

    x [B, S, S, 3] -> enc.0 [B, S, S, w] -> pool -> enc.1 [B, S/2, S/2, 2w] -> ...
      -> enc.depth (bottleneck) [B, S/2^depth, S/2^depth, w*2^depth]
      -> for i = 0..depth-1: up.i (transposed conv 2x2 s2) -> concat [skip, up] -> dec.i
      -> head (1x1) [B, S, S, C]              S must be divisible by 2^depth

Departures from the paper, as in most re-implementations: "same" padding, so
the output has the input's size and no cropping is needed (the paper used
unpadded convolutions: 572 -> 388); BatchNorm in every double convolution (in
the exercise's CBR order, Conv -> ReLU -> BN); base width 32 instead of 64,
to fit a laptop CPU (--width 64 gives the paper's channels).
"""
import common.ctrl_c  # noqa: F401  (first: from here on, Ctrl-C ends with one line, exit 130)

import tensorflow as tf

from common.driver import main
from common.runner import Step
# CBR: Conv -> ReLU -> BatchNorm, taught in 01_binarization
from tf_layers import CBR, Conv2D, ConvTranspose2D, Module, Sequential


def double_conv(in_channels, out_channels):
    """(Conv 3x3 -> ReLU -> BN) x 2, named <block>.0 and <block>.1."""
    # >>> Q6.1 two CBR 3x3, the first to out_channels
    return Sequential(CBR(in_channels, out_channels), CBR(out_channels, out_channels))
    # <<< Q6.1


class UNet(Module):
    def __init__(self, num_classes: int, depth: int = 4, width: int = 32):
        super().__init__()
        # >>> Q6.2 enc: depth+1 double_conv, widths doubling; up: transposed conv 2x2 stride 2 halving; dec: double_conv
        chans = [width * 2 ** i for i in range(depth + 1)]   # 32, 64, 128, 256, 512
        # plain lists of layers: tf.Module tracks them, tf_layers names them enc.0, enc.1, ...
        self.enc = [double_conv(3, chans[0])] + [double_conv(chans[i], chans[i + 1])
                                                 for i in range(depth)]
        # decoder, deepest level first
        self.up = [ConvTranspose2D(chans[i + 1], chans[i], 2, stride=2)
                   for i in reversed(range(depth))]
        self.dec = [double_conv(2 * chans[i], chans[i]) for i in reversed(range(depth))]
        self.head = Conv2D(chans[0], num_classes, kernel_size=1)
        # <<< Q6.2

    def __call__(self, x, training=False):
        # >>> Q6.2 keep each encoder output; decoder: concatenate [skip, up(x)], then dec
        skips = []
        for i, block in enumerate(self.enc):
            x = block(x if i == 0 else tf.nn.max_pool2d(x, 2, 2, "VALID"), training)
            skips.append(x)
        skips.pop()   # the bottleneck's output is x itself
        for up, dec in zip(self.up, self.dec):
            x = dec(tf.concat([skips.pop(), up(x)], axis=-1), training)
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
