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

import keras_setup  # noqa: F401  (before keras: it picks the Keras backend, --backend)

import keras
from keras import layers

from common.driver import main
from common.runner import Step
from keras_layers import CBR   # CBR: Conv -> ReLU -> BatchNorm, taught in 01_binarization


def double_conv(x, filters, name):
    """(Conv 3x3 -> ReLU -> BN) x 2, named <name>-0 and <name>-1 (neutral <name>.0, <name>.1)."""
    # >>> Q6.1 two CBR 3x3 to `filters`, named f"{name}-0" and f"{name}-1"
    return CBR(CBR(x, filters, f"{name}-0"), filters, f"{name}-1")
    # <<< Q6.1


def UNet(num_classes: int, depth: int = 4, width: int = 32) -> keras.Model:
    # >>> Q6.2 enc-i: depth+1 double_conv, widths doubling, pooled before each but the first; decoder: up-k (Conv2DTranspose 2x2 stride 2, halving), concatenate [skip, up], dec-k double_conv
    chans = [width * 2 ** i for i in range(depth + 1)]   # 32, 64, 128, 256, 512
    x = inputs = keras.Input(shape=(None, None, 3), name="image")
    skips = []
    for i in range(depth + 1):
        if i > 0:
            x = layers.MaxPooling2D(2, name=f"pool-{i - 1}")(x)
        x = double_conv(x, chans[i], f"enc-{i}")
        skips.append(x)
    skips.pop()   # the bottleneck's output is x itself
    # decoder, deepest level first: up.0 and dec.0 work at 1/2^(depth-1) of the input size
    for k, i in enumerate(reversed(range(depth))):
        up = layers.Conv2DTranspose(chans[i], 2, strides=2, name=f"up-{k}")(x)
        x = layers.Concatenate(axis=-1, name=f"concat-{k}")([skips.pop(), up])
        x = double_conv(x, chans[i], f"dec-{k}")
    logits = layers.Conv2D(num_classes, 1, name="head")(x)
    return keras.Model(inputs, logits, name="unet")
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
